"""What each text encoder contributes: the same prompt and seed with every encoder, then with one at a time,
the text in the picture scored by OCR.

FLUX.1 has two: the pipeline's `prompt` goes to CLIP, whose one pooled vector modulates every block, and
`prompt_2` to T5, whose tokens the image tokens attend over (registry: `prompt_arguments`). The chapter
says T5 carries text rendering; this measures it. An encoder left out gets the empty prompt, which is
what the pipeline feeds it for an empty text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from flux_demo import generation
from flux_demo.models import ModelSpec
from flux_demo.pipelines import Backend, runner
from flux_demo.typography import TextScore, score_text
from flux_demo.typography.suite import prompt_targets
from flux_demo.validation import InvalidInput, ValidRequest


@dataclass(frozen=True)
class EncoderRun:
    """One run of the ablation: which encoders read the prompt, the image and its OCR score."""

    encoders: tuple[str, ...]  # pipeline attributes ("text_encoder_2"), all of them for the full run
    image: object
    score: TextScore
    names: dict  # {encoder attribute: its class name}, read where the job ran


def check_two_encoders(spec: ModelSpec) -> None:
    if len(spec.prompt_arguments) < 2:
        raise InvalidInput("model", "input.two_encoders", model=spec.name)


def call_with_encoders(host, loaded, request, on_step_end, encoders: tuple[str, ...]):
    """The text-to-image call with the prompt fed only to `encoders`, the others given ""."""
    kwargs = runner.pipeline_kwargs(loaded, request, on_step_end)
    for encoder, argument in loaded.spec.prompt_arguments:
        kwargs[argument] = request.prompt if encoder in encoders else ""
    return loaded.pipe(**kwargs)


def run_ablation(backend: Backend, request: ValidRequest, progress=None, stopped=None) -> list[EncoderRun]:
    """Every encoder, then each one alone, on `request` (same seed), each image OCR-scored against the
    prompt's quoted text (refused, naming `prompt`, when it quotes none)."""
    spec = request.spec
    check_two_encoders(spec)
    targets = prompt_targets(request.prompt)
    everyone = tuple(encoder for encoder, _ in spec.prompt_arguments)
    runs = []
    for encoders in (everyone, *((encoder,) for encoder in everyone)):
        call = functools.partial(call_with_encoders, encoders=encoders)
        result = generation.generate(
            backend, request, progress, call=call, stopped=stopped, inspect=encoder_names
        )
        runs.append(EncoderRun(encoders, result.image, score_text(result.image, targets), result.facts))
    return runs


def encoder_names(_replica, loaded, request: ValidRequest) -> dict:
    """{encoder attribute: class name} of the loaded pipeline (its text encoders)."""
    encoders = [encoder for encoder, _ in request.spec.prompt_arguments]
    return {encoder: type(getattr(loaded.pipe, encoder)).__name__ for encoder in encoders}
