"""A run seen from inside: each step's predicted clean image, the noisy latents it started from, where each
chosen word lands, the σ schedule and the prompt's tokens, all read from the loaded modules and the run.

`run_trajectory` is an ordinary `generation.generate` call with a recording observer, so its final image
is pixel-identical to `/generate` with the same settings. `schedule` asks a copy of the model's own
scheduler for its σ values, shifted for the image size as the model's pipeline does (registry:
`schedule_shift`), so the plot shows what a run would use without running one.

Time: the chapter's t runs from 1 (pure noise) to 0 (the image), x_t = (1 − t)·x₀ + t·noise, so t = σ;
diffusers' `timesteps` are 1000·σ.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from flux_demo import generation
from flux_demo.config import Settings
from flux_demo.generation import GenerationResult
from flux_demo.models import ModelSpec, get_spec
from flux_demo.pipelines import Backend, LoadedModel, Replica
from flux_demo.validation import ValidRequest
from flux_demo.watching import architecture, word_maps
from flux_demo.watching.previews import PreviewDecoder
from flux_demo.watching.steps import DenoisingStep, StepObserver


@dataclass
class TrajectoryStep:
    """One step: t (= σ) before and after, diffusers' timestep, seconds, and the decoded images."""

    index: int  # 1-based
    timestep: float  # diffusers' 1000·σ
    sigma: float
    sigma_next: float
    seconds: float
    predicted: Any  # PIL image of x₀ = x_t − σ·v
    noisy: Any  # PIL image of x_t, the latents this step started from (None when not asked for)
    word_maps: Any = None  # (words, rows, columns) tensor in 0..1, or None


class TrajectoryRecorder(StepObserver):
    """Emits every step's numbers, its decoded images and the maps of the requested `words` as a
    `TrajectoryStep`, after a `MappedWords` saying which of them the prompt's tokens hold. It works where
    the job runs (this process, a Ray replica, ZeroGPU's worker); `emit` delivers to the front end."""

    def __init__(self, request: ValidRequest, words=(), noisy: bool = True, emit=None):
        super().__init__()
        self.spec, self.width, self.height = request.spec, request.width, request.height
        self.prompt, self.noisy, self.emit = request.prompt, noisy, emit
        self.words = list(words)
        self.mapper: word_maps.WordMapper | None = None
        self.chosen: list[int] = []
        self.final_tokens = None

    def prepare(self, pipe) -> None:
        self.decode = PreviewDecoder(pipe, self.spec, self.width, self.height)
        self.final_tokens = None
        if self.words:
            located = word_maps.locate_words(pipe, self.spec, self.prompt)
            self.chosen = [i for i, w in enumerate(located) if w.text in self.words]
            self.mapper = word_maps.WordMapper(located) if self.chosen else None
            self.emit(MappedWords([located[i].text for i in self.chosen]))

    @contextlib.contextmanager
    def observing(self, pipe):
        with super().observing(pipe), contextlib.ExitStack() as stack:
            if self.mapper is not None:
                stack.enter_context(self.mapper.attached(pipe.transformer))
            yield self

    def on_step(self, step: DenoisingStep) -> None:
        maps = None
        if self.mapper is not None and self.mapper.latest is not None:
            maps = word_maps.as_grid(self.mapper.latest, self.spec, self.width, self.height)[self.chosen]
        if step.sigma_next == 0:
            self.final_tokens = step.predicted.detach().to("cpu")
        self.emit(
            TrajectoryStep(
                step.index + 1,
                step.timestep,
                step.sigma,
                step.sigma_next,
                step.seconds,
                self.decode(step.predicted),
                self.decode(step.noisy) if self.noisy else None,
                maps,
            )
        )

    def finished(self, image) -> None:
        """The next run's previews take this run's colours into account."""
        if self.final_tokens is not None:
            self.decode.learn(self.final_tokens, image)


@dataclass(frozen=True)
class MappedWords:
    """The requested words the prompt's tokens hold, in the order of the maps."""

    words: list[str]


@dataclass
class Trajectory:
    result: GenerationResult
    steps: list[TrajectoryStep]
    words: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)


def run_trajectory(
    backend: Backend, request: ValidRequest, progress=None, words=(), stopped=None, noisy=True
) -> Trajectory:
    """Generate `request` while recording every step (x_t too unless `noisy` is false, and where each of
    `words` lands); details hold the measured figures."""
    steps: list[TrajectoryStep] = []
    mapped: list[str] = []

    def collect(item) -> None:
        if isinstance(item, MappedWords):
            mapped[:] = item.words
        else:
            steps.append(item)

    recorder = TrajectoryRecorder(request, words, noisy, collect)
    result = generation.generate(
        backend, request, progress, observer=recorder, stopped=stopped, inspect=inspect_model
    )
    details = {
        **result.details,
        "sigmas": [round(s.sigma, 6) for s in steps] + [round(steps[-1].sigma_next, 6)],
        "timesteps": [round(s.timestep, 3) for s in steps],
        "step_seconds": [round(s.seconds, 4) for s in steps],
        "image_tokens": request.spec.image_tokens(request.width, request.height),
        **result.facts,
    }
    if mapped:
        details["words"] = list(mapped)
        details["word_maps"] = {
            w: np.round(steps[-1].word_maps[i].numpy(), 4).tolist() for i, w in enumerate(mapped)
        }
    return Trajectory(result, steps, list(mapped), details)


def inspect_model(replica: Replica, loaded: LoadedModel, request: ValidRequest) -> dict:
    """The prompt's tokens and the loaded model's architecture, read where the job ran."""
    return {
        "text_tokens": text_tokens(loaded.pipe, request.spec, request.prompt),
        "architecture": architecture.loaded(replica, request.model),
    }


def text_tokens(pipe, spec: ModelSpec, prompt: str) -> list[dict]:
    """The prompt as each tokenizer splits it: the tokens kept, how many, the limit, how many are cut, and
    whether the transformer attends over them (T5's, Qwen3's) or reads one pooled vector (CLIP's)."""
    views = []
    for attribute, limit in spec.tokenizers:
        tokenizer = getattr(pipe, attribute)
        limit = limit or spec.max_sequence_length
        ids = tokenizer(prompt, truncation=False, add_special_tokens=True)["input_ids"]
        encoder = getattr(pipe, attribute.replace("tokenizer", "text_encoder"))
        views.append(
            {
                "encoder": type(encoder).__name__,
                "tokenizer": type(tokenizer).__name__,
                "tokens": tokenizer.convert_ids_to_tokens(ids[:limit]),
                "count": min(len(ids), limit),
                "limit": limit,
                "truncated": max(0, len(ids) - limit),
                "attended": attribute == spec.token_tokenizer,
            }
        )
    return views


def scheduler_for(settings: Settings, key: str):
    """A fresh copy of `key`'s scheduler, read from its checkpoint's scheduler folder (a small JSON file),
    so plotting a schedule never loads a model's weights, whichever backend serves it."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler.from_pretrained(
        architecture.checkpoint_source(settings, key), subfolder="scheduler"
    )


def schedule(settings: Settings, key: str, steps: int, width: int, height: int) -> list[float]:
    """The steps + 1 σ values (1 → 0) that `key` uses at this size, from a copy of its own scheduler."""
    spec = get_spec(key)
    scheduler = scheduler_for(settings, key)
    mu = spec.schedule_shift(scheduler.config, spec.image_tokens(width, height), steps)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    return [round(float(s), 6) for s in scheduler.sigmas]


def align_by_sigma(first: list[float], second: list[float]) -> list[tuple[int, int]]:
    """For each σ in `first`, the index in `second` with the nearest σ: pairs of step indices."""
    return [(i, int(np.argmin([abs(s - sigma) for s in second]))) for i, sigma in enumerate(first)]


def distance_to_final(run: Trajectory) -> list[float]:
    """Mean absolute difference (0–255) between each step's x₀ and the final image, at the preview's size:
    how far the model's guess still is from where it ends."""
    final = run.result.image.convert("RGB")
    distances = []
    for step in run.steps:
        guess = step.predicted.convert("RGB")
        target = np.asarray(final.resize(guess.size, Image.Resampling.BOX), dtype=np.float32)
        distances.append(round(float(np.abs(np.asarray(guess, dtype=np.float32) - target).mean()), 2))
    return distances
