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
