"""Progress bars of long loops: on a terminal, or relayed to the chapter runner's terminal.

A chapter's kernel has no terminal: its stderr becomes the page. When
:mod:`lib.book` runs a chapter it names a file in ``$MANIFOLD_BOOK_PROGRESS``;
every bar that would be shown is written there instead, and the runner's
heartbeat prints the latest one beside the elapsed time. Elsewhere a bar goes
to stderr, by default only where stderr is a terminal.
"""

from __future__ import annotations

import os

#: Environment variable naming the file a chapter kernel's bars are relayed to.
PROGRESS_ENV = "MANIFOLD_BOOK_PROGRESS"


class _Relay:
    """A write-only text stream that appends to a file and keeps no handle open."""

    def __init__(self, path: str):
        self.path = path

    def write(self, text: str) -> int:
        with open(self.path, "a", encoding="utf-8") as stream:
            return stream.write(text)

    def flush(self) -> None:
        pass


def progress_bar(iterable=None, *, show: bool | None = None, **kwargs):
    """A tqdm bar over ``iterable`` (or one updated by hand), shown where a reader can see it.

    Parameters
    ----------
    iterable : iterable, optional
        What to loop over; without it, call ``update`` on the bar.
    show : bool or None, default=None
        False: never shown. True: always (on stderr). None: where stderr is a
        terminal. Unless False, a bar inside a chapter run by :mod:`lib.book`
        goes to the runner's progress file (``$MANIFOLD_BOOK_PROGRESS``),
        never into the page.
    **kwargs
        Passed to :class:`tqdm.tqdm` (``desc``, ``total``, ``unit``, ...).
    """
    from tqdm import tqdm  # plain tqdm: tqdm.auto warns without ipywidgets, which the book lacks

    relay = os.environ.get(PROGRESS_ENV)
    if relay and show is not False:
        # A file is no terminal, so the bar is enabled by hand; one update a few seconds,
        # short enough to end the runner's heartbeat line.
        return tqdm(iterable, file=_Relay(relay), disable=False, mininterval=3.0,
                    bar_format="{desc}: {n_fmt}/{total_fmt} [{elapsed}<{remaining}]", **kwargs)
    return tqdm(iterable, disable=None if show is None else not show, **kwargs)


def latest(path) -> str:
    """The last state a relayed bar wrote to ``path``, or "" when none has yet."""
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - 4096))
            tail = stream.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    states = [part.strip() for part in tail.replace("\n", "\r").split("\r") if part.strip()]
    return states[-1] if states else ""
