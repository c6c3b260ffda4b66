"""One function per figure: study results in, matplotlib Figure out; nothing is computed here.

One module per chapter, named like the chapter's study module in the chapter
registry :data:`lib.chapters.CHAPTERS` (``study``), which is this package's
index (a test checks it); all draw in the common style of the private
``lib.figures._style``. A notebook's ``from lib import figures`` imports
none of them: ``figures.toy_manifolds`` imports that module when it is first
read, so this file needs no list of them.
"""

from lib._lazy import submodules

__getattr__, __dir__ = submodules(__name__, __path__)
