"""Open the built book in headless Chromium the way a reader would, and fail on defects.

Why: `jupyter-book build -W` only sees what Sphinx sees. Math that MathJax cannot typeset,
figures without alt text, equations or code lines wider than the column, widgets that do
not render from their saved state, links to pages that do not exist, an empty search and
accessibility violations all show up only in a browser. This script is that browser.

What it does (`make check-html` runs it after building `_build/html`):

* serves `_build/html` at a fake origin (``http://book.test``) through Playwright request
  interception, so pages load exactly as from a web server, with no port and no network;
* serves the assets the pages load from CDNs (MathJax 3, require.js, the Jupyter widgets
  embed script, their fonts) from local npm copies in `node_modules/` (`npm ci`, pinned by
  package.json / package-lock.json), and blocks and reports every other external request;
* opens every page at a desktop (1280x900) and a phone (390x844) viewport in Debian's
  `chromium` (Playwright's own browser download is not used) and checks each one for:
  console errors and page errors, MathJax errors and raw TeX left in the prose, images
  without alt text, content wider than its column that does not scroll, widgets that did not
  render, broken same-site links and anchors, an axe-core accessibility scan (impact serious
  or critical, minus the documented theme exceptions in AXE_EXCEPTIONS), code cells that
  scroll sideways at the desktop width, and that the search
  page finds "grokking";
* saves a full-page screenshot per page and width and writes `report.json` (rewritten after
  every page, so an interrupted run still leaves a useful report) under `_build/check-html/`.

Exit status: 0 when no page has a problem, 1 when some page has one (listed per page on
stdout), 2 when the check itself cannot run (no chromium, no build, no node_modules).

Usage: python devtools/check_html.py [--site _build/html] [--out _build/check-html]
       [--page book/intro.html ...] [--no-axe] [--no-screenshots]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html.parser
import json
import mimetypes
import os
import re
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from playwright.sync_api import Browser, Page, Route, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

REPO = Path(__file__).resolve().parents[1]
ORIGIN = "http://book.test"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
SEARCH_PAGE = "search.html"
SEARCH_QUERY = "grokking"
# The column the prose is laid out in: sphinx-book-theme's article, else any <main>/<body>.
COLUMN_JS = (
    "document.querySelector('article.bd-article') || document.querySelector('main')"
    " || document.body"
)
# Where figures and prose live: the theme's main content, else the whole body.
CONTENT_JS = (
    "document.querySelector('#main-content') || document.querySelector('main') || document.body"
)
# How far (px) drawn content may stick out of an overflow-hidden box before it counts as
# cut off: glyph overhangs of italic math are a pixel or two.
CLIP_SLACK_PX = 2
AXE_IMPACTS = ("serious", "critical")
# axe violations that come from sphinx-book-theme / pydata-sphinx-theme markup rather than
# from the book's content, and that no notebook can fix. Each entry names the rule, the CSS
# selector fragments (axe "target") it is excused on, and why. A violation of the same rule
# on any other element still fails the check.
AXE_EXCEPTIONS: dict[str, dict[str, object]] = {
    "aria-input-field-name": {
        "targets": [".noUi-handle"],
        "why": "ipywidgets' sliders (noUiSlider inside @jupyter-widgets/controls) give the "
               "handle role=slider without a label; the slider's description is drawn beside "
               "it, and the markup comes from the widget library, not from the book",
    },
    "aria-required-children": {
        "targets": [".citation-list"],
        "why": "Sphinx's bibliography (sphinxcontrib-bibtex) marks the list of references "
               "role=list with citation children that are not listitems",
    },
}
# Links that linkify turned into external URLs although they are file names ("PAPERS.md").
FILE_NAME_HOST = re.compile(r"\.(md|ipynb|py|txt|ya?ml|json|csv|toml|cfg|bib|rst)$", re.IGNORECASE)


@dataclass
class Problem:
    """One defect found on one page at one width."""

    rule: str
    message: str
    width: str = ""
    detail: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Serving the book and the CDN assets offline
# --------------------------------------------------------------------------------------


def npm_version(node_modules: Path, package: str) -> str | None:
    """The installed version of an npm package, or None when it is not installed."""
    manifest = node_modules / package / "package.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())["version"]


def version_matches(installed: str, wanted: str) -> bool:
    """Whether an installed version satisfies a CDN version (exact, or a major/minor prefix)."""
    return installed == wanted or installed.startswith(wanted + ".")


def cdn_to_local(url: str, node_modules: Path) -> Path | None:
    """The local file in node_modules that stands for a CDN URL, or None when there is none.

    Understands jsdelivr's and unpkg's /npm/<package>@<version>/<path> layout and cdnjs's
    require.js (whose minified build npm does not ship: the npm package's require.js is the
    same version unminified).
    """
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc == "cdnjs.cloudflare.com":
        match = re.fullmatch(r"/ajax/libs/require\.js/([^/]+)/require(\.min)?\.js", path)
        if not match:
            return None
        package, version, rest = "requirejs", match.group(1), "require.js"
    elif parts.netloc in ("cdn.jsdelivr.net", "unpkg.com"):
        path = path.removeprefix("/npm")
        match = re.fullmatch(r"/((?:@[^/]+/)?[^/@]+)@([^/]+)/(.+)", path)
        if not match:
            return None
        package, version, rest = match.groups()
    else:
        return None
    installed = npm_version(node_modules, package)
    if installed is None or not version_matches(installed, version):
        return None
    local = (node_modules / package / rest).resolve()
    if not local.is_file() or node_modules.resolve() not in local.parents:
        return None
    return local


def sri_digest(data: bytes, algorithm: str) -> str:
    """A subresource-integrity value (e.g. 'sha256-...') for some bytes."""
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


def relax_integrity(page_html: str, node_modules: Path) -> str:
    """Drop the integrity attribute of CDN scripts whose local copy is not byte-identical.

    The pages pin cdnjs's minified require.js by SRI hash; no npm package ships that exact
    file, so the local copy (npm's require.js of the same version) would be refused by the
    browser. Only attributes whose local substitute fails the hash are removed; a matching
    local copy keeps its check.
    """

    def fix(match: re.Match) -> str:
        tag = match.group(0)
        src = re.search(r'src="([^"]+)"', tag)
        integrity = re.search(r'\sintegrity="([a-z0-9]+)-[^"]*"', tag)
        if not src or not integrity:
            return tag
        local = cdn_to_local(src.group(1), node_modules)
        if local is None:
            return tag
        wanted = re.search(r'integrity="([^"]*)"', tag).group(1)
        if sri_digest(local.read_bytes(), integrity.group(1)) == wanted:
            return tag
        return tag.replace(integrity.group(0), "")

    return re.sub(r"<script\b[^>]*>", fix, page_html)


class Site:
    """Answers every request a page makes: book files, local CDN copies, or a block.

    It records what it could not serve (missing book files, blocked external requests), per
    page URL, so that each page's check can report them.
    """

    def __init__(self, root: Path, node_modules: Path):
        self.root = root.resolve()
        self.node_modules = node_modules
        self.missing: list[str] = []
        self.blocked: list[str] = []

    def url(self, path: str) -> str:
        """The URL a reader would open for a file of the built site."""
        return f"{ORIGIN}/{path}"

    def file_for(self, url: str) -> Path | None:
        """The file of the built site a same-site URL points to (None if there is none)."""
        path = unquote(urlsplit(url).path).lstrip("/")
        if path == "" or path.endswith("/"):
            path += "index.html"
        local = (self.root / path).resolve()
        if local != self.root and self.root not in local.parents:
            return None
        return local if local.is_file() else None

    def handle(self, route: Route) -> None:
        """Playwright route handler for every request of every page."""
        url = route.request.url
        if url.startswith(ORIGIN + "/"):
            self.serve_book_file(route, url, route.request.headers.get("referer", ""))
        elif url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            local = cdn_to_local(url, self.node_modules)
            if local is None:
                self.blocked.append(f"{route.request.resource_type}: {url}")
                route.abort("blockedbyclient")
            else:
                self.fulfill(route, local.read_bytes(), local.name)

    def serve_book_file(self, route: Route, url: str, referer: str) -> None:
        """Serve a file of the built site, or a 404 that is recorded with who asked."""
        local = self.file_for(url)
        if local is None:
            self.missing.append(f"{url} (requested by {referer or 'the page'})")
            route.fulfill(status=404, body="not found", content_type="text/plain")
            return
        body = local.read_bytes()
        if local.suffix == ".html":
            body = relax_integrity(body.decode("utf-8"), self.node_modules).encode("utf-8")
        self.fulfill(route, body, local.name)

    @staticmethod
    def fulfill(route: Route, body: bytes, name: str) -> None:
        """Answer a request with a file's bytes, a guessed type, and CORS allowed."""
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith(("javascript", "json")):
            content_type += "; charset=utf-8"
        route.fulfill(
            status=200,
            body=body,
            headers={"Content-Type": content_type, "Access-Control-Allow-Origin": "*"},
        )

    def take_unserved(self) -> tuple[list[str], list[str]]:
        """The missing and blocked requests since the last call, then forget them."""
        missing, blocked = self.missing, self.blocked
        self.missing, self.blocked = [], []
        return missing, blocked


# --------------------------------------------------------------------------------------
# Opening a page
# --------------------------------------------------------------------------------------


def chromium_path() -> str | None:
    """Debian's chromium (or $CHROMIUM), which Playwright drives instead of its own build."""
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


def launch(playwright) -> Browser:
    """Launch headless system Chromium."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=path, headless=True)


class OpenPage:
    """A page opened at one width, with its console errors and page errors collected."""

    def __init__(self, browser: Browser, site: Site, width: str):
        viewport_width, viewport_height = WIDTHS[width]
        self.context = browser.new_context(
            viewport={"width": viewport_width, "height": viewport_height},
            service_workers="block",
        )
        self.context.route("**/*", site.handle)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self.on_console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def on_console(self, message) -> None:
        """Keep console messages of type error."""
        if message.type == "error":
            location = message.location.get("url", "") if message.location else ""
            self.errors.append(
                f"console error: {message.text}" + (f" ({location})" if location else "")
            )

    def goto(self, url: str) -> None:
        """Open a URL and wait until MathJax, widgets and fonts have settled."""
        self.page.goto(url, wait_until="load", timeout=60_000)
        wait_for_mathjax(self.page)
        wait_for_widgets(self.page)
        self.page.evaluate("document.fonts.ready.then(() => true)")

    def close(self) -> None:
        self.context.close()


def wait_for_mathjax(page: Page, timeout_ms: int = 30_000) -> None:
    """Wait for MathJax 3's first typesetting pass, on pages that load MathJax."""
    uses_mathjax = page.evaluate("!!document.querySelector('script[src*=\"mathjax\"]')")
    if not uses_mathjax:
        return
    try:
        page.wait_for_function(
            "window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=timeout_ms
        )
        page.evaluate("MathJax.startup.promise.then(() => true)")
    except PlaywrightTimeout:
        pass  # reported by find_math_problems (math left untypeset)


def wait_for_widgets(page: Page, timeout_ms: int = 15_000) -> None:
    """Wait until every saved widget view has been rendered (or give up after a while)."""
    try:
        page.wait_for_function(
            """() => Array.from(document.querySelectorAll(
                   'script[type="application/vnd.jupyter.widget-view+json"]'))
                 .every(s => s.parentElement.querySelector('.widget-subarea *'))""",
            timeout=timeout_ms,
        )
    except PlaywrightTimeout:
        pass  # reported by find_unrendered_widgets


# --------------------------------------------------------------------------------------
# Detection functions: each takes an open page and returns a list of Problems
# --------------------------------------------------------------------------------------


def find_images_without_alt(page: Page) -> list[Problem]:
    """Images in the main content whose alt text is missing or empty."""
    images = page.evaluate(
        f"""() => Array.from(({CONTENT_JS}).querySelectorAll('img'))
              .filter(img => !(img.getAttribute('alt') || '').trim())
              .map(img => {{
                  const fig = img.closest('figure, .cell_output, .cell');
                  const caption = fig && fig.querySelector('figcaption');
                  const section = img.closest('section');
                  const heading = section && section.querySelector('h1, h2, h3, h4');
                  return {{src: img.getAttribute('src') || '',
                           section: heading ? heading.textContent.replace('#', '').trim() : '',
                           caption: caption ? caption.textContent.trim().slice(0, 80) : ''}};
              }})"""
    )
    return [
        Problem(
            "img-alt",
            f"image without alt text: {img['src'].rsplit('/', 1)[-1]}"
            + (f" (in '{img['section']}')" if img["section"] else ""),
            detail=img,
        )
        for img in images
    ]


MATH_JS = r"""() => {
  const out = [];
  const snippet = (s) => s.replace(/\s+/g, ' ').trim().slice(0, 120);
  const where = (el) => {
    const section = el.closest && el.closest('section');
    const h = section && section.querySelector('h1, h2, h3, h4');
    return h ? h.textContent.replace('#', '').trim() : '';
  };
  for (const el of document.querySelectorAll('mjx-merror, [data-mjx-error]')) {
    const container = el.closest('mjx-container') || el;
    out.push({kind: 'mathjax-error',
              text: snippet(el.getAttribute('data-mjx-error') || el.textContent),
              tex: snippet(container.getAttribute('data-tex') || ''), section: where(container)});
  }
  const content = CONTENT;
  // The search page's result snippets are the pages' source text, TeX included, by design.
  const skip = 'script, style, pre, code, kbd, samp, textarea, mjx-container, mjx-assistive-mml, '
               + '.MathJax, .highlight, #search-results';
  const dollar = /\$\$|\$[^$\s](?:[^$]*[^$\s])?\$/;
  const tex = /\\[A-Za-z]+|\\[()[\]{}]/;
  const walker = document.createTreeWalker(content, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    const text = node.textContent;
    if (text.includes('Math input error')) {
      out.push({kind: 'mathjax-error', text: 'Math input error', section: where(parent)});
      continue;
    }
    // Look at the text of the whole paragraph, so that `$a_i$` split by a stray <em> is seen.
    const block = parent.closest('p, li, dd, dt, td, th, figcaption, h1, h2, h3, h4, h5, h6')
                  || parent;
    if (seen.has(block)) continue;
    let blockText = '';
    const inner = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
    for (let t = inner.nextNode(); t; t = inner.nextNode()) {
      if (!t.parentElement.closest(skip)) blockText += t.textContent;
    }
    const m = blockText.match(dollar) || blockText.match(tex);
    if (m) {
      seen.add(block);
      const around = blockText.slice(Math.max(0, m.index - 40), m.index + m[0].length + 40);
      out.push({kind: 'raw-tex', text: snippet(m[0]), context: snippet(around),
                section: where(block)});
    }
  }
  return out;
}"""


SCROLLING_CODE_JS = r"""() => Array.from(document.querySelectorAll('div.cell pre'))
  .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => {
    const line = pre.textContent.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
    const section = pre.closest('section');
    const heading = section && section.querySelector('h1, h2, h3');
    return {line: line.slice(0, 100), chars: line.length, over: pre.scrollWidth - pre.clientWidth,
            section: heading ? heading.textContent.replace('#', '').trim() : ''};
  })"""


def find_scrolling_code(page: Page) -> list[Problem]:
    """Code cells and their printed output that the reader must scroll sideways at the desktop
    width: the notebooks keep their lines within the column (see tests/test_book_source.py),
    so a box that scrolls there is a line too long or a font too large."""
    return [Problem("wide-code", f"{item['over']}px wider than its box: a line of "
                                 f"{item['chars']} characters in '{item['section']}': "
                                 f"{item['line']!r}", detail=item)
            for item in page.evaluate(SCROLLING_CODE_JS)]


def find_math_problems(page: Page) -> list[Problem]:
    """MathJax error nodes, 'Math input error', and TeX ($...$, \\alpha) left in the prose."""
    found = page.evaluate(MATH_JS.replace("CONTENT", CONTENT_JS))
    problems = []
    for item in found:
        if item["kind"] == "mathjax-error":
            message = f"MathJax error: {item['text']}"
            if item.get("tex"):
                message += f" in {item['tex']!r}"
        else:
            message = f"raw TeX in rendered text: {item['text']!r} in \u2026{item['context']}\u2026"
        if item.get("section"):
            message += f" (in '{item['section']}')"
        problems.append(Problem("math", message, detail=item))
    return problems


OVERFLOW_JS = r"""() => {
  const column = COLUMN;
  const cs = getComputedStyle(column);
  const rect = column.getBoundingClientRect();
  const left = rect.left + parseFloat(cs.paddingLeft);
  const right = rect.right - parseFloat(cs.paddingRight);
  const out = [];
  const describe = (el) => {
    let name = el.tagName.toLowerCase();
    if (el.id) name += '#' + el.id;
    else if (el.classList.length) name += '.' + Array.from(el.classList).slice(0, 2).join('.');
    const section = el.closest('section');
    const h = section && section.querySelector('h1, h2, h3, h4');
    const text = (el.getAttribute('data-tex') || el.textContent).replace(/\s+/g, ' ').trim();
    return {element: name, text: text.slice(0, 100),
            section: h ? h.textContent.replace('#', '').trim() : ''};
  };
  const scrollsX = (s) => s.overflowX === 'auto' || s.overflowX === 'scroll';
  const clipsX = (s) => s.overflowX === 'hidden' || s.overflowX === 'clip';
  // Boxes a reader does not see: not rendered, invisible, or screen-reader only (MathJax's
  // assistive MathML and other visually-hidden elements are 1px-clipped absolute boxes
  // that may stick out of the column without anyone seeing or scrolling to them).
  const unseen = (el, s) => s.display === 'none' || s.visibility === 'hidden'
    || s.position === 'fixed' || el.tagName === 'MJX-ASSISTIVE-MML'
    || (s.position === 'absolute' && (s.clip !== 'auto' || s.clipPath !== 'none'));
  // Right edge of el's own text (text that does not wrap runs out of its box).
  const textRight = (el) => {
    let edge = -Infinity;
    for (const node of el.childNodes) {
      if (node.nodeType !== Node.TEXT_NODE || !node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const box of range.getClientRects()) edge = Math.max(edge, box.right);
    }
    return edge;
  };
  // Right edge of what is drawn inside el (not counting what its scrollers or clippers hide).
  const drawnRight = (el) => {
    let edge = textRight(el);
    for (const child of el.children) {
      const s = getComputedStyle(child);
      if (unseen(child, s)) continue;
      const r = child.getBoundingClientRect();
      if (r.width > 1 && r.height > 1) edge = Math.max(edge, r.right);
      if (!scrollsX(s) && !clipsX(s)) edge = Math.max(edge, drawnRight(child));
    }
    return edge;
  };
  const visit = (el) => {
    for (const child of el.children) {
      const s = getComputedStyle(child);
      if (unseen(child, s)) continue;
      const r = child.getBoundingClientRect();
      if (r.width <= 1 || r.height <= 1) { visit(child); continue; }
      const past = Math.max(r.right - right, left - r.left,
                            scrollsX(s) || clipsX(s) ? 0 : textRight(child) - right);
      if (past > 1) {
        out.push(Object.assign(describe(child), {
          kind: 'wider than column', px: Math.round(past), width: Math.round(r.width),
          column: Math.round(right - left)}));
        continue;
      }
      if (scrollsX(s)) continue;  // whatever is inside scrolls
      if (clipsX(s)) {
        const cut = drawnRight(child) - r.right;
        if (cut > CLIP_SLACK) {
          out.push(Object.assign(describe(child), {
            kind: 'cut off (overflow hidden, no scrollbar)', px: Math.round(cut),
            width: Math.round(r.width + cut), column: Math.round(r.width)}));
        }
        continue;
      }
      visit(child);
    }
  };
  visit(column);
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1) {
    out.push({kind: 'page scrolls sideways', element: 'html', text: '', section: '',
              px: doc.scrollWidth - window.innerWidth, width: doc.scrollWidth,
              column: window.innerWidth});
  }
  return out;
}"""


def find_overflow(page: Page) -> list[Problem]:
    """Elements of the article wider than its column and not inside a horizontal scroller."""
    found = page.evaluate(
        OVERFLOW_JS.replace("COLUMN", COLUMN_JS).replace("CLIP_SLACK", str(CLIP_SLACK_PX))
    )
    return [
        Problem(
            "overflow",
            f"{item['kind']}: <{item['element']}> {item['width']}px in a {item['column']}px column "
            f"({item['px']}px too wide)"
            + (f" in '{item['section']}'" if item["section"] else "")
            + (f": {item['text'][:70]!r}" if item["text"] else ""),
            detail=item,
        )
        for item in found
    ]


def find_unrendered_widgets(page: Page) -> list[Problem]:
    """Saved widget views (script tags) next to which no widget was rendered."""
    missing = page.evaluate(
        """() => Array.from(document.querySelectorAll(
                 'script[type="application/vnd.jupyter.widget-view+json"]'))
             .filter(s => !s.parentElement.querySelector('.widget-subarea *'))
             .map(s => {
                 try { return JSON.parse(s.textContent).model_id; } catch (e) { return '?'; }
             })"""
    )
    return [
        Problem("widget", f"widget view {model_id} did not render from its saved state")
        for model_id in missing
    ]


def find_console_errors(errors: list[str], unserved: list[str] = ()) -> list[Problem]:
    """Console errors and uncaught page errors, one Problem each (repeats folded).

    Chromium's "Failed to load resource" for a request in `unserved` (already reported as a
    missing file or a blocked request) is left out, so each defect is reported once.
    """
    counts: dict[str, int] = defaultdict(int)
    for error in errors:
        if "Failed to load resource" in error and any(
            url.split(" ")[0] in error for url in unserved
        ):
            continue
        counts[error[:500]] += 1
    return [
        Problem("console", error + (f" (x{count})" if count > 1 else ""))
        for error, count in counts.items()
    ]


def find_unserved_requests(missing: list[str], blocked: list[str]) -> list[Problem]:
    """Book files a page asked for that do not exist, and external requests that were blocked."""
    problems = [
        Problem("missing-file", f"page requested a file that is not in the build: {url}")
        for url in missing
    ]
    problems += [
        Problem("external-request", f"blocked request to a host with no local copy ({what})")
        for what in sorted(set(blocked))
    ]
    return problems


class IdParser(html.parser.HTMLParser):
    """Collects the id and name attributes of an HTML file (the anchors links can point to)."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (key == "name" and tag == "a"):
                self.ids.add(value or "")


def anchors_of(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    """The anchors (ids) of a built HTML file, parsed once."""
    if path not in cache:
        parser = IdParser()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = parser.ids
    return cache[path]


def find_broken_links(
    page: Page, site: Site, cache: dict[Path, set[str]] | None = None
) -> list[Problem]:
    """Same-site links to a missing page or anchor, and file names that linkify made external."""
    cache = {} if cache is None else cache
    links = page.evaluate(
        """() => Array.from(document.querySelectorAll('a[href]')).map(a => ({
               href: a.href, raw: a.getAttribute('href'),
               text: a.textContent.trim().slice(0, 80)}))"""
    )
    problems = []
    for link in links:
        parts = urlsplit(link["href"])
        if link["href"].startswith(ORIGIN + "/"):
            target = site.file_for(link["href"])
            if target is None:
                problems.append(
                    Problem(
                        "broken-link",
                        f"link to a missing page: {link['raw']} ('{link['text']}')",
                        detail=link,
                    )
                )
            elif (
                parts.fragment
                and target.suffix == ".html"
                and unquote(parts.fragment) not in anchors_of(target, cache)
            ):
                problems.append(
                    Problem(
                        "broken-link",
                        f"link to a missing anchor: {link['raw']} ('{link['text']}')",
                        detail=link,
                    )
                )
        elif (
            parts.scheme in ("http", "https")
            and FILE_NAME_HOST.search(parts.netloc)
            and link["text"].lower() in (parts.netloc.lower(), link["href"].lower().rstrip("/"))
        ):
            problems.append(
                Problem(
                    "broken-link",
                    "file name turned into an external link by linkify: "
                    f"'{link['text']}' -> {link['href']}",
                    detail=link,
                )
            )
    return fold_repeats(problems)


def fold_repeats(problems: list[Problem]) -> list[Problem]:
    """Merge identical messages into one Problem with a count."""
    counts: dict[str, list[Problem]] = defaultdict(list)
    for problem in problems:
        counts[problem.message].append(problem)
    folded = []
    for message, same in counts.items():
        first = same[0]
        if len(same) > 1:
            first.message = f"{message} (x{len(same)})"
        folded.append(first)
    return folded


def axe_excused(rule: str, target: str, html: str = "") -> bool:
    """Whether an axe violation on an element (its selector ``target`` or its markup ``html``)
    is one of the documented exceptions."""
    exception = AXE_EXCEPTIONS.get(rule)
    return bool(exception) and any(part in target or part.lstrip(".") in html
                                   for part in exception["targets"])


def find_axe_violations(page: Page, axe_script: Path) -> list[Problem]:
    """axe-core violations of impact serious or critical, except the documented ones.

    `preload: false`: axe would otherwise re-fetch every stylesheet by XHR and resolves
    the theme's `@import "../basic.css"` against the page instead of the stylesheet, which
    shows up as a 404 that no reader ever sees.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_script))
    violations = page.evaluate(
        """async () => (await axe.run(document, {
               resultTypes: ['violations'], preload: false})).violations.map(v => ({
               id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 160),
                                         summary: (n.failureSummary || '').slice(0, 200)}))}))"""
    )
    problems = []
    for violation in violations:
        if violation["impact"] not in AXE_IMPACTS:
            continue
        nodes = [n for n in violation["nodes"]
                 if not axe_excused(violation["id"], n["target"], n["html"])]
        if not nodes:
            continue
        problems.append(
            Problem(
                f"axe:{violation['id']}",
                f"{violation['impact']}: {violation['help']} "
                f"({len(nodes)} element(s), e.g. {nodes[0]['target']})",
                detail={"nodes": nodes[:10]},
            )
        )
    return problems


def find_search_problems(page: Page, query: str = SEARCH_QUERY) -> list[Problem]:
    """On the search page opened with ?q=query: at least one result must be listed."""
    try:
        page.wait_for_function(
            """() => { const s = document.querySelector('.search-summary');
                       return s && /found|did not match/i.test(s.textContent); }""",
            timeout=20_000,
        )
    except PlaywrightTimeout:
        return [Problem("search", f"the search for '{query}' did not finish within 20 s")]
    count = page.evaluate("document.querySelectorAll('#search-results ul.search > li').length")
    if count == 0:
        return [Problem("search", f"the search for '{query}' lists no result")]
    return []


# --------------------------------------------------------------------------------------
# Checking the whole book
# --------------------------------------------------------------------------------------


def book_pages(site_root: Path) -> list[str]:
    """Every HTML page of the build a reader can reach (not _static or _sources)."""
    pages = [
        path.relative_to(site_root).as_posix()
        for path in sorted(site_root.rglob("*.html"))
        if not any(part.startswith(("_", ".")) for part in path.relative_to(site_root).parts)
        and "node_modules" not in path.relative_to(site_root).parts
    ]
    return pages


def redirect_target(site: Site, path: str) -> str | None:
    """The URL a meta-refresh page (like Jupyter Book's index.html) sends the reader to."""
    text = (site.root / path).read_text(encoding="utf-8", errors="replace")
    match = re.search(r'http-equiv="refresh"[^>]*content="[^"]*url=([^"]+)"', text, re.IGNORECASE)
    if match is None:
        return None
    return urljoin(site.url(path), match.group(1).strip())


def check_redirect(site: Site, path: str, target: str, width: str) -> list[Problem]:
    """A redirect page is not opened (it navigates away); its target must exist."""
    if site.file_for(target) is None:
        return [Problem("broken-link", f"redirects to a missing page: {target}", width)]
    return []


def check_page(
    browser: Browser,
    site: Site,
    path: str,
    width: str,
    axe_script: Path | None = None,
    screenshot: Path | None = None,
    anchor_cache: dict[Path, set[str]] | None = None,
) -> list[Problem]:
    """Check one page at one width; a page that navigated away mid-check is tried again once.

    A check that cannot complete is itself reported (rule check-error), never skipped.
    """
    target = redirect_target(site, path)
    if target is not None:
        return check_redirect(site, path, target, width)
    for attempt in (1, 2):
        try:
            return check_page_once(browser, site, path, width, axe_script, screenshot, anchor_cache)
        except PlaywrightError as error:
            if attempt == 2 or "context was destroyed" not in str(error):
                message = str(error).splitlines()[0]
                return [Problem("check-error", f"the check could not complete: {message}", width)]
    raise AssertionError("unreachable")


def check_page_once(
    browser: Browser,
    site: Site,
    path: str,
    width: str,
    axe_script: Path | None = None,
    screenshot: Path | None = None,
    anchor_cache: dict[Path, set[str]] | None = None,
) -> list[Problem]:
    """Open one page at one width and run every detection function on it."""
    opened = OpenPage(browser, site, width)
    site.take_unserved()
    url = site.url(path) + (f"?q={SEARCH_QUERY}" if path == SEARCH_PAGE else "")
    try:
        opened.goto(url)
        page = opened.page
        problems = []
        problems += find_math_problems(page)
        problems += find_images_without_alt(page)
        problems += find_overflow(page)
        problems += find_unrendered_widgets(page)
        if path == SEARCH_PAGE:
            problems += find_search_problems(page)
        if width == "desktop":  # links do not depend on the width
            problems += find_broken_links(page, site, anchor_cache)
            problems += find_scrolling_code(page)
        if axe_script is not None:
            problems += find_axe_violations(page, axe_script)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        missing, blocked = site.take_unserved()
        problems += find_console_errors(
            opened.errors, missing + [b.split(": ", 1)[1] for b in blocked]
        )
        problems += find_unserved_requests(missing, blocked)
    finally:
        opened.close()
    for problem in problems:
        problem.width = width
    return problems


class Report:
    """report.json: problems per page and width, rewritten after every page checked."""

    def __init__(self, path: Path, pages: list[str]):
        self.path = path
        self.data = {
            "finished": False,
            "widths": WIDTHS,
            "pages": {page: {} for page in pages},
            "timings_s": {},
        }

    def add(
        self,
        page: str,
        width: str,
        problems: list[Problem],
        screenshot: Path | None,
        seconds: float,
    ) -> None:
        self.data["pages"][page][width] = {
            "problems": [asdict(problem) for problem in problems],
            "screenshot": str(screenshot) if screenshot else None,
            "seconds": round(seconds, 1),
        }
        self.save()

    def finish(self, timings: dict[str, float]) -> None:
        self.data["finished"] = True
        self.data["timings_s"] = {key: round(value, 1) for key, value in timings.items()}
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def summarize(report: dict) -> tuple[str, int]:
    """A per-page text summary of the problems (same message at both widths shown once)."""
    lines, total = [], 0
    for page, widths in report["pages"].items():
        merged: dict[tuple[str, str], list[str]] = {}
        for width, result in widths.items():
            for problem in result["problems"]:
                merged.setdefault((problem["rule"], problem["message"]), []).append(width)
        if not merged:
            continue
        total += len(merged)
        lines.append(f"\n{page}: {len(merged)} problem(s)")
        for (rule, message), where in sorted(merged.items()):
            lines.append(f"  [{rule}] ({'+'.join(where)}) {message}")
    return "\n".join(lines), total


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--site", type=Path, default=REPO / "_build" / "html", help="the built HTML"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "_build" / "check-html",
        help="screenshots and report.json",
    )
    parser.add_argument(
        "--node-modules", type=Path, default=REPO / "_build" / "npm" / "node_modules"
    )
    parser.add_argument(
        "--page", action="append", help="check only this page (repeatable), e.g. book/intro.html"
    )
    parser.add_argument(
        "--no-axe", action="store_true", help="skip the axe-core accessibility scan"
    )
    parser.add_argument("--no-screenshots", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    axe_script = args.node_modules / "axe-core" / "axe.min.js"
    if not (args.site / "index.html").is_file():
        print(f"check-html: no built book at {args.site} (run make html)", file=sys.stderr)
        return 2
    if not axe_script.is_file():
        print(f"check-html: {axe_script} missing (run npm ci)", file=sys.stderr)
        return 2
    if chromium_path() is None:
        print("check-html: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    pages = args.page or book_pages(args.site)
    site = Site(args.site, args.node_modules)
    report = Report(args.out / "report.json", pages)
    anchor_cache: dict[Path, set[str]] = {}
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        for page in pages:
            for width in WIDTHS:
                page_started = time.monotonic()
                shot = (
                    None
                    if args.no_screenshots
                    else args.out / f"{page.replace('/', '__')}.{width}.png"
                )
                problems = check_page(
                    browser,
                    site,
                    page,
                    width,
                    None if args.no_axe else axe_script,
                    shot,
                    anchor_cache,
                )
                seconds = time.monotonic() - page_started
                report.add(page, width, problems, shot, seconds)
                print(
                    f"check-html: {page} at {width}: {len(problems)} problem(s), {seconds:.1f} s",
                    flush=True,
                )
        browser.close()
    report.finish({"browser": time.monotonic() - started})
    text, total = summarize(report.data)
    if total:
        print(
            f"\ncheck-html: FAILED, {total} problem(s) on the pages below "
            f"(report: {report.path}){text}"
        )
        return 1
    print(
        f"check-html: {len(pages)} page(s) at {len(WIDTHS)} widths, no problem "
        f"(report: {report.path})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
