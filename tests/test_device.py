"""Where pipelines run: the device choice (CUDA, Apple's MPS, the CPU) and the dtype, tested by logic."""

import pytest

from flux_demo.pipelines.placement import choose_device, dtype_name_for


@pytest.mark.parametrize(
    ("zerogpu", "cuda", "mps", "device"),
    [
        (False, True, False, "cuda"),
        (True, False, False, "cuda"),  # ZeroGPU attaches CUDA per call
        (False, True, True, "cuda"),  # an eGPU'd Mac would still prefer CUDA
        (False, False, True, "mps"),
        (False, False, False, "cpu"),
    ],
)
def test_device_prefers_cuda_then_apple_mps_then_the_cpu(zerogpu, cuda, mps, device):
    assert choose_device(zerogpu=zerogpu, cuda=cuda, mps=mps) == device


def test_apple_gpus_run_bf16_where_supported_else_fp16():
    assert dtype_name_for("mps", offline=False, mps_bf16=True) == "bfloat16"
    assert dtype_name_for("mps", offline=False, mps_bf16=False) == "float16"


def test_real_models_on_the_cpu_run_in_bf16_to_halve_their_memory_and_tiny_ones_in_float32():
    assert dtype_name_for("cpu", offline=False) == "bfloat16"
    assert dtype_name_for("cpu", offline=True) == "float32"
    assert dtype_name_for("cuda", offline=False) == "bfloat16"


def test_details_report_the_device_and_dtype(host):
    from flux_demo import generation
    from flux_demo.validation import GenerationRequest, validate

    valid = validate(GenerationRequest("a fox", "tiny-schnell", 256, 256, 1, 0.0, 3), host.model_keys)
    details = generation.generate(host, valid).details
    assert (details["device"], details["dtype"]) == ("cpu", "float32")
