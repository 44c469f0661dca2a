"""LoRAs and several images through the real server, as an API caller and a visitor see them: `/generate`
by keyword with the shipped nano LoRAs, callers of the earlier parameter list, refusals, the docs'
example, and in Chromium the gallery, the LoRA card, a link that restores a LoRA run, and the history
surviving a reload."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from tests.helpers import doc_examples, run_doc_example

SIGN = 'a sign that says "CAT"'


@pytest.fixture(scope="module")
def nano_url(serve, settings):
    """An app that serves nano-schnell (the shipped LoRAs fit it) and tiny-klein (they do not)."""
    from flux_demo.pipelines import ModelHost
    from flux_demo.ui import create_demo

    served = dataclasses.replace(settings, models=("nano-schnell", "tiny-klein"))
    with serve(create_demo(backend=ModelHost(served))) as url:
        yield url


@pytest.fixture
def nano_client(nano_url):
    from gradio_client import Client

    return Client(nano_url, verbose=False)


def generate(client, **changes):
    args = dict(prompt=SIGN, model="nano-schnell", width=256, height=256, steps=4, guidance=0.0, seed=3)
    return client.predict(**{**args, "randomize_seed": False, **changes}, api_name="/generate")


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def test_generate_takes_a_lora_and_an_image_count_by_keyword_and_keeps_three_outputs(nano_client):
    path, seed, details = generate(nano_client, lora="nano-inverted-sign", lora_scale=1.0, num_images=2)
    assert seed == 3 and details["seeds"] == [3, 4]
    assert details["loras"] == [["nano-inverted-sign", 1.0]] and details["num_images"] == 2
    text = Image.open(path).text
    assert (text["loras"], text["num_images"], text["seed"]) == ("nano-inverted-sign:1", "2", "3")
    # The same run at scale 0 is the image without the LoRA.
    plain = generate(nano_client)[0]
    assert np.array_equal(
        pixels(generate(nano_client, lora="nano-inverted-sign", lora_scale=0.0)[0]), pixels(plain)
    )
    assert not np.array_equal(pixels(path), pixels(plain))


def test_the_two_shipped_loras_each_do_what_they_say_and_scale_0_is_the_base(nano_client):
    """The offline LoRAs, through /generate: nano-yellow-sign makes the sign's face yellow and
    nano-inverted-sign makes it dark; at scale 0 each gives the plain white sign."""
    from training.nano_lora import shows_inverted_sign, shows_yellow_sign

    def image(lora, scale):
        return Image.open(generate(nano_client, lora=lora, lora_scale=scale)[0]).convert("RGB")

    yellow, inverted = image("nano-yellow-sign", 1.0), image("nano-inverted-sign", 1.0)
    assert shows_yellow_sign(yellow) and not shows_inverted_sign(yellow)
    assert shows_inverted_sign(inverted) and not shows_yellow_sign(inverted)
    for lora in ("nano-yellow-sign", "nano-inverted-sign"):
        plain = image(lora, 0.0)
        assert not shows_yellow_sign(plain) and not shows_inverted_sign(plain)


def test_callers_of_the_earlier_parameter_list_get_a_plain_image(nano_client):
    path, seed, details = nano_client.predict(
        SIGN, "nano-schnell", 256, 256, 4, 0.0, 3, False, api_name="/generate"
    )
    assert seed == 3 and "loras" not in details and "seeds" not in details
    assert "loras" not in Image.open(path).text


def test_a_lora_for_another_model_is_refused_naming_the_field(nano_client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="lora: nano inverted sign is for nano-schnell, nano-dev"):
        generate(nano_client, model="tiny-klein", lora="nano-inverted-sign")


def test_docs_lora_example_runs_against_an_app_that_serves_nano(nano_url):
    examples = [code for code in doc_examples("/generate") if "nano-" in code]
    assert examples, "docs/api.md must show a LoRA call for the offline models"
    for code in examples:
        namespace = run_doc_example(code, nano_url)
        assert Image.open(namespace["image_path"]).text["loras"].startswith("nano-inverted-sign")


# --- the page ---------------------------------------------------------------------------------------


def run_on_page(page, prompt: str = SIGN, images: int | None = None):
    page.get_by_label("Prompt").fill(prompt)
    if images:
        slider = page.locator("#num-images input[type=number]")
        slider.fill(str(images))
        slider.press("Enter")
    page.locator("#run").click()
    page.locator("#summary").get_by_text("seed", exact=False).first.wait_for(timeout=120_000)


def test_a_lora_run_from_a_link_restores_the_picker_and_shows_every_image(page, nano_url):
    page.goto(
        f"{nano_url}?prompt=a+sign&model=nano-schnell&seed=5&num_images=3&loras=nano-inverted-sign:0.75"
    )
    page.locator("#loras").click()  # the accordion (Gradio renders its contents once it opens)
    page.locator("#lora input").wait_for(state="attached")
    page.locator("#lora-card").get_by_text("nano inverted sign").first.wait_for(timeout=30_000)
    page.locator("#run").click()
    gallery = page.locator("#result-gallery")
    gallery.locator("img").nth(2).wait_for(timeout=120_000)
    assert gallery.locator("img").count() == 3
    assert (
        "nano-inverted-sign"
        in page.locator("#generate-link textarea, #generate-link input").first.input_value()
    )


def test_the_history_survives_a_reload_and_reuses_settings(page, nano_url):
    page.goto(nano_url)
    run_on_page(page, 'a sign that says "DOG"')
    page.locator("#history").click()
    page.locator("#history-gallery img").first.wait_for(timeout=60_000)  # stored once the run is added
    page.reload()
    page.locator("#history").click()
    thumbnails = page.locator("#history-gallery img")
    thumbnails.first.wait_for(timeout=60_000)
    assert thumbnails.count() >= 1
    thumbnails.first.click()
    page.locator("#history-reuse").click()
    page.wait_for_function(
        "() => document.querySelector('#prompt textarea').value.includes('DOG')", timeout=30_000
    )
    page.locator("#history-clear").click()
    page.wait_for_function("() => !document.querySelector('#history-gallery img')", timeout=30_000)
    page.reload()
    page.locator("#history").click()
    page.locator("#history-gallery").wait_for()
    assert page.locator("#history-gallery img").count() == 0
