"""Why a valid request could not be served, in words a visitor can act on.

`generation` raises these; the UI turns each into a `gr.Error` titled by the fault. Faults that come
from the GPU host (ZeroGPU quota, queue timeouts, a task killed for running too long) arrive as the
`spaces` package's own `gr.Error`s, or, when they were raised inside the ZeroGPU worker process, as a
"ZeroGPU worker error" that names only the exception class; `from_zerogpu` maps both to a fault here.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

OUT_OF_MEMORY = "out of GPU memory: try a smaller size or fewer steps"


class GenerationFailed(RuntimeError):
    """A valid request that could not be served; the message says why and what to try."""

    title = "Generation failed"


class OutOfGpuMemory(GenerationFailed):
    title = "Out of GPU memory"

    def __init__(self, message: str = OUT_OF_MEMORY):
        super().__init__(message)


class ModelUnavailable(GenerationFailed):
    title = "Model unavailable"


class GpuUnavailable(GenerationFailed):
    """The GPU host refused or dropped the task (quota, no free GPU, time limit)."""

    title = "GPU unavailable"


class GenerationCancelled(GenerationFailed):
    """The visitor pressed Stop, the job was cancelled through the API, or the client went away."""

    title = "Stopped"

    def __init__(
        self,
        message: str = "generation stopped: the request was cancelled",
        step: int = 0,
        steps: int = 0,
    ):
        super().__init__(message)
        self.step = step  # denoising steps finished before the stop, of `steps`
        self.steps = steps

    def counted(self, offset: int, total: int) -> GenerationCancelled:
        """The same stop, counted on a bar of `total` steps where this run started at `offset`."""
        return GenerationCancelled(str(self), offset + self.step, total)


def model_unavailable(name: str, err: BaseException) -> ModelUnavailable:
    """The fault for a model that failed to load: missing, gated or corrupt. The exception's own text
    (paths, URLs) goes to the log, not to the visitor."""
    text = str(err).lower()
    if "gated" in text or "401" in text or "403" in text:
        reason = "its weights are gated: accept the licence on the Hub and set HF_TOKEN"
    elif "not found" in text or "404" in text or "does not appear to have" in text:
        reason = "its weights could not be found"
    else:
        reason = f"its weights failed to load ({type(err).__name__})"
    return ModelUnavailable(
        f"model: {name} is unavailable right now: {reason}. The other models still work; "
        "try this one again later."
    )


# ZeroGPU error titles (spaces/zero/client.py, wrappers.py) -> what the visitor should do.
_ZEROGPU_TITLES = {
    "ZeroGPU quota exceeded": "GPU quota exceeded",
    "ZeroGPU pending credits exceeded": "GPU quota exceeded",
    "ZeroGPU queue timeout": "no GPU became free in time; try again in a minute",
    "ZeroGPU illegal duration": (
        "the request needs more GPU time than allowed: try fewer steps or a smaller size"
    ),
    "ZeroGPU client error": "no GPU is available right now; try again in a minute",
}
# Exception class names that mean the worker ran out of memory.
_OOM_NAMES = {"OutOfMemoryError", "OutOfGpuMemory"}


def from_zerogpu(err: BaseException) -> GenerationFailed | None:
    """The fault for an error raised by `spaces` on ZeroGPU, or None if `err` is not one of those."""
    title = str(getattr(err, "title", "") or "")
    if not title.startswith("ZeroGPU"):
        return None
    detail = str(getattr(err, "message", "") or err).strip()
    if title == "ZeroGPU worker error":
        if detail in _OOM_NAMES:
            return OutOfGpuMemory()
        if detail == "GPU task aborted":
            return GpuUnavailable(
                "the GPU task was stopped, usually for running past its time limit: "
                "try fewer steps or a smaller size"
            )
        return GpuUnavailable(f"the GPU task failed ({detail})")
    summary = _ZEROGPU_TITLES.get(title, title.removeprefix("ZeroGPU ").strip() or "GPU error")
    return GpuUnavailable(f"{summary}. {detail}" if detail else summary)


def free_gpu_memory() -> None:
    """Release what a failed call left behind. Call it outside the `except` block: the traceback held
    there keeps the failed call's tensors alive (PyTorch FAQ, "My out of memory exception handler")."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
