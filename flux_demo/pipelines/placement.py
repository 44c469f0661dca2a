"""Where a pipeline runs: device and dtype, the memory mode for its card, and the memory plan's arithmetic.

Pure functions of sizes, so the plan can be tested without a GPU; `ModelHost` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """Where a pipeline runs: the torch device, its dtype and the memory mode actually applied."""

    device: str
    dtype_name: str
    memory_mode: str


def device_kind(device: str) -> str:
    """ "cuda" for "cuda" and "cuda:N", else the device string without its index ("cpu")."""
    return device.partition(":")[0]


def choose_device(*, zerogpu: bool, cuda: bool, mps: bool) -> str:
    """Where pipelines run: "cuda" on a CUDA GPU or ZeroGPU (which attaches one per call), else "mps" on
    Apple Silicon, else "cpu". The one place that decides; `ModelHost` asks it with what torch reports."""
    if zerogpu or cuda:
        return "cuda"
    if mps:
        return "mps"
    return "cpu"


def dtype_name_for(device: str, *, offline: bool, mps_bf16: bool = True) -> str:
    """The dtype a pipeline loads in, by name. bf16 is what FLUX is trained and shipped in: CUDA runs it;
    Apple GPUs run it from macOS 14 (else fp16, which FLUX tolerates); the CPU runs the real models in
    bf16 too, which halves their memory (about 34 GB instead of 68 GB for schnell), while the offline
    tiny models stay in float32, where the CPU is fastest and results match across machines."""
    if device_kind(device) == "cuda":
        return "bfloat16"
    if device == "mps":
        return "bfloat16" if mps_bf16 else "float16"
    return "float32" if offline else "bfloat16"


def torch_dtype_for(device: str, *, offline: bool = True, mps_bf16: bool = True):
    import torch

    return getattr(torch, dtype_name_for(device, offline=offline, mps_bf16=mps_bf16))


def modules(pipe) -> dict:
    """The pipeline's torch modules by component name."""
    import torch

    return {name: m for name, m in pipe.components.items() if isinstance(m, torch.nn.Module)}


def module_bytes(module, off_gpu_only: bool = False) -> int:
    return sum(
        p.numel() * p.element_size()
        for p in module.parameters()
        if not (off_gpu_only and p.device.type == "cuda")
    )


def choose_memory_mode(requested: str, needed_bytes: int, gpu_bytes: int, largest_module_bytes: int) -> str:
    """Resolve `auto` by VRAM: the whole pipeline on the GPU if it fits with 15% headroom (idle models
    are moved out to make room), else per-model CPU offload, else sequential (per-layer) offload, which
    fits almost any card at a large speed cost."""
    if requested != "auto":
        return requested
    if needed_bytes * 1.15 <= gpu_bytes:
        return "gpu"
    if largest_module_bytes * 1.15 <= gpu_bytes:
        return "model-offload"
    return "sequential-offload"


def plan_evictions(needed: int, free: int, idle: list[tuple[str, int]]) -> list[str]:
    """Which idle models (least recently used first, with their evictable GPU bytes) to move to the CPU
    so that `needed` more bytes fit, keeping 10% headroom. Empty when it already fits."""
    evict: list[str] = []
    for key, size in idle:
        if needed * 1.1 <= free:
            break
        evict.append(key)
        free += size
    return evict
