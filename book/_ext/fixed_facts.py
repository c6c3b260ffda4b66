"""Sphinx extension: the ``{fixed}`` role, a number the prose may state as typed.

A chapter's results are glued from its run (``{glue:text}``); a fixed fact is
not a result of the run: a value the reproduced paper reports, an
architecture, a constant of the method, or a measurement the page dates and
says it does not rerun. Marking it ``{fixed}`42`` renders it as plain text
and tells ``lib.prose.typed_numbers`` (and the test built on it) that it was
typed on purpose.
"""

from docutils import nodes


def fixed_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    return [nodes.inline(rawtext, text, classes=["fixed"])], []


def setup(app):
    app.add_role("fixed", fixed_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
