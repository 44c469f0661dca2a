"""Documentation pages: the embed view of every tab (`?view=embed&tab=NAME`), and the docs page
docs/embed/index.html served locally, with its iframe and its `<gradio-app>` web component in a 780 px
column, with and without a documentation theme's aggressive global CSS."""

from __future__ import annotations

from urllib.parse import urlparse

import gradio as gr
import pytest

from flux_demo.ui import embed
from tests.helpers import ROOT, serve_pages

DOCS = ROOT / "docs" / "embed"
DOCS_APP_URL = "http://127.0.0.1:7860"  # where the docs page expects the app (`python app.py`)
VIEWS = {"ko-phone": ("ko-KR", 390, 844), "en-laptop": ("en-US", 1280, 900)}
# Where each element of the web component sits in it, and how it looks: the same on any host page.
LOOK_JS = """(app) => {
    const origin = app.getBoundingClientRect();
    return Object.fromEntries(['#prompt', '#prompt textarea', '#run', '#result', '#model'].map(selector => {
        const element = app.querySelector(selector);
        const box = element.getBoundingClientRect();
        const style = getComputedStyle(element);
        return [selector, [Math.round(box.x - origin.x), Math.round(box.y - origin.y),
                           Math.round(box.width), Math.round(box.height),
                           style.fontFamily, style.textTransform, style.letterSpacing, style.borderTopWidth]];
    }));
}"""


def docs_site(app_url: str, theme: bool = True):
    """Serve docs/embed/ pointed at `app_url`; `theme=False` serves an empty theme.css (the same page
    without the theme's global rules)."""

    def page_for(path: str):
        name = path.lstrip("/") or "index.html"
        file = DOCS / name
        if not file.is_file() or file.parent != DOCS:
            return None
        text = file.read_text().replace(DOCS_APP_URL, app_url.rstrip("/"))
        if name == "theme.css" and not theme:
            text = ""
        return ("text/css" if name.endswith(".css") else "text/html; charset=utf-8"), text

    return serve_pages(page_for)


def first_element_id(block) -> str:
    """The elem_id of the first visible component with one inside `block` (a tab)."""
    for child in getattr(block, "children", []):
        if getattr(child, "elem_id", None) and getattr(child, "visible", True) is True:
            return child.elem_id
        found = first_element_id(child)
        if found:
            return found
    return ""


@pytest.mark.parametrize("view", VIEWS)
def test_every_tab_has_an_embed_view_without_header_tab_bar_or_footer(browser, server_url, demo, view):
    locale, width, height = VIEWS[view]
    context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(60_000)
    tabs = {block.id: block for block in demo.blocks.values() if isinstance(block, gr.Tab)}
    names = embed.tab_ids(demo)
    assert {"generate", "compare", "typography", "edit", "how"} <= set(names)
    for name in names:
        page.goto(f"{server_url}?view=embed&tab={name}")
        page.locator(f'#tabs [role=tab][data-tab-id="{name}"][aria-selected=true]').wait_for(state="attached")
        page.locator("gradio-app.flux-embed-tab").wait_for(state="attached")
        page.locator(f"#{first_element_id(tabs[name])}").wait_for(state="visible")
        for hidden in ("#page-header", "#offline-notice", "#tabs [role=tablist]", "footer", "#version"):
            assert not page.locator(hidden).first.is_visible(), f"{hidden} shows in the embed view of {name}"
    # Without a tab, the embed view keeps the tab bar; the page without view=embed keeps everything.
    page.goto(f"{server_url}?view=embed")
    page.locator("#tabs [role=tablist]").wait_for(state="visible")
    assert not page.locator("#page-header").is_visible()
    page.goto(f"{server_url}?tab=compare")
    page.locator("#page-header").wait_for(state="visible")
    context.close()


def test_the_web_component_script_is_served_by_the_app(server_url):
    import urllib.request

    with urllib.request.urlopen(server_url + "gradio.js") as response:
        script = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    entry = script.split('"')[1].removeprefix("./")  # import("./assets/index-….js")
    with urllib.request.urlopen(server_url + entry) as response:
        assert b"customElements.define(`gradio-app`" in response.read()


def open_docs(browser, docs_url: str):
    """The docs page in a 1280 px window (its text column is 780 px), with the scripts it loaded."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    scripts = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    page.goto(docs_url)
    app = page.locator("gradio-app[src]")
    app.locator("#run").wait_for(state="visible")
    page.wait_for_timeout(1500)  # web fonts and late styles settle
    return context, page, app, scripts


def test_the_docs_page_embeds_an_iframe_that_fits_and_a_web_component_the_theme_cannot_restyle(
    browser, server_url
):
    with docs_site(server_url, theme=False) as plain_url:
        context, page, app, _ = open_docs(browser, plain_url)
        plain = app.evaluate(LOOK_JS)
        context.close()
    with docs_site(server_url, theme=True) as docs_url:
        context, page, app, scripts = open_docs(browser, docs_url)
        # Nothing comes from a CDN: every script is the docs site's or the app's own.
        hosts = {urlparse(url).netloc for url in scripts}
        assert hosts <= {urlparse(docs_url).netloc, urlparse(server_url).netloc}, hosts
        assert any(url.endswith("/gradio.js") for url in scripts)
        # The theme's `main { margin-left: 240px }`, uppercase buttons, padded cells: the app looks the same.
        assert app.bounding_box()["width"] == pytest.approx(780, abs=1)
        assert app.evaluate(LOOK_JS) == plain
        # The web component works: a run draws an image.
        app.locator("#prompt textarea").fill("A sign that says OPEN")
        app.locator("#run").click()
        app.locator("#result img").wait_for(state="visible", timeout=120_000)
        # The iframe shows the Compare tab alone and takes the height the embed view reports: nothing is
        # cut, nothing scrolls inside it.
        frame_element = page.locator("#compare-frame")
        frame = page.frame_locator("#compare-frame")
        frame.locator("#sweep-table").wait_for(state="attached")
        page.wait_for_function(
            "() => document.querySelector('#compare-frame').style.height !== '900px'", timeout=60_000
        )
        page.wait_for_timeout(1000)
        height = frame_element.bounding_box()["height"]
        inner = frame.locator("html").evaluate("html => [html.scrollHeight, innerHeight]")
        assert inner[0] <= inner[1] + 1, f"the frame scrolls: content {inner[0]} px in {inner[1]} px"
        bottom = frame.locator("#sweep-table").evaluate("el => el.getBoundingClientRect().bottom")
        assert bottom <= height
        assert not frame.locator("#page-header").is_visible()
        assert frame.locator("#compare-run").is_visible()
        context.close()
