"""Pieces shared by the tabs: the GPU queue id, model choices, the offline notice, error translation."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

import gradio as gr

from flux_demo import limits
from flux_demo.faults import GenerationFailed
from flux_demo.generation import MAX_SEED, InvalidInput, check_number
from flux_demo.models import MAX_SIDE, MIN_SIDE, SIZE_MULTIPLE, get_spec
from flux_demo.ui.i18n import t

# Every GPU-bound event joins this concurrency group, so one GPU never runs two pipelines at once.
GPU_QUEUE = "gpu"
CUSTOM_SIZE = "Custom"  # the aspect-ratio choice that leaves width and height as typed


def model_choices(model_keys: Sequence[str]) -> list[tuple[str, str]]:
    """Dropdown choices: the human label is shown, the registry key is the value API callers send."""
    return [(get_spec(key).label, key) for key in model_keys]


def offline_notice(model_keys: Sequence[str]):
    """Text that says plainly when the app runs the offline tiny models and how to switch; None if not."""
    if not any(get_spec(key).is_offline for key in model_keys):
        return None
    return t("offline_notice")


def as_user_error(err: InvalidInput | GenerationFailed) -> gr.Error:
    """The `gr.Error` a visitor sees for bad input or a fault (out of memory, model unavailable...)."""
    title = "Invalid input" if isinstance(err, InvalidInput) else err.title
    return gr.Error(str(err), title=title)


def gpu_event(fn: Callable) -> Callable:
    """`user_errors` for a GPU-bound handler, which also counts against the visitor's rate limit."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def limited_stream(*args, **kwargs):
            limits.check_current_visitor()
            yield from fn(*args, **kwargs)

        return user_errors(limited_stream)

    @functools.wraps(fn)
    def limited(*args, **kwargs):
        limits.check_current_visitor()
        return fn(*args, **kwargs)

    return user_errors(limited)


def user_errors(fn: Callable) -> Callable:
    """Turn `InvalidInput` into a `gr.Error` whose message names the field and the allowed range, and a
    `GenerationFailed` into one that says what went wrong and what to try.

    Works for plain and generator handlers (Gradio streams a generator's yields to the page)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except (InvalidInput, GenerationFailed) as err:
                raise as_user_error(err) from None

        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InvalidInput, GenerationFailed) as err:
            raise as_user_error(err) from None

    return wrapper


def show_notes(notes: Sequence[str]) -> None:
    """Tell the visitor about adjustments the server made (snapped sizes, ignored guidance)."""
    for note in notes:
        gr.Warning(note)


class _NamedBoundsMixin:
    """Gradio checks bounds and choices on the server, but its message omits the field: add it."""

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error as err:
            # A translated label is an I18nData whose key is the field name in English.
            field = getattr(self.label, "key", self.label)
            raise gr.Error(f"{field}: {err.message}", title="Invalid input") from None


class _NamedNumberMixin(_NamedBoundsMixin):
    """API callers can send anything: reject text, lists, NaN, infinities and, where the field holds
    whole numbers, fractions, with a message that names the field and its range."""

    def preprocess(self, payload):
        if payload is None and isinstance(self, gr.Number):
            return None  # an emptied Number box; the handler decides whether it may be empty
        field = getattr(self.label, "key", self.label)
        allowed = f"from {self.minimum:g} to {self.maximum:g}" if self.maximum is not None else "a number"
        try:
            value = check_number(field, payload, allowed)
            if self.precision == 0 and value != int(value):
                raise InvalidInput(field, f"must be a whole number ({allowed}), got {value}")
        except InvalidInput as err:
            raise gr.Error(str(err), title="Invalid input") from None
        return super().preprocess(payload)


class NamedSlider(_NamedNumberMixin, gr.Slider):
    is_template = True  # rendered by the frontend's own Slider

    def get_block_name(self) -> str:
        return "slider"


class NamedNumber(_NamedNumberMixin, gr.Number):
    is_template = True

    def get_block_name(self) -> str:
        return "number"


class NamedCheckboxGroup(_NamedBoundsMixin, gr.CheckboxGroup):
    is_template = True

    def get_block_name(self) -> str:
        return "checkboxgroup"


def slider_ranges(model: str) -> tuple[dict, dict]:
    """Constructor arguments for the steps and guidance sliders at the model's defaults and ranges."""
    spec = get_spec(model)
    low, high = spec.guidance_range or (spec.default_guidance, spec.default_guidance + 1)
    steps = {"value": spec.default_steps, "minimum": spec.min_steps, "maximum": spec.max_steps}
    guidance = {
        "value": spec.default_guidance,
        "minimum": low,
        "maximum": high,
        "interactive": not spec.ignores_guidance,
        "info": spec.guidance_note(),
    }
    return steps, guidance


def served_ranges(model_keys: Sequence[str]) -> dict[str, dict]:
    """The widest steps and guidance bounds over the served models (what the API accepts at all)."""
    specs = [get_spec(key) for key in model_keys]
    guidance = [bound for s in specs for bound in (s.guidance_range or (s.default_guidance,))]
    return {
        "steps": {"minimum": min(s.min_steps for s in specs), "maximum": max(s.max_steps for s in specs)},
        "guidance": {"minimum": min(guidance), "maximum": max(max(guidance), min(guidance) + 1)},
    }


def step_sliders(model_keys: Sequence[str]) -> tuple[NamedSlider, NamedSlider]:
    """Steps and guidance sliders at the first served model's defaults.

    The server accepts the union of the served models' ranges; the browser narrows them per model, and
    `generation.validate` enforces the chosen model's own range.
    """
    steps_args, guidance_args = slider_ranges(model_keys[0])
    union = served_ranges(model_keys)
    steps = NamedSlider(step=1, label=t("steps"), **{**steps_args, **union["steps"]})
    guidance = NamedSlider(step=0.1, label=t("guidance"), **{**guidance_args, **union["guidance"]})
    return steps, guidance


def size_sliders(width: int, height: int) -> tuple[NamedSlider, NamedSlider]:
    """Width and height sliders over the allowed sizes, in steps of 16 pixels."""
    with gr.Row():
        return tuple(
            NamedSlider(MIN_SIDE, MAX_SIDE, value=value, step=SIZE_MULTIPLE, label=t(name))
            for name, value in (("width", width), ("height", height))
        )


def seed_box(value: int = 0) -> NamedNumber:
    """An exact-integer seed field, 0 to 2**32 - 1."""
    return NamedNumber(value, label=t("seed"), precision=0, minimum=0, maximum=MAX_SEED)
