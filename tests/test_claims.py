"""Verdicts on claims (lib.claims): each criterion against intervals whose answer is known."""

import math

import pandas as pd
import pytest

from lib.claims import (COLUMNS, VERDICTS, claims_table, contains_verdict, side_verdict,
                        verdict_counts)

HOLDS, FAILS, OPEN = VERDICTS


@pytest.mark.parametrize("low, high, bound, side, expected", [
    (0.1, 0.4, 0.0, "above", HOLDS), (-0.4, -0.1, 0.0, "above", FAILS),
    (-0.1, 0.2, 0.0, "above", OPEN), (0.0, 0.2, 0.0, "above", OPEN),      # touching: open
    (-3.0, -2.5, -2.0, "below", HOLDS), (-1.9, -1.0, -2.0, "below", FAILS),
    (-2.1, -1.9, -2.0, "below", OPEN), (math.nan, math.nan, 0.0, "above", OPEN),
    (1.0, math.inf, 0.0, "above", OPEN)])
def test_side_verdict_reads_the_whole_interval(low, high, bound, side, expected):
    assert side_verdict(low, high, bound=bound, side=side) == expected


@pytest.mark.parametrize("low, high, value, expected", [
    (-2.47, -1.99, -2.0, HOLDS), (-2.0, -1.5, -2.0, HOLDS), (-0.7, -0.5, -1.0, FAILS),
    (-0.7, -0.5, -0.4, FAILS), (math.nan, 1.0, 0.0, OPEN)])
def test_contains_verdict(low, high, value, expected):
    assert contains_verdict(low, high, value) == expected


def test_a_side_other_than_above_or_below_is_refused_by_name():
    with pytest.raises(ValueError, match="'side' parameter of side_verdict"):
        side_verdict(0.0, 1.0, side="left")


def row(verdict="holds", **extra):
    return {"claim": "c", "paper": "p", "ours": "1 [0, 2]", "verdict": verdict,
            "criterion": "k", **extra}


def test_claims_table_keeps_the_columns_in_order_and_counts_every_verdict():
    table = claims_table([row(extra_column=1), row(FAILS), row(FAILS)])
    assert list(table.columns) == list(COLUMNS)
    assert verdict_counts(table) == {HOLDS: 1, FAILS: 2, OPEN: 0}


def test_claims_table_refuses_a_typed_verdict_or_a_missing_column():
    with pytest.raises(ValueError, match="verdicts among"):
        claims_table([row("mostly true")])
    with pytest.raises(ValueError, match=r"Got no \['criterion'\]"):
        claims_table([{k: v for k, v in row().items() if k != "criterion"}])
    assert verdict_counts(pd.DataFrame({"verdict": []})) == {HOLDS: 0, FAILS: 0, OPEN: 0}


def test_the_claims_page_collects_each_chapters_table_with_links_and_counts(tmp_path):
    from lib.chapters import CHAPTERS, claims_page_text, write_claims_page

    first, second, *rest = list(CHAPTERS.values())
    for chapter, verdicts in ((first, [HOLDS, OPEN]), (second, [FAILS])):
        chapter.outputs(tmp_path).mkdir(parents=True)
        claims_table([row(v, claim=f"{chapter.slug} claim {i} | piped")
                      for i, v in enumerate(verdicts)]).to_csv(
            chapter.outputs(tmp_path) / "claims.csv", index=False)
    text = claims_page_text(tmp_path)
    assert "In all: 1 holds, 1 does not hold, 1 inconclusive at these sizes." in text
    assert f"**{{doc}}`chapters/{first.slug}`**: 1 holds, 0 does not hold" in text
    assert f"| {second.slug} claim 0 \\| piped | p | 1 [0, 2] | does not hold |" in text
    assert all(f"{{doc}}`chapters/{c.slug}`" in text.split("Chapters without")[1] for c in rest)
    assert write_claims_page(tmp_path).read_text() == text
