"""What the pipeline knows at each denoising step, handed to an observer (live previews, trajectories).

FLUX is a rectified flow: x_t = (1 − σ)·x_0 + σ·noise, and the transformer predicts the velocity
v = noise − x_0, so the clean image it currently has in mind is x_0 = x_t − σ·v. diffusers'
`callback_on_step_end` gives the latents after the Euler step, x_next = x_t + (σ_next − σ)·v; the
velocity is recorded by a forward hook on the transformer, and the scheduler's `sigmas` give σ, so
x_0 = x_next − σ_next·v without copying the pipeline's denoising loop. Observers only read tensors, so a
run with an observer gives the same image as one without.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from dataclasses import dataclass
from typing import Any


def own_thread(hook):
    """`hook` for a module hook registered by this thread's pipeline call: it does nothing (returns None,
    so the module's result stands) when another call runs the shared module, as happens while this call
    waits for its next turn (`pipelines.turns`)."""
    owner = threading.get_ident()

    @functools.wraps(hook)
    def hook_of_this_call(*args, **kwargs):
        if threading.get_ident() == owner:
            return hook(*args, **kwargs)
        return None

    return hook_of_this_call


@dataclass
class DenoisingStep:
    """One finished step. Tensors are the pipeline's packed tokens (batch, image tokens, channels)."""

    index: int  # 0-based
    steps: int
    timestep: float  # the scheduler's t, 1000·σ for FLUX
    sigma: float  # noise level of `noisy`, at the start of the step
    sigma_next: float  # noise level after the step (0 after the last one)
    noisy: Any  # x_t, the transformer's input
    latents: Any  # x_next, what the step produced
    predicted: Any  # x_0 = x_next − σ_next·v, the predicted clean latents (float32)
    seconds: float  # wall time of the step (transformer and scheduler), synchronised on CUDA


class StepObserver:
    """Watches one pipeline call; subclasses implement `on_step`. Use `with observer.observing(pipe):`
    around the call and call `observer(pipe, index, timestep, latents)` from `callback_on_step_end`.

    What an observer finds it hands to `emit`: a job may run in another process (a Ray replica, ZeroGPU's
    worker), where the backend replaces `emit` and delivers the items to the front end's (see
    `pipelines.backend.Job`)."""

    emit: Any = None  # Callable[[object], None] once the job runs

    def __init__(self):
        self._noisy = None
        self._velocity = None
        self._started = 0.0

    def on_step(self, step: DenoisingStep) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def prepare(self, pipe) -> None:
        """Called once before the run, outside the step timing (e.g. to fit a preview decoder)."""

    def finished(self, image) -> None:
        """Called once after a run that finished, with the image the pipeline decoded, where it ran."""

    @contextlib.contextmanager
    def observing(self, pipe):
        """Record the transformer's input and output (x_t and v) at each call while the block runs."""
        self.prepare(pipe)
        transformer = pipe.transformer
        handles = [
            transformer.register_forward_pre_hook(own_thread(self._before_transformer), with_kwargs=True),
            transformer.register_forward_hook(own_thread(self._after_transformer), with_kwargs=True),
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self._noisy = self._velocity = None

    def _before_transformer(self, _module, args, kwargs):
        self._started = time.perf_counter()
        self._noisy = kwargs.get("hidden_states", args[0] if args else None)

    def _after_transformer(self, _module, _args, _kwargs, output):
        self._velocity = output[0] if isinstance(output, tuple) else output.sample

    def __call__(self, pipe, index: int, timestep, latents) -> None:
        import torch

        if latents.is_cuda:
            torch.cuda.synchronize(latents.device)
        seconds = time.perf_counter() - self._started
        tokens = latents.shape[1]  # FLUX.2 appends reference-image tokens to the input; keep the image's
        sigmas = pipe.scheduler.sigmas
        sigma, sigma_next = float(sigmas[index]), float(sigmas[index + 1])
        velocity = self._velocity[:, :tokens].float()
        predicted = latents.float() - sigma_next * velocity
        step = DenoisingStep(
            index=index,
            steps=len(sigmas) - 1,
            timestep=float(timestep),
            sigma=sigma,
            sigma_next=sigma_next,
            noisy=self._noisy[:, :tokens],
            latents=latents,
            predicted=predicted,
            seconds=seconds,
        )
        self.on_step(step)
