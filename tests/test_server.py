"""The real Gradio server, called through gradio_client like an outside caller would."""

import numpy as np
from PIL import Image

from tests.helpers import doc_examples, run_doc_example


def generate(client, **changes):
    args = dict(
        prompt="A cute robot reading a book",
        model="tiny-dev",
        width=256,
        height=256,
        steps=4,
        guidance=3.5,
        seed=2024,
        randomize_seed=False,
    )
    return client.predict(**{**args, **changes}, api_name="/generate")


def test_generate_returns_a_png_that_records_how_it_was_made(client):
    path, seed, details = generate(client, prompt="간판에 'HELLO' 라고 쓴 가게", width=320, seed=4294967295)
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (320, 256)
    assert seed == 4294967295 and isinstance(seed, int)
    assert image.text["prompt"] == "간판에 'HELLO' 라고 쓴 가게"
    assert image.text["seed"] == "4294967295"
    assert {k: image.text[k] for k in ("model", "steps", "guidance", "width", "height")} == {
        "model": "tiny-dev",
        "steps": "4",
        "guidance": "3.5",
        "width": "320",
        "height": "256",
    }
    assert image.text["app_version"]
    assert details["model"] == "tiny-dev" and details["seconds"] > 0
    assert (details["width"], details["height"], details["steps"], details["guidance"]) == (320, 256, 4, 3.5)


def test_same_seed_through_the_api_gives_identical_pixels(client):
    first, second = generate(client, seed=99)[0], generate(client, seed=99)[0]
    other = generate(client, seed=100)[0]
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))
    assert not np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(other)))


def test_randomized_seed_is_returned_and_reproduces_the_image(client):
    path, seed, _ = generate(client, randomize_seed=True)
    again, seed_again, _ = generate(client, seed=seed)
    assert seed_again == seed
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(again)))


def test_schnell_reports_that_it_ignores_guidance(client):
    _, _, details = generate(client, model="tiny-schnell", guidance=3.5)
    assert details["guidance"] == 0.0
    assert any("ignores guidance" in note for note in details["notes"])


def test_docs_generate_example_runs_against_the_app(server_url):
    # (The LoRA example calls the nano models' LoRAs: tests/test_lora_server.py runs it on an app with them.)
    for code in (code for code in doc_examples("/generate") if "nano-" not in code):
        namespace = run_doc_example(code, server_url)
        image = Image.open(namespace["image_path"])
        assert image.text["seed"] == str(namespace["seed"])


def test_docs_compare_examples_run_against_the_app(server_url):
    for code in doc_examples("/compare", "/seed_sweep"):
        namespace = run_doc_example(code, server_url)
        assert [row[1] for row in namespace["table"]["data"]] == ["ok", "ok", "ok"]
        assert namespace["table"]["data"][1][3] == 20  # the edited dev setting was used
        assert len(namespace["grid"]) == 6
