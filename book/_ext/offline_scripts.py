"""Sphinx extension: keep the rendered pages free of duplicated inline scripts.

Sphinx 7.4 (the newest Jupyter Book 1 allows) can list the same inline
script twice on a page, which the browser reports as a redeclared
identifier (fixed upstream in Sphinx 8.2). Dropping repeats from the page
context removes the console error without touching any theme.
"""


def _deduplicate_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # Same file and same inline body is the same script, whatever its priority.
        attributes = getattr(script, "attributes", {})
        # Inline scripts come with filename None or "": both mean "no file".
        key = (getattr(script, "filename", str(script)) or "", attributes.get("body"))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _deduplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

