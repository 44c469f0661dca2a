"""From a validated request to an image: run the cached pipeline in a GPU slot, return image + metadata.

Data flows one way: the UI builds a `GenerationRequest`, `validation.validate` turns it into a
`ValidRequest`, and `generate(host, request)` runs it on the host's cached pipeline and returns a
`GenerationResult`. Tabs call this module and never diffusers directly.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import spaces  # no-op off Spaces; on ZeroGPU it must come before torch initialises CUDA

from flux_demo import cancellation, faults, metadata
from flux_demo.config import Settings, zerogpu_size_setting
from flux_demo.faults import GenerationCancelled, OutOfGpuMemory
from flux_demo.models import REAL_DEFAULT, zerogpu_size
from flux_demo.pipelines import LoadedModel, ModelHost
from flux_demo.validation import ValidRequest
from flux_demo.watching.steps import StepObserver

log = logging.getLogger(__name__)

ProgressFn = Callable[..., object]
# (host, loaded model, validated request, step callback) -> the pipeline's output
PipelineCall = Callable[..., object]


@dataclass
class GenerationResult:
    image: object  # PIL.Image.Image carrying its PNG text metadata in .info
    request: ValidRequest
    seconds: float
    details: dict = field(default_factory=dict)


def gpu_seconds(_host: ModelHost, request: ValidRequest, *_args, **_kwargs) -> int:
    """Seconds of GPU to ask ZeroGPU for: scales with steps and pixels, plus text encoding and decoding."""
    megapixels = request.step_pixels / 1024**2
    return int(10 + 1.5 * request.spec.seconds_per_step_1mp * request.steps_run * max(megapixels, 0.25))


# The slice is fixed when the module loads, from the models a ZeroGPU Space serves.
ZEROGPU_SIZE = zerogpu_size(Settings.from_env().models or REAL_DEFAULT, zerogpu_size_setting())


@spaces.GPU(duration=gpu_seconds, size=ZEROGPU_SIZE)
def _denoise(
    host: ModelHost,
    request: ValidRequest,
    progress: ProgressFn | None = None,
    abandoned: Callable[[], bool] | None = None,
    call: PipelineCall | None = None,
    observer: StepObserver | None = None,
):
    """Run the pipeline for one request; returns (PIL image, peak CUDA bytes or None). On ZeroGPU this
    is the only code that holds a GPU. Stops at the next step once `abandoned()` is true. `call` (a
    module-level function, so it pickles) replaces the text-to-image call, e.g. for editing. An
    `observer` sees every step (latents, σ, predicted clean image) and only reads them."""
    import torch

    abandoned = abandoned or cancellation.JobWatch()
    with host.gpu_slot(request.model):
        if abandoned():  # cancelled while it waited for the GPU
            raise GenerationCancelled(step=0, steps=request.steps)
        with host.in_use(request.model) as loaded:
            pipe = loaded.pipe
            cuda = loaded.placement.device.startswith("cuda")
            if cuda:
                torch.cuda.reset_peak_memory_stats(loaded.placement.device)

            def on_step_end(pipeline, step: int, _timestep, callback_kwargs):
                if abandoned():
                    # diffusers' own interrupt flag skips the remaining steps, but the pipeline would still
                    # decode latents nobody will see (a VAE pass can cost more than a step), so stop now.
                    pipeline._interrupt = True
                    raise GenerationCancelled(step=step + 1, steps=request.steps)
                if observer is not None:
                    observer(pipeline, step, _timestep, callback_kwargs["latents"])
                if progress is not None:
                    progress(
                        (step + 1, request.steps_run),
                        desc=f"{request.spec.name}: denoising step",
                        unit="steps",
                    )
                return callback_kwargs

            pipe._interrupt = False  # a stopped call must never stop the next one
            out_of_memory = False
            watching = observer.observing(pipe) if observer is not None else contextlib.nullcontext()
            try:
                with watching:
                    if call is None:
                        output = _call_pipeline(loaded, request, on_step_end)
                    else:
                        output = call(host, loaded, request, on_step_end)
            except torch.OutOfMemoryError:
                out_of_memory = True
            except GenerationCancelled:
                pipe.maybe_free_model_hooks()  # what the pipeline does after a finished call (offload hooks)
                raise
            finally:
                pipe._interrupt = False
            if out_of_memory:
                # Outside the except block, whose traceback keeps the failed call's tensors alive.
                faults.free_gpu_memory()
                raise OutOfGpuMemory()
            peak = torch.cuda.max_memory_allocated(loaded.placement.device) if cuda else None
    return output.images[0], peak


def pipeline_kwargs(loaded: LoadedModel, request: ValidRequest, on_step_end) -> dict:
    """The keyword arguments every pipeline call shares (text to image, editing)."""
    import torch

    # A CPU generator makes the noise, so a seed gives the same image on any GPU or on the CPU.
    return {
        "prompt": request.prompt,
        "width": request.width,
        "height": request.height,
        "num_inference_steps": request.steps,
        "guidance_scale": request.guidance,
        "max_sequence_length": loaded.spec.max_sequence_length,
        "generator": torch.Generator("cpu").manual_seed(request.seed),
        "callback_on_step_end": on_step_end,
    }


def _call_pipeline(loaded: LoadedModel, request: ValidRequest, on_step_end):
    return loaded.pipe(**pipeline_kwargs(loaded, request, on_step_end))


def generate(
    host: ModelHost,
    request: ValidRequest,
    progress: ProgressFn | None = None,
    call: PipelineCall | None = None,
    observer: StepObserver | None = None,
    stopped: Callable[[], bool] | None = None,
) -> GenerationResult:
    """Generate one image for a validated request on `host` (loads the model on first use); `call`
    replaces the text-to-image pipeline call (see `_denoise`); `observer` (optional) watches each step.
    It stops with `GenerationCancelled` (saying at which step) once the job is cancelled or `stopped()`
    is true."""
    spec = request.spec
    if progress is not None and not host.is_loaded(spec.key):
        progress(0.0, desc=f"Loading {spec.name} (first use)")
    abandoned = cancellation.watch_current_job(stopped)
    replica_lease = contextlib.ExitStack()
    try:  # a free replica (a per-device host) with the model loaded, outside the GPU-time estimate
        replica = replica_lease.enter_context(host.replica(spec.key))
    except Exception as err:  # missing, gated or corrupt: not cached, so a later request retries
        log.warning("loading %s failed", spec.key, exc_info=True)
        raise faults.model_unavailable(spec.name, err) from err
    loaded = replica.get(spec.key)
    start = time.perf_counter()
    try:
        image, peak_bytes = _denoise(replica, request, progress, abandoned, call, observer)
    except faults.GenerationFailed:
        raise
    except Exception as err:
        fault = faults.from_zerogpu(err)
        if fault is None:  # unexpected: the details (paths, tensors) go to the log, not to the visitor
            log.error("generating with %s failed", spec.key, exc_info=True)
            fault = faults.GenerationFailed(f"generation failed ({type(err).__name__}); see the server log")
        raise fault from err
    finally:
        replica_lease.close()  # the replica takes the next request
    seconds = time.perf_counter() - start
    settings = request.settings()
    details = {
        **settings,
        "model_name": spec.name,
        "device": loaded.placement.device,
        "dtype": loaded.placement.dtype_name,
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / max(request.steps_run, 1), 4),
        "peak_vram_gb": None if peak_bytes is None else round(peak_bytes / 1e9, 2),
        "speed": dict(loaded.speed),
        "notes": list(request.notes),
        "backend": replica.backend,
        "replica": replica.name,
    }
    return GenerationResult(metadata.attach(image, metadata.png_text(**settings)), request, seconds, details)
