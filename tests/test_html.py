"""The built HTML book, checked as a reader sees it: in a real headless Chromium.

Run after the HTML build (`make browser`); skipped when `_build/html` or Chromium is missing.
Screenshots of every page go to `_build/screenshots/`.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
# Debian's chromium (make browser installs it as root); GitHub's Ubuntu runners ship Google Chrome.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (HTML / "index.html").exists(), reason="build the HTML first (make html)"),
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="Debian chromium + chromium-driver not installed"),
]

COLAB = re.compile(
    r"^https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+/book/[\w.-]+\.ipynb$"
)


def toc_pages() -> list[str]:
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import run_chapters

    # index.html only redirects to the root page, so the pages are the toc's files themselves.
    return [f"{f}.html" for f in run_chapters.toc_files()]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1280,1600", f"--user-data-dir={tmp_path_factory.mktemp('chrome')}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


# sphinx-thebe 0.3.1 (pinned by jupyter-book 1) declares `const THEBE_JS_URL` in two script tags of
# every page; the second throws. It breaks only Thebe's live-code button, which this book does not
# use (it launches Colab). pydata-sphinx-theme logs "invalid theme mode" as an error on a first
# visit (empty localStorage) before it falls back to auto; the browser itself asks for /favicon.ico,
# which the book does not have. Every other console error fails the test.
KNOWN_THIRD_PARTY = (
    "Identifier 'THEBE_JS_URL' has already been declared",
    "Got invalid theme mode: . Resetting to auto.",
    "/favicon.ico - Failed to load resource",
)


def local_errors(driver, base: str) -> list[str]:
    """SEVERE console messages about this site (offline, third-party CDNs may fail: not ours)."""
    out = []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        msg = entry["message"]
        if any(known in msg for known in KNOWN_THIRD_PARTY):
            continue
        if "127.0.0.1" in msg or not re.search(r"https?://", msg):
            out.append(msg)
    return out


@pytest.mark.parametrize("page", toc_pages())
def test_page_loads_with_outputs_figures_and_colab_link(browser, server, page):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(urljoin(server, page))
    # Offline, CDN scripts (MathJax) may never finish loading; the page itself must be parsed.
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") != "loading")
    assert local_errors(browser, server) == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / (page.replace("/", "_") + ".png")))
    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('main img, article img'))"
        ".map(i => [i.src, i.complete, i.naturalWidth, i.naturalHeight])"
    )
    broken = [src for src, done, w, h in images if not (done and w > 0 and h > 0)]
    assert broken == [], f"images that did not load: {broken}"
    if page == toc_pages()[0]:
        return
    outputs = browser.find_elements("css selector", ".cell_output")
    assert outputs, f"{page} shows no code outputs"
    links = [a.get_attribute("href") for a in browser.find_elements("css selector", "a[href*='colab.research.google.com']")]
    chapter = Path(page).stem
    assert any(COLAB.match(h or "") and h.endswith(f"/book/{chapter}.ipynb") for h in links), links


def test_next_links_reach_every_page_in_order(browser, server):
    want = toc_pages()
    seen = []
    url = urljoin(server, want[0])
    for _ in range(len(want) + 2):
        browser.get(url)
        seen.append(urlparse(browser.current_url).path.lstrip("/"))
        nxt = browser.find_elements("css selector", "a.right-next")
        if not nxt:
            break
        url = nxt[0].get_attribute("href")
    assert seen == want


def stored_images(notebook: Path) -> int:
    """Image outputs (png, jpeg, svg) the notebook stores: each must be a picture on its page."""
    import json

    nb = json.loads(notebook.read_text())
    return sum(
        any(k.startswith("image/") for k in o.get("data", {}))
        for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
    )


@pytest.mark.parametrize("page", toc_pages()[1:])
def test_every_stored_figure_is_shown_on_its_page(browser, server, page):
    want = stored_images(ROOT / page.replace(".html", ".ipynb"))
    browser.get(urljoin(server, page))
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('.cell_output img'))"
        ".filter(i => i.complete && i.naturalWidth > 0).length"
    )
    assert shown >= want, f"{page}: the notebook stores {want} figure(s), the page shows {shown}"


def test_collapsed_cells_are_collapsed(browser, server):
    """The install and parameters cells (hide-cell / hide-input tags) start collapsed on every page."""
    bad = []
    for page in toc_pages()[1:]:
        browser.get(urljoin(server, page))
        # [tagged cell, its source sits in a closed <details>, the "Show code cell" summary is visible]
        hidden = browser.execute_script(
            "return Array.from(document.querySelectorAll('.cell.tag_hide-cell, .cell.tag_hide-input'))"
            ".map(c => [c.className, !!c.querySelector('details:not([open]) .cell_input'),"
            " !!c.querySelector('details > summary') && c.querySelector('details > summary').offsetHeight > 0])"
        )
        if len(hidden) < 2 or not all(closed and summary for _, closed, summary in hidden):
            bad.append(f"{page}: {hidden}")
    assert bad == [], "install/parameters cells not collapsed:\n" + "\n".join(bad)


def test_internal_links_and_anchors_resolve():
    """Offline link check: every relative href of every page points to a file (and id) that exists."""
    from html.parser import HTMLParser

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.hrefs: list[str] = []
            self.ids: set[str] = set()

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if a.get("id"):
                self.ids.add(str(a["id"]))
            if tag in ("a", "link", "img", "script") and (a.get("href") or a.get("src")):
                self.hrefs.append(str(a.get("href") or a.get("src")))

    pages = {}
    for page in HTML.rglob("*.html"):
        if "_static" in page.parts:  # theme templates (Jinja), not pages
            continue
        c = Collect()
        c.feed(page.read_text(encoding="utf-8"))
        pages[page.resolve()] = c
    broken = []
    for page, c in pages.items():
        for href in c.hrefs:
            if re.match(r"^(https?:|mailto:|data:|javascript:|//)", href):
                continue
            path, _, anchor = href.partition("#")
            target = (page.parent / path.split("?")[0]).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(HTML.resolve())}: {href}")
            elif anchor and target in pages and anchor not in pages[target].ids:
                broken.append(f"{page.relative_to(HTML.resolve())}: {href} (no such anchor)")
    assert broken == [], "\n".join(broken[:20])
