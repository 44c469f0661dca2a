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


def torch_dtype_for(device: str):
    import torch

    # bf16 is what FLUX is trained and shipped in; CPUs run float32, where bf16 matmuls are slow.
    return torch.bfloat16 if device_kind(device) == "cuda" else torch.float32


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
