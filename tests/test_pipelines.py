"""The model host on the offline tiny models: real loading, sharing, placement and determinism."""

import threading
import time

import numpy as np
import pytest

from flux_demo import generation, pipelines
from flux_demo.models import get_spec
from flux_demo.pipelines import Job, runner
from flux_demo.pipelines.placement import choose_memory_mode, plan_evictions
from flux_demo.validation import GenerationRequest, validate

MODELS = ("tiny-schnell", "tiny-dev")


def pixels(host, prompt="a lighthouse at dusk", model="tiny-schnell", **changes):
    # Two steps: enough for prompt, guidance and seed to show in the pixels, cheap on a CPU.
    fields = dict(width=256, height=256, steps=2, guidance=0.0 if model == "tiny-schnell" else 3.5, seed=1)
    valid = validate(GenerationRequest(prompt, model, **{**fields, **changes}), MODELS)
    return np.asarray(generation.generate(host, valid).image)


def test_get_loads_once_and_returns_the_cached_model(fresh_host):
    assert not fresh_host.is_loaded("tiny-schnell")
    first = fresh_host.get("tiny-schnell")
    assert fresh_host.is_loaded("tiny-schnell")
    assert fresh_host.get("tiny-schnell") is first
    assert fresh_host.get_pipeline("tiny-schnell") is first.pipe
    assert type(first.pipe).__name__ == "FluxPipeline"
    assert first.spec.key == "tiny-schnell"


def test_module_level_get_pipeline_uses_one_default_host():
    assert pipelines.default_host() is pipelines.default_host()
    pipe = pipelines.get_pipeline("tiny-schnell")
    assert pipelines.get_pipeline("tiny-schnell") is pipe
    assert pipelines.default_host().get_pipeline("tiny-schnell") is pipe


def test_schnell_and_dev_share_encoders_tokenizers_and_vae_but_not_transformers(host):
    schnell, dev = host.get_pipeline("tiny-schnell"), host.get_pipeline("tiny-dev")
    for name in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae"):
        assert getattr(schnell, name) is getattr(dev, name), name
    assert schnell.transformer is not dev.transformer
    assert dev.transformer.config.guidance_embeds and not schnell.transformer.config.guidance_embeds
    # each keeps its own scheduler configuration, as the real checkpoints do
    assert schnell.scheduler is not dev.scheduler
    assert dev.scheduler.config.use_dynamic_shifting and not schnell.scheduler.config.use_dynamic_shifting


def test_concurrent_first_calls_load_each_model_once(fresh_host, monkeypatch):
    import diffusers

    calls = []
    original = diffusers.FluxPipeline.from_pretrained.__func__

    def slow_counting_load(cls, *args, **kwargs):
        calls.append(args[0])
        time.sleep(0.2)  # widen the window in which a second thread could start its own load
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(diffusers.FluxPipeline, "from_pretrained", classmethod(slow_counting_load))
    results: list = []
    threads = [
        threading.Thread(target=lambda k=key: results.append((k, fresh_host.get_pipeline(k))))
        for key in MODELS * 4
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 2
    for key in MODELS:
        assert len({id(pipe) for k, pipe in results if k == key}) == 1
    assert fresh_host.get_pipeline("tiny-schnell").vae is fresh_host.get_pipeline("tiny-dev").vae


def test_cpu_runs_float32_with_no_offload(host):
    loaded = host.get("tiny-dev")
    assert (loaded.placement.device, loaded.placement.dtype_name) == ("cpu", "float32")
    assert loaded.placement.memory_mode == "cpu"
    assert str(loaded.pipe.transformer.dtype) == "torch.float32"


def test_same_seed_gives_identical_pixels_and_another_seed_does_not(host):
    first = pixels(host, seed=123)
    assert np.array_equal(first, pixels(host, seed=123))
    assert not np.array_equal(first, pixels(host, seed=124))


def test_prompt_and_guidance_change_the_image(host):
    assert not np.array_equal(pixels(host, "a red fox"), pixels(host, "a blue whale"))
    assert not np.array_equal(
        pixels(host, model="tiny-dev", guidance=2.0), pixels(host, model="tiny-dev", guidance=7.0)
    )


@pytest.mark.parametrize(("width", "height"), [(320, 256), (256, 400), (263, 300)])
def test_requested_size_is_honoured_after_snapping(host, width, height):
    image = pixels(host, width=width, height=height, steps=1)
    spec = get_spec("tiny-schnell")
    assert image.shape[:2] == (spec.snap_side(height), spec.snap_side(width))


def test_progress_advances_once_per_denoising_step(host):
    seen = []
    valid = validate(GenerationRequest("a fox", "tiny-dev", 256, 256, 6, 3.5, 1), MODELS)
    generation.generate(host, valid, progress=lambda value, **_: seen.append(value))
    assert [v for v in seen if isinstance(v, tuple)] == [(i, 6) for i in range(1, 7)]


def test_zerogpu_duration_grows_with_steps_and_pixels(host):
    small = validate(GenerationRequest("a", "tiny-dev", 256, 256, 4, 3.5, 1), MODELS)
    large = validate(GenerationRequest("a", "tiny-dev", 1024, 1024, 28, 3.5, 1), MODELS)
    assert runner.gpu_seconds(host, Job(large)) > runner.gpu_seconds(host, Job(small)) >= 10


def test_auto_memory_mode_picks_by_free_vram():
    gib = 1024**3
    assert choose_memory_mode("auto", 34 * gib, 80 * gib, 24 * gib) == "gpu"
    assert choose_memory_mode("auto", 34 * gib, 30 * gib, 24 * gib) == "model-offload"
    assert choose_memory_mode("auto", 34 * gib, 8 * gib, 24 * gib) == "sequential-offload"
    assert choose_memory_mode("model-offload", 1, 80 * gib, 1) == "model-offload"


def test_memory_plan_moves_least_recently_used_models_until_the_new_one_fits():
    gb = 10**9
    idle = [("schnell", 24 * gb), ("klein", 16 * gb)]
    assert plan_evictions(24 * gb, 40 * gb, idle) == []
    assert plan_evictions(24 * gb, 10 * gb, idle) == ["schnell"]
    assert plan_evictions(40 * gb, 5 * gb, idle) == ["schnell", "klein"]


def test_memory_plan_never_moves_modules_that_another_model_shares(host):
    host.preload(("tiny-schnell", "tiny-dev", "tiny-klein"))
    schnell = host.get_pipeline("tiny-schnell")
    own = {id(module) for module in host.own_modules("tiny-schnell")}
    assert own == {id(schnell.transformer)}  # the encoders and VAE stay for dev
    klein = host.get_pipeline("tiny-klein")
    assert {id(m) for m in host.own_modules("tiny-klein")} == {
        id(klein.transformer),
        id(klein.text_encoder),
        id(klein.vae),
    }


def test_a_host_pickles_by_reference_so_a_zerogpu_worker_uses_the_one_it_inherited(host):
    import pickle

    assert pickle.loads(pickle.dumps(host)) is host
