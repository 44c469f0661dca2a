"""The cached pipeline module on the offline tiny models: real loading, sharing and determinism."""

import threading
import time

import numpy as np
import pytest

from flux_demo import generation, pipelines
from flux_demo.generation import GenerationRequest, validate

MODELS = ("tiny-schnell", "tiny-dev")


def pixels(prompt="a lighthouse at dusk", model="tiny-schnell", **changes):
    fields = dict(width=256, height=256, steps=4, guidance=0.0 if model == "tiny-schnell" else 3.5, seed=1)
    valid = validate(GenerationRequest(prompt, model, **{**fields, **changes}), MODELS)
    return np.asarray(generation.generate(valid).image)


def test_get_pipeline_loads_once_and_returns_the_cached_object(settings):
    pipelines.configure(settings)
    first = pipelines.get_pipeline("tiny-schnell")
    assert pipelines.get_pipeline("tiny-schnell") is first
    assert type(first).__name__ == "FluxPipeline"


def test_schnell_and_dev_share_encoders_tokenizers_and_vae_but_not_transformers(settings):
    pipelines.configure(settings)
    schnell, dev = pipelines.get_pipeline("tiny-schnell"), pipelines.get_pipeline("tiny-dev")
    for name in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae"):
        assert getattr(schnell, name) is getattr(dev, name), name
    assert schnell.transformer is not dev.transformer
    assert dev.transformer.config.guidance_embeds and not schnell.transformer.config.guidance_embeds
    # each keeps its own scheduler configuration, as the real checkpoints do
    assert schnell.scheduler is not dev.scheduler
    assert dev.scheduler.config.use_dynamic_shifting and not schnell.scheduler.config.use_dynamic_shifting


def test_concurrent_first_calls_load_each_model_once(settings, monkeypatch):
    import diffusers

    pipelines.configure(settings)
    pipelines.clear_cache()
    calls = []
    original = diffusers.FluxPipeline.from_pretrained.__func__

    def slow_counting_load(cls, *args, **kwargs):
        calls.append(args[0])
        time.sleep(0.2)  # widen the window in which a second thread could start its own load
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(diffusers.FluxPipeline, "from_pretrained", classmethod(slow_counting_load))
    results: list = []
    threads = [
        threading.Thread(target=lambda k=key: results.append((k, pipelines.get_pipeline(k))))
        for key in MODELS * 4
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 2
    for key in MODELS:
        assert len({id(pipe) for k, pipe in results if k == key}) == 1
    assert pipelines.get_pipeline("tiny-schnell").vae is pipelines.get_pipeline("tiny-dev").vae


def test_cpu_runs_float32_with_no_offload(settings):
    pipelines.configure(settings)
    pipe = pipelines.get_pipeline("tiny-dev")
    assert pipe.flux_demo_placement.device == "cpu"
    assert pipe.flux_demo_placement.dtype_name == "float32"
    assert pipe.transformer.dtype.is_floating_point and str(pipe.transformer.dtype) == "torch.float32"


def test_same_seed_gives_identical_pixels(settings):
    pipelines.configure(settings)
    assert np.array_equal(pixels(seed=123), pixels(seed=123))


def test_another_seed_gives_different_pixels(settings):
    pipelines.configure(settings)
    assert not np.array_equal(pixels(seed=123), pixels(seed=124))


def test_prompt_and_guidance_change_the_image(settings):
    pipelines.configure(settings)
    assert not np.array_equal(pixels("a red fox"), pixels("a blue whale"))
    assert not np.array_equal(pixels(model="tiny-dev", guidance=2.0), pixels(model="tiny-dev", guidance=7.0))


@pytest.mark.parametrize(("width", "height"), [(256, 256), (320, 256), (256, 400), (263, 300)])
def test_requested_size_is_honoured_after_snapping(settings, width, height):
    pipelines.configure(settings)
    image = pixels(width=width, height=height)
    assert image.shape[:2] == (generation.snap_to_multiple(height), generation.snap_to_multiple(width))


def test_progress_advances_once_per_denoising_step(settings):
    pipelines.configure(settings)
    seen = []
    valid = validate(GenerationRequest("a fox", "tiny-dev", 256, 256, 6, 3.5, 1), MODELS)
    generation.generate(valid, progress=lambda value, **_: seen.append(value))
    assert [v for v in seen if isinstance(v, tuple)] == [(i, 6) for i in range(1, 7)]


def test_zerogpu_duration_grows_with_steps_and_pixels():
    small = validate(GenerationRequest("a", "tiny-dev", 256, 256, 4, 3.5, 1), MODELS)
    large = validate(GenerationRequest("a", "tiny-dev", 1024, 1024, 28, 3.5, 1), MODELS)
    assert generation.gpu_seconds(large) > generation.gpu_seconds(small) >= 10


def test_auto_memory_mode_picks_by_free_vram():
    gib = 1024**3
    assert pipelines.choose_memory_mode("auto", 34 * gib, 80 * gib, 24 * gib) == "gpu"
    assert pipelines.choose_memory_mode("auto", 34 * gib, 30 * gib, 24 * gib) == "model-offload"
    assert pipelines.choose_memory_mode("auto", 34 * gib, 8 * gib, 24 * gib) == "sequential-offload"
    assert pipelines.choose_memory_mode("model-offload", 1, 80 * gib, 1) == "model-offload"


def test_memory_plan_moves_least_recently_used_models_until_the_new_one_fits():
    gb = 10**9
    idle = [("schnell", 24 * gb), ("klein", 16 * gb)]
    assert pipelines.plan_evictions(24 * gb, 40 * gb, idle) == []
    assert pipelines.plan_evictions(24 * gb, 10 * gb, idle) == ["schnell"]
    assert pipelines.plan_evictions(40 * gb, 5 * gb, idle) == ["schnell", "klein"]


def test_memory_plan_never_moves_modules_that_another_model_shares(settings):
    pipelines.configure(settings)
    for key in ("tiny-schnell", "tiny-dev", "tiny-klein"):
        pipelines.get_pipeline(key)
    schnell = pipelines.get_pipeline("tiny-schnell")
    own = {id(module) for module in pipelines._own_modules("tiny-schnell")}
    assert own == {id(schnell.transformer)}  # the encoders and VAE stay for dev
    klein = pipelines.get_pipeline("tiny-klein")
    assert {id(m) for m in pipelines._own_modules("tiny-klein")} == {
        id(klein.transformer),
        id(klein.text_encoder),
        id(klein.vae),
    }
