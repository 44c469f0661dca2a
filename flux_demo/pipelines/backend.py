"""The contract between the app and whatever runs its GPU work.

Three backends implement `Backend`: the in-process `ModelHost` (one device), the `ReplicaPool` (one host
per device) and the `RayBackend` (Ray Serve replicas, possibly on other machines). The app only ever
hands a backend a `Job` and gets a `JobOutcome` back, so a request runs the same code, and gives the same
pixels, whichever backend serves it; `tests/test_backends.py` runs one set of scenarios over all of them.

A `Job` is everything the GPU side needs and nothing of the front end's: the validated request, the
pipeline call (a module-level function, so it pickles), an optional step observer and an optional
inspection of the loaded model. It may cross a process boundary (a Ray replica, ZeroGPU's worker), so
an observer's `emit` stays behind: what the observer emits where the job runs reaches the front end's
`emit`, in order, and the observer keeps no results of its own.

A job runs on a `Replica`: a place that holds loaded pipelines and GPU slots (a `ModelHost`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from flux_demo.config import Settings
from flux_demo.models import ModelSpec
from flux_demo.pipelines.placement import Placement

# progress((step, steps), desc=..., unit=...), as gr.Progress takes it
ProgressFn = Callable[..., object]
# (replica, loaded model, request, step callback) -> the pipeline's output (with `.images`)
PipelineCall = Callable[..., Any]
# (replica, loaded model, request) -> a dict of facts about the loaded model, read where the job ran
Inspection = Callable[..., dict]


@dataclass(frozen=True)
class LoadedModel:
    """A loaded pipeline with its registry entry, where it runs, and the speed options it got."""

    pipe: Any  # a diffusers DiffusionPipeline
    spec: ModelSpec
    placement: Placement
    speed: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    """One request's GPU work (see the module docstring). `request` is a `ValidRequest` (or an edit's
    `ValidEdit`); `call` None runs the model's own text-to-image call."""

    request: Any
    call: PipelineCall | None = None
    observer: Any = None  # a `watching.steps.StepObserver`, or None
    inspect: Inspection | None = None
    # The request's LoRA files, fetched where the job runs (`runner.prepared`); None until then.
    loras: tuple | None = None
    visitor: str | None = None  # whose job it is, for the order of GPU turns (`pipelines.turns`)

    @property
    def key(self) -> str:
        return self.request.model

    def detached(self) -> Job:
        """A copy that can cross a process boundary: the observer without its `emit`."""
        if self.observer is None:
            return self
        observer = copy.copy(self.observer)
        observer.emit = None
        return dataclasses.replace(self, observer=observer, loras=None)


@dataclass
class JobOutcome:
    """What a job gives back: the images, peak GPU memory, where it ran and what it found."""

    images: list  # PIL.Image.Image, one per image of the request (seed, seed + 1, ...)
    peak_bytes: int | None
    placement: Placement
    speed: dict[str, str]
    replica: str  # how results name the replica that ran it
    backend: str  # "local" or "ray"
    facts: dict = field(default_factory=dict)  # the job's inspection, if any

    @property
    def image(self):
        """The first image (the only one, unless the request asked for several)."""
        return self.images[0]


@runtime_checkable
class Replica(Protocol):
    """A place where jobs run: loaded pipelines, GPU slots and the memory plan of one device."""

    name: str
    backend: str
    model_keys: tuple[str, ...]
    lora_files: Any  # `adapters.LoraFiles`: where this replica's LoRA files come from

    def get(self, key: str) -> LoadedModel: ...
    def adapters(self, key: str) -> Any: ...  # `adapters.Adapters` of `key`'s loaded model
    def is_loaded(self, key: str) -> bool: ...
    def get_pipeline(self, key: str) -> Any: ...
    def variant(self, key: str, class_name: str) -> Any: ...
    def gpu_slot(
        self, key: str, abandoned: Callable[[], bool] | None = None, visitor: str | None = None
    ) -> contextlib.AbstractContextManager[Any]: ...  # gives a `turns.Turn`
    def pass_turn(
        self, turn: Any, pipe: Any, loras: Sequence = (), abandoned: Callable[[], bool] | None = None
    ) -> bool: ...
    def in_use(self, key: str) -> contextlib.AbstractContextManager[LoadedModel]: ...


@runtime_checkable
class Backend(Protocol):
    """What the app serves from (see the module docstring)."""

    settings: Settings
    model_keys: tuple[str, ...]
    concurrency: int  # GPU jobs it runs at once: what Gradio's queue lets in

    def run(
        self, job: Job, progress: ProgressFn | None = None, abandoned: Callable[[], bool] | None = None
    ) -> JobOutcome:
        """Run `job` on a free replica, loading its model there first if needed. `progress` sees every
        step, the job observer's `emit` every item it emits (in this process, whichever process ran the
        job), and `abandoned()` true stops the run at the next step with `GenerationCancelled`. A model
        that fails to load raises `ModelLoadFailed`."""
        ...

    def is_loaded(self, key: str) -> bool: ...
    def warm_imports(self, keys: Iterable[str] | None = None) -> None: ...
    def preload(self, keys: Iterable[str] | None = None) -> None: ...


class ModelLoadFailed(RuntimeError):
    """A backend could not load the job's model (missing, gated, corrupt, too big): raised with the
    original error as its cause, so the front end can explain it."""


def replay(job: Job, items: Iterable[Any]) -> None:
    """Hand items that `job` emitted in another process to its observer's `emit` in this one."""
    if job.observer is not None and job.observer.emit is not None:
        for item in items:
            job.observer.emit(item)
