"""Run one prompt, seed and size on several models, one after another, reporting each as it finishes.

Each model runs with its own recommended (or edited) steps and guidance through `generation`, so a
comparison image is pixel-identical to `/generate` with the same settings. A model that fails to load
(missing, gated, corrupt) is reported and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from flux_demo import generation
from flux_demo.faults import GenerationCancelled, GenerationFailed
from flux_demo.generation import GenerationResult
from flux_demo.loras import LORAS
from flux_demo.messages import Message
from flux_demo.models import get_spec
from flux_demo.pipelines import Backend
from flux_demo.typography import TextScore, extract_targets, score_text
from flux_demo.validation import GenerationRequest, InvalidInput, ValidRequest, check_model, validate
from flux_demo.watching.steps import StepObserver

log = logging.getLogger(__name__)

MAX_SWEEP_SEEDS = 8


@dataclass
class ModelRun:
    """One model's outcome: a result, or the reason it could not run; plus its text score if any."""

    model: str
    request: ValidRequest | None
    result: GenerationResult | None = None
    error: Message | None = None  # str() is the English
    score: TextScore | None = None  # when the prompt quotes text

    @property
    def ok(self) -> bool:
        return self.result is not None


def recommended_settings(model: str) -> tuple[int, float]:
    """The model's own defaults: (steps, guidance)."""
    spec = get_spec(model)
    return spec.default_steps, spec.default_guidance


def check_models(models, available: Sequence[str]) -> tuple[str, ...]:
    """At least one served model, each once."""
    if isinstance(models, str) or not isinstance(models, (list, tuple)) or not models:
        raise InvalidInput("models", "input.choose_models", choices=", ".join(available))
    for model in models:
        check_model(model, available)
    if len(set(models)) != len(models):
        raise InvalidInput("models", "input.models_once")
    return tuple(models)


def plan_requests(
    prompt,
    models,
    seeds: Sequence,
    width,
    height,
    overrides: Mapping[str, tuple[float, float]],
    available: Sequence[str],
    lora: tuple[object, object] = ("", 1.0),
    hub_loras: bool = False,
) -> list[ValidRequest]:
    """Validate everything before anything runs: one request per (seed, model), seeds outermost. `lora`
    (reference, scale) applies to the models it fits: a curated LoRA to those its entry names, a Hub
    LoRA to every model (a replica refuses it for a model its card does not name)."""
    models = check_models(models, available)
    requests = []
    for seed in seeds:
        for model in models:
            steps, guidance = overrides.get(model, recommended_settings(model))
            curated = LORAS.get(lora[0]) if isinstance(lora[0], str) else None
            pairs = () if curated is not None and model not in curated.fits else (lora,)
            raw = GenerationRequest(prompt, model, width, height, steps, guidance, seed, False, pairs)
            try:
                requests.append(validate(raw, available, hub_loras))
            except InvalidInput as err:
                if err.field in ("steps", "guidance"):  # say which model's setting is wrong
                    raise InvalidInput(f"{err.field} for {model}", err.reason) from None
                raise
    return requests


@dataclass
class RunProgress:
    """Progress of run `index` of `count`, reported on one bar over `total` steps. A plain class, not a
    closure, because ZeroGPU pickles the GPU function's arguments into its worker process."""

    progress: Callable
    index: int
    count: int
    name: str
    offset: int
    total: int

    def __call__(self, value, desc: Message | str = "", **_kwargs):
        if isinstance(value, tuple):
            step, steps = value
            desc = Message(
                "progress.model_step",
                index=self.index,
                count=self.count,
                model=self.name,
                step=step,
                steps=steps,
            )
            self.progress((self.offset + step, self.total), desc=desc)
        else:
            desc = Message("progress.model", index=self.index, count=self.count, detail=desc)
            self.progress((self.offset, self.total), desc=desc)


class OverallProgress:
    """One progress bar over several runs: 'model k of n, step i of m'."""

    def __init__(self, progress: Callable | None, requests: Sequence[ValidRequest]):
        self.progress = progress
        self.total = sum(r.steps for r in requests)
        self.count = len(requests)
        self.done = 0
        self.index = 0

    def for_run(self, request: ValidRequest) -> RunProgress | None:
        if self.progress is None:
            return None
        self.index += 1
        name = request.spec.name
        return RunProgress(self.progress, self.index, self.count, name, self.done, self.total)

    def finished(self, request: ValidRequest) -> None:
        self.done += request.steps


def run_all(
    backend: Backend,
    requests: Sequence[ValidRequest],
    progress: Callable | None = None,
    observer_for: Callable[[ValidRequest], StepObserver] | None = None,
    stopped: Callable[[], bool] | None = None,
) -> Iterator[ModelRun]:
    """Run the requests in order on `backend`, yielding each model's outcome as soon as it is known;
    `observer_for(request)` (optional) gives each run's step observer (live previews). A stop raises
    `GenerationCancelled` counted over all the runs' steps ("step 9 of 12")."""
    overall = OverallProgress(progress, requests)
    for request in requests:
        run = ModelRun(request.model, request)
        try:
            observer = observer_for(request) if observer_for is not None else None
            run.result = generation.generate(
                backend, request, overall.for_run(request), observer=observer, stopped=stopped
            )
        except GenerationCancelled as stop:
            raise stop.counted(overall.done, overall.total) from None
        except InvalidInput as err:
            if err.field != "lora":
                raise
            run.error = err.message  # a Hub LoRA this model's replica refused: the other models still run
        except GenerationFailed as err:  # out of memory, unavailable, GPU quota: already in plain words
            run.error = err.message
        except Exception as err:  # a broken model must not stop the others; details go to the log only
            log.warning("comparison: %s failed: %s", request.model, err, exc_info=True)
            run.error = Message("fault.model_failed", model=request.spec.name, error=type(err).__name__)
        overall.finished(request)
        targets = extract_targets(request.prompt)
        if run.ok and run.result is not None and targets:
            run.score = score_text(run.result.image, targets)  # the one shared scorer
        yield run
