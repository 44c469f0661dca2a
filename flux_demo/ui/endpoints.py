"""One runner for every endpoint, and what each endpoint costs.

Every GPU or OCR endpoint is a plain function decorated with `endpoint(services, action, cost, outputs)`.
The runner does, in order, what each handler used to copy:

1. refuse values a named component already refused (`Refused`), in the visitor's language;
2. count the job as served for its visitor (the fair order, `services.admission`);
3. hand the handler a `Run` in place of Gradio's progress tracker: progress in the visitor's language
   (`run.progress`), this session's Stop flag for `action` (`run.stopped`) and `run.notes(...)`;
4. turn `InvalidInput` and `GenerationFailed` into a `gr.Error` naming the field or the fault;
5. on the page's Stop (`GenerationCancelled`), say where it stopped and leave the outputs as they are
   (`outputs` skips), instead of blanking them.

`cost` prices a job from its request values before it joins the queue (see
`flux_demo.services.admission`); the helpers below price the usual shapes of request.
"""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import gradio as gr

from flux_demo.faults import GenerationCancelled, GenerationFailed
from flux_demo.loras import loras_for
from flux_demo.messages import Message
from flux_demo.models import MIN_SIDE, MODELS
from flux_demo.services import AppServices
from flux_demo.services.admission import OCR_UNITS, WorkCost, number, units, work_cost
from flux_demo.ui.widgets import LocalizedProgress, Refused, as_user_error, refusal, show_notes, show_stop
from flux_demo.validation import MAX_IMAGES, InvalidInput


@dataclass
class Run:
    """What a running endpoint gets from the runner (see the module docstring)."""

    progress: LocalizedProgress
    stopped: Callable[[], bool]

    def notes(self, notes: Sequence[Message]) -> None:
        """Tell the visitor about adjustments the server made (snapped sizes, ignored guidance)."""
        show_notes(notes)


def _session_and_visitor(services: AppServices) -> tuple[str, str | None]:
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    if request is None:  # a script or a cached example, not a web request
        return "", None
    return getattr(request, "session_hash", None) or "", services.admission.visitor(request)


def endpoint(
    services: AppServices, action: str | None = None, cost: WorkCost | None = None, outputs: int = 0
) -> Callable[[Callable], Callable]:
    """Decorate an endpoint handler whose progress parameter (default `gr.Progress()`) receives a `Run`
    (see the module docstring). `action` names its Stop button; `outputs` is how many outputs a Stop
    leaves unchanged; `cost` its price in units of work. The docstring (the API and MCP description)
    may say `$models`, `$sizes`, `$steps`, `$guidance` and `$loras`: they become the served models' own
    ranges and LoRAs."""

    def decorate(fn: Callable) -> Callable:
        if fn.__doc__:
            fn.__doc__ = string.Template(fn.__doc__).safe_substitute(served_ranges(services.model_keys))
        signature = inspect.signature(fn)
        tracker = next(
            (name for name, p in signature.parameters.items() if isinstance(p.default, gr.Progress)), None
        )

        def start(args, kwargs):
            for value in (*args, *kwargs.values()):
                if isinstance(value, Refused):
                    raise refusal(value.message)
            session, visitor = _session_and_visitor(services)
            if visitor is not None:
                services.admission.started(visitor)
            bound = signature.bind(*args, **kwargs)
            if tracker is not None:
                progress = bound.arguments.get(tracker, signature.parameters[tracker].default)
                stopped = services.stops.watch(session, action) if action else (lambda: False)
                bound.arguments[tracker] = Run(LocalizedProgress(progress), stopped)
            return bound

        kept = tuple(gr.skip() for _ in range(outputs))

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def streaming(*args, **kwargs):
                bound = start(args, kwargs)
                try:
                    yield from fn(*bound.args, **bound.kwargs)
                except GenerationCancelled as stop:  # the page's Stop: keep what is on the page
                    show_stop(stop)
                    if kept:
                        yield kept if len(kept) > 1 else kept[0]
                except (InvalidInput, GenerationFailed) as err:
                    raise as_user_error(err) from None

            handler = streaming
        else:

            @functools.wraps(fn)
            def plain(*args, **kwargs):
                bound = start(args, kwargs)
                try:
                    return fn(*bound.args, **bound.kwargs)
                except GenerationCancelled as stop:
                    show_stop(stop)
                    return kept if len(kept) != 1 else kept[0]
                except (InvalidInput, GenerationFailed) as err:
                    raise as_user_error(err) from None

            handler = plain
        return work_cost(cost)(handler) if cost is not None else handler

    return decorate


# --- what the served models accept, for the API and MCP descriptions --------------------------------


def _joined(groups: dict[str, list[str]]) -> str:
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{text} ({', '.join(keys)})" for text, keys in groups.items())


def served_ranges(model_keys: Sequence[str]) -> dict[str, str]:
    """Text for `$models`, `$sizes`, `$steps`, `$guidance` and `$loras` in an endpoint's docstring, read
    from the registry entries of the served models (so an offline app documents nano's 256-512, not
    256-2048, and nano's own LoRAs)."""
    specs = [MODELS[key] for key in model_keys]
    sizes: dict[str, list[str]] = {}
    for spec in specs:
        text = f"{MIN_SIDE}-{spec.max_side}, snapped to a multiple of {spec.size_multiple}"
        sizes.setdefault(text, []).append(spec.key)
    guided = [f"{s.key} {s.guidance_range[0]:g}-{s.guidance_range[1]:g}" for s in specs if s.guidance_range]
    fixed = [s.key for s in specs if s.guidance_range is None]
    guidance = ", ".join(guided) if guided else "none of the served models uses it"
    if guided and fixed:
        guidance += f"; {', '.join(fixed)} ignore it and run at their fixed value"
    return {
        "models": ", ".join(f'"{s.key}"' for s in specs),
        "sizes": _joined(sizes),
        "steps": ", ".join(f"{s.key} {s.min_steps}-{s.max_steps}" for s in specs),
        "guidance": guidance,
        "loras": "; ".join(
            f"{s.key}: {', '.join(spec.key for spec in loras_for(s.key))}" for s in specs if loras_for(s.key)
        )
        or "none for the served models",
    }


# --- prices ---------------------------------------------------------------------------------------

MIN_JOB_UNITS = 1 / 64  # even the smallest image costs something (a 256² nano image at 1 step)


def image_units(values: Mapping[str, object], model: object, images: float = 1, tokens: float = 1) -> float:
    """Units for `images` images of `model` at the request's steps and size (the model's defaults where
    a value is missing or not a number); `tokens` multiplies the work per step (klein's references)."""
    spec = MODELS.get(model) if isinstance(model, str) else None
    if spec is None:
        return 0.0  # not a served model: the handler refuses it before any work
    steps = number(values.get("steps"), spec.default_steps, spec.min_steps, spec.max_steps)
    # (0 × 0 asks editing for the first reference's size, which admission has not read: the default.)
    width = number(values.get("width") or None, spec.default_size, MIN_SIDE, spec.max_side)
    height = number(values.get("height") or None, spec.default_size, MIN_SIDE, spec.max_side)
    return units(images, steps, width, height) * tokens


def one_image(values: Mapping[str, object]) -> float:
    """/generate, /typography, /trajectory: one image of `model`, or `num_images` (1-4) where asked."""
    images = number(values.get("num_images"), 1, 1, MAX_IMAGES)
    return max(image_units(values, values.get("model"), images), MIN_JOB_UNITS)


def scored_image(values: Mapping[str, object]) -> float:
    """One image of `model`, then OCR."""
    return one_image(values) + OCR_UNITS


def each_model(images_param: str | None = None, low: int = 1, high: int = 48) -> WorkCost:
    """An image per chosen model (`models`), times `images_param` images each (seeds, suite prompts)."""

    def cost(values: Mapping[str, object]) -> float:
        models = values.get("models")
        models = models if isinstance(models, list) else []
        chosen = list(dict.fromkeys(m for m in models if isinstance(m, str)))
        images = number(values.get(images_param), high, low, high) if images_param else 1
        total = sum(image_units(values, model, images) for model in chosen[: len(MODELS)])
        return max(total, MIN_JOB_UNITS)

    return cost


def with_references(values: Mapping[str, object]) -> float:
    """/edit: one image whose every step also attends over each reference's tokens (up to 10)."""
    references = values.get("references")
    count = min(len(references), 10) if isinstance(references, list) else 1
    return max(image_units(values, values.get("model"), tokens=1 + count), MIN_JOB_UNITS)


def ocr_only(_values: Mapping[str, object]) -> float:
    """/score_text: OCR of one uploaded image, no GPU."""
    return OCR_UNITS
