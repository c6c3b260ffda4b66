"""No result typed by hand in a chapter's prose (lib.prose.typed_numbers).

The scanner is checked on sentences whose verdict is known, then run on every
chapter's source: the test turns red as soon as a number is typed into the
prose. The executed chapters (slow tests) must record every name their prose
glues, and a rerun with another seed must change the glued numbers as it
changes the published tables.
"""

import pytest

from lib import book
from lib.prose import typed_numbers, value_range


def numbers(text):
    return [hit.number for hit in typed_numbers(text)]


@pytest.mark.parametrize("sentence, expected", [
    ("The exponent is -2.23 on the circle.", ["-2.23"]),
    ("Errors near 0.44 and 27% of the mean.", ["0.44", "27%"]),
    ("It took 1,436 images and 5e-3 of the budget.", ["1,436", "5e-3"]),
    ("The exponent is {glue:text}`slope:.2f` on the circle.", []),
    ("The paper's value {fixed}`-0.083` and ours $d = 20$, `epochs=300`.", []),
    ("See Table 1, Figs. 6-7 and equations (6) and (7) of {cite:t}`agarwala2022`.", []),
    ("Measured in 2026, ratio near 1, slope below 0, with 95% intervals.", []),
    ("SO(2) acts on the 2-sphere and on 3-tori, not on 4 spheres.", ["4"]),
    ("[the data](https://example.org/v2/file-3.csv) and {ref}`ch-2`", []),
])
def test_typed_numbers_finds_results_and_leaves_marked_ones(sentence, expected):
    assert numbers(sentence) == expected


def test_code_cells_math_blocks_and_options_are_not_prose():
    source = "\n".join([
        "---", "jupytext: 3", "---", "Prose 2.5.",
        "```{code-cell} ipython3", "x = 3.7", "```",
        "```{math}", ":label: eq-1", "a = 4.5", "```",
        "$$", "b = 6.5", "$$",
        ":::{note}", ":class: 7.5", "A note says 8.5.", ":::",
        "(label-9)=", "End 9.5."])
    hits = typed_numbers(source)
    assert [(hit.line, hit.number) for hit in hits] == [(4, "2.5"), (17, "8.5"), (20, "9.5")]


def test_typed_numbers_refuses_what_is_not_text():
    with pytest.raises(TypeError, match="'text' parameter of typed_numbers"):
        typed_numbers(b"bytes")


def test_value_range_reads_as_a_sentence():
    assert value_range([0.5, 0.25, float("nan")], "{:.0%}") == "25% to 50%"
    assert value_range([3.0], "{:.1f}") == "3.0"
    with pytest.raises(ValueError, match="'values' parameter of value_range"):
        value_range([float("nan")])


@pytest.mark.parametrize("slug", list(book.CHAPTERS))
def test_chapter_prose_has_no_typed_result(slug):
    source = book.CHAPTERS[slug].source(book.PROJECT_ROOT).read_text()
    hits = typed_numbers(source)
    assert not hits, "\n".join(f"line {hit.line}: {hit.number!r} in {hit.text!r}"
                               for hit in hits)


def glued_names(source):
    """Names the prose inserts with {glue}, {glue:text} or {glue:md} (format spec dropped)."""
    import re
    return set(re.findall(r"\{glue(?::\w+)?\}`([\w.-]+)", source))


def recorded_names(notebook):
    """Names the executed notebook recorded with myst_nb.glue."""
    return {output["metadata"]["scrapbook"]["name"] for cell in notebook.cells
            for output in cell.get("outputs", []) if "scrapbook" in output.get("metadata", {})}


def test_glued_names_are_read_without_their_format():
    assert glued_names("a {glue:text}`slope:.2f` b {glue}`n` {glue:md}`table`") == {
        "slope", "n", "table"}


@pytest.mark.slow
@pytest.mark.parametrize("slug", list(book.CHAPTERS))
def test_every_glued_name_is_recorded_by_the_run(built_book, slug):
    import nbformat
    chapter = book.CHAPTERS[slug]
    source = chapter.source(built_book).read_text()
    recorded = recorded_names(nbformat.read(chapter.executed(built_book), as_version=4))
    assert glued_names(source) <= recorded, sorted(glued_names(source) - recorded)


def glued_values(notebook):
    """name -> the text/plain repr myst_nb.glue recorded for it."""
    return {output["metadata"]["scrapbook"]["name"]:
            next(v for k, v in output["data"].items() if k.endswith("text/plain"))
            for cell in notebook.cells for output in cell.get("outputs", [])
            if "scrapbook" in output.get("metadata", {})}


@pytest.mark.slow
def test_a_new_seed_changes_the_prose_numbers_as_it_changes_the_tables(built_book, tmp_path):
    """image-manifolds with seed 1 measures other points: its glued error ranges and its
    convergence verdict follow its published table, and its orders differ from the seed-0
    page's."""
    import nbformat
    import pandas as pd
    from conftest import copy_book_sources

    root = copy_book_sources(tmp_path)
    chapter = book.CHAPTERS["image-manifolds"]
    book.run_chapter(chapter.slug, {"preset": "ci", "seed": 1}, root=root, progress=False)
    pages = {seed: glued_values(nbformat.read(chapter.executed(where), as_version=4))
             for seed, where in ((0, built_book), (1, root))}
    for seed, where in ((0, built_book), (1, root)):
        orders = pd.read_csv(chapter.outputs(where) / "fd-observed-orders.csv")
        tangents = orders[(orders["dataset"] == "dsprites") & (orders["quantity"] == "tangents")]
        assert pages[seed]["ds_tangents_grid"] == repr(
            value_range(tangents["error at grid spacing"], "{:.0%}")), seed
        assert pages[seed]["ds_tangents_orders"] == repr(" and ".join(
            f"{o:.2f}" for o in tangents.sort_values("order")["observed order"])), seed
        sprites = orders[orders["dataset"] == "dsprites"]     # the verdict, by its criterion
        at_stencil = ((sprites["observed order"] - sprites["order"]).abs() < 0.3).all()
        assert pages[seed]["ds_converge"] == repr(
            "converge at the order of their stencil" if at_stencil
            else "do not all reach the order of their stencil"), seed
    assert pages[0]["ds_tangents_orders"] != pages[1]["ds_tangents_orders"]


# The chapters that test claims of the work they reproduce; the others measure ground truth.
CLAIM_CHAPTERS = ("representation-gap", "eigenvalue-predictors", "nnk-graphs", "bound-scaling",
                  "layer-geometry")


@pytest.mark.slow
@pytest.mark.parametrize("slug", CLAIM_CHAPTERS)
def test_claim_chapters_publish_a_claims_table_with_a_computed_verdict_per_row(built_book,
                                                                              slug):
    import pandas as pd

    from lib.claims import COLUMNS, VERDICTS

    table = pd.read_csv(book.CHAPTERS[slug].outputs(built_book) / "claims.csv")
    assert list(table.columns) == list(COLUMNS) and len(table)
    assert table["verdict"].isin(VERDICTS).all() and table["criterion"].notna().all()


@pytest.mark.slow
def test_the_introduction_collects_every_claims_table(built_book):
    import pandas as pd

    from lib.chapters import CLAIMS_PAGE
    from lib.claims import VERDICTS

    page = (built_book / CLAIMS_PAGE).read_text()
    tables = [pd.read_csv(book.CHAPTERS[slug].outputs(built_book) / "claims.csv")
              for slug in CLAIM_CHAPTERS]
    total = pd.concat(tables)["verdict"].value_counts()
    assert "In all: " + ", ".join(f"{total.get(v, 0)} {v}" for v in VERDICTS) + "." in page
    for slug, table in zip(CLAIM_CHAPTERS, tables):
        assert f"{{doc}}`chapters/{slug}`" in page
        for claim in table["claim"]:
            assert " ".join(claim.split()).replace("|", "\\|") in page
    html = (built_book / "_build" / "html" / "book" / "intro.html").read_text()
    assert "In all: " in html and "eigenvalue-predictors.html" in html
