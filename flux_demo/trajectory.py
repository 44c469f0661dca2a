"""A run seen from inside: each step's predicted clean image and noisy latents, the σ schedule, the
prompt's tokens and the architecture, all read from the loaded modules and the run itself.

`run_trajectory` is an ordinary `generation.generate` call with a recording observer, so its final image
is pixel-identical to `/generate` with the same settings. `schedule` asks a copy of the model's own
scheduler for its σ values, shifted for the image size as the model's pipeline does (registry:
`sigma_shift`), so the plot shows what a run would use without running one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flux_demo import generation
from flux_demo.config import Settings
from flux_demo.generation import GenerationResult
from flux_demo.models import ModelSpec, get_spec
from flux_demo.pipelines import Backend, LoadedModel, Replica
from flux_demo.previews import PreviewDecoder
from flux_demo.steps import DenoisingStep, StepObserver
from flux_demo.validation import ValidRequest


@dataclass
class TrajectoryStep:
    """One step: σ before and after, t, seconds, and the images at 1/8 of the picture's size."""

    index: int  # 1-based
    timestep: float
    sigma: float
    sigma_next: float
    seconds: float
    predicted: object  # PIL image of x0 = x_t − σ·v
    noisy: object  # PIL image of x_t through the same linear map


class TrajectoryRecorder(StepObserver):
    """Emits every step's numbers and preview images as a `TrajectoryStep`."""

    def __init__(self, spec: ModelSpec, width: int, height: int, emit=None):
        super().__init__()
        self.spec, self.width, self.height, self.emit = spec, width, height, emit

    def prepare(self, pipe) -> None:
        self.decode = PreviewDecoder(pipe, self.spec, self.width, self.height)

    def on_step(self, step: DenoisingStep) -> None:
        self.emit(
            TrajectoryStep(
                step.index + 1,
                step.timestep,
                step.sigma,
                step.sigma_next,
                step.seconds,
                self.decode(step.predicted),
                self.decode(step.noisy),
            )
        )


@dataclass
class Trajectory:
    result: GenerationResult
    steps: list[TrajectoryStep]
    details: dict = field(default_factory=dict)


def run_trajectory(backend: Backend, request: ValidRequest, progress=None, stopped=None) -> Trajectory:
    """Generate `request` while recording every step; details hold the measured figures."""
    steps: list[TrajectoryStep] = []
    recorder = TrajectoryRecorder(request.spec, request.width, request.height, steps.append)
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
    return Trajectory(result, steps, details)


def inspect_model(replica: Replica, loaded: LoadedModel, request: ValidRequest) -> dict:
    """The prompt's tokens and the loaded model's architecture, read where the job ran."""
    return {
        "text_tokens": text_tokens(loaded.pipe, request.spec, request.prompt),
        "architecture": architecture(replica, request.model),
    }


def text_tokens(pipe, spec: ModelSpec, prompt: str) -> list[dict]:
    """The prompt as each tokenizer splits it: the tokens kept, how many, the limit, how many are cut."""
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
            }
        )
    return views


def parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def architecture(host: Replica, key: str) -> dict:
    """The loaded model's shape: transformer blocks, width, heads, parameters per part, the text encoders
    and the VAE, and which components are the same objects as in another loaded model."""
    pipe = host.get_pipeline(key)
    transformer = pipe.transformer
    config = transformer.config
    double, single = transformer.transformer_blocks, transformer.single_transformer_blocks
    double_params = sum(parameters(b) for b in double)
    single_params = sum(parameters(b) for b in single)
    total = parameters(transformer)
    encoders = [name for name in ("text_encoder", "text_encoder_2") if getattr(pipe, name, None) is not None]
    return {
        "transformer": type(transformer).__name__,
        "double_blocks": len(double),
        "single_blocks": len(single),
        "heads": config.num_attention_heads,
        "head_dim": config.attention_head_dim,
        "hidden_size": config.num_attention_heads * config.attention_head_dim,
        "guidance_embeds": bool(config.get("guidance_embeds", False)),
        "parameters": {
            "transformer": total,
            "double_blocks": double_params,
            "single_blocks": single_params,
            "embedders_and_output": total - double_params - single_params,
            **{name: parameters(getattr(pipe, name)) for name in encoders},
            "vae": parameters(pipe.vae),
        },
        "text_encoders": {name: type(getattr(pipe, name)).__name__ for name in encoders},
        "vae": {"class": type(pipe.vae).__name__, "latent_channels": pipe.vae.config.latent_channels},
        "shared_with": shared_components(host, key),
    }


def shared_components(host: Replica, key: str) -> dict[str, list[str]]:
    """{component: [other loaded models holding the very same object]}."""
    pipe = host.get_pipeline(key)
    shared: dict[str, list[str]] = {}
    for other in host.model_keys:
        if other == key or not host.is_loaded(other):
            continue
        other_pipe = host.get_pipeline(other)
        for name, component in pipe.components.items():
            if component is not None and getattr(other_pipe, name, None) is component:
                shared.setdefault(name, []).append(other)
    return shared


def scheduler_for(settings: Settings, key: str):
    """A fresh copy of `key`'s scheduler, read from its checkpoint's scheduler folder (a small JSON file),
    so plotting a schedule never loads a model's weights, whichever backend runs it."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    spec = get_spec(key)
    if spec.is_offline:
        from flux_demo.offline import local_source

        source = local_source(spec.offline_variant, settings.tiny_dir)
    else:
        source = spec.repo_id
    return FlowMatchEulerDiscreteScheduler.from_pretrained(source, subfolder="scheduler")


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
