"""The book as its readers meet it.

Three groups of checks:

- the layout that lets `jupyter-book build book` build the whole book from one
  configuration and one table of contents (top-level files, linked into book/, not copied);
- a static scan of every MyST fence in the chapters' markdown cells and the book's pages:
  a directive closed by the fence of a code block inside it spills its body onto the page;
- the built HTML (book/_build/html, from `make book-strict`), first as files, then page by
  page in headless Chromium at a 1280 px window: maths typeset by the MathJax shipped with
  the book, every image loaded, no directive syntax leaked into the text, and no text output
  wider than its column unless it scrolls. These are marked `built_book`; `make browser` runs
  them after the build (`make unit` leaves them out), and they skip, saying why, when the
  build or Chromium is missing. Set BOOK_SCREENSHOTS=DIR to keep a screenshot of each page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
HTML = BOOK / "_build" / "html"
NOT_SOURCES = {".git", ".venv", "_build", "node_modules", ".ipynb_checkpoints", "__pycache__"}


def toc_entries() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [toc["root"]]
    for part in toc.get("parts", []):
        entries += [chapter["file"] for chapter in part["chapters"]]
    return entries


# --------------------------------------------------------------------------------------------
# One configuration, one table of contents


@pytest.mark.parametrize("name", ["_config.yml", "_toc.yml"])
def test_book_folder_links_the_top_level_file(name):
    linked = BOOK / name
    assert linked.is_symlink(), (
        f"book/{name} must be a symlink to ../{name} (the one source), not a copy that can drift"
    )
    assert os.readlink(linked) == f"../{name}"
    assert linked.resolve() == (ROOT / name).resolve()
    assert not (ROOT / name).is_symlink(), f"the top-level {name} is the real file"


def test_chapters_are_linked_into_the_book_folder():
    linked = BOOK / "notebooks"
    assert linked.is_symlink() and os.readlink(linked) == "../notebooks"
    assert linked.resolve() == (ROOT / "notebooks").resolve()


def test_there_is_no_other_config_or_toc():
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in NOT_SOURCES]
        for name in files:
            path = Path(folder, name)
            if name in ("_config.yml", "_toc.yml") and path.parent != ROOT:
                if not (path.is_symlink() and path.resolve() == (ROOT / name).resolve()):
                    found.append(path.relative_to(ROOT))
    assert not found, f"copies of the book's configuration or table of contents: {found}"


def test_every_toc_entry_resolves_from_the_build_root():
    for entry in toc_entries():
        candidates = [BOOK / f"{entry}{suffix}" for suffix in (".md", ".ipynb")]
        assert any(path.is_file() for path in candidates), f"_toc.yml: {entry} is not in book/"


def test_make_builds_the_book_folder():
    makefile = (ROOT / "Makefile").read_text()
    builds = re.findall(r"^\t.*jupyter-book build (\S+)", makefile, re.MULTILINE)
    assert builds and set(builds) == {"book"}, builds


# --------------------------------------------------------------------------------------------
# MyST fences, without building anything

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
# Directives whose body is text to show or run, not markdown to parse.
LITERAL_DIRECTIVES = {
    "code",
    "code-block",
    "code-cell",
    "sourcecode",
    "literalinclude",
    "math",
    "raw",
    "eval-rst",
    "csv-table",
    "mermaid",
    "graphviz",
}


def _fence(line: str) -> re.Match | None:
    match = FENCE.match(line)
    if match and match["fence"][0] == "`" and "`" in match["info"]:
        return None  # inline code such as ```x```, not a fence
    return match


def _directive(info: str) -> str | None:
    match = re.match(r"\s*\{([^}]+)\}", info)
    return match[1].strip() if match else None


def fence_problems(text: str, first_line: int = 1) -> list[str]:
    """Fences that are opened and not closed where the author meant, with their line numbers.

    A fence closes at the first later line of the same character, at least as long, with
    nothing after it (CommonMark; MyST's colon fences likewise). The body of a directive is
    markdown and is scanned again. The classic mistake: a directive opened with three
    backticks around a ```python block is closed by that block's closing fence, so the rest
    of its body spills onto the page and its own closing fence opens a stray code block.
    """
    lines = text.splitlines()
    problems = []
    index = 0
    while index < len(lines):
        opening = _fence(lines[index])
        if opening is None:
            index += 1
            continue
        fence, info = opening["fence"], opening["info"].strip()
        where = f"line {first_line + index}"
        if fence[0] == ":" and not info:
            problems.append(f"{where}: {fence} closes nothing, so it shows up as text")
            index += 1
            continue
        end = index + 1
        while end < len(lines):
            closing = _fence(lines[end])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
                and len(closing["indent"]) <= len(opening["indent"]) + 3
            ):
                break
            end += 1
        if end == len(lines):
            problems.append(
                f"{where}: {fence}{info} is never closed (the rest of the cell or page "
                "becomes its body)"
            )
            break
        name = _directive(info)
        if name is not None and name not in LITERAL_DIRECTIVES:
            inner = fence_problems("\n".join(lines[index + 1 : end]), first_line + index + 1)
            if inner:
                problems.append(
                    f"{where}: {{{name}}} opened with {fence} is closed at line "
                    f"{first_line + end} by a fence inside its own body, so the rest of its "
                    f"body spills onto the page; open and close it with "
                    f"{fence[0] * (len(fence) + 1)}, longer than any fence it contains"
                )
                problems += [f"{problem} (in that {{{name}}})" for problem in inner]
        index = end + 1
    return problems


def markdown_sources() -> Iterator[tuple[str, str]]:
    """(where, text) for every markdown cell of every chapter and every page of book/."""
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        for number, cell in enumerate(cells):
            if cell["cell_type"] == "markdown":
                source = "".join(cell["source"])
                title = source.strip().splitlines()[0][:60] if source.strip() else ""
                cell_id = cell.get("id", "?")
                yield f"notebooks/{notebook.name}, cell {number} (id {cell_id}: {title!r})", source
    for page in sorted(BOOK.glob("*.md")):
        yield f"book/{page.name}", page.read_text()


def test_fence_scan_catches_a_directive_closed_by_its_inner_code_block():
    broken = "```{admonition} Solution\n:class: dropdown\n\n1. Run\n\n   ```python\n   x = 1\n"
    broken += "   ```\n\n   Then read the answer.\n```\n"
    problems = fence_problems(broken)
    assert any("{admonition}" in problem and "line 8" in problem for problem in problems)
    assert any("line 11" in problem and "never closed" in problem for problem in problems)


def test_fence_scan_accepts_nested_fences_of_the_right_lengths():
    good = "````{admonition} Solution\n:class: dropdown\n\n1. Run\n\n   ```python\n   x = 1\n"
    good += "   ```\n\n:::{note}\nA ~~~ or ``` here is text.\n:::\n````\n\n```bash\n```{x}\n```\n"
    assert fence_problems(good) == []


def test_fence_scan_catches_colon_fences():
    assert fence_problems(":::{dropdown} Answer\nforty-two\n")  # never closed
    assert fence_problems("text\n:::\n")  # closes nothing


def test_every_myst_fence_is_closed_where_it_should_be():
    report = [
        f"{where}, {problem}"
        for where, text in markdown_sources()
        for problem in fence_problems(text)
    ]
    assert not report, "MyST fences that spill onto the page:\n" + "\n".join(report)


# --------------------------------------------------------------------------------------------
# The built HTML, as files

URL = re.compile(r"https?://[^\s\"'<>)]+")
SCRIPT_SRC = re.compile(r"<script[^>]*\bsrc=\"([^\"]+)\"")
# The only thing a page may fetch from another site: the chapters' "Open in Colab" badge,
# which sits in the notebooks for Colab and GitHub readers (offline, its alt text shows).
REMOTE_IMAGES_ALLOWED = {"https://colab.research.google.com/assets/colab-badge.svg"}


def built_pages() -> list[Path]:
    """The book's pages: no assets, no generated index or search page, no redirect."""
    pages = []
    for path in sorted(HTML.rglob("*.html")):
        if path.relative_to(HTML).parts[0] in {"_static", "_sources", "_images", "mathjax"}:
            continue
        if path.name in {"genindex.html", "search.html"}:
            continue
        if 'http-equiv="refresh"' in path.read_text(encoding="utf-8")[:2000].lower():
            continue  # index.html only sends the browser on to the root page
        pages.append(path)
    return pages


@pytest.fixture(scope="module")
def html_pages() -> list[Path]:
    if not (HTML / "index.html").is_file():
        skip_or_fail(f"no built book in {HTML.relative_to(ROOT)}: run `make book-strict` first")
    return built_pages()


def skip_or_fail(reason: str) -> None:
    """Skip with the reason; in CI (where .ci/run installs everything) that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs and builds everything, so this is an error)")
    pytest.skip(reason)


@pytest.mark.built_book
def test_every_toc_entry_was_built(html_pages):
    for entry in toc_entries():
        assert (HTML / f"{entry}.html").is_file(), f"{entry} is missing from the built book"


@pytest.mark.built_book
def test_index_opens_the_root_page(html_pages):
    index = (HTML / "index.html").read_text(encoding="utf-8")
    assert f"url={toc_entries()[0]}.html" in index  # what `make book` tells readers to open


@pytest.mark.built_book
def test_mathjax_is_served_from_the_book(html_pages):
    assert (HTML / "mathjax" / "es5" / "tex-chtml.js").is_file()
    assert list((HTML / "mathjax" / "es5" / "output" / "chtml" / "fonts").rglob("*.woff"))
    with_maths = 0
    for page in html_pages:
        text = page.read_text(encoding="utf-8")
        scripts = SCRIPT_SRC.findall(text)
        remote_scripts = [src for src in scripts if URL.match(src) or src.startswith("//")]
        assert not remote_scripts, f"{page.name} loads scripts from elsewhere: {remote_scripts}"
        mathjax_urls = [url for url in URL.findall(text) if "mathjax" in url.lower()]
        assert not mathjax_urls, f"{page.name} points at MathJax online: {mathjax_urls}"
        if 'class="math' in text:
            with_maths += 1
            assert any(src.split("?")[0].endswith("mathjax/es5/tex-chtml.js") for src in scripts)
    assert with_maths >= 3  # chapters 1, 2, 3, 5, 6 and 7 have maths


# --------------------------------------------------------------------------------------------
# The built HTML, page by page in headless Chromium

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]

PAGE_READY = (
    "return document.readyState === 'complete' && !!document.querySelector('article.bd-article')"
)
"""True once the page asked for is loaded: its document complete and its article there."""

# Runs in the page: wait for MathJax and the images, then collect what a reader would see.
INSPECT_PAGE = r"""
const done = arguments[arguments.length - 1];
const MIN_IMAGE_SCALE = arguments[0];
const COLLAPSED = ".tag_hide-input, .tag_hide-cell";  // cells behind a "Show code" toggle
// Each wait gives up after WAIT_MS: what is still not typeset or loaded then is reported
// by the assertions below, not lost in a script timeout.
const WAIT_MS = 20000;
const atMost = (promise) => Promise.race([promise, new Promise((ok) => setTimeout(ok, WAIT_MS))]);
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await atMost(MathJax.startup.promise);
  }
  const images = [...document.images];
  for (const image of images) { image.loading = "eager"; }
  await atMost(Promise.all(images.map((image) => image.complete ? null : new Promise((ok) => {
    image.addEventListener("load", ok); image.addEventListener("error", ok);
  }))));
  const article = document.querySelector("article.bd-article");  // PAGE_READY waited for it
  // The text a paragraph shows, without its inline code and maths (closed dropdowns too).
  const proseText = (el) => [...el.childNodes].map((node) => {
    if (node.nodeType === Node.TEXT_NODE) { return node.textContent; }
    if (node.nodeType !== Node.ELEMENT_NODE || node.matches("code, pre, .math")) { return ""; }
    return proseText(node);
  }).join("");
  const maths = [...article.querySelectorAll(".math")];
  const textBlocks = [...article.querySelectorAll("p, li, dt, dd, td, th, h1, h2, h3, h4, summary")]
    .filter((el) => !el.closest("pre, code, .highlight, .cell_output"));
  const boxes = [...article.querySelectorAll(
    "pre, div.highlight, div.cell_output, div.output, table, .pst-scrollable-table-container"
  )];
  const overflowing = boxes
    .filter((el) => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
    .map((el) => ({
      tag: el.tagName.toLowerCase() + "." + [...el.classList].join("."),
      overflowX: getComputedStyle(el).overflowX,
      scrollWidth: el.scrollWidth,
      clientWidth: el.clientWidth,
      text: el.innerText.slice(0, 80),
    }));
  const article_box = article.getBoundingClientRect();
  done({
    maths: maths.length,
    typeset: maths.filter((el) => el.querySelector("mjx-container")).length,
    rawMaths: maths.filter((el) => !el.querySelector("mjx-container"))
      .map((el) => el.textContent.slice(0, 80)),
    brokenImages: images.filter((image) => !(image.complete && image.naturalWidth > 0))
      .filter((image) => image.src.startsWith("file:"))
      .map((image) => image.getAttribute("src").slice(0, 80)),
    // Everything the page fetched (scripts, fonts, styles, images), failed fetches included.
    remote: [...new Set([
      ...performance.getEntriesByType("resource").map((entry) => entry.name),
      ...images.map((image) => image.src),
    ])].filter((url) => !url.startsWith("file:") && !url.startsWith("data:")),
    leaked: textBlocks.map(proseText)
      .filter((text) => /(^|\s)(:::|```)|\{(admonition|dropdown|toggle|note|warning|tip)\}/
        .test(text))
      .map((text) => text.slice(0, 120)),
    // A directive closed early by an inner fence leaves its own closing ``` behind, which
    // opens a code block of its own: empty at the end of a cell, or holding the text after.
    strayCodeBlocks: [...article.querySelectorAll("div[class*='highlight-'] pre")]
      .filter((pre) => !pre.closest(".cell_input, .cell_output"))
      .map((pre) => pre.textContent)  // innerText is empty inside a closed dropdown
      .filter((text) => !text.trim() || /^\s*(```|:::)/m.test(text))
      .map((text) => JSON.stringify(text.slice(0, 120))),
    dropdowns: [...article.querySelectorAll("details, .dropdown, .toggle")].length,
    overflowing: overflowing,
    pageWidth: document.documentElement.scrollWidth,
    windowWidth: document.documentElement.clientWidth,
    codeColumns: (() => {
      // The first block of code a reader sees open (not in a collapsed cell: those are
      // drawn narrower, behind their toggle); outputs have their own check (wideOutputs).
      const pre = [...article.querySelectorAll("div.cell_input pre, div.highlight pre")]
        .find((el) => el.clientWidth > 0 && !el.closest(COLLAPSED + ", div.cell_output"));
      if (!pre) { return null; }
      const probe = document.createElement("span");
      probe.textContent = "0".repeat(100);
      pre.appendChild(probe);
      const width = probe.getBoundingClientRect().width;
      probe.remove();
      const style = getComputedStyle(pre);
      const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
      const inner = pre.clientWidth - padding;
      return Math.floor(100 * inner / width);
    })(),
    articleWidth: article_box.width,
    // Images drawn narrower than they were made: their text shrinks with them.
    shrunkImages: images
      .filter((image) => image.closest("article") && image.naturalWidth > 0)
      .filter((image) => image.clientWidth < MIN_IMAGE_SCALE * image.naturalWidth)
      .map((image) => ({
        src: image.getAttribute("src").slice(-60),
        natural: image.naturalWidth,
        shown: image.clientWidth,
      })),
    // Outputs wider than the text column, scrolling or not.
    wideOutputs: [...article.querySelectorAll("div.cell_output pre, div.cell_output table")]
      .filter((el) => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
      .map((el) => el.innerText.split("\n").find((line) => line.length > 0).slice(0, 80)),
    // Lines of code (cell inputs and code blocks, not outputs) on the first screen.
    openingCodeLines: [...article.querySelectorAll("div.cell_input pre, div.highlight pre")]
      .filter((pre) => !pre.closest(COLLAPSED + ", div.cell_output") && pre.clientWidth > 0)
      .map((pre) => {
        const box = pre.getBoundingClientRect();
        const shown = Math.min(box.bottom, window.innerHeight) - Math.max(box.top, 0);
        const line = parseFloat(getComputedStyle(pre).lineHeight) || 20;
        return Math.max(0, Math.round(shown / line));
      })
      .reduce((total, lines) => total + lines, 0),
  });
})().catch((error) => done({error: String(error && error.stack || error)}));
"""


MIN_IMAGE_SCALE = 0.8
"""The smallest share of its natural width an image may be drawn at: the book's figures set
their text at 10 pt at 100 dpi (about 14 px), so at 0.8 it stays above 11 px."""
OPENING_CODE_LINES = 8
"""The most lines of code a page's first screen (1280 x 900) may show, one short cell:
imports and parameters are collapsed (`hide-input`), so a page opens with its text."""


@pytest.fixture(scope="module")
def browser(html_pages):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        skip_or_fail("no chromium/chromedriver: apt-get install -y chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_or_fail("selenium is missing: make installs it with the test extra")
    profile = tempfile.mkdtemp(prefix="book-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_script_timeout(60)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def page_ids() -> list[str]:
    if not HTML.is_dir():
        return ["(no built book)"]
    return [page.relative_to(HTML).as_posix() for page in built_pages()]


@pytest.mark.built_book
@pytest.mark.parametrize("page", page_ids())
def test_page_reads_as_written(browser, page):
    from selenium.webdriver.support.ui import WebDriverWait  # the fixture checked selenium

    driver = browser
    driver.get((HTML / page).as_uri())
    # Chromium can hand back control while the document is still being replaced.
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(PAGE_READY))
    seen = driver.execute_async_script(INSPECT_PAGE, MIN_IMAGE_SCALE)
    assert "error" not in seen, f"the page inspection failed on {page}: {seen.get('error')}"
    if os.environ.get("BOOK_SCREENSHOTS"):
        folder = Path(os.environ["BOOK_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(
            str(folder / (page.replace("/", "_").removesuffix(".html") + ".png"))
        )

    assert seen["typeset"] == seen["maths"], f"maths left as source: {seen['rawMaths']}"
    assert not seen["brokenImages"], f"images that did not load: {seen['brokenImages']}"
    remote = set(seen["remote"]) - REMOTE_IMAGES_ALLOWED
    assert not remote, f"fetched from other sites (the book must ship what it shows): {remote}"
    assert not seen["leaked"], f"directive syntax in the text (a fence spilled): {seen['leaked']}"
    assert not seen["strayCodeBlocks"], (
        f"code blocks left by a directive's broken closing fence: {seen['strayCodeBlocks']}"
    )
    clipped = [box for box in seen["overflowing"] if box["overflowX"] not in ("auto", "scroll")]
    assert not clipped, f"content wider than its column that does not scroll: {clipped}"
    assert seen["pageWidth"] <= seen["windowWidth"], "the page itself scrolls sideways"
    if seen["codeColumns"] is not None:
        assert seen["codeColumns"] >= 100, f"code blocks fit {seen['codeColumns']} columns"
    assert seen["openingCodeLines"] <= OPENING_CODE_LINES, (
        f"{seen['openingCodeLines']} lines of code on the page's first screen"
    )
    assert not seen["shrunkImages"], f"figures drawn too small to read: {seen['shrunkImages']}"
    assert not seen["wideOutputs"], f"outputs wider than the column: {seen['wideOutputs']}"
