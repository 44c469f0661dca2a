"""The editing core: sizing, validation of every field and image, the registry's modes, component sharing,
and real runs on the offline tiny models."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
from PIL import Image

from flux_demo import editing, metadata, permalink
from flux_demo.editing import EditRequest, validate_edit
from flux_demo.models import MODELS, get_spec
from flux_demo.pipelines import Job, runner
from flux_demo.validation import InvalidInput

SERVED = ("tiny-schnell", "tiny-dev", "tiny-klein")


def picture(width: int, height: int, colour: str = "red") -> Image.Image:
    return Image.new("RGB", (width, height), colour)


def edit_request(**changes) -> EditRequest:
    request = EditRequest(
        "put the ball from image 2 on the sofa from image 1",
        "tiny-klein",
        "edit",
        [picture(200, 150), picture(128, 128, "blue")],
        steps=2,
        seed=7,
    )
    return dataclasses.replace(request, **changes)


def refused(field: str, **changes) -> str:
    with pytest.raises(InvalidInput) as caught:
        validate_edit(edit_request(**changes), SERVED)
    assert caught.value.field == field, str(caught.value)
    return str(caught.value)


# --- sizing ---------------------------------------------------------------------------------------


def test_zero_size_takes_the_first_reference_snapped_to_16():
    valid = validate_edit(edit_request(), SERVED)
    assert (valid.width, valid.height) == (208, 144)
    assert valid.size_source == "first image (200×150)"
    assert any("208×144" in str(note) for note in valid.notes)


def test_zero_size_is_capped_to_the_models_area_keeping_the_aspect():
    spec = get_spec("tiny-klein")
    width, height, _ = editing.output_size(spec, (2000, 1000), 0, 0)
    assert width * height <= spec.max_edit_pixels
    assert width % 16 == height % 16 == 0
    assert abs(width / height - 2) < 0.1


def test_one_side_given_keeps_the_first_references_aspect():
    assert editing.output_size(get_spec("tiny-klein"), (400, 200), 320, 0)[:2] == (320, 160)


def test_an_explicit_size_is_snapped_and_used():
    valid = validate_edit(edit_request(width=300, height=200), SERVED)
    assert (valid.width, valid.height, valid.size_source) == (304, 208, "requested")


@pytest.mark.parametrize("width", [-16, 32, 4096, float("nan"), "wide"])
def test_out_of_range_sizes_are_refused_naming_the_field(width):
    assert "64 to 2048" in refused("width", width=width) or "number" in refused("width", width=width)


# --- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 11])
def test_reference_count_outside_1_to_10_is_refused(count):
    message = refused("references", images=[picture(96, 96)] * count)
    assert "1 to 10 images" in message and f"got {count}" in message


def test_a_reference_smaller_than_64_pixels_is_refused():
    assert "64 to 4096" in refused("references[2]", images=[picture(96, 96), picture(63, 96)])


def test_an_aspect_ratio_beyond_8_to_1_is_refused():
    assert "8:1" in refused("references[1]", images=[picture(900, 100)])


def test_an_oversized_file_is_refused_from_its_header_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(path)  # a few kB on disk, 144 megapixels decoded
    assert "12000×12000" in refused("references[1]", images=[str(path)])


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    assert "PNG, JPEG or WebP" in refused("references[1]", images=[str(path)])


def test_total_pixels_over_the_limit_are_refused(monkeypatch):
    monkeypatch.setattr(editing, "MAX_TOTAL_PIXELS", 40_000)
    assert "megapixels in all" in refused("references")


@pytest.mark.parametrize("strength", [0.0, 0.04, 1.5, float("nan"), None])
def test_strength_outside_its_range_is_refused(strength):
    message = refused(
        "strength", model="tiny-dev", mode="img2img", images=[picture(96, 96)], strength=strength
    )
    assert "0.05" in message and "1" in message


def test_a_mask_of_another_size_is_refused():
    message = refused(
        "mask", mode="inpaint", images=[picture(128, 96)], mask=Image.new("L", (96, 96), 255), strength=0.8
    )
    assert "128×96" in message and "96×96" in message


def test_a_mode_the_model_does_not_offer_names_the_models_that_do():
    message = refused("model", model="tiny-schnell")
    assert "tiny-klein" in message


def test_an_unknown_mode_is_refused():
    assert "edit, img2img, inpaint" in refused("mode", mode="outpaint")


# --- the registry and the host --------------------------------------------------------------------


def test_the_registry_says_which_model_offers_which_mode():
    offered = {key: set(editing.modes_for(spec)) for key, spec in MODELS.items()}
    assert offered["klein"] == offered["tiny-klein"] == {"edit", "inpaint"}
    assert offered["schnell"] == offered["dev"] == offered["tiny-dev"] == {"img2img"}


@pytest.mark.parametrize(("key", "mode"), [("tiny-schnell", "img2img"), ("tiny-klein", "inpaint")])
def test_variant_pipelines_share_every_component_by_identity(host, key, mode):
    base = host.get(key).pipe
    variant = host.variant(key, editing.modes_for(get_spec(key))[mode])
    assert type(variant) is not type(base)
    for name, component in base.components.items():
        assert variant.components[name] is component, name
    assert host.variant(key, editing.modes_for(get_spec(key))[mode]) is variant  # built once


def test_gpu_time_requested_grows_with_the_number_of_references(host):
    one, four = (
        validate_edit(edit_request(model="klein", steps=4, images=[picture(1024, 1024)] * n), ("klein",))
        for n in (1, 4)
    )
    assert runner.gpu_seconds(host, Job(four)) > runner.gpu_seconds(host, Job(one))


def test_steps_run_follow_diffusers_rule_for_strength():
    assert [editing.steps_run(4, s) for s in (1.0, 0.8, 0.5, 0.25)] == [4, 4, 2, 1]
    assert editing.steps_run(28, None) == 28


# --- real runs ------------------------------------------------------------------------------------


def test_same_seed_and_references_give_identical_pixels_and_png_keys(host):
    valid = validate_edit(edit_request(), SERVED)
    first, second = (editing.run_edit(host, valid) for _ in range(2))
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image))
    assert first.image.size == (208, 144)
    text = metadata.read_png_text(first.image)
    assert text["mode"] == "edit"
    expected = [hashlib.sha256(im.tobytes()).hexdigest() for im in edit_request().images]
    assert text["references"].split(",") == expected
    assert first.details["reference_count"] == 2


def test_img2img_reports_the_steps_actually_run_and_its_strength(host):
    request = edit_request(
        model="tiny-schnell", mode="img2img", images=[picture(96, 96)], strength=0.5, steps=4
    )
    result = editing.run_edit(host, validate_edit(request, SERVED))
    assert result.details["steps_run"] == 2
    assert metadata.read_png_text(result.image)["strength"] == "0.5"


def test_links_carry_mode_strength_and_reference_prefixes_and_read_back():
    settings = {
        "prompt": "p",
        "model": "tiny-dev",
        "mode": "img2img",
        "strength": 0.6,
        "references": ["ab" * 32],
    }
    query = permalink.link_query(settings, "edit")
    from urllib.parse import parse_qsl

    values, problems = permalink.parse_settings(dict(parse_qsl(query)), SERVED)
    assert not problems
    assert values["mode"] == "img2img" and values["strength"] == 0.6 and values["tab"] == "edit"
    assert values["references"] == ["ab" * 6]


def test_a_png_of_an_edit_restores_mode_and_strength_and_names_its_references(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from flux_demo.ui import share

    hashes = ("ab" * 32, "cd" * 32)
    text = metadata.png_text(
        prompt="p", model="tiny-dev", seed=1, steps=4, guidance=3.5, width=256, height=256,
        mode="img2img", strength=0.6, references=hashes,
    )  # fmt: skip
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    picture(256, 256).save(tmp_path / "edit.png", pnginfo=info)
    values, problems = share.read_png_settings(str(tmp_path / "edit.png"), SERVED)
    assert not problems
    assert (values["mode"], values["strength"], values["references"]) == ("img2img", 0.6, list(hashes))
    updates = share.field_updates(values, SERVED)
    assert updates["mode"] == "img2img" and updates["strength"] == 0.6
    assert "abababababab" in str(updates["references_note"].value)
