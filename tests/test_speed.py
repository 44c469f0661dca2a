"""Speed options: env parsing, honest skips on CPU, and compiled or exported transformers that match eager."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from flux_demo.config import SpeedOptions, parse_cache
from flux_demo.models import get_spec
from flux_demo.pipelines import speed
from flux_demo.pipelines.speed import SKIPPED


@pytest.fixture(scope="module")
def tiny_schnell(host):
    """The session host's tiny schnell pipeline (never modified by these tests)."""
    return host.get_pipeline("tiny-schnell")


def private_copy(pipe):
    """A pipeline sharing everything with `pipe` except a deep-copied transformer we may modify."""
    from diffusers import FluxPipeline

    copy_ = FluxPipeline(**{**pipe.components, "transformer": copy.deepcopy(pipe.transformer)})
    copy_.set_progress_bar_config(disable=True)
    return copy_


def render(pipe, width=256, steps=2):
    return pipe(
        prompt="a red bicycle leaning on a wall",
        width=width,
        height=256,
        num_inference_steps=steps,
        max_sequence_length=256,
        generator=torch.Generator("cpu").manual_seed(7),
        output_type="np",
    ).images[0]


def test_defaults_are_safe():
    options = SpeedOptions.from_env({})
    assert options == SpeedOptions(compile="auto", fp8="auto", attention="auto", cache="off")


def test_env_values_are_read_case_insensitively():
    env = {
        "FLUX_DEMO_COMPILE": " Regional ",
        "FLUX_DEMO_FP8": "off",
        "FLUX_DEMO_ATTENTION": "_native_cudnn",
        "FLUX_DEMO_CACHE": "first-block:0.12",
    }
    options = SpeedOptions.from_env(env)
    assert (options.compile, options.fp8, options.attention) == ("regional", "off", "_native_cudnn")
    assert parse_cache(options.cache) == ("first-block", 0.12)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("off", None), ("first-block", ("first-block", 0.08)), ("taylorseer:4", ("taylorseer", 4.0))],
)
def test_cache_values_parse(value, expected):
    assert parse_cache(value) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FLUX_DEMO_COMPILE", "max-autotune"),
        ("FLUX_DEMO_FP8", "maybe"),
        ("FLUX_DEMO_CACHE", "teacache:0.1"),
        ("FLUX_DEMO_CACHE", "first-block:fast"),
        ("FLUX_DEMO_CACHE", "first-block:-1"),
    ],
)
def test_bad_env_value_is_rejected_naming_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        SpeedOptions.from_env({name: value})


def test_options_that_cannot_apply_on_cpu_are_reported_as_skipped(tiny_schnell):
    pipe = private_copy(tiny_schnell)
    options = SpeedOptions(compile="auto", fp8="on", attention="auto", cache="first-block:0.08")
    applied = speed.apply_speed_options(pipe, options, "cpu", get_spec("tiny-schnell"))
    assert set(applied) == {"attention", "fp8", "cache", "compile"}
    assert applied["compile"].startswith(SKIPPED) and "CUDA" in applied["compile"]
    assert applied["fp8"].startswith(SKIPPED) and "compute capability" in applied["fp8"]
    assert applied["cache"].startswith(SKIPPED) and "4-step" in applied["cache"]
    assert applied["attention"].startswith("native")
    assert not pipe.transformer.is_cache_enabled


def test_aoti_is_skipped_off_gpu(tiny_schnell):
    applied = speed.apply_speed_options(
        private_copy(tiny_schnell), SpeedOptions(compile="aoti"), "cpu", get_spec("tiny-schnell")
    )
    assert applied["compile"].startswith(SKIPPED) and "GPU" in applied["compile"]


def test_unknown_attention_backend_is_reported_not_raised(tiny_schnell):
    pipe = private_copy(tiny_schnell)
    applied = speed.apply_speed_options(pipe, SpeedOptions(attention="no-such-kernel"), "cpu")
    assert applied["attention"].startswith(SKIPPED) and "no-such-kernel" in applied["attention"]


def test_first_block_cache_applies_to_a_many_step_model(tiny_schnell):
    # tiny-dev shares schnell's components; only the step count from its spec matters here.
    pipe = private_copy(tiny_schnell)
    applied = speed.apply_speed_options(pipe, SpeedOptions(cache="first-block:0.08"), "cpu", get_spec("dev"))
    assert applied["cache"] == "first-block cache threshold=0.08 (lossy)"
    assert pipe.transformer.is_cache_enabled
    image = render(pipe, steps=3)
    assert image.shape == (256, 256, 3) and np.isfinite(image).all()


@pytest.mark.slow  # about 30 s of CPU compilation; CI runs it
def test_regional_compile_gives_the_eager_image(tiny_schnell):
    eager = render(tiny_schnell)
    pipe = private_copy(tiny_schnell)
    applied = speed.apply_speed_options(pipe, SpeedOptions(compile="regional"), "cpu")
    assert applied["compile"].startswith("regional torch.compile")
    compiled = render(pipe)
    np.testing.assert_allclose(compiled, eager, atol=2e-3)


def capture_transformer_kwargs(pipe, width: int) -> dict:
    """The keyword arguments of the pipeline's first transformer call (what spaces.aoti_capture records)."""

    class Captured(Exception):
        pass

    def record(**kwargs):
        raise Captured(kwargs)

    pipe.transformer.forward = record
    try:
        render(pipe, width=width, steps=1)
    except Captured as captured:
        return captured.args[0]
    finally:
        del pipe.transformer.forward
    raise AssertionError("the transformer was never called")


def test_exported_transformer_serves_other_image_sizes(tiny_schnell):
    # The ZeroGPU route exports once (spaces.aoti_* itself needs a CUDA build of torch, absent here).
    pipe = private_copy(tiny_schnell)
    exported = speed.export_transformer(pipe.transformer, (), capture_transformer_kwargs(pipe, 256)).module()
    for width in (256, 384):
        kwargs = capture_transformer_kwargs(pipe, width)
        with torch.no_grad():
            expected = pipe.transformer(**kwargs)[0]
            got = exported(**kwargs)[0]
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_gpu_benchmark_code_path_runs_on_cpu_with_tiny_configs(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import gpu_flux
    import harness

    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    # One timed image per variant and no warm-up run: this checks the code path, not the timings.
    gpu_flux.main(
        [
            "--smoke",
            "--models",
            "dev",
            "--variants",
            "eager,mag",
            "--steps",
            "8",
            "--repeats",
            "1",
            "--warmup",
            "0",
        ]
    )
    result = json.loads((tmp_path / "gpu_flux_smoke.json").read_text())
    assert result["memory"]["shared_tensors"] > 0
    runs = {run["variant"]: run for run in result["runs"]}
    assert runs["eager"]["s_per_image"] > 0 and runs["eager"]["full_steps"] == 8
    assert runs["mag"]["applied"]["cache"].startswith("mag cache")
