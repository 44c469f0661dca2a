"""Server-side validation, snapping and metadata: API callers bypass the browser."""

import pytest
from PIL import Image

from flux_demo import metadata
from flux_demo.models import get_spec
from flux_demo.validation import (
    MAX_SEED,
    GenerationRequest,
    InvalidInput,
    size_for_aspect,
    validate,
)

MODELS = ("tiny-schnell", "tiny-dev")


def request(**changes):
    fields = dict(prompt="a red fox", model="tiny-dev", width=256, height=256, steps=4, guidance=3.5, seed=7)
    return GenerationRequest(**{**fields, **changes})


@pytest.mark.parametrize(
    ("value", "snapped"), [(256, 256), (263, 256), (264, 272), (1000, 1008), (2048, 2048)]
)
def test_sizes_snap_to_the_nearest_multiple_of_16(value, snapped):
    assert get_spec("dev").snap_side(value) == snapped


def test_snapped_size_is_reported_in_notes():
    valid = validate(request(width=1000, height=777), MODELS)
    assert (valid.width, valid.height) == (1008, 784)
    assert any("width snapped from 1000 to 1008" in str(note) for note in valid.notes)


def test_nano_models_draw_only_the_256_square_they_were_trained_at():
    valid = validate(request(model="nano-dev", width=256, height=256), ("nano-dev",))
    assert (valid.width, valid.height) == (256, 256)
    with pytest.raises(InvalidInput, match=r"^width: must be 256 to 256, in multiples of 32 for FLUX.1 nano"):
        validate(request(model="nano-dev", width=320), ("nano-dev",))
    assert size_for_aspect("16:9", get_spec("nano-dev")) == (256, 256)


def test_aspect_presets_keep_the_pixel_count_near_the_base():
    width, height = size_for_aspect("16:9", get_spec("dev"))
    assert width % 16 == 0 and height % 16 == 0 and width > height
    assert abs(width * height - 1024 * 1024) / (1024 * 1024) < 0.05


def test_steps_range_follows_the_model():
    with pytest.raises(InvalidInput, match="1 to 16"):
        validate(request(model="tiny-schnell", steps=28, guidance=0), MODELS)
    assert validate(request(model="tiny-dev", steps=28), MODELS).steps == 28


def test_guidance_is_fixed_for_schnell_and_the_ui_is_told():
    valid = validate(request(model="tiny-schnell", guidance=3.5), MODELS)
    assert valid.guidance == 0.0
    assert any("ignores guidance" in str(note) for note in valid.notes)
    assert validate(request(model="tiny-schnell", guidance=0), MODELS).notes == ()


def test_largest_seed_stays_an_exact_integer():
    valid = validate(request(seed=MAX_SEED), MODELS)
    assert valid.seed == 4294967295 and isinstance(valid.seed, int)
    assert validate(request(seed=12.0), MODELS).seed == 12


def test_randomize_seed_draws_a_seed_in_range():
    seeds = {validate(request(randomize_seed=True), MODELS).seed for _ in range(20)}
    assert len(seeds) > 1 and all(0 <= s <= MAX_SEED for s in seeds)


def test_png_metadata_survives_a_save_and_reload(tmp_path):
    text = metadata.png_text(
        prompt="간판에 '안녕' 이라고",
        model="tiny-dev",
        seed=MAX_SEED,
        steps=28,
        guidance=3.5,
        width=256,
        height=272,
    )
    image = metadata.attach(Image.new("RGB", (256, 272)), text)
    from gradio.processing_utils import encode_pil_to_bytes

    (tmp_path / "a.png").write_bytes(encode_pil_to_bytes(image, "png"))
    restored = metadata.read_png_text(Image.open(tmp_path / "a.png"))
    assert restored["prompt"] == "간판에 '안녕' 이라고"
    assert restored["seed"] == "4294967295"
    assert set(metadata.PNG_KEYS) <= set(restored)
