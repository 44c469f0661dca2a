"""Pieces shared by the tabs: the GPU queue id, model choices, the offline notice, error translation."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

import gradio as gr

from flux_demo.generation import InvalidInput
from flux_demo.models import get_spec

# Every GPU-bound event joins this concurrency group, so one GPU never runs two pipelines at once.
GPU_QUEUE = "gpu"


def model_choices(model_keys: Sequence[str]) -> list[tuple[str, str]]:
    """Dropdown choices: the human label is shown, the registry key is the value API callers send."""
    return [(get_spec(key).label, key) for key in model_keys]


def offline_notice(model_keys: Sequence[str]) -> str:
    """Markdown that says plainly when the app runs the offline tiny models, and how to switch."""
    if not any(get_spec(key).is_offline for key in model_keys):
        return ""
    return (
        "**Offline preview models.** No GPU was found, so this app runs tiny FLUX models with random "
        "weights: they use the real pipelines but draw noise, not pictures. To run the real FLUX models, "
        "start the app on a machine with a CUDA GPU (or a ZeroGPU Space), or set "
        "`FLUX_DEMO_MODELS=schnell,dev`."
    )


def user_errors(fn: Callable) -> Callable:
    """Turn `InvalidInput` into a `gr.Error` whose message names the field and the allowed range.

    Works for plain and generator handlers (Gradio streams a generator's yields to the page)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except InvalidInput as err:
                raise gr.Error(str(err), title="Invalid input") from None

        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InvalidInput as err:
            raise gr.Error(str(err), title="Invalid input") from None

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
            raise gr.Error(f"{self.label}: {err.message}", title="Invalid input") from None


class NamedSlider(_NamedBoundsMixin, gr.Slider):
    is_template = True  # rendered by the frontend's own Slider

    def get_block_name(self) -> str:
        return "slider"


class NamedNumber(_NamedBoundsMixin, gr.Number):
    is_template = True

    def get_block_name(self) -> str:
        return "number"


class NamedCheckboxGroup(_NamedBoundsMixin, gr.CheckboxGroup):
    is_template = True

    def get_block_name(self) -> str:
        return "checkboxgroup"
