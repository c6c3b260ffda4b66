"""Verdicts on a paper's claims, computed from a run's intervals.

Every chapter that tests claims of the work it reproduces publishes them as a
table named ``claims`` with the columns of :data:`COLUMNS`: the claim, the
paper's value or statement, this run's value with its interval, the verdict
and the criterion that produced it. The verdict is one of :data:`VERDICTS`,
computed here, never typed; the book's introduction collects the tables of
all chapters.
"""

from __future__ import annotations

import math

import pandas as pd

from lib._checks import check_in

__all__ = ["VERDICTS", "COLUMNS", "side_verdict", "contains_verdict", "claims_table",
           "verdict_counts"]

#: The verdicts a claim can get.
VERDICTS = ("holds", "does not hold", "inconclusive at these sizes")
#: Columns of a chapter's ``claims`` table, in order.
COLUMNS = ("claim", "paper", "ours", "verdict", "criterion")


def side_verdict(low: float, high: float, *, bound: float = 0.0, side: str = "above") -> str:
    """Whether an interval lies on the claimed side of ``bound``.

    Parameters
    ----------
    low, high : float
        A 95% interval of this run's value (NaN when there is none, e.g. one seed).
    bound : float, default=0.0
        The threshold of the claim.
    side : {"above", "below"}
        Where the claim puts the value.

    Returns
    -------
    str
        "holds" when the whole interval lies on ``side`` of ``bound``, "does
        not hold" when it lies on the other side, "inconclusive at these
        sizes" when it straddles ``bound`` or is missing.

    Examples
    --------
    >>> side_verdict(0.1, 0.4), side_verdict(-0.4, -0.1), side_verdict(-0.1, 0.2)
    ('holds', 'does not hold', 'inconclusive at these sizes')
    >>> side_verdict(-3.0, -2.5, bound=-2.0, side="below")
    'holds'
    """
    check_in(side, ("above", "below"), name="side", caller="side_verdict")
    if not (math.isfinite(low) and math.isfinite(high)):
        return VERDICTS[2]
    if side == "below":
        low, high, bound = -high, -low, -bound
    return VERDICTS[0] if low > bound else VERDICTS[1] if high < bound else VERDICTS[2]


def contains_verdict(low: float, high: float, value: float) -> str:
    """Whether an interval holds the paper's ``value``: "holds" if it does, else "does not hold".

    A missing interval (NaN) is "inconclusive at these sizes". An interval
    that holds the value says the run cannot tell it from ours, not that the
    two agree; the width is in the table's ``ours`` column.

    Examples
    --------
    >>> contains_verdict(-2.47, -1.99, -2.0), contains_verdict(-0.7, -0.5, -1.0)
    ('holds', 'does not hold')
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return VERDICTS[2]
    return VERDICTS[0] if low <= value <= high else VERDICTS[1]


def claims_table(rows) -> pd.DataFrame:
    """A chapter's claims as the table the book collects, checked.

    Parameters
    ----------
    rows : iterable of dict
        One per claim, with the keys of :data:`COLUMNS` (others are dropped);
        every ``verdict`` one of :data:`VERDICTS`.

    Returns
    -------
    DataFrame with columns :data:`COLUMNS`, in the order given.
    """
    table = pd.DataFrame(list(rows))
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"The 'rows' parameter of claims_table must give every claim the keys "
                         f"{list(COLUMNS)}. Got no {missing}.")
    wrong = sorted(set(table["verdict"]) - set(VERDICTS))
    if wrong:
        raise ValueError(f"The 'rows' parameter of claims_table must give verdicts among "
                         f"{list(VERDICTS)}. Got {wrong}.")
    return table[list(COLUMNS)].reset_index(drop=True)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many claims of ``table`` hold, do not hold and are inconclusive (every verdict)."""
    counts = table["verdict"].value_counts()
    return {verdict: int(counts.get(verdict, 0)) for verdict in VERDICTS}
