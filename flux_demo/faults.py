"""Why a valid request could not be served, in words a visitor can act on.

`generation` raises these; the UI turns each into a `gr.Error` titled by the fault. Faults that come
from the GPU host (ZeroGPU quota, queue timeouts, a task killed for running too long) arrive as the
`spaces` package's own `gr.Error`s, or, when they were raised inside the ZeroGPU worker process, as a
"ZeroGPU worker error" that names only the exception class; `from_zerogpu` maps both to a fault here.
"""

from __future__ import annotations

import gc
import logging

from flux_demo.messages import Message

log = logging.getLogger(__name__)


class GenerationFailed(RuntimeError):
    """A valid request that could not be served; `message` (a catalog `Message`) says why and what to
    try, `title` is the catalog code of the pop-up's title; `str()` is the English."""

    title = "title.generation_failed"

    def __init__(self, message: Message):
        super().__init__(message)  # the one argument, so the fault pickles back as itself
        self.message = message


class OutOfGpuMemory(GenerationFailed):
    title = "title.out_of_memory"

    def __init__(self, message: Message | None = None):
        super().__init__(message or Message("fault.out_of_memory"))


class ModelUnavailable(GenerationFailed):
    title = "title.model_unavailable"


class GpuUnavailable(GenerationFailed):
    """The GPU host refused or dropped the task (quota, no free GPU, time limit)."""

    title = "title.gpu_unavailable"


class GenerationCancelled(GenerationFailed):
    """The visitor pressed Stop, the job was cancelled through the API, or the client went away."""

    title = "title.stopped"

    def __init__(self, message: Message | None = None, step: int = 0, steps: int = 0):
        super().__init__(message or Message("fault.cancelled"))
        self.step = step  # denoising steps finished before the stop, of `steps`
        self.steps = steps

    def counted(self, offset: int, total: int) -> GenerationCancelled:
        """The same stop, counted on a bar of `total` steps where this run started at `offset`."""
        return GenerationCancelled(self.message, offset + self.step, total)


def model_unavailable(name: str, err: BaseException) -> ModelUnavailable:
    """The fault for a model that failed to load: missing, gated or corrupt. The exception's own text
    (paths, URLs) goes to the log, not to the visitor."""
    text = str(err).lower()
    if "gated" in text or "401" in text or "403" in text:
        reason = Message("fault.weights_gated")
    elif "not found" in text or "404" in text or "does not appear to have" in text:
        reason = Message("fault.weights_missing")
    else:
        reason = Message("fault.weights_failed", error=type(err).__name__)
    return ModelUnavailable(Message("fault.model_unavailable", model=name, reason=reason))


# ZeroGPU error titles (spaces/zero/client.py, wrappers.py) -> what the visitor should do.
_ZEROGPU_TITLES = {
    "ZeroGPU quota exceeded": "fault.gpu_quota",
    "ZeroGPU pending credits exceeded": "fault.gpu_quota",
    "ZeroGPU queue timeout": "fault.gpu_queue_timeout",
    "ZeroGPU illegal duration": "fault.gpu_duration",
    "ZeroGPU client error": "fault.gpu_client",
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
            return GpuUnavailable(Message("fault.gpu_aborted"))
        return GpuUnavailable(Message("fault.gpu_task_failed", error=detail))
    code = _ZEROGPU_TITLES.get(title)
    summary = (
        Message(code) if code else Message("fault.gpu_other", title=title.removeprefix("ZeroGPU ").strip())
    )
    # The host's own detail (quota left, wait time) is its English text; it follows ours.
    return GpuUnavailable(Message("fault.gpu_detail", summary=summary, detail=detail) if detail else summary)


def free_gpu_memory() -> None:
    """Release what a failed call left behind. Call it outside the `except` block: the traceback held
    there keeps the failed call's tensors alive (PyTorch FAQ, "My out of memory exception handler")."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
