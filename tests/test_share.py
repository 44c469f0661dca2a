"""Share, embed and call: permalinks, the PNG round trip, Korean UI, MCP and iframe embedding."""

import asyncio
import concurrent.futures
import urllib.request
from urllib.parse import parse_qsl, urlencode

import numpy as np
import pytest
from PIL import Image

from flux_demo import metadata, permalink
from tests.helpers import serve_pages

MODELS = ("tiny-schnell", "tiny-dev", "tiny-klein")


def test_a_link_round_trips_every_setting():
    details = {"prompt": "간판 'OPEN'", "model": "tiny-dev", "seed": 4294967295, "steps": 28, "guidance": 3.5}
    details |= {"width": 320, "height": 256, "seconds": 1.2}
    query = permalink.link_query(details)
    values, problems = permalink.parse_settings(dict(parse_qsl(query)), MODELS)
    assert problems == []
    assert values == {k: details[k] for k in permalink.SETTING_KEYS}
    assert "seconds" not in query


def test_bad_link_parameters_are_ignored_one_by_one_with_a_note():
    params = {"prompt": "a fox", "model": "nope", "seed": "-1", "steps": "1e400", "width": "abc", "tab": "x"}
    params |= {"guidance": "nan", "height": "512"}
    values, problems = permalink.parse_settings(params, MODELS)
    assert values == {"prompt": "a fox", "height": 512}
    assert len(problems) == 6
    assert any(str(p).startswith("Ignored model='nope'") for p in problems)


def test_link_steps_and_guidance_follow_the_linked_model():
    values, problems = permalink.parse_settings({"model": "tiny-schnell", "steps": "28"}, MODELS)
    assert "steps" not in values
    assert "1 to 16" in str(problems[0])


def test_png_metadata_keys_restore_the_same_settings(client):
    from flux_demo.ui.share import read_png_settings

    path, seed, _ = client.predict("A red fox", "tiny-dev", 320, 256, 6, 2.5, 77, False, api_name="/generate")
    values, problems = read_png_settings(path, MODELS)
    assert problems == []
    assert values == {
        "prompt": "A red fox",
        "model": "tiny-dev",
        "seed": seed,
        "steps": 6,
        "guidance": 2.5,
        "width": 320,
        "height": 256,
    }


def test_a_png_without_settings_or_not_a_png_is_rejected_naming_the_field(tmp_path):
    import gradio as gr

    from flux_demo.ui.share import read_png_settings

    Image.new("RGB", (64, 64)).save(tmp_path / "plain.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "photo.jpg")
    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    for name, message in [
        ("plain.png", "no generation settings"),
        ("tiny.png", "each side must be"),
        ("photo.jpg", "must be a PNG"),
        ("junk.png", "not a readable"),
    ]:
        with pytest.raises(gr.Error, match=f"png: .*{message}"):
            read_png_settings(str(tmp_path / name), MODELS)


def result_pixels(page) -> np.ndarray:
    src = page.locator("#result img").get_attribute("src")
    with urllib.request.urlopen(src) as response:
        return np.asarray(Image.open(response))


def test_opening_a_link_and_pressing_run_reproduces_the_image(page, server_url, client):
    settings = {"prompt": "A cozy cabin in the snow", "model": "tiny-dev", "seed": 31337, "steps": 9}
    settings |= {"guidance": 4.5, "width": 320, "height": 256}
    page.goto(f"{server_url}?{urlencode(settings)}")
    page.get_by_label("Prompt").first.wait_for()
    page.wait_for_function("document.querySelector('#prompt textarea, #prompt input').value.length > 0")
    page.locator("#run").click()
    page.locator("#result img").wait_for(state="visible", timeout=60_000)
    path, _, _ = client.predict(**settings, randomize_seed=False, api_name="/generate")
    assert np.array_equal(result_pixels(page), np.asarray(Image.open(path)))
    page.locator("#generate-copy-link").click()
    link = page.locator("#generate-link textarea").input_value()
    assert dict(parse_qsl(link.split("?", 1)[1])) == {k: str(v) for k, v in settings.items()}


def test_bad_link_parameters_show_a_notice_and_the_page_still_works(page, server_url):
    page.goto(f"{server_url}?prompt=A+lighthouse&seed=-7&model=flux-pro&tab=compare")
    notice = page.locator("#link-notice")
    notice.wait_for(state="visible")
    assert "seed" in notice.inner_text() and "model" in notice.inner_text()
    page.locator("#compare-run").wait_for(state="visible")  # the compare tab opened
    assert page.locator("#compare-prompt textarea").input_value() == "A lighthouse"


def test_dropping_a_png_restores_its_settings_into_the_form(page, server_url, client):
    path, seed, _ = client.predict(
        "A blue whale", "tiny-dev", 256, 320, 7, 6.0, 4242, False, api_name="/generate"
    )
    page.goto(server_url)
    page.get_by_text("Restore settings from a PNG").click()
    page.locator("#restore-png input[type=file]").set_input_files(path)
    page.wait_for_function(
        "document.querySelector('#prompt textarea, #prompt input').value === 'A blue whale'"
    )
    page.get_by_text("Advanced").click()
    page.locator("#run").click()
    # The result shows step previews first; the summary line comes with the final image.
    page.locator("#summary").get_by_text("seed 4242", exact=False).first.wait_for(timeout=60_000)
    assert np.array_equal(result_pixels(page), np.asarray(Image.open(path)))
    assert metadata.read_png_text(Image.open(path))["seed"] == str(seed)


def test_korean_browsers_get_the_korean_ui(browser, server_url):
    context = browser.new_context(locale="ko-KR")
    page = context.new_page()
    page.goto(server_url)
    page.get_by_text("프롬프트").first.wait_for(timeout=30_000)
    assert page.locator("#run").inner_text().strip() == "실행"
    assert "오프라인" in page.locator("#offline-notice").inner_text()
    context.close()


def test_served_page_previews_with_title_description_and_favicon(server_url, page):
    with urllib.request.urlopen(server_url) as response:
        html = " ".join(response.read().decode().split())
    assert 'property="og:title" content="FLUX demo' in html
    assert 'property="og:description" content="Text-to-image with FLUX.1 [schnell]' in html
    page.goto(server_url)
    page.wait_for_function("document.title.startsWith('FLUX demo')")
    from flux_demo.ui.app import FAVICON

    with urllib.request.urlopen(f"{server_url}favicon.ico") as response:
        assert response.read() == FAVICON.read_bytes()


def test_mcp_lists_the_tools_and_calls_generate(server_url):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def session_calls():
        async with streamablehttp_client(f"{server_url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                result = await session.call_tool(
                    "generate",
                    {"prompt": "a fox", "model": "tiny-schnell", "width": 256, "height": 256, "steps": 4}
                    | {"guidance": 0, "seed": 5, "randomize_seed": False},
                )
                return tools, result

    # Playwright's sync API may own this thread's event loop, so the MCP session gets a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        tools, result = pool.submit(asyncio.run, session_calls()).result(timeout=120)
    assert {"generate", "compare", "seed_sweep"} <= set(tools)
    assert "Generate one image with a FLUX model" in tools["generate"].description
    assert "seed" in tools["generate"].inputSchema["properties"]
    assert not result.isError
    assert "flux-tiny-schnell-" in str(result.content)  # the PNG is named after its model and seed


def embedding_page(app_url: str):
    """Serve a small local HTML page that embeds the app in an iframe, as documentation pages do."""
    html = (
        "<!doctype html><title>Docs</title><h1>Docs</h1>"
        f'<iframe src="{app_url}" width="1200" height="1400"></iframe>'
    )
    return serve_pages(lambda _path: ("text/html; charset=utf-8", html))


def test_the_app_works_embedded_in_an_iframe(page, server_url):
    with embedding_page(server_url) as docs_url:
        page.goto(docs_url)
        frame = page.frame_locator("iframe")
        frame.locator("#prompt textarea, #prompt input").first.fill("An embedded robot")
        frame.locator("#run").click()
        frame.locator("#result img").wait_for(state="visible", timeout=60_000)
        assert frame.locator("#result img").evaluate("img => img.naturalWidth") == 256


def test_a_comparison_link_round_trips_models_and_per_model_settings():
    shared = {"prompt": "a fox", "models": ["tiny-dev", "tiny-klein"], "seed": 9, "width": 256, "height": 256}
    shared["settings"] = {"tiny-dev": (20, 3.5), "tiny-klein": (4, 1.0)}
    values, problems = permalink.parse_settings(
        dict(parse_qsl(permalink.link_query(shared, "compare"))), MODELS
    )
    assert problems == []
    assert values == {**shared, "tab": "compare"}


def test_a_comparison_link_fills_the_form_and_copy_link_keeps_the_edited_settings(page, server_url):
    query = urlencode(
        {
            "tab": "compare",
            "prompt": "A harbour",
            "models": "tiny-dev",
            "seed": 5,
            "settings": "tiny-dev:6:2.5",
        }
    )
    page.goto(f"{server_url}?{query}")
    page.locator("#compare-run").wait_for(state="visible")
    page.wait_for_function("document.querySelector('#compare-prompt textarea').value === 'A harbour'")
    page.locator("#compare-run").click()
    page.locator("#compare-gallery img").first.wait_for(state="visible", timeout=60_000)
    page.locator("#compare-copy-link").click()
    link = page.locator("#compare-link textarea")
    page.wait_for_function("el => el.value.includes('?')", arg=link.element_handle())
    params = dict(parse_qsl(link.input_value().split("?", 1)[1]))
    assert params["models"] == "tiny-dev"
    assert params["settings"] == "tiny-dev:6:2.5"
    assert params["seed"] == "5"
    assert "6" in page.locator("#compare-table").inner_text()  # the run used the linked 6 steps


def test_a_typography_link_fills_the_lab_and_its_result_has_a_copy_link(page, server_url):
    query = urlencode(
        {"tab": "typography", "prompt": 'A sign that says "OPEN"', "model": "tiny-klein", "seed": 12}
    )
    page.goto(f"{server_url}?{query}")
    prompt = page.locator("#typo-prompt textarea")
    prompt.wait_for(state="visible")
    page.wait_for_function("el => el.value.includes('OPEN')", arg=prompt.element_handle())
    page.locator("#typo-run").click()
    page.locator("#typo-boxes img").wait_for(state="visible", timeout=60_000)
    page.locator("#typography-copy-link").click()
    link = page.locator("#typography-link textarea")
    page.wait_for_function("el => el.value.includes('?')", arg=link.element_handle())
    params = dict(parse_qsl(link.input_value().split("?", 1)[1]))
    assert (params["tab"], params["model"], params["seed"]) == ("typography", "tiny-klein", "12")


def test_typed_text_that_names_no_model_resets_nothing():
    """The model dropdowns take typed text (the server's check names a wrong model on Run); the reset on
    a new model must not fail on such text, and still resets the form for a served model."""
    import gradio as gr

    from flux_demo.ui import share

    with gr.Blocks() as blocks:
        model = gr.Dropdown(["nano-schnell", "nano-klein"], value="nano-schnell", allow_custom_value=True)
        form = {"steps": gr.Slider(1, 50), "width": gr.Slider(256, 512)}
        share.reset_on_model(model, form, ("nano-schnell", "nano-klein"))
    reset = next(fn for fn in blocks.fns.values() if fn.inputs == [model]).fn
    typed = reset("FLUX.1 nano [schnell] (offline) klein")
    assert len(typed) == 2 and all(isinstance(update, type(gr.skip())) for update in typed)
    steps, width = reset("nano-klein")
    assert isinstance(steps, gr.Slider) and isinstance(width, gr.Slider)  # the model's own ranges
