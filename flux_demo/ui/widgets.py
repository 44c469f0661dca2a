"""Pieces shared by the tabs: the GPU queue id, model choices, the offline notice, error translation."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

import gradio as gr

from flux_demo.faults import GenerationFailed
from flux_demo.generation import InvalidInput, check_number
from flux_demo.models import get_spec
from flux_demo.ui.i18n import t

# Every GPU-bound event joins this concurrency group, so one GPU never runs two pipelines at once.
GPU_QUEUE = "gpu"


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
