"""The real Gradio server, called through gradio_client like an outside caller would."""

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from tests.conftest import readme_examples, run_readme_example


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


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompt": "   "}, r"prompt: is required"),
        ({"prompt": "x" * 2500}, r"prompt: must be at most 2000 characters"),
        ({"model": "flux-pro"}, r"model: must be one of tiny-schnell, tiny-dev"),
        ({"width": 100}, r"width: .*less than minimum value 256"),
        ({"height": 9000}, r"height: .*greater than maximum value 2048"),
        ({"steps": 40, "model": "tiny-schnell", "guidance": 0}, r"steps: must be an integer from 1 to 16"),
        ({"guidance": 0.5}, r"guidance: must be from 1 to 10"),
        ({"seed": 2**32}, r"seed: .*greater than maximum value 4294967295"),
    ],
)
def test_bad_input_gets_a_clear_error_and_the_server_stays_up(client, changes, message):
    with pytest.raises(AppError, match=message):
        generate(client, **changes)
    assert Image.open(generate(client)[0]).size == (256, 256)


def test_readme_generate_example_runs_against_the_app(server_url):
    for code in readme_examples("/generate"):
        namespace = run_readme_example(code, server_url)
        image = Image.open(namespace["image_path"])
        assert image.text["seed"] == str(namespace["seed"])


def test_readme_compare_examples_run_against_the_app(server_url):
    for code in readme_examples("/compare", "/seed_sweep"):
        namespace = run_readme_example(code, server_url)
        assert [row[1] for row in namespace["table"]["data"]] == ["ok", "ok", "ok"]
        assert namespace["table"]["data"][1][3] == 20  # the edited dev setting was used
        assert len(namespace["grid"]) == 6
