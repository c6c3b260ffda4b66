"""Numbers typed by hand in a chapter's prose.

A chapter's text must stay true when it is rerun with other parameters, so
every result it states is computed in the chapter and glued into the sentence
(myst-nb's ``{glue:text}`` role). What may be typed:

- anything inside a role (``{glue:text}``, ``{cite}``, ``{ref}``, ``{eq}``
  and ``{fixed}``, the book's role for a fixed fact: a value the paper
  reports, an architecture, a constant of the method, or a measurement the
  page dates and says it does not rerun), inside math
  (``$...$``, ``$$...$$``, ``{math}`` blocks) and inside inline code;
- references to numbered things: "Table 1", "Figs. 6-7", "equations (6) and
  (7)", "Theorem 2", and names that carry a number: "SO(2)", "the 2-sphere";
- years, the integers 0 and 1 as constants ("below 0", "near 1") and 95%, the
  confidence level of every interval in the book.

Everything else in the prose of a notebook (MyST markdown outside code
cells) is reported by :func:`typed_numbers`. ``python -m lib.book prose``
lists them for every chapter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TypedNumber", "typed_numbers", "value_range"]

_FENCE = re.compile(r"^(`{3,}|:{3,}|~{3,})")
_ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")
_CODE = re.compile(r"`[^`]*`")
_DISPLAY_MATH = re.compile(r"\$\$.*?\$\$")
_INLINE_MATH = re.compile(r"(?<!\\)\$[^$]+?(?<!\\)\$")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_LABEL = re.compile(r"^\([\w:.-]+\)=\s*$")
_NUMBERED = re.compile(
    r"\b(?:Tables?|Figs?\.|Figures?|Sections?|Sec\.|Eqs?\.|[Ee]quations?|Theorems?|Lemmas?|"
    r"Propositions?|Corollar(?:y|ies)|Algorithms?|Appendix|Chapters?|Parts?)"
    r"\s*\(?\d+[a-z]?\)?(?:\s*(?:,|and|-|–|to)\s*\(?\d+[a-z]?\)?)*")
_CODE_DIRECTIVES = {"code-cell", "code", "code-block", "math", "raw", "eval-rst"}
_OPTION = re.compile(r"^:[\w-]+:")
# Names that carry a number: groups (SO(2), C_4 is math), "the 2-sphere", "a 3-torus".
_NAMED = re.compile(r"\b(?:SO|SU|GL|SL|O|U)\(\d+\)|\b\d+-(?:spheres?|torus|tori|cubes?|balls?|simplex|simplices)\b")
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_NUMBER = re.compile(r"(?<![\w.\-/])[-−]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?%?(?!\w)")


@dataclass(frozen=True)
class TypedNumber:
    """A number typed in the prose: ``line`` (1-based) of the source, the ``number`` as
    written and the ``text`` of its line."""

    line: int
    number: str
    text: str


def _prose_lines(text: str):
    """(line number, line) of the markdown outside front matter, code and math.

    Fenced blocks are skipped when they hold code or math (``{code-cell}``,
    ``{math}``, a plain fence); the body of a prose directive (``{note}``,
    ``{figure}``, ...) is prose, its ``:option:`` lines are not.
    """
    lines = text.splitlines()
    fences = []            # (marker, skip) of the open fenced blocks, innermost last
    front = bool(lines) and lines[0].strip() == "---"
    in_math = False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if front:
            if number > 1 and stripped == "---":
                front = False
            continue
        if fences and stripped == fences[-1][0]:
            fences.pop()
            continue
        opening = _FENCE.match(stripped)
        if opening and not (fences and fences[-1][1]):
            directive = re.match(r"\{([\w-]+)\}", stripped[len(opening.group(1)):])
            fences.append((opening.group(1),
                           directive is None or directive.group(1) in _CODE_DIRECTIVES))
            continue
        if fences and (fences[-1][1] or _OPTION.match(stripped)):
            continue
        if stripped == "$$":
            in_math = not in_math
            continue
        if in_math or _LABEL.match(stripped):
            continue
        yield number, line


def typed_numbers(text: str) -> list[TypedNumber]:
    """Numbers written by hand in the prose of a MyST notebook's source ``text``.

    Parameters
    ----------
    text : str
        A chapter's Jupytext source (MyST markdown with ``{code-cell}`` cells).

    Returns
    -------
    list of TypedNumber
        In the order they appear; empty when every number is glued, a fixed
        fact, math, code or one of the exceptions of the module docstring.

    Examples
    --------
    >>> source = "The exponent is -2.23 ({glue:text}`slope:.2f` here), see Table 1."
    >>> [hit.number for hit in typed_numbers(source)]
    ['-2.23']
    >>> typed_numbers("The paper reports {fixed}`0.4` on $S^2$ in 2022.")
    []
    """
    if not isinstance(text, str):
        raise TypeError(f"The 'text' parameter of typed_numbers must be a str. "
                        f"Got {type(text).__name__} instead.")
    hits = []
    for number, line in _prose_lines(text):
        visible = line
        for pattern in (_ROLE, _CODE, _DISPLAY_MATH, _INLINE_MATH, _LINK_TARGET, _NUMBERED,
                        _NAMED):
            visible = pattern.sub(" ", visible)
        for match in _NUMBER.finditer(visible):
            value = match.group().rstrip(",")
            if _YEAR.match(value) or value in ("0", "1", "95%"):
                continue
            hits.append(TypedNumber(number, value, line.strip()))
    return hits


def value_range(values, form: str = "{:.2f}") -> str:
    """The range of ``values`` as a sentence states it: "a to b", or "a" when both read alike.

    Parameters
    ----------
    values : array_like of float
        At least one finite value; NaNs are left out.
    form : str, default="{:.2f}"
        A :meth:`str.format` pattern for one value.

    Examples
    --------
    >>> value_range([0.21, 0.4, 0.33], "{:.0%}")
    '21% to 40%'
    >>> value_range([1.996, 2.004], "{:.2f}")
    '2.00'
    """
    import numpy as np

    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    if array.size == 0:
        raise ValueError("The 'values' parameter of value_range must hold at least one "
                         "number that is not NaN. Got none.")
    low, high = form.format(array.min()), form.format(array.max())
    return low if low == high else f"{low} to {high}"
