"""The cached pipeline module: each model loads once per process and siblings share components.

`get_pipeline(key)` is the public entry point. Loading is lazy and thread-safe: concurrent first calls
for one model (or for two models that share components) load once. schnell and dev share their text
encoders, tokenizers and VAE by object identity; only the transformer and scheduler are their own.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from flux_demo import speed
from flux_demo.config import Settings, on_zerogpu
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


# diffusers and transformers resolve their names lazily, which is not thread-safe: a lookup racing an
# import in another thread can fail with AttributeError. Warm-up imports and model loads (which build
# tiny models and apply speed options, importing more) therefore take turns.
_import_lock = threading.RLock()


def pipeline_class(spec: ModelSpec):
    """The diffusers pipeline class for `spec`."""
    with _import_lock:
        import diffusers

        return getattr(diffusers, spec.pipeline_class)


def warm_imports(model_keys: Iterable[str]) -> None:
    """Import torch, diffusers and the pipeline classes (seconds of work) without loading any weights,
    so the first visitor does not wait for them; meant for a background thread."""
    for key in model_keys:
        pipeline_class(get_spec(key))


def preload(model_keys: Iterable[str]) -> None:
    """Load the given models now, for example at start-up."""
    for key in model_keys:
        get_pipeline(key)


def _shared_from_siblings(spec: ModelSpec) -> dict:
    if not spec.share_group:
        return {}
    for key, pipe in list(_pipelines.items()):  # another group may be inserting meanwhile
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

    return "cuda" if on_zerogpu() or torch.cuda.is_available() else "cpu"


def _load(spec: ModelSpec):
    with _import_lock:
        return _load_unlocked(spec)


def _load_unlocked(spec: ModelSpec):
    device = execution_device()
    cls = pipeline_class(spec)
    shared = _shared_from_siblings(spec)
    log.info("loading %s from %s (sharing %s)", spec.key, spec.repo_id or spec.tiny_variant, sorted(shared))
    pipe = cls.from_pretrained(_source(spec), dtype=torch_dtype_for(device), **shared)
    pipe.set_progress_bar_config(disable=True)
    pipe.flux_demo_placement = _place(pipe, device)
    # After placement: compilation and fp8 act on the transformer where it will run.
    pipe.flux_demo_speed = speed.apply_speed_options(pipe, settings().speed, device, spec)
    log.info("%s speed options: %s", spec.key, pipe.flux_demo_speed)
    return pipe


def _modules(pipe) -> dict:
    import torch

    return {name: m for name, m in pipe.components.items() if isinstance(m, torch.nn.Module)}


def _module_bytes(module, off_gpu_only: bool = False) -> int:
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


def _place(pipe, device: str) -> Placement:
    dtype_name = str(torch_dtype_for(device)).removeprefix("torch.")
    if device != "cuda":
        return Placement(device, dtype_name, "cpu")
    if on_zerogpu():
        # ZeroGPU wants weights moved to "cuda" at start-up, outside GPU calls; it attaches them per call.
        pipe.to("cuda")
        return Placement(device, dtype_name, "zerogpu")
    import torch

    _free, total = torch.cuda.mem_get_info()
    modules = _modules(pipe).values()
    needed = sum(_module_bytes(m) for m in modules)
    largest = max((_module_bytes(m) for m in modules), default=0)
    mode = choose_memory_mode(settings().memory_mode, needed, total, largest)
    log.info("memory mode %s (pipeline %.1f GB, card %.1f GB)", mode, needed / 1e9, total / 1e9)
    return Placement(device, dtype_name, mode)


# Models in "gpu" mode, most recently used last: the memory plan moves the least recently used out.
_recent: list[str] = []
# Models whose pipeline is running now: never moved out (FLUX_DEMO_GPU_CONCURRENCY > 1 runs several).
_running: collections.Counter[str] = collections.Counter()
_placement_lock = threading.Lock()


def _own_modules(key: str) -> list:
    """`key`'s modules that no other loaded pipeline shares (the shared FLUX.1 encoders are not own)."""
    others = {
        id(m) for other, pipe in list(_pipelines.items()) if other != key for m in _modules(pipe).values()
    }
    return [m for m in _modules(_pipelines[key]).values() if id(m) not in others]


def _ensure_on_gpu(model_key: str, pipe) -> None:
    """Move `pipe` to the GPU, first moving idle models' own modules to the CPU if the card is full.

    This is the memory plan for cards smaller than all served models together (for example a 48 GB
    card with schnell, dev and klein): shared modules stay, idle transformers (and klein's encoder) leave.
    Call with `_placement_lock` held.
    """
    import torch

    needed = sum(_module_bytes(m, off_gpu_only=True) for m in _modules(pipe).values())
    if needed:
        idle = [
            (key, sum(_module_bytes(m) - _module_bytes(m, off_gpu_only=True) for m in _own_modules(key)))
            for key in _recent
            if key != model_key and not _running[key]
        ]
        free, _total = torch.cuda.mem_get_info()
        for key in plan_evictions(needed, free, idle):
            log.info("memory plan: moving %s's own modules to the CPU to make room for %s", key, model_key)
            for module in _own_modules(key):
                module.to("cpu")
        torch.cuda.empty_cache()
        pipe.to("cuda")
    if model_key in _recent:
        _recent.remove(model_key)
    _recent.append(model_key)


@contextlib.contextmanager
def in_use(model_key: str):
    """The pipeline for `model_key`, placed and ready, marked as running until the block ends."""
    with _placement_lock:
        pipe = prepare_for_call(model_key)
        _running[model_key] += 1
    try:
        yield pipe
    finally:
        with _placement_lock:
            _running[model_key] -= 1


def prepare_for_call(model_key: str):
    """The pipeline for `model_key`, ready to run now. Call it inside the GPU slot.

    In "gpu" mode the memory plan makes room for it; in the offload modes, shared modules can carry only
    one pipeline's accelerate hooks, so the hooks are re-attached when the model in use changes (cheap: no
    weights move until a module runs).
    """
    global _offload_owner
    pipe = get_pipeline(model_key)
    mode = pipe.flux_demo_placement.memory_mode
    if mode == "gpu":
        _ensure_on_gpu(model_key, pipe)
    elif mode in ("model-offload", "sequential-offload") and _offload_owner != model_key:
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
        _recent.clear()
        _running.clear()
        _offload_owner = None
