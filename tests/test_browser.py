"""The built book in headless Chromium: every page loads offline, cleanly, with its images and math."""

from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def toc_pages(root: Path) -> list[str]:
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


PAGES = toc_pages(Path(__file__).resolve().parents[1])


@pytest.mark.parametrize("page_name", PAGES)
def test_page_loads_offline_without_errors(built_book, page, page_name):
    html = built_book / "_build" / "html" / f"{page_name}.html"
    assert html.exists(), f"{page_name} missing from the build"
    problems, outside = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}")
            if not r.url.startswith(("http", "https")) else None)

    def only_local(route):
        if route.request.url.startswith(("file://", "data:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    assert not outside, f"requests leaving the machine: {outside}"
    assert not problems, problems

    images = page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.naturalWidth])")
    broken = [src for src, width in images if width == 0]
    assert not broken, f"images that did not load: {broken}"

    if page.locator(".math").count():
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("MathJax.startup.promise")
        assert page.locator("mjx-container").count() > 0, "math was not typeset"
        assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"
    screenshots = built_book / "_build" / "screenshots"
    screenshots.mkdir(exist_ok=True)
    page.screenshot(path=str(screenshots / f"{page_name.replace('/', '-')}.png"), full_page=True)


def test_chapter_page_shows_its_figures(built_book, page):
    html = built_book / "_build" / "html" / "book" / "chapters" / "toy-manifolds.html"
    page.goto(html.as_uri())
    # Four captioned figures plus the parameters the chapter ran with.
    assert page.locator("figure").count() >= 4
    assert "preset = " in page.inner_text("body")


CHAPTER_PAGES = [name for name in PAGES if name.startswith("book/chapters/")]


@pytest.mark.parametrize("page_name", CHAPTER_PAGES)
def test_chapter_links_its_files_and_ends_with_its_provenance(built_book, page, page_name):
    """Every figure links its PNG and SVG, tables their CSV, the page its .ipynb and .md."""
    from urllib.parse import unquote, urlparse

    html = built_book / "_build" / "html" / f"{page_name}.html"
    page.goto(html.as_uri())
    links = page.eval_on_selector_all(
        "a.download", "els => els.map(e => [e.textContent.trim(), e.href])")
    assert links, "no download links on the page"
    missing = [href for _, href in links
               if not Path(unquote(urlparse(href).path)).is_file()]
    assert not missing, f"download links whose files are not in _build/html: {missing}"
    html_root = (built_book / "_build" / "html").resolve()
    assert all(Path(unquote(urlparse(href).path)).resolve().is_relative_to(html_root)
               for _, href in links)

    figures = page.eval_on_selector_all(
        "figure", "els => els.filter(f => f.querySelector('img')).map(f => "
                  "Array.from(f.querySelectorAll('a.download')).map(a => a.textContent.trim()))")
    assert figures, "no figures"
    assert all({"PNG", "SVG"} <= set(names) for names in figures), figures
    # Tables shown by book.publish (pandas Styler ids "T_<name>") each have a CSV link.
    published = page.eval_on_selector_all(
        "table[id^='T_']", "els => els.map(t => { const p = t.parentElement.querySelector("
                           "'a.download'); return p ? p.textContent.trim() : null; })")
    assert all(name == "CSV" for name in published), published

    block = page.locator("div.provenance")
    assert block.count() == 1, "no provenance block"
    text = block.inner_text()
    for word in ("commit", "preset", "device", "date", "run time", "python", "torch", "numpy"):
        assert word in text, f"provenance lacks {word}"
    assert "preset: ci" in text
    assert {".ipynb", ".md"} <= {Path(unquote(urlparse(href).path)).suffix
                                  for _, href in links}


#: The reader's window of these checks: a common laptop screen.
WINDOW = {"width": 1280, "height": 800}
#: The smallest text a figure may show as rendered, in CSS points (issue 24).
SMALLEST_TEXT_PT = 8.0


def _published_figure_text(path: Path) -> tuple[float, float]:
    """The width in inches and the smallest font size in points lib.book.publish wrote."""
    from PIL import Image

    with Image.open(path) as image:
        return float(image.text["Width (in)"]), float(image.text["Smallest text (pt)"])


@pytest.mark.parametrize("page_name", PAGES)
def test_tables_and_code_fit_the_column_and_figure_text_is_legible(built_book, page,
                                                                   page_name):
    """At 1280 px no table or code cell scrolls sideways, and no figure text renders under 8 pt.

    A figure's text renders at its size in points times the figure's shown
    width over its drawn width (96 CSS px per inch); a CSS point is 4/3 px.
    """
    from urllib.parse import unquote, urlparse

    page.set_viewport_size(WINDOW)
    page.goto((built_book / "_build" / "html" / f"{page_name}.html").as_uri())
    page.wait_for_load_state("load")
    overflowing = page.evaluate("""() => Array.from(document.querySelectorAll(
        'article table, article pre, article div.cell_output, article div.output'))
      .filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1)
      .map(el => [el.tagName, el.id || el.className, el.scrollWidth, el.clientWidth,
                  el.textContent.trim().slice(0, 60)])""")
    assert not overflowing, f"wider than the column (scrolls sideways): {overflowing}"

    figures = page.eval_on_selector_all(
        "img.book-figure", "els => els.map(e => [e.src, e.getBoundingClientRect().width])")
    small = []
    for source, shown in figures:
        width, smallest = _published_figure_text(Path(unquote(urlparse(source).path)))
        rendered = smallest * shown / (width * 96)
        if rendered < SMALLEST_TEXT_PT:
            small.append((Path(source).name, round(rendered, 2)))
    assert not small, f"figures whose smallest text renders under {SMALLEST_TEXT_PT} pt: {small}"
    if page_name.startswith("book/chapters/"):
        assert figures, "no published figure on a chapter page"
