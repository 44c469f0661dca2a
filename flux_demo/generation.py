"""From a request to an image: validate, run a cached pipeline in the GPU slot, return image + metadata.

Data flows one way: the UI builds a `GenerationRequest`, `validate` turns it into a `ValidRequest` (or
raises `InvalidInput` naming the field and the allowed range), and `generate` runs it and returns a
`GenerationResult`. Tabs call this module and never diffusers directly.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import spaces  # no-op off Spaces; on ZeroGPU it must come before torch initialises CUDA

from flux_demo import cancellation, faults, metadata, pipelines
from flux_demo.config import zerogpu_size
from flux_demo.faults import GenerationCancelled, OutOfGpuMemory
from flux_demo.models import MAX_SIDE, MIN_SIDE, SIZE_MULTIPLE, ModelSpec, get_spec

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**32 - 1
ProgressFn = Callable[..., object]


class InvalidInput(ValueError):
    """A request field is out of range; the message names the field and what is allowed."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class GenerationRequest:
    """What a caller asks for, as received (not yet checked)."""

    prompt: str
    model: str
    width: float = 1024
    height: float = 1024
    steps: float = 4
    guidance: float = 0.0
    seed: float = 0
    randomize_seed: bool = False


@dataclass(frozen=True)
class ValidRequest:
    """A checked request: sizes snapped, seed chosen, guidance resolved for the model."""

    prompt: str
    model: str
    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    notes: tuple[str, ...] = ()


@dataclass
class GenerationResult:
    image: object  # PIL.Image.Image carrying its PNG text metadata in .info
    request: ValidRequest
    seconds: float
    details: dict = field(default_factory=dict)


def snap_to_multiple(value: int, multiple: int = SIZE_MULTIPLE) -> int:
    """Nearest multiple of `multiple` (halves round up), kept within MIN_SIDE..MAX_SIDE."""
    snapped = math.floor(value / multiple + 0.5) * multiple
    return min(max(snapped, MIN_SIDE), MAX_SIDE)


ASPECT_RATIOS = ("1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9")


def size_for_aspect(aspect: str, base: int) -> tuple[int, int]:
    """Width and height for `aspect` ("W:H") with about `base`² pixels, snapped to multiples of 16."""
    w_ratio, h_ratio = (int(part) for part in aspect.split(":"))
    scale = math.sqrt(base * base / (w_ratio * h_ratio))
    return snap_to_multiple(w_ratio * scale), snap_to_multiple(h_ratio * scale)


def check_number(field_name: str, value, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(field_name, f"must be a number ({allowed}), got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(field_name, f"must be a finite number ({allowed}), got {value}")
    return value


def check_integer(field_name: str, value, low: int, high: int) -> int:
    allowed = f"an integer from {low} to {high}"
    value = check_number(field_name, value, allowed)
    if value != int(value):
        raise InvalidInput(field_name, f"must be {allowed}, got {value}")
    value = int(value)
    if not low <= value <= high:
        raise InvalidInput(field_name, f"must be {allowed}, got {value}")
    return value


def check_prompt(prompt, field_name: str = "prompt", max_chars: int = MAX_PROMPT_CHARS) -> str:
    """A prompt stripped of surrounding space; rejects empty, too long, or control characters."""
    if not isinstance(prompt, str):
        raise InvalidInput(field_name, f"must be text, got {type(prompt).__name__}")
    prompt = prompt.strip()
    if len(prompt) > max_chars:
        raise InvalidInput(field_name, f"must be at most {max_chars} characters, got {len(prompt)}")
    if any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 for c in prompt):
        raise InvalidInput(field_name, "must not contain control characters")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in prompt):  # lone surrogates cannot be written to a PNG
        raise InvalidInput(field_name, "must be valid Unicode text (it contains a lone surrogate)")
    # Zero-width and other invisible characters alone are as empty as spaces.
    if not any(unicodedata.category(c)[0] not in "ZC" for c in prompt):
        raise InvalidInput(field_name, "is required: describe the image you want")
    return prompt


def check_model(model, available: Sequence[str]) -> ModelSpec:
    if not isinstance(model, str) or model not in available:
        raise InvalidInput("model", f"must be one of {', '.join(available)}, got {model!r}")
    return get_spec(model)


def validate(request: GenerationRequest, available: Sequence[str]) -> ValidRequest:
    """Check every field on the server (API callers bypass the browser) and resolve defaults."""
    # 1. Text and model
    prompt = check_prompt(request.prompt)
    spec = check_model(request.model, available)
    notes: list[str] = []
    # 2. Size: check the range, then snap as FluxPipeline would floor silently otherwise
    sizes = {}
    for name in ("width", "height"):
        raw = check_integer(
            name, round(check_number(name, getattr(request, name), "256 to 2048")), MIN_SIDE, MAX_SIDE
        )
        sizes[name] = snap_to_multiple(raw)
        if sizes[name] != raw:
            notes.append(f"{name} snapped from {raw} to {sizes[name]} (a multiple of {SIZE_MULTIPLE})")
    # 3. Steps and guidance, within the model's own range
    steps = check_integer("steps", request.steps, spec.min_steps, spec.max_steps)
    guidance = check_number("guidance", request.guidance, "a finite number")
    if spec.guidance_range is None:
        if guidance != spec.default_guidance:
            notes.append(f"{spec.guidance_note()} The requested {guidance:g} was not used.")
        guidance = spec.default_guidance
    else:
        low, high = spec.guidance_range
        if not low <= guidance <= high:
            raise InvalidInput(
                "guidance", f"must be from {low:g} to {high:g} for {spec.name}, got {guidance:g}"
            )
    # 4. Seed: exact integer; a fresh one when asked to randomize
    if not isinstance(request.randomize_seed, bool):
        raise InvalidInput("randomize_seed", "must be true or false")
    seed = (
        secrets.randbelow(MAX_SEED + 1)
        if request.randomize_seed
        else check_integer("seed", request.seed, 0, MAX_SEED)
    )
    return ValidRequest(
        prompt, spec.key, sizes["width"], sizes["height"], steps, float(guidance), seed, tuple(notes)
    )


def gpu_seconds(request: ValidRequest, *_args, **_kwargs) -> int:
    """Seconds of GPU to ask ZeroGPU for: scales with steps and pixels, plus text encoding and decoding."""
    spec = get_spec(request.model)
    megapixels = request.width * request.height / 1024**2
    return int(10 + 1.5 * spec.seconds_per_step_1mp * request.steps * max(megapixels, 0.25))


_gpu_slots: threading.Semaphore | None = None
_model_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _slot_and_lock(model: str) -> tuple[threading.Semaphore, threading.Lock]:
    """One process-wide GPU semaphore, plus a lock per pipeline since schedulers keep per-call state."""
    global _gpu_slots
    with _locks_guard:
        if _gpu_slots is None:
            _gpu_slots = threading.Semaphore(pipelines.settings().gpu_concurrency)
        return _gpu_slots, _model_locks.setdefault(model, threading.Lock())


@spaces.GPU(duration=gpu_seconds, size=zerogpu_size())
def _denoise(
    request: ValidRequest,
    progress: ProgressFn | None = None,
    abandoned: Callable[[], bool] | None = None,
):
    """Run the pipeline for one request; returns (PIL image, peak CUDA bytes or None). On ZeroGPU this
    is the only code that holds a GPU. Stops at the next step once `abandoned()` is true."""
    import torch

    spec = get_spec(request.model)
    abandoned = abandoned or cancellation.JobWatch()
    slot, lock = _slot_and_lock(request.model)
    with slot, lock:
        if abandoned():  # cancelled while it waited for the GPU
            raise GenerationCancelled()
        with pipelines.in_use(request.model) as pipe:
            cuda = torch.cuda.is_available()
            if cuda:
                torch.cuda.reset_peak_memory_stats()

            def on_step_end(pipeline, step: int, _timestep, callback_kwargs):
                if abandoned():
                    # diffusers' own interrupt flag skips the remaining steps, but the pipeline would still
                    # decode latents nobody will see (a VAE pass can cost more than a step), so stop now.
                    pipeline._interrupt = True
                    raise GenerationCancelled()
                if progress is not None:
                    progress((step + 1, request.steps), desc=f"{spec.name}: denoising step", unit="steps")
                return callback_kwargs

            pipe._interrupt = False  # a stopped call must never stop the next one
            out_of_memory = False
            try:
                output = _call_pipeline(pipe, spec, request, on_step_end)
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
            peak = torch.cuda.max_memory_allocated() if cuda else None
    return output.images[0], peak


def _call_pipeline(pipe, spec: ModelSpec, request: ValidRequest, on_step_end):
    import torch

    # A CPU generator makes the noise, so a seed gives the same image on any GPU or on the CPU.
    return pipe(
        prompt=request.prompt,
        width=request.width,
        height=request.height,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        max_sequence_length=spec.max_sequence_length,
        generator=torch.Generator("cpu").manual_seed(request.seed),
        callback_on_step_end=on_step_end,
        **spec.call_kwargs,
    )


def generate(request: ValidRequest, progress: ProgressFn | None = None) -> GenerationResult:
    """Generate one image for a validated request (loads the model on first use)."""
    spec = get_spec(request.model)
    if progress is not None and not pipelines.is_loaded(spec.key):
        progress(0.0, desc=f"Loading {spec.name} (first use)")
    abandoned = cancellation.watch_current_job()
    try:
        pipe = pipelines.get_pipeline(spec.key)  # load outside the GPU-time estimate
    except Exception as err:  # missing, gated or corrupt: not cached, so a later request retries
        log.warning("loading %s failed", spec.key, exc_info=True)
        raise faults.model_unavailable(spec.name, err) from err
    start = time.perf_counter()
    try:
        image, peak_bytes = _denoise(request, progress, abandoned)
    except faults.GenerationFailed:
        raise
    except Exception as err:
        fault = faults.from_zerogpu(err)
        if fault is None:  # unexpected: the details (paths, tensors) go to the log, not to the visitor
            log.error("generating with %s failed", spec.key, exc_info=True)
            fault = faults.GenerationFailed(f"generation failed ({type(err).__name__}); see the server log")
        raise fault from err
    seconds = time.perf_counter() - start
    settings = {k: v for k, v in asdict(request).items() if k != "notes"}  # what reproduces the image
    details = {
        **settings,
        "model_name": spec.name,
        "seconds": round(seconds, 3),
        "seconds_per_step": round(seconds / request.steps, 4),
        "peak_vram_gb": None if peak_bytes is None else round(peak_bytes / 1e9, 2),
        "speed": dict(getattr(pipe, "flux_demo_speed", {})),
        "notes": list(request.notes),
    }
    return GenerationResult(metadata.attach(image, metadata.png_text(**settings)), request, seconds, details)
