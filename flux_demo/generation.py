"""From a validated request to an image: run it as a job on the backend, return image + metadata.

Data flows one way: the UI builds a `GenerationRequest`, `validation.validate` turns it into a
`ValidRequest`, and `generate(backend, request)` runs it on the backend's cached pipeline (in this process,
on a replica of a pool, or on a Ray replica: `pipelines.backend`) and returns a `GenerationResult`. Tabs
call this module and never diffusers directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flux_demo import faults, metadata, provenance
from flux_demo.messages import Message
from flux_demo.pipelines import turns
from flux_demo.pipelines.backend import Backend, Inspection, Job, ModelLoadFailed, PipelineCall, ProgressFn
from flux_demo.services.stops import watch_current_job
from flux_demo.validation import InvalidInput, ValidRequest

log = logging.getLogger(__name__)


@dataclass
class GenerationResult:
    image: Any  # PIL.Image.Image carrying its PNG text metadata in .info (the first of `images`)
    request: ValidRequest
    seconds: float
    details: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)  # what the job's inspection read from the loaded model
    images: list = field(default_factory=list)  # every image of the run, each with its own seed's metadata

    def __post_init__(self):
        self.images = self.images or [self.image]

    def image_settings(self, index: int) -> dict:
        """The settings that reproduce image `index` alone: the run's, with that image's seed."""
        return {**self.request.settings(), "seed": self.request.seeds[index]}


def generate(
    backend: Backend,
    request: ValidRequest,
    progress: ProgressFn | None = None,
    call: PipelineCall | None = None,
    observer=None,
    stopped: Callable[[], bool] | None = None,
    inspect: Inspection | None = None,
) -> GenerationResult:
    """Generate one image for a validated request on `backend` (which loads the model on first use).

    `call` replaces the text-to-image pipeline call (editing), `observer` (a `StepObserver`) watches each
    step and `inspect` reads facts from the loaded model after the call (see `pipelines.backend.Job`). It
    stops with `GenerationCancelled` (saying at which step) once the job is cancelled or `stopped()` is
    true."""
    spec = request.spec
    if progress is not None and not backend.is_loaded(spec.key):
        progress(0.0, desc=Message("progress.loading", model=spec.name))
    job = Job(request, call, observer, inspect, visitor=turns.VISITOR.get())
    start = time.perf_counter()
    try:
        outcome = backend.run(job, progress, watch_current_job(stopped))
    except (faults.GenerationFailed, InvalidInput):  # an InvalidInput here: a LoRA the replica refused
        raise
    except ModelLoadFailed as err:  # missing, gated or corrupt: not cached, so a later request retries
        log.warning("loading %s failed", spec.key, exc_info=True)
        raise faults.model_unavailable(spec.name, err.__cause__ or err) from err
    except Exception as err:
        fault = faults.from_zerogpu(err)
        if fault is None:  # unexpected: the details (paths, tensors) go to the log, not to the visitor
            log.error("generating with %s failed", spec.key, exc_info=True)
            fault = faults.GenerationFailed(Message("fault.generation_failed", error=type(err).__name__))
        raise fault from err
    seconds = time.perf_counter() - start
    # The pixels are final: the content filter screens them (if set) and the watermark goes in.
    marks = provenance.for_settings(backend.settings)
    settings = request.settings()
    details = {
        **settings,
        **({"seeds": request.seeds} if request.num_images > 1 else {}),
        "model_name": spec.name,
        "device": outcome.placement.device,
        "dtype": outcome.placement.dtype_name,
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / max(request.steps_run, 1), 4),
        "peak_vram_gb": None if outcome.peak_bytes is None else round(outcome.peak_bytes / 1e9, 2),
        "speed": dict(outcome.speed),
        "notes": [str(note) for note in request.notes],  # API callers read English
        "backend": outcome.backend,
        "replica": outcome.replica,
    }
    images = [
        metadata.attach(marked, metadata.png_text(**{**settings, "seed": seed}))
        for marked, seed in zip([marks.finish(image) for image in outcome.images], request.seeds, strict=True)
    ]
    return GenerationResult(images[0], request, seconds, details, outcome.facts, images)
