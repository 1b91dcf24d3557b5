"""Each script once per page.

sphinx-thebe (0.3.1, with Jupyter Book 1.0) registers its inline configuration script twice
(and sphinx-togglebutton its selector), so every page declared ``const THEBE_JS_URL`` twice and
the browser logged a SyntaxError. This
extension drops repeated entries from a page's scripts, keeping the first of each.
"""

from __future__ import annotations


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    # An inline script's filename is None when registered early and "" when late.
    return (getattr(script, "filename", str(script)) or "", tuple(sorted(attributes.items())))


def unique_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
