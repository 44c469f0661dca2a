"""Running one `Job` on a replica: the GPU slot, the memory plan, the step callback, Stop and out-of-memory.

`run_job` is the only code that holds a GPU. On ZeroGPU it runs in a worker process forked for the call
(`@spaces.GPU`, with a duration computed from the request), so its arguments are pickled: the replica by
reference, the job detached from its front-end `emit` (what the observer emits is collected and handed
back with the outcome). Every backend ends here: `ModelHost.run` calls `run_here` in-process, a Ray
replica calls it on its own host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable

import spaces  # no-op off Spaces; on ZeroGPU it must come before torch initialises CUDA

from flux_demo.config import Settings, on_zerogpu, zerogpu_size_setting
from flux_demo.faults import GenerationCancelled, OutOfGpuMemory, free_gpu_memory
from flux_demo.messages import Message
from flux_demo.models import REAL_DEFAULT, zerogpu_size
from flux_demo.pipelines.backend import Job, JobOutcome, LoadedModel, ProgressFn, Replica, replay
from flux_demo.pipelines.turns import Cancelled

log = logging.getLogger(__name__)


def gpu_seconds(_replica, job: Job, *_args, **_kwargs) -> int:
    """Seconds of GPU to ask ZeroGPU for: scales with steps, pixels and images, plus text encoding,
    decoding and loading LoRAs."""
    request = job.request
    images = getattr(request, "num_images", 1)
    megapixels = images * request.step_pixels / 1024**2
    loras = 5 * len(getattr(request, "loras", ()))  # a LoRA's first load into the transformer
    return int(
        10 + loras + 1.5 * request.spec.seconds_per_step_1mp * request.steps_run * max(megapixels, 0.25)
    )


# The slice is fixed when the module loads, from the models a ZeroGPU Space serves.
ZEROGPU_SIZE = zerogpu_size(Settings.from_env().models or REAL_DEFAULT, zerogpu_size_setting())


def pipeline_kwargs(loaded: LoadedModel, request, on_step_end) -> dict:
    """The keyword arguments every pipeline call shares (text to image, editing)."""
    import torch

    # A CPU generator makes the noise, so a seed gives the same image on any GPU or on the CPU. Several
    # images get a generator each (seed, seed + 1, ...): image i is the image a run with seed + i makes.
    images = getattr(request, "num_images", 1)
    generators = [torch.Generator("cpu").manual_seed(request.seed + i) for i in range(images)]
    return {
        "prompt": request.prompt,
        "width": request.width,
        "height": request.height,
        "num_inference_steps": request.steps,
        "guidance_scale": request.guidance,
        "max_sequence_length": loaded.spec.max_sequence_length,
        "num_images_per_prompt": images,
        "generator": generators[0] if images == 1 else generators,
        "callback_on_step_end": on_step_end,
    }


def text_to_image(_replica: Replica, loaded: LoadedModel, request, on_step_end):
    """The model's own text-to-image call (a job's default `call`)."""
    return loaded.pipe(**pipeline_kwargs(loaded, request, on_step_end))


def run_here(
    replica: Replica,
    job: Job,
    progress: ProgressFn | None = None,
    abandoned: Callable[[], bool] | None = None,
) -> JobOutcome:
    """Run `job` on `replica` from this process: directly, or on ZeroGPU through its worker, with the
    observer's items handed back to its `emit` afterwards. LoRA files are fetched first, outside the
    GPU call."""
    job = prepared(replica, job)
    if on_zerogpu() and job.observer is not None:
        outcome, emitted = run_job(replica, job.detached(), progress, abandoned)
        replay(job, emitted)
        return outcome
    return run_job(replica, job, progress, abandoned)[0]


def prepared(replica: Replica, job: Job) -> Job:
    """`job` with its LoRA files fetched on `replica` (network and disk: before the GPU slot)."""
    if job.loras is not None:
        return job
    return dataclasses.replace(job, loras=replica.lora_files.fetch(job.request))


class StepCallback:
    """The pipeline's `callback_on_step_end` for one job: stops the run once `abandoned()` is true (with
    `GenerationCancelled` saying at which step), then lets the observer see the step and reports progress.
    A job's `call` may wrap it; `abandoned` is public so a wrapper can wait on it."""

    def __init__(
        self,
        request,
        abandoned: Callable[[], bool],
        observer=None,
        progress: ProgressFn | None = None,
        between_steps: Callable[[object], object] | None = None,
    ):
        self.request, self.abandoned, self.observer, self.progress = request, abandoned, observer, progress
        self.between_steps = between_steps  # e.g. let a shorter job run first (`ModelHost.pass_turn`)

    def __call__(self, pipeline, step: int, timestep, callback_kwargs: dict) -> dict:
        request = self.request
        if self.abandoned():
            # diffusers' own interrupt flag skips the remaining steps, but the pipeline would still decode
            # latents nobody will see (a VAE pass can cost more than a step), so stop now.
            pipeline._interrupt = True
            raise GenerationCancelled(step=step + 1, steps=request.steps)
        if self.observer is not None:
            self.observer(pipeline, step, timestep, callback_kwargs["latents"])
        if self.progress is not None:
            self.progress(
                (step + 1, request.steps_run),
                desc=Message("progress.denoising", model=request.spec.name),
                unit="steps",
            )
        if self.between_steps is not None:
            try:
                self.between_steps(pipeline)
            except Cancelled:  # stopped while another job had its turn
                pipeline._interrupt = True
                raise GenerationCancelled(step=step + 1, steps=request.steps) from None
        return callback_kwargs


@spaces.GPU(duration=gpu_seconds, size=ZEROGPU_SIZE)
def run_job(
    replica: Replica,
    job: Job,
    progress: ProgressFn | None = None,
    abandoned: Callable[[], bool] | None = None,
    sink: Callable[[object], None] | None = None,
) -> tuple[JobOutcome, list]:
    """Run `job`'s pipeline call in a GPU slot of `replica`; returns the outcome and, for a detached
    observer without a `sink`, what it emitted. Stops at the next step once `abandoned()` is true, with
    `GenerationCancelled` saying at which step; out of GPU memory raises `OutOfGpuMemory`."""
    import torch

    job = prepared(replica, job)
    request, observer = job.request, job.observer
    emitted: list = []
    if observer is not None and observer.emit is None:
        observer.emit = sink or emitted.append
    abandoned = abandoned or (lambda: False)
    with contextlib.ExitStack() as stack:
        try:
            turn = stack.enter_context(replica.gpu_slot(request.model, abandoned, job.visitor))
        except Cancelled:  # stopped while it waited for the GPU
            raise GenerationCancelled(step=0, steps=request.steps) from None
        if abandoned():  # cancelled just as its turn came
            raise GenerationCancelled(step=0, steps=request.steps)
        with replica.in_use(request.model) as loaded:
            replica.adapters(request.model).activate(job.loras)
            pipe = loaded.pipe
            cuda = loaded.placement.device.startswith("cuda")
            if cuda:
                torch.cuda.reset_peak_memory_stats(loaded.placement.device)

            def between_steps(pipeline) -> None:
                replica.pass_turn(turn, pipeline, job.loras or (), abandoned)

            on_step_end = StepCallback(request, abandoned, observer, progress, between_steps)
            pipe._interrupt = False  # a stopped call must never stop the next one
            out_of_memory = False
            watching = observer.observing(pipe) if observer is not None else contextlib.nullcontext()
            try:
                with watching:
                    output = (job.call or text_to_image)(replica, loaded, request, on_step_end)
            except torch.OutOfMemoryError:
                out_of_memory = True
            except GenerationCancelled:
                pipe.maybe_free_model_hooks()  # what the pipeline does after a finished call (offload hooks)
                raise
            finally:
                pipe._interrupt = False
            if out_of_memory:
                # Outside the except block, whose traceback keeps the failed call's tensors alive.
                free_gpu_memory()
                raise OutOfGpuMemory()
            peak = torch.cuda.max_memory_allocated(loaded.placement.device) if cuda else None
            if observer is not None:
                observer.finished(output.images[0])
            facts = job.inspect(replica, loaded, request) if job.inspect is not None else {}
    outcome = JobOutcome(
        list(output.images), peak, loaded.placement, dict(loaded.speed), replica.name, replica.backend, facts
    )
    return outcome, emitted
