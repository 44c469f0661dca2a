"""`ModelHost`: the one owner of the process's mutable state.

It holds the settings, the served model keys, the loaded pipelines, the locks that make first loads
safe, the GPU slots and the memory plan's recently-used list. It is both a `Backend` (the app hands it
jobs) and the `Replica` those jobs run on. `create_demo` builds one (or receives one), and everything
below the UI is handed it explicitly, so two demos in one process do not interfere.

Loading is lazy and thread-safe: concurrent first calls for one model (or for two models that share
components) load once. schnell and dev share their text encoders, tokenizers and VAE by object identity;
only the transformer and scheduler are their own.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence

from flux_demo.config import Settings, on_zerogpu
from flux_demo.models import OFFLINE_DEFAULT, REAL_DEFAULT, ModelSpec, get_spec
from flux_demo.pipelines import placement as plan
from flux_demo.pipelines import runner, speed
from flux_demo.pipelines.adapters import Adapters, LoraFiles
from flux_demo.pipelines.backend import Job, JobOutcome, LoadedModel, ModelLoadFailed, ProgressFn
from flux_demo.pipelines.placement import Placement
from flux_demo.pipelines.turns import PausedCall, Turn, Turns

log = logging.getLogger(__name__)

# diffusers and transformers resolve their names lazily, which is not thread-safe: a lookup racing an
# import in another thread can fail with AttributeError. Warm-up imports and model loads therefore take
# turns on this process-wide lock (imports are process-wide, whichever host asks).
_import_lock = threading.RLock()

# Hosts by id, so a host pickles by reference: ZeroGPU runs the GPU function in a worker forked from
# this process and pickles its arguments, and the worker must use the host it inherited, not a copy.
_hosts: weakref.WeakValueDictionary[int, ModelHost] = weakref.WeakValueDictionary()
_host_ids = itertools.count()


def _host_by_id(host_id: int) -> ModelHost:
    return _hosts[host_id]


def gpu_available() -> bool:
    """A CUDA GPU is present here, or ZeroGPU will attach one per call."""
    if on_zerogpu():
        return True
    import torch  # deferred: settings and the registry must stay cheap to import

    return torch.cuda.is_available()


def enabled_model_keys(settings: Settings) -> tuple[str, ...]:
    """The models to serve: `FLUX_DEMO_MODELS`, else real ones on a GPU and offline ones elsewhere."""
    if settings.models is not None:
        for key in settings.models:
            get_spec(key)
        return settings.models
    return REAL_DEFAULT if gpu_available() else offline_default()


def offline_default() -> tuple[str, ...]:
    """The trained nano models; tiny-klein stands in for nano-klein in a checkout without its weights."""
    from flux_demo.offline import nano

    shipped = (nano.weights_path("nano-klein") / "model_index.json").is_file()
    return tuple("tiny-klein" if key == "nano-klein" and not shipped else key for key in OFFLINE_DEFAULT)


class _TorchvisionFallbackFilter(logging.Filter):
    """Drops transformers' "`CLIPImageProcessor` requires torchvision (not installed); falling back to
    `CLIPImageProcessorPil`" warnings. diffusers names these image processors in FLUX pipelines' optional
    components (the IP-adapter's feature extractor), which text-to-image never uses, and the PIL fallback
    is complete; without torchvision (not a dependency) the warnings only look like errors at start-up."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed); falling back" not in record.getMessage()


logging.getLogger("transformers.utils.import_utils").addFilter(_TorchvisionFallbackFilter())


def pipeline_class(spec: ModelSpec):
    """The diffusers pipeline class for `spec`."""
    with _import_lock:
        import diffusers

        return getattr(diffusers, spec.pipeline_class)


def execution_device() -> str:
    """ "cuda", "mps" or "cpu" (see `placement.choose_device`)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return plan.choose_device(
        zerogpu=on_zerogpu(), cuda=torch.cuda.is_available(), mps=bool(mps and mps.is_available())
    )


def mps_supports_bf16() -> bool:
    """Whether this Mac's GPU runs bfloat16 (macOS 14 and later)."""
    import torch

    try:
        torch.ones(1, dtype=torch.bfloat16, device="mps")
    except (RuntimeError, TypeError):
        return False
    return True


def replica_name(device: str, index: int = 0) -> str:
    """How results name a replica: "cuda:1" for a card, "cpu#0" for the first CPU replica."""
    if device == "cuda":
        return "zerogpu" if on_zerogpu() else "cuda:0"
    return device if ":" in device else f"{device}#{index}"


class ModelHost:
    """Loads, caches, places and lends the pipelines of the served models (see the module docstring)."""

    def __init__(
        self,
        settings: Settings | None = None,
        model_keys: Sequence[str] | None = None,
        device: str | None = None,
        name: str | None = None,
        backend: str = "local",
    ):
        """`device` is the torch device this host's pipelines run on (default: the GPU if any, else the
        CPU); `name` is how results name it (`replica` in the details) and `backend` which backend it
        serves ("ray" on a Ray replica)."""
        self.backend = backend
        self.settings = settings or Settings.from_env()
        self.model_keys = tuple(model_keys) if model_keys else enabled_model_keys(self.settings)
        self._device, self._name = device, name  # resolved on first use: finding the GPU imports torch
        # One slot per pipeline that may run at once (FLUX_DEMO_GPU_CONCURRENCY), taken in turns a step at
        # a time by up to FLUX_DEMO_GPU_TIMESHARE more jobs per slot (not on ZeroGPU: see `turns`).
        timeshare = 0 if on_zerogpu() else self.settings.gpu_timeshare
        self.turns = Turns(self.settings.gpu_concurrency, timeshare=timeshare > 0)
        # The most pipeline calls Gradio's queue lets in at once (its GPU concurrency limit).
        self.concurrency = self.settings.gpu_concurrency * (1 + timeshare)
        self._loaded: dict[str, LoadedModel] = {}
        self._variants: dict[tuple[str, str], object] = {}  # (key, pipeline class) -> from_pipe view
        self._lock = threading.Lock()  # guards the dictionaries below
        self._group_locks: dict[str, threading.Lock] = {}  # first loads, per share group
        self._call_locks: dict[str, threading.Lock] = {}  # schedulers keep per-call state
        # Memory plan: models in "gpu" mode, most recently used last, and those running now.
        self._placement_lock = threading.Lock()
        self._recent: list[str] = []
        self._moved_out: set[str] = set()  # models whose own modules the plan moved to the CPU
        self._running: collections.Counter[str] = collections.Counter()
        # With CPU offload, accelerate's hooks live on the shared modules: only one pipeline may own them.
        self._offload_owner: str | None = None
        # LoRAs: where their files come from, and each loaded model's adapters.
        self.lora_files = LoraFiles(self.settings.lora_max_mb * 1_000_000)
        self._adapters: dict[str, Adapters] = {}
        self._id = next(_host_ids)
        _hosts[self._id] = self

    def __reduce__(self):
        return (_host_by_id, (self._id,))

    @property
    def device(self) -> str:
        """The torch device this host's pipelines run on."""
        if self._device is None:
            self._device = execution_device()
        return self._device

    @property
    def name(self) -> str:
        """How results name this replica (`replica` in the details)."""
        return self._name or replica_name(self.device)

    # --- loading ---------------------------------------------------------------------------------

    def is_loaded(self, key: str) -> bool:
        return key in self._loaded

    def get(self, key: str) -> LoadedModel:
        """The loaded model for `key`, loading it on first use."""
        loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded
        spec = get_spec(key)
        with self._group_lock(spec):
            loaded = self._loaded.get(key)
            if loaded is None:
                with _import_lock:
                    loaded = self._load(spec)
                self._loaded[key] = loaded
        return loaded

    def get_pipeline(self, key: str):
        """The cached diffusers pipeline for `key`."""
        return self.get(key).pipe

    def adapters(self, key: str) -> Adapters:
        """The LoRA adapters of `key`'s loaded model here (use inside its GPU slot)."""
        loaded = self.get(key)
        with self._lock:
            adapters = self._adapters.get(key)
            if adapters is None or adapters.pipe is not loaded.pipe:
                adapters = self._adapters[key] = Adapters(loaded.pipe, loaded.speed, loaded.spec)
            return adapters

    def variant(self, key: str, class_name: str):
        """`key`'s loaded pipeline seen through another diffusers pipeline class (for example
        FluxImg2ImgPipeline for schnell), built once with `from_pipe`: the same module objects, so no
        weight is loaded or placed twice. It runs under `key`'s GPU slot, as the scheduler is shared too."""
        loaded = self.get(key)
        if class_name == loaded.spec.pipeline_class:
            return loaded.pipe
        pipe = self._variants.get((key, class_name))
        if pipe is None:
            with _import_lock:
                import diffusers

                pipe = getattr(diffusers, class_name).from_pipe(loaded.pipe)
                pipe.set_progress_bar_config(disable=True)
            with self._lock:
                pipe = self._variants.setdefault((key, class_name), pipe)
        return pipe

    def warm_imports(self, keys: Iterable[str] | None = None) -> None:
        """Import torch, diffusers and the pipeline classes (seconds of work) without loading any weights,
        so the first visitor does not wait for them; meant for a background thread."""
        for key in self.model_keys if keys is None else keys:
            pipeline_class(get_spec(key))

    def preload(self, keys: Iterable[str] | None = None) -> None:
        """Load the given models (default: all served ones) now, for example at start-up."""
        for key in self.model_keys if keys is None else keys:
            self.get(key)

    def clear(self) -> None:
        """Forget every loaded pipeline (tests use this to measure loading)."""
        with self._lock, self._placement_lock:
            self._loaded.clear()
            self._variants.clear()
            self._adapters.clear()
            self._recent.clear()
            self._moved_out.clear()
            self._running.clear()
            self._offload_owner = None

    def _group_lock(self, spec: ModelSpec) -> threading.Lock:
        with self._lock:
            return self._group_locks.setdefault(spec.share_group or spec.key, threading.Lock())

    def _shared_from_siblings(self, spec: ModelSpec) -> dict:
        if not spec.share_group:
            return {}
        for loaded in list(self._loaded.values()):  # another group may be inserting meanwhile
            if loaded.spec.share_group == spec.share_group:
                return {name: getattr(loaded.pipe, name) for name in spec.shared_components}
        return {}

    def _source(self, spec: ModelSpec) -> str:
        if spec.is_offline:
            from flux_demo.offline import local_source

            return local_source(spec.offline_variant, self.settings.tiny_dir)
        return spec.repo_id

    def _load(self, spec: ModelSpec) -> LoadedModel:
        device = self.device
        cls = pipeline_class(spec)
        shared = self._shared_from_siblings(spec)
        log.info(
            "loading %s from %s (sharing %s)", spec.key, spec.repo_id or spec.offline_variant, sorted(shared)
        )
        dtype = plan.torch_dtype_for(
            device, offline=spec.is_offline, mps_bf16=device == "mps" and mps_supports_bf16()
        )
        if device == "cpu" and not spec.is_offline:
            log.warning(
                "running %s on the CPU in %s, as FLUX_DEMO_MODELS asked: expect minutes per image and "
                "tens of GB of RAM (a GPU or an Apple Silicon Mac is far faster)",
                spec.name,
                str(dtype).removeprefix("torch."),
            )
        pipe = cls.from_pretrained(self._source(spec), dtype=dtype, **shared)
        pipe.set_progress_bar_config(disable=True)
        where = self._place(pipe, device)
        # After placement: compilation and fp8 act on the transformer where it will run.
        applied = speed.apply_speed_options(pipe, self.settings.speed, plan.device_kind(device), spec)
        log.info("%s speed options: %s", spec.key, applied)
        return LoadedModel(pipe, spec, where, applied)

    def _place(self, pipe, device: str) -> Placement:
        dtype_name = str(pipe.dtype).removeprefix("torch.")
        if device == "mps":
            return self._place_on_mps(pipe, dtype_name)
        if plan.device_kind(device) != "cuda":
            return Placement(device, dtype_name, "cpu")
        if on_zerogpu():
            # ZeroGPU wants weights moved to "cuda" at start-up, outside GPU calls; it attaches them per call.
            pipe.to("cuda")
            return Placement(device, dtype_name, "zerogpu")
        import torch

        _free, total = torch.cuda.mem_get_info(device)
        sizes = [plan.module_bytes(m) for m in plan.modules(pipe).values()]
        mode = plan.choose_memory_mode(self.settings.memory_mode, sum(sizes), total, max(sizes, default=0))
        log.info("memory mode %s (pipeline %.1f GB, card %.1f GB)", mode, sum(sizes) / 1e9, total / 1e9)
        return Placement(device, dtype_name, mode)

    def _place_on_mps(self, pipe, dtype_name: str) -> Placement:
        """Apple Silicon shares its memory with the CPU: the whole pipeline on the GPU when it fits in
        what Metal recommends, else per-model offload (the same memory modes as CUDA)."""
        import torch

        sizes = [plan.module_bytes(m) for m in plan.modules(pipe).values()]
        budget = torch.mps.recommended_max_memory()
        mode = plan.choose_memory_mode(self.settings.memory_mode, sum(sizes), budget, max(sizes, default=0))
        log.info(
            "mps memory mode %s (pipeline %.1f GB, budget %.1f GB)", mode, sum(sizes) / 1e9, budget / 1e9
        )
        if mode == "gpu":
            pipe.to("mps")
        return Placement("mps", dtype_name, mode)

    # --- running ---------------------------------------------------------------------------------

    @property
    def replicas(self) -> tuple[ModelHost, ...]:
        return (self,)

    def run(
        self, job: Job, progress: ProgressFn | None = None, abandoned: Callable[[], bool] | None = None
    ) -> JobOutcome:
        """Run `job` here (see `Backend.run`): a single host is its own only replica."""
        with self.replica(job.key) as replica:
            return runner.run_here(replica, job, progress, abandoned)

    @contextlib.contextmanager
    def replica(self, key: str):
        """The host that runs `key` for one request, with the model loaded. A failed load is not cached:
        a later request retries."""
        try:
            self.get(key)
        except Exception as err:
            raise ModelLoadFailed(f"{key} could not be loaded on {self.name}") from err
        yield self

    @contextlib.contextmanager
    def gpu_slot(self, key: str, abandoned: Callable[[], bool] | None = None, visitor: str | None = None):
        """Hold one GPU slot and `key`'s own call lock for the block, which gets the `Turn` (`visitor`: whose
        job it is, for the order of turns). Raises `turns.Cancelled` if `abandoned()` becomes true while
        it waits."""
        turn = self.turns.take(key, abandoned, visitor)
        call_lock = self._call_lock(key)
        call_lock.acquire()
        try:
            yield turn
        finally:
            if turn.holding:  # a job stopped while it waited for its next turn holds neither
                call_lock.release()
            self.turns.give_back(turn)

    def pass_turn(
        self, turn: Turn, pipe, loras: Sequence = (), abandoned: Callable[[], bool] | None = None
    ) -> bool:
        """Between two steps of `pipe`'s call (inside `gpu_slot` and `in_use`): if a job that has held a
        slot for less time is waiting, let it run, and come back with this call's state, placement and
        LoRAs (`loras`, the job's files) as they were (True). False at once when no job is due or this
        replica cannot pause calls. Raises `turns.Cancelled` if `abandoned()` becomes true while it
        waits (it then holds no slot and no call lock)."""
        key = turn.key

        # Only to a job whose model is in place: on a card too small for every model, passing to one the
        # memory plan moved out would move weights back and forth at every turn.
        def in_place(waiting: Turn) -> bool:
            return waiting.key not in self._moved_out

        if self.get(key).placement.memory_mode not in ("cpu", "gpu") or not self.turns.due(turn, in_place):
            return False  # offloaded modules cannot be left mid-call
        paused = PausedCall(pipe)
        call_lock = self._call_lock(key)
        with self._placement_lock:
            self._running[key] -= 1  # while it waits, its modules may make room for the one running
        call_lock.release()
        try:
            passed = self.turns.pass_turn(turn, abandoned, in_place)
        finally:
            with self._placement_lock:
                self._running[key] += 1  # (also when cancelled: `in_use` counts it out)
        call_lock.acquire()
        if passed:
            with self._placement_lock:
                self._prepare_for_call(key)
            paused.restore()
            self.adapters(key).activate(loras)
        return passed

    def _call_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._call_locks.setdefault(key, threading.Lock())

    @contextlib.contextmanager
    def in_use(self, key: str):
        """`key`'s loaded model, placed and ready, marked as running (never moved out) until the block ends.
        Call it inside `gpu_slot`."""
        with self._placement_lock:
            loaded = self._prepare_for_call(key)
            self._running[key] += 1
        try:
            yield loaded
        finally:
            with self._placement_lock:
                self._running[key] -= 1

    def _prepare_for_call(self, key: str) -> LoadedModel:
        """In "gpu" mode the memory plan makes room; in the offload modes, shared modules can carry only
        one pipeline's accelerate hooks, so the hooks are re-attached when the model in use changes
        (cheap: no weights move until a module runs)."""
        loaded = self.get(key)
        mode, device = loaded.placement.memory_mode, loaded.placement.device
        if mode == "gpu" and device == "cuda":
            self._ensure_on_gpu(key, loaded.pipe)
        elif mode in ("model-offload", "sequential-offload") and self._offload_owner != key:
            if mode == "model-offload":
                loaded.pipe.enable_model_cpu_offload(device=self.device)
            else:
                loaded.pipe.enable_sequential_cpu_offload(device=self.device)
            self._offload_owner = key
        return loaded

    def own_modules(self, key: str) -> list:
        """`key`'s modules that no other loaded pipeline shares (the shared FLUX.1 encoders are not own)."""
        others = {
            id(m)
            for other, loaded in list(self._loaded.items())
            if other != key
            for m in plan.modules(loaded.pipe).values()
        }
        return [m for m in plan.modules(self._loaded[key].pipe).values() if id(m) not in others]

    def _ensure_on_gpu(self, key: str, pipe) -> None:
        """Move `pipe` to the GPU, first moving idle models' own modules to the CPU if the card is full.

        This is the memory plan for cards smaller than all served models together (for example a 48 GB
        card with schnell, dev and klein): shared modules stay, idle transformers (and klein's encoder)
        leave. Called with `_placement_lock` held.
        """
        import torch

        needed = sum(plan.module_bytes(m, off_gpu_only=True) for m in plan.modules(pipe).values())
        if needed:
            idle = [
                (
                    other,
                    sum(
                        plan.module_bytes(m) - plan.module_bytes(m, off_gpu_only=True)
                        for m in self.own_modules(other)
                    ),
                )
                for other in self._recent
                if other != key and not self._running[other]
            ]
            free, _total = torch.cuda.mem_get_info(self.device)
            for other in plan.plan_evictions(needed, free, idle):
                log.info("memory plan: moving %s's own modules to the CPU to make room for %s", other, key)
                for module in self.own_modules(other):
                    module.to("cpu")
                self._moved_out.add(other)
            torch.cuda.empty_cache()
            pipe.to(self.device)
        self._moved_out.discard(key)
        if key in self._recent:
            self._recent.remove(key)
        self._recent.append(key)
