"""Sphinx extension: drop repeated <script> entries from every page.

Jupyter Book 1.0.4 on Sphinx 7.4 registers sphinx-thebe's inline configuration script twice,
and the second `const THEBE_JS_URL` declaration throws a SyntaxError in the browser on every
page. Keeping the first of identical scripts removes the error and changes nothing else.
"""


def _key(script):
    # Sphinx's _JavaScript: a filename (None or '' for inline: the two copies differ there)
    # plus attributes (body, async, ...).
    attrs = getattr(script, "attributes", {}) or {}
    return str(getattr(script, "filename", script) or ""), tuple(sorted((k, str(v)) for k, v in attrs.items()))


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
