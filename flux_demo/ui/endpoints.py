"""One runner for every endpoint, and what each endpoint costs.

Every GPU or OCR endpoint is a plain function decorated with `endpoint(services, action, cost, outputs)`.
The runner does, in order, what each handler used to copy:

1. refuse values a named component already refused (`Refused`), in the visitor's language;
2. hand the handler a `Run` in place of Gradio's progress tracker: progress in the visitor's language
   (`run.progress`), this session's Stop flag for `action` (`run.stopped`) and `run.notes(...)`;
3. turn `InvalidInput` and `GenerationFailed` into a `gr.Error` naming the field or the fault;
4. on the page's Stop (`GenerationCancelled`), say where it stopped and leave the outputs as they are
   (`outputs` skips), instead of blanking them.

`cost` prices a job from its request values before it joins the queue (see
`flux_demo.services.admission`); the helpers below price the usual shapes of request. A job counts as
served for the fair order when Gradio takes it from the waiting list (`flux_demo.ui.gatekeeper`).
"""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import gradio as gr

from flux_demo import editing
from flux_demo.faults import GenerationCancelled, GenerationFailed
from flux_demo.loras import loras_for
from flux_demo.messages import Message
from flux_demo.models import MIN_SIDE, MODELS
from flux_demo.pipelines import turns
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


def _request():
    from gradio.context import LocalContext

    return LocalContext.request.get(None)  # None: a script or a cached example, not a web request


def _session() -> str:
    request = _request()
    return (getattr(request, "session_hash", None) or "") if request is not None else ""


def _as_visitor(visitor: str | None, steps: Iterator) -> Iterator:
    """`steps` with `turns.VISITOR` set while each item is made: Gradio runs every step of a generator in
    a fresh copy of its context, so a value set in the first would be gone in the next."""
    while True:
        token = turns.VISITOR.set(visitor)
        try:
            item = next(steps)
        except StopIteration:
            return
        finally:
            turns.VISITOR.reset(token)
        yield item


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
            session = _session()
            request = _request()
            visitor = services.admission.visitor(request) if request is not None else None
            bound = signature.bind(*args, **kwargs)
            if tracker is not None:
                progress = bound.arguments.get(tracker, signature.parameters[tracker].default)
                stopped = services.stops.watch(session, action) if action else (lambda: False)
                bound.arguments[tracker] = Run(LocalizedProgress(progress), stopped)
            return bound, visitor

        kept = tuple(gr.skip() for _ in range(outputs))

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def streaming(*args, **kwargs):
                bound, visitor = start(args, kwargs)
                try:
                    yield from _as_visitor(visitor, fn(*bound.args, **bound.kwargs))
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
                bound, visitor = start(args, kwargs)
                token = turns.VISITOR.set(visitor)
                try:
                    return fn(*bound.args, **bound.kwargs)
                except GenerationCancelled as stop:
                    show_stop(stop)
                    return kept if len(kept) != 1 else kept[0]
                except (InvalidInput, GenerationFailed) as err:
                    raise as_user_error(err) from None
                finally:
                    turns.VISITOR.reset(token)

            handler = plain
        return work_cost(cost)(handler) if cost is not None else handler

    return decorate


# --- a streaming handler's last outputs, sent once ------------------------------------------------


class Final(tuple):
    """A generator handler's last outputs, as its last yield: `yield Final((image, seed, details))`.

    Gradio sends every yield as a "generating" message and then repeats the last one as the
    "completed" message, and `gradio_client` downloads the files of both (a fresh HTTP connection per
    file, about 30 ms each on a small CPU). When a run's first yield is `Final` (an API caller who
    asked for no previews, the page with Live preview off), `finish_on_final` ends the run there: one
    "completed" message, as a plain function sends, and the generator is run to its end first. After
    earlier yields (previews) Gradio sends it as it sends any yield. A tuple, so Gradio without the
    patch and a test that unpacks the handler's yields see the outputs unchanged."""


def finish_on_final() -> None:
    """Patch `gradio.blocks.Blocks.call_function` (once) so that a generator whose first yield is
    `Final` completes like a plain function (see `Final`). Checked against Gradio's signature: a Gradio
    whose `call_function` differs is left alone (the outputs are the same, sent twice)."""
    from gradio.blocks import Blocks

    original = Blocks.call_function
    if getattr(original, "finishes_on_final", False):
        return
    names = list(inspect.signature(original).parameters)[:4]
    if names != ["self", "block_fn", "processed_input", "iterator"]:
        return

    @functools.wraps(original)
    async def call_function(self, block_fn, processed_input, iterator=None, *args, **kwargs):
        result = await original(self, block_fn, processed_input, iterator, *args, **kwargs)
        outputs = result.get("prediction")
        if iterator is not None or not result.get("is_generating") or not isinstance(outputs, Final):
            return result
        try:  # run the generator to its end (its cleanup), in Gradio's worker thread as Gradio would
            await result["iterator"].__anext__()
        except StopAsyncIteration:
            pass
        else:
            raise RuntimeError(f"{block_fn.name} yielded after its Final outputs")
        outputs = tuple(outputs)
        single = len(block_fn.outputs) == 1
        result.update(prediction=outputs[0] if single else outputs, is_generating=False, iterator=None)
        return result

    call_function.finishes_on_final = True
    Blocks.call_function = call_function


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
    """An image per chosen model (`models`), times `images_param` images each (seeds, suite prompts), at
    the steps a `settings` table asks for that model (/compare), else the request's or the model's."""

    def cost(values: Mapping[str, object]) -> float:
        models = values.get("models")
        models = models if isinstance(models, list) else []
        chosen = list(dict.fromkeys(m for m in models if isinstance(m, str)))
        images = number(values.get(images_param), high, low, high) if images_param else 1
        steps = settings_steps(values.get("settings"))
        total = sum(
            image_units({**values, "steps": steps.get(model, values.get("steps"))}, model, images)
            for model in chosen[: len(MODELS)]
        )
        return max(total, MIN_JOB_UNITS)

    return cost


def settings_steps(table: object) -> dict[str, object]:
    """Steps by model from /compare's settings rows `[model, steps, guidance]`, sent as a list of rows
    or as a table `{"headers": ..., "data": rows}`; a model's last row wins, as the handler reads them."""
    rows = table.get("data") if isinstance(table, Mapping) else table
    if not isinstance(rows, list):
        return {}
    return {
        row[0]: row[1] for row in rows if isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)
    }


def with_references(values: Mapping[str, object]) -> float:
    """/edit: one image whose every step also attends over the tokens of each reference (up to 10), at
    the size the pipeline conditions on it (`reference_pixels`)."""
    model = values.get("model")
    spec = MODELS.get(model) if isinstance(model, str) else None
    if spec is None:
        return MIN_JOB_UNITS  # not a served model: the handler refuses it before any work
    references = values.get("references")
    references = references[: editing.MODES["edit"].max_images] if isinstance(references, list) else []
    steps = number(values.get("steps"), spec.default_steps, spec.min_steps, spec.max_steps)
    conditioned = sum(reference_pixels(reference) for reference in references)
    return max(image_units(values, model) + units(1, steps, conditioned, 1), MIN_JOB_UNITS)


def reference_pixels(reference: object) -> int:
    """Pixels the pipeline conditions on for one reference: its size from the header, scaled down to
    `KLEIN_REFERENCE_PIXELS`, for a file in Gradio's upload folder (where every accepted upload is);
    that most for anything else (a data: URL, a path elsewhere), which admission does not open."""
    from gradio.utils import get_upload_folder, is_in_or_equal

    if isinstance(reference, dict):
        reference = reference.get("image", reference)
    path = reference.get("path") if isinstance(reference, dict) else None
    if not isinstance(path, str) or not is_in_or_equal(path, get_upload_folder()):
        return editing.KLEIN_REFERENCE_PIXELS
    try:
        width, height = editing.image_size("references", path)
    except InvalidInput:
        return editing.KLEIN_REFERENCE_PIXELS
    return min(width * height, editing.KLEIN_REFERENCE_PIXELS)


def ocr_only(_values: Mapping[str, object]) -> float:
    """/score_text: OCR of one uploaded image, no GPU."""
    return OCR_UNITS
