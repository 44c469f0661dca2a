"""The Edit tab's endpoints through gradio_client, as an outside caller uses them: /edit with two
references, /img2img, /inpaint, the refusals, and the documented examples."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from tests.helpers import ROOT, doc_examples, run_doc_example

SOFA = str(ROOT / "examples" / "edit" / "sofa.png")
BALL = str(ROOT / "examples" / "edit" / "ball.png")


def edit(client, **changes):
    args = dict(
        prompt="Put the red ball from image 2 on the blue sofa from image 1",
        references=[handle_file(SOFA), handle_file(BALL)],
        model="tiny-klein",
        seed=11,
        randomize_seed=False,
        steps=2,
        width=0,
        height=0,
    )
    return client.predict(**{**args, **changes}, api_name="/edit")


def img2img(client, **changes):
    args = dict(
        prompt="A watercolor sofa",
        image=handle_file(SOFA),
        model="tiny-dev",
        strength=0.5,
        seed=11,
        randomize_seed=False,
        steps=4,
        guidance=3.5,
        width=0,
        height=0,
    )
    return client.predict(**{**args, **changes}, api_name="/img2img")


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_edit_with_two_references_returns_a_png_that_names_them(client):
    path, seed, details = edit(client)
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (384, 288)  # the first reference's size
    assert seed == 11 and details["reference_count"] == 2 and details["size"] == "384×288"
    hashes = [hashlib.sha256(pixels(p).tobytes()).hexdigest() for p in (SOFA, BALL)]
    assert image.text["references"] == ",".join(hashes)
    assert (image.text["mode"], image.text["model"], image.text["seed"]) == ("edit", "tiny-klein", "11")
    assert "strength" not in image.text


def test_edit_with_the_same_seed_gives_identical_pixels(client):
    first, second = edit(client, width=256, height=192)[0], edit(client, width=256, height=192)[0]
    other = edit(client, width=256, height=192, seed=12)[0]
    assert np.array_equal(pixels(first), pixels(second))
    assert not np.array_equal(pixels(first), pixels(other))


def test_img2img_runs_steps_times_strength_and_records_it(client):
    path, _, details = img2img(client)
    image = Image.open(path)
    assert details["steps_run"] == 2 and details["steps"] == 4
    assert (image.text["mode"], image.text["strength"], image.text["guidance"]) == ("img2img", "0.5", "3.5")
    assert np.array_equal(pixels(path), pixels(img2img(client)[0]))


def test_inpaint_repaints_with_a_mask_of_the_images_size(client, tmp_path):
    mask = Image.new("L", (384, 288), 0)
    mask.paste(255, (40, 110, 344, 240))
    mask.save(tmp_path / "mask.png")
    path, _, _ = client.predict(
        prompt="A green armchair",
        image=handle_file(SOFA),
        mask=handle_file(str(tmp_path / "mask.png")),
        model="tiny-klein",
        strength=0.9,
        seed=3,
        randomize_seed=False,
        steps=2,
        api_name="/inpaint",
    )
    assert Image.open(path).size == (384, 288) and Image.open(path).text["mode"] == "inpaint"


def refusal(call) -> str:
    with pytest.raises(Exception) as caught:  # gradio_client raises AppError with the server's message
        call()
    return str(caught.value)


def test_bad_inputs_are_refused_naming_the_field_and_the_server_keeps_serving(client, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("RGB", (40, 300)).save(tmp_path / "thin.png")
    Image.new("L", (100, 100), 255).save(tmp_path / "small_mask.png")
    notes, thin = handle_file(str(tmp_path / "notes.png")), handle_file(str(tmp_path / "thin.png"))
    small_mask, sofa, ball = (
        handle_file(str(tmp_path / "small_mask.png")),
        handle_file(SOFA),
        handle_file(BALL),
    )
    cases = {
        "references: must hold 1 to 10 images, got 11": lambda: edit(client, references=[ball] * 11),
        "references: must hold 1 to 10 images, got 0": lambda: edit(client, references=[]),
        "references[1]: must be a PNG": lambda: edit(client, references=[notes]),
        "references[2]: each side must be 64 to 4096": lambda: edit(client, references=[sofa, thin]),
        # A bare path (no upload) must not let a caller read an image stored anywhere on the server.
        "references[1]: must be an image uploaded to this app": lambda: edit(
            client, references=[{"path": SOFA}]
        ),
        "strength: Value 1.5 is greater than maximum value 1.0": lambda: img2img(client, strength=1.5),
        "model: FLUX.2 [klein] 4B (offline tiny preview) does not offer img2img": lambda: img2img(
            client, model="tiny-klein"
        ),
        "mask: must be the same size as the image (384×288), got 100×100": lambda: client.predict(
            prompt="x", image=handle_file(SOFA), mask=small_mask, model="tiny-klein", strength=0.8, seed=0,
            randomize_seed=False, steps=2, api_name="/inpaint",
        ),
    }  # fmt: skip
    for expected, call in cases.items():
        assert expected in refusal(call)
    assert edit(client, width=128, height=128)[2]["size"] == "128×128"


def test_docs_edit_examples_run_against_the_app(server_url, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name the shipped reference images relative to the repository
    for code in doc_examples("/edit", "/img2img", "/inpaint"):
        namespace = run_doc_example(code, server_url)
        assert Image.open(namespace["image_path"]).format == "PNG"
        assert namespace["details"]["seconds"] > 0
