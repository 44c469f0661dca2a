"""The cached pipeline module: each model loads once per process and siblings share components.

`get_pipeline(key)` is the public entry point. Loading is lazy and thread-safe: concurrent first calls
for one model (or for two models that share components) load once. schnell and dev share their text
encoders, tokenizers and VAE by object identity; only the transformer and scheduler are their own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from flux_demo.config import Settings
from flux_demo.models import ModelSpec, get_spec

log = logging.getLogger(__name__)

_pipelines: dict[str, object] = {}
_group_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()
_settings: Settings | None = None
# With CPU offload, accelerate's hooks live on the shared modules: only one pipeline may own them.
_offload_owner: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where a pipeline runs: the torch device, its dtype and the memory mode actually applied."""

    device: str
    dtype_name: str
    memory_mode: str


def configure(settings: Settings) -> None:
    """Set the process-wide settings used by later loads (tiny-model folder, memory mode)."""
    global _settings
    _settings = settings


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return _settings


def _lock_for(spec: ModelSpec) -> threading.Lock:
    group = spec.share_group or spec.key
    with _registry_lock:
        return _group_locks.setdefault(group, threading.Lock())


def is_loaded(key: str) -> bool:
    return key in _pipelines


def loaded_keys() -> tuple[str, ...]:
    return tuple(_pipelines)


def get_pipeline(model_key: str):
    """The cached diffusers pipeline for `model_key`, loading it on first use."""
    pipe = _pipelines.get(model_key)
    if pipe is not None:
        return pipe
    spec = get_spec(model_key)
    with _lock_for(spec):
        pipe = _pipelines.get(model_key)
        if pipe is None:
            pipe = _load(spec)
            _pipelines[model_key] = pipe
    return pipe


def preload(model_keys: Iterable[str]) -> None:
    """Load the given models now, for example at start-up."""
    for key in model_keys:
        get_pipeline(key)


def _shared_from_siblings(spec: ModelSpec) -> dict:
    if not spec.share_group:
        return {}
    for key, pipe in _pipelines.items():
        if get_spec(key).share_group == spec.share_group:
            return {name: getattr(pipe, name) for name in spec.shared_components}
    return {}


def _source(spec: ModelSpec) -> str:
    if spec.is_offline:
        from flux_demo.tiny import ensure_tiny_model

        return str(ensure_tiny_model(spec.tiny_variant, settings().tiny_dir))
    return spec.repo_id


def torch_dtype_for(device: str):
    import torch

    # bf16 is what FLUX is trained and shipped in; CPUs run float32, where bf16 matmuls are slow.
    return torch.bfloat16 if device == "cuda" else torch.float32


def execution_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load(spec: ModelSpec):
    import diffusers

    device = execution_device()
    pipeline_class = getattr(diffusers, spec.pipeline_class)
    shared = _shared_from_siblings(spec)
    log.info("loading %s from %s (sharing %s)", spec.key, spec.repo_id or spec.tiny_variant, sorted(shared))
    pipe = pipeline_class.from_pretrained(_source(spec), dtype=torch_dtype_for(device), **shared)
    pipe.set_progress_bar_config(disable=True)
    pipe.flux_demo_placement = _place(pipe, device)
    return pipe


def _pipeline_bytes(pipe) -> int:
    import torch

    return sum(
        p.numel() * p.element_size()
        for module in pipe.components.values()
        if isinstance(module, torch.nn.Module)
        for p in module.parameters()
        if p.device.type != "cuda"
    )


def choose_memory_mode(requested: str, needed_bytes: int, free_bytes: int, largest_module_bytes: int) -> str:
    """Resolve `auto` by free VRAM: all on GPU if it fits with 15% headroom, else per-model offload,
    else sequential (per-layer) offload, which fits almost any card at a large speed cost."""
    if requested != "auto":
        return requested
    if needed_bytes * 1.15 <= free_bytes:
        return "gpu"
    if largest_module_bytes * 1.15 <= free_bytes:
        return "model-offload"
    return "sequential-offload"


def _place(pipe, device: str) -> Placement:
    dtype_name = str(torch_dtype_for(device)).removeprefix("torch.")
    if device != "cuda":
        return Placement(device, dtype_name, "cpu")
    import torch

    free, _total = torch.cuda.mem_get_info()
    largest = max(
        (
            sum(p.numel() * p.element_size() for p in m.parameters())
            for m in pipe.components.values()
            if isinstance(m, torch.nn.Module)
        ),
        default=0,
    )
    mode = choose_memory_mode(settings().memory_mode, _pipeline_bytes(pipe), free, largest)
    if mode == "gpu":
        pipe.to("cuda")
    log.info("memory mode %s (free VRAM %.1f GB)", mode, free / 1e9)
    return Placement(device, dtype_name, mode)


def prepare_for_call(model_key: str):
    """The pipeline for `model_key`, ready to run now. Call it inside the GPU slot.

    In the offload modes, shared modules can carry only one pipeline's accelerate hooks, so the hooks are
    re-attached when the model in use changes (cheap: no weights move until a module runs).
    """
    global _offload_owner
    pipe = get_pipeline(model_key)
    mode = pipe.flux_demo_placement.memory_mode
    if mode in ("model-offload", "sequential-offload") and _offload_owner != model_key:
        if mode == "model-offload":
            pipe.enable_model_cpu_offload()
        else:
            pipe.enable_sequential_cpu_offload()
        _offload_owner = model_key
    return pipe


def clear_cache() -> None:
    """Forget every loaded pipeline (tests use this to measure loading)."""
    global _offload_owner
    with _registry_lock:
        _pipelines.clear()
        _offload_owner = None
