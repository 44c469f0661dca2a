"""The registry is the one place that knows how models differ."""

import pytest

from flux_demo.config import Settings
from flux_demo.models import MODELS, get_spec
from flux_demo.pipelines.host import enabled_model_keys


def test_schnell_and_dev_use_their_model_cards_defaults():
    schnell, dev = get_spec("schnell"), get_spec("dev")
    assert (schnell.default_steps, schnell.default_guidance, schnell.max_sequence_length) == (4, 0.0, 256)
    assert (dev.default_steps, dev.default_guidance, dev.max_sequence_length) == (28, 3.5, 512)
    assert schnell.ignores_guidance and not dev.ignores_guidance
    assert schnell.repo_id == "black-forest-labs/FLUX.1-schnell"
    assert dev.repo_id == "black-forest-labs/FLUX.1-dev"


def test_tiny_twins_mirror_their_real_models_but_load_offline():
    for key in ("schnell", "dev", "klein"):
        real, tiny = get_spec(key), get_spec(f"tiny-{key}")
        assert tiny.is_offline and not real.is_offline
        assert tiny.pipeline_class == real.pipeline_class
        assert (tiny.default_steps, tiny.default_guidance, tiny.guidance_range) == (
            real.default_steps,
            real.default_guidance,
            real.guidance_range,
        )
        assert tiny.share_group is None or tiny.share_group != real.share_group  # never mix tiny and real


def test_nano_models_keep_the_real_call_settings_at_their_own_sizes():
    for key in ("schnell", "dev"):
        real, nano = get_spec(key), get_spec(f"nano-{key}")
        assert nano.is_offline and nano.is_nano and not get_spec(f"tiny-{key}").is_nano
        assert (nano.default_steps, nano.default_guidance, nano.guidance_range, nano.pipeline_class) == (
            real.default_steps,
            real.default_guidance,
            real.guidance_range,
            real.pipeline_class,
        )
        # Trained at 256x256 only, with a x16 VAE and 16 T5 tokens; schnell and dev share encoders and VAE.
        assert (nano.default_size, nano.size_multiple, nano.max_side) == (256, 32, 256)
        assert nano.max_sequence_length == 16 and nano.share_group == "nano-flux1"
    assert get_spec("nano-schnell").label == "FLUX.1 nano [schnell] (offline) — 4 steps, Apache-2.0"


def test_nano_klein_keeps_kleins_call_settings_and_editing_modes():
    real, nano = get_spec("klein"), get_spec("nano-klein")
    assert nano.is_nano and nano.pipeline_class == "Flux2KleinPipeline"
    assert (nano.default_steps, nano.guidance_range, nano.edit_pipelines) == (
        real.default_steps,
        real.guidance_range,
        real.edit_pipelines,
    )
    assert (nano.default_size, nano.max_side, nano.max_edit_pixels) == (256, 256, 256 * 256)
    assert nano.max_sequence_length == 32 and nano.share_group is None
    assert nano.name == "FLUX.2 nano [klein] (offline)"


def test_labels_name_model_steps_and_licence():
    assert get_spec("schnell").label == "FLUX.1 [schnell] — 4 steps, Apache-2.0"
    assert "Non-Commercial" in get_spec("dev").label


def test_every_entry_has_sane_ranges():
    for spec in MODELS.values():
        assert spec.min_steps <= spec.default_steps <= spec.max_steps
        if spec.guidance_range:
            low, high = spec.guidance_range
            assert low <= spec.default_guidance <= high
        assert spec.license and spec.pipeline_class


def test_unknown_model_key_is_rejected_naming_known_keys():
    with pytest.raises(KeyError, match="known models: schnell"):
        get_spec("flux-pro")


def test_flux_demo_models_setting_selects_models(monkeypatch):
    monkeypatch.setenv("FLUX_DEMO_MODELS", "tiny-dev, tiny-schnell")
    assert enabled_model_keys(Settings.from_env()) == ("tiny-dev", "tiny-schnell")
    monkeypatch.setenv("FLUX_DEMO_MODELS", "tiny-dev,nope")
    with pytest.raises(KeyError):
        enabled_model_keys(Settings.from_env())


def test_default_is_nano_without_a_gpu_and_real_on_zerogpu(monkeypatch):
    monkeypatch.delenv("FLUX_DEMO_MODELS", raising=False)
    assert enabled_model_keys(Settings.from_env()) == ("nano-schnell", "nano-dev", "nano-klein")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert enabled_model_keys(Settings.from_env()) == ("schnell", "dev", "klein")


def test_offline_default_serves_nano_klein_only_where_its_weights_are(monkeypatch, tmp_path):
    from flux_demo.offline import nano

    monkeypatch.delenv("FLUX_DEMO_MODELS", raising=False)
    assert (nano.weights_path("nano-klein") / "model_index.json").is_file()  # shipped
    monkeypatch.setattr(nano, "WEIGHTS_DIR", tmp_path)
    assert enabled_model_keys(Settings.from_env()) == ("nano-schnell", "nano-dev", "tiny-klein")


def test_bad_memory_mode_is_rejected(monkeypatch):
    monkeypatch.setenv("FLUX_DEMO_MEMORY_MODE", "turbo")
    with pytest.raises(ValueError, match="auto, gpu, model-offload, sequential-offload"):
        Settings.from_env()


def test_klein_is_the_distilled_apache_model_that_ignores_guidance():
    klein = get_spec("klein")
    assert (klein.repo_id, klein.pipeline_class) == (
        "black-forest-labs/FLUX.2-klein-4B",
        "Flux2KleinPipeline",
    )
    assert (klein.default_steps, klein.default_guidance, klein.license) == (4, 1.0, "Apache-2.0")
    assert klein.ignores_guidance
    assert klein.share_group is None  # its Qwen3 text encoder and FLUX.2 VAE are its own


@pytest.mark.parametrize(
    ("keys", "setting", "slice_"),
    [
        (("schnell", "dev"), "auto", None),  # 57.5 GB: spaces' default slice, "large"
        (("schnell", "klein"), "auto", None),
        (("schnell", "dev", "klein"), "auto", "xlarge"),  # 73.5 GB + activations do not fit 70 GB
        (("tiny-schnell", "tiny-dev", "tiny-klein"), "auto", None),
        (("schnell", "dev", "klein"), "large", "large"),
    ],
)
def test_the_zerogpu_slice_follows_the_served_weights(keys, setting, slice_):
    from flux_demo.models import zerogpu_size

    assert zerogpu_size(keys, setting) == slice_


def test_shared_flux1_components_count_once_in_the_served_weights():
    from flux_demo.models import served_weights_gb

    assert served_weights_gb(["schnell", "dev"]) == pytest.approx(57.52)
    assert served_weights_gb(["schnell"]) == pytest.approx(33.72)
