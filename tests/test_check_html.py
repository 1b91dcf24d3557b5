"""devtools/check_html.py's detection functions on tiny hand-made pages, in real Chromium.

Each defect the checker promises to catch is planted in a page of its own; a clean page must
pass every detector. Skipped where Debian's chromium is not installed.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("playwright")
spec = importlib.util.spec_from_file_location("check_html", ROOT / "devtools" / "check_html.py")
check_html = importlib.util.module_from_spec(spec)
sys.modules["check_html"] = check_html
spec.loader.exec_module(check_html)

if check_html.chromium_path() is None:
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

HEAD = "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>t</title></head>"
PAGES = {
    "clean.html": "<main><h1>Clean</h1><p>Prose with <a href='other.html#here'>a link</a>.</p>"
    "<img src='data:image/gif;base64,R0lGODlhAQABAAAAACw=' alt='a dot'>"
    "<pre style='overflow:auto'>" + "x" * 400 + "</pre></main>",
    "other.html": "<main><h1 id='here'>Other</h1></main>",
    "noalt.html": "<main><img src='data:image/gif;base64,R0lGODlhAQABAAAAACw='></main>",
    "matherror.html": "<main><p>See <span class='math'>Math input error</span>.</p></main>",
    "rawtex.html": "<main><p>The rate $\\alpha$ was left as TeX.</p></main>",
    "wide.html": "<main style='width:300px'><pre style='overflow:visible'>"
    + "y" * 400
    + "</pre></main>",
    "brokenlink.html": "<main><p><a href='missing.html'>gone</a> <a href='other.html#nope'>x</a>"
    " <a href='http://PAPERS.md'>PAPERS.md</a></p></main>",
}


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    """A function that opens one of PAGES at desktop width and returns its Playwright page."""
    root = tmp_path_factory.mktemp("site")
    for name, body in PAGES.items():
        (root / name).write_text(HEAD + "<body>" + body + "</body></html>")
    site = check_html.Site(root, root / "node_modules")
    pages = []
    with check_html.sync_playwright() as playwright:
        browser = check_html.launch(playwright)

        def open_page(name):
            page = check_html.OpenPage(browser, site, "desktop")
            page.goto(site.url(name))
            pages.append(page)
            return page

        open_page.site = site
        yield open_page
        for page in pages:
            page.close()
        browser.close()


def rules(problems):
    return sorted({problem.rule for problem in problems})


def test_clean_page_passes(opened):
    page = opened("clean.html")
    problems = (
        check_html.find_images_without_alt(page.page)
        + check_html.find_math_problems(page.page)
        + check_html.find_overflow(page.page)
        + check_html.find_unrendered_widgets(page.page)
        + check_html.find_broken_links(page.page, opened.site)
        + check_html.find_console_errors(page.errors)
    )
    assert problems == []


def test_image_without_alt_is_found(opened):
    assert rules(check_html.find_images_without_alt(opened("noalt.html").page)) == ["img-alt"]


def test_math_input_error_is_found(opened):
    problems = check_html.find_math_problems(opened("matherror.html").page)
    assert any("Math input error" in problem.message for problem in problems)


def test_raw_tex_is_found(opened):
    problems = check_html.find_math_problems(opened("rawtex.html").page)
    assert [problem.detail["kind"] for problem in problems] == ["raw-tex"]


def test_wide_pre_without_scrolling_is_found(opened):
    problems = check_html.find_overflow(opened("wide.html").page)
    assert problems and problems[0].detail["element"] == "pre"


def test_broken_links_are_found(opened):
    problems = check_html.find_broken_links(opened("brokenlink.html").page, opened.site)
    messages = " | ".join(problem.message for problem in problems)
    assert "missing page: missing.html" in messages
    assert "missing anchor: other.html#nope" in messages
    assert "PAPERS.md" in messages
