"""Pieces shared by the tabs: the GPU queue id, model choices, the offline notice, errors and notes in the
visitor's language."""

from __future__ import annotations

import base64
import functools
import html
import inspect
import io
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import gradio as gr
import PIL.Image

from flux_demo import provenance
from flux_demo.config import Settings
from flux_demo.faults import GenerationFailed
from flux_demo.messages import Message
from flux_demo.models import MAX_SIDE, MIN_SIDE, SIZE_MULTIPLE, get_spec
from flux_demo.services import AppServices
from flux_demo.ui.i18n import say, t, visitor_language
from flux_demo.validation import MAX_SEED, InvalidInput, check_number

log = logging.getLogger(__name__)

# Every GPU-bound event joins this concurrency group, so one GPU never runs two pipelines at once.
GPU_QUEUE = "gpu"
# OCR-bound events (typography scoring) share this group, so OCR never holds a GPU slot; the GPU part of
# /typography still waits for the backend's GPU slot.
OCR_QUEUE = "ocr"
OCR_CONCURRENCY = 2
CUSTOM_SIZE = "Custom"  # the aspect-ratio choice that leaves width and height as typed


def model_choices(model_keys: Sequence[str]) -> list[tuple[str, str]]:
    """Dropdown choices: the human label is shown, the registry key is the value API callers send."""
    return [(t(f"model_label.{key}"), key) for key in model_keys]


def offline_notice(model_keys: Sequence[str], device: str = "cuda") -> gr.Accordion | None:
    """A one-line notice, folded, that says plainly when the app runs offline models and opens on what
    they draw (the nano models' grammar, or noise for the tiny ones) and how to switch, or that real
    models run on the CPU (slow, memory-hungry); None if none of these. One line, so that a phone
    shows the prompt and Run on its first screen."""
    specs = [get_spec(key) for key in model_keys]
    if any(spec.is_nano for spec in specs):
        key = "offline_notice"
    elif any(spec.is_offline for spec in specs):
        key = "offline_tiny_notice"
    elif device == "cpu":
        key = "cpu_notice"
    else:
        return None
    with gr.Accordion(t(f"{key}_short"), open=False, elem_id="offline-notice") as notice:
        gr.Markdown(t(key))
    return notice


def refusal(message: Message, title: str = "title.invalid_input", language: str | None = None) -> gr.Error:
    """The `gr.Error` for an expected refusal (bad input, a fault explained to the visitor): `message`
    and the `title` code rendered in the visitor's language (the field name stays English); one log line
    instead of the traceback Gradio prints for every error by default."""
    log.info("refused (%s): %s", title, str(message)[:200])
    language = language or visitor_language()
    return gr.Error(message.render(language), title=say(title, language), print_exception=False)


class Refused:
    """What a named component's `preprocess` returns for bad input, instead of raising: Gradio runs
    `preprocess` before it makes the request known to the handler, so the refusal is raised by
    `event_handler`, in the visitor's language, before the handler runs."""

    def __init__(self, err: InvalidInput):
        self.message = err.message


def _raise_refused(values) -> None:
    for value in values:
        if isinstance(value, Refused):
            raise refusal(value.message)


def as_user_error(err: InvalidInput | GenerationFailed) -> gr.Error:
    """The `gr.Error` a visitor sees for bad input or a fault (out of memory, model unavailable...)."""
    title = "title.invalid_input" if isinstance(err, InvalidInput) else err.title
    return refusal(err.message, title=title)


def event_handler() -> Callable[[Callable], Callable]:
    """Decorate a handler (of a private event: GPU and OCR endpoints use `endpoints.endpoint`) so that a
    visitor sees plain errors: a refused value or `InvalidInput` becomes a `gr.Error` whose message names
    the field and the allowed range, a `GenerationFailed` one that says what went wrong and what to try.
    Works for plain and generator handlers (Gradio streams a generator's yields to the page)."""

    def decorate(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def streaming(*args, **kwargs):
                _raise_refused([*args, *kwargs.values()])
                try:
                    yield from fn(*args, **kwargs)
                except (InvalidInput, GenerationFailed) as err:
                    raise as_user_error(err) from None

            return streaming

        @functools.wraps(fn)
        def plain(*args, **kwargs):
            _raise_refused([*args, *kwargs.values()])
            try:
                return fn(*args, **kwargs)
            except (InvalidInput, GenerationFailed) as err:
                raise as_user_error(err) from None

        return plain

    return decorate


def show_notes(notes: Sequence[Message]) -> None:
    """Tell the visitor about adjustments the server made (snapped sizes, ignored guidance): information,
    in the visitor's language; the page closes it when the visitor switches tabs (assets/page.js)."""
    for note in notes:
        gr.Info(as_text(say(note)))


def as_text(text: str, limit: int = 300) -> str:
    """`text` from a visitor (a link, a PNG chunk), shortened and HTML-escaped, for a pop-up (`gr.Warning`
    renders HTML) or a `gr.HTML`: it shows as typed, with no tags, images or links. Never put such text
    in a `gr.Markdown`, which would turn it into headings and links."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=False)


class _NamedChoicesMixin:
    """Check the choices ourselves, before Gradio does: its message omits the field and is English only."""

    def preprocess(self, payload):
        field = field_name(self.label)
        choices = [value for _, value in self.choices]
        listed = ", ".join(map(repr, choices))
        if not isinstance(payload, list):
            return Refused(
                InvalidInput(field, "input.not_a_list", choices=listed, kind=type(payload).__name__)
            )
        for value in payload:
            if value not in choices:
                return Refused(
                    InvalidInput(field, "input.not_a_choice", value=repr(value)[:80], choices=listed)
                )
        return super().preprocess(payload)


class _NamedNumberMixin:
    """API callers can send anything: reject text, lists, NaN, infinities, values out of bounds and,
    where the field holds whole numbers, fractions, with a message that names the field and its range
    (checked before Gradio's own bound check, whose message omits the field and is English only)."""

    def preprocess(self, payload):
        if payload is None and isinstance(self, gr.Number):
            return None  # an emptied Number box; the handler decides whether it may be empty
        field = field_name(self.label)
        try:
            value = check_number(field, payload, self._allowed())
            if self.precision == 0 and value != int(value):
                raise InvalidInput(field, "input.not_whole", allowed=self._allowed(), value=value)
            if self.minimum is not None and value < self.minimum:
                raise InvalidInput(field, "input.below_minimum", value=value, minimum=self.minimum)
            if self.maximum is not None and value > self.maximum:
                raise InvalidInput(field, "input.above_maximum", value=value, maximum=self.maximum)
        except InvalidInput as err:
            return Refused(err)
        return super().preprocess(payload)

    def _allowed(self) -> Message:
        if self.minimum is None or self.maximum is None:
            return Message("allowed.number")
        if self.precision == 0:
            return Message("allowed.integer_range", low=int(self.minimum), high=int(self.maximum))
        return Message("allowed.range", low=self.minimum, high=self.maximum)


class NamedSlider(_NamedNumberMixin, gr.Slider):
    """A slider whose errors name the field. With `shown` set, the page first shows that (narrower)
    range, while the server accepts the slider's whole range (the page narrows it per model)."""

    is_template = True  # rendered by the frontend's own Slider

    # (No __init__ of its own: Gradio records a component's constructor arguments from the signature of
    # the outermost __init__ and rebuilds the component from them when an event updates it.)
    shown: tuple[float, float] | None = None
    shown_step: float | None = None

    def get_config(self, cls=None):
        config = super().get_config(cls)
        if self.shown is not None:
            config["minimum"], config["maximum"] = self.shown
        if self.shown_step is not None:
            config["step"] = self.shown_step
        return config

    def get_block_name(self) -> str:
        return "slider"


class NamedNumber(_NamedNumberMixin, gr.Number):
    is_template = True

    def get_block_name(self) -> str:
        return "number"


class NamedCheckboxGroup(_NamedChoicesMixin, gr.CheckboxGroup):
    is_template = True

    def get_block_name(self) -> str:
        return "checkboxgroup"


class PageGallery(gr.Gallery):
    """A gallery output that the page shows and API callers do not receive (Gradio's clients and MCP
    leave out `skip_api` components, as they leave out `gr.State`): an endpoint can show more on the page
    without changing the outputs its API callers unpack."""

    is_template = True

    @property
    def skip_api(self) -> bool:
        return True

    def get_block_name(self) -> str:
        return "gallery"


class NamedDataframe(gr.Dataframe):
    """A Dataframe input named `field` (its API parameter): null means "no rows", and malformed input
    gets an error naming the field instead of Gradio's "Could not preprocess input component"."""

    is_template = True

    def __init__(self, *args, field: str, **kwargs):
        self.field = field
        super().__init__(*args, **kwargs)

    def get_config(self, cls=None):
        # Gradio reads the props from __init__'s signature, which here hides Dataframe's own.
        return super().get_config(cls or gr.Dataframe)

    def get_block_name(self) -> str:
        return "dataframe"

    def preprocess(self, payload):
        if payload is None:
            return None
        try:
            return super().preprocess(payload)
        except Exception as err:
            return Refused(InvalidInput(self.field, "input.table", error=type(err).__name__))


class NamedImage(gr.Image):
    """An image input that reads only the header before decoding: a picture larger than `max_side` in
    either side, or a file that is not an image, is refused with an error naming the field, before any
    pixels are decoded (a 9,400² PNG would otherwise cost gigabytes)."""

    is_template = True

    def __init__(self, *args, max_side: int, field: str | None = None, **kwargs):
        self.max_side = max_side
        self.field = field  # the API parameter's name, when the label's translation key is another
        super().__init__(*args, **kwargs)

    def get_config(self, cls=None):
        # Gradio reads the props from __init__'s signature, which here hides Image's own.
        return super().get_config(cls or gr.Image)

    def get_block_name(self) -> str:
        return "image"

    def preprocess(self, payload):
        if payload is None:
            return None
        field = self.field or field_name(self.label)
        try:
            source = _image_source(payload)
            with PIL.Image.open(source) as probe:
                width, height = probe.size
        except Exception:
            return Refused(InvalidInput(field, "input.image_format"))
        if width > self.max_side or height > self.max_side:
            return Refused(
                InvalidInput(field, "input.image_too_large", limit=self.max_side, width=width, height=height)
            )
        try:
            return super().preprocess(payload)
        except Exception as err:
            return Refused(InvalidInput(field, "input.could_not_read", error=type(err).__name__))


def field_name(label) -> str:
    """The English field name behind a (translated) label: its translation key."""
    key = getattr(label, "key", None)
    if key is None and isinstance(label, str) and label.startswith("__i18n__"):
        import json

        key = json.loads(label.removeprefix("__i18n__")).get("key")
    return key or str(label)


def _image_source(payload):
    """A file path or an in-memory file for an image payload (an upload or a data: URL)."""
    url = getattr(payload, "url", None) or ""
    if url.startswith("data:"):
        return io.BytesIO(base64.b64decode(url.partition(",")[2]))
    return payload.path


def slider_ranges(model: str) -> tuple[dict, dict]:
    """Constructor arguments for the steps and guidance sliders at the model's defaults and ranges."""
    spec = get_spec(model)
    key = spec.key
    low, high = spec.guidance_range or (spec.default_guidance, spec.default_guidance + 1)
    steps = {"value": spec.default_steps, "minimum": spec.min_steps, "maximum": spec.max_steps}
    guidance = {
        "value": spec.default_guidance,
        "minimum": low,
        "maximum": high,
        "interactive": not spec.ignores_guidance,
        "info": t(f"guidance_note.{key}"),
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
    `validation.validate` enforces the chosen model's own range.
    """
    steps_args, guidance_args = slider_ranges(model_keys[0])
    union = served_ranges(model_keys)
    steps = NamedSlider(step=1, label=t("steps"), **{**steps_args, **union["steps"]})
    guidance = NamedSlider(step=0.1, label=t("guidance"), **{**guidance_args, **union["guidance"]})
    steps.shown = (steps_args["minimum"], steps_args["maximum"])
    guidance.shown = (guidance_args["minimum"], guidance_args["maximum"])
    return steps, guidance


def aspect_choices() -> list:
    """The aspect-ratio presets and "Custom" (translated; its value stays `CUSTOM_SIZE`)."""
    from flux_demo.validation import ASPECT_RATIOS

    return [*ASPECT_RATIOS, (t("custom_size"), CUSTOM_SIZE)]


def size_sliders(width: int, height: int, spec=None) -> tuple[NamedSlider, NamedSlider]:
    """Width and height sliders over the allowed sizes, in steps of 16 pixels; with `spec`, the page first
    shows that model's own sizes (the page narrows them per model, the server checks them per model)."""
    with gr.Row():
        sliders = tuple(
            NamedSlider(MIN_SIDE, MAX_SIDE, value=value, step=SIZE_MULTIPLE, label=t(name))
            for name, value in (("width", width), ("height", height))
        )
    if spec is not None:
        for slider in sliders:
            # A model with one size (the nano models' 256²) shows it on a locked slider.
            top = max(spec.max_side, MIN_SIDE + spec.size_multiple)
            slider.shown, slider.shown_step = (MIN_SIDE, top), spec.size_multiple
            slider.interactive = spec.max_side > MIN_SIDE
    return sliders


def seed_box(value: int = 0) -> NamedNumber:
    """An exact-integer seed field, 0 to 2**32 - 1."""
    return NamedNumber(value, label=t("seed"), precision=0, minimum=0, maximum=MAX_SEED)


# --- Stop, progress and downloads ------------------------------------------------------------------


def _session() -> str:
    """The browser session of the Gradio event running in this thread ("" outside one)."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None) or ""


def live_preview_box(**kwargs) -> gr.Checkbox:
    """The "Live preview" checkbox: off for API and MCP callers (its initial value is what they get by
    default, and streaming previews costs them time they did not ask for), ticked by the page itself
    when it loads (in the browser, no server round trip)."""
    from gradio.context import Context

    box = gr.Checkbox(False, label=t("live_preview"), **kwargs)
    Context.root_block.load(None, None, box, js="() => true", queue=False, api_visibility="private")
    return box


def stop_button(action: str) -> gr.Button:
    """The Stop button of one long action ("generate", "compare", "sweep", "typography", "suite", "edit"),
    shown while the action runs (see `stoppable` and `hide_stop`)."""
    return gr.Button(
        t("stop"), variant="stop", elem_id=f"{action}-stop", scale=1, min_width=80, visible=False
    )


def stoppable(services: AppServices, action: str, stop: gr.Button, triggers: Sequence, press: bool = True):
    """The start of a run of `action` on `triggers`, stoppable by `stop` (see `stop_button`): chain the
    run's own events on the returned one. Stop keeps what the run finished: the handler sees the stop at
    its next step (the endpoint runner's `run.stopped`), says where it stopped and ends normally, instead
    of Gradio cancelling the job and blanking its outputs. `press=False` when `stop` is already wired
    for `action` (several runs share one Stop button)."""

    def press_stop():
        services.stops.stop(_session(), action)

    def start():
        services.stops.clear(_session(), action)
        return gr.Button(visible=True)

    if press:
        stop.click(press_stop, None, None, queue=False, api_visibility="private")
    return gr.on(triggers, start, None, stop, queue=False, api_visibility="private")


def hide_stop(run, stop: gr.Button) -> None:
    """Hide `stop` once `run` (an event started by `stoppable`) ends, however it ends."""
    run.then(lambda: gr.Button(visible=False), None, stop, queue=False, api_visibility="private")


def run_with_stop(
    services: AppServices,
    action: str,
    stop: gr.Button,
    triggers: Sequence,
    fn: Callable,
    inputs,
    outputs,
    **event,
) -> object:
    """Wire `fn` to `triggers`, stoppable by `stop` (see `stoppable`), which shows while it runs; returns
    the run's event (the one with `event`'s api_name)."""
    run = stoppable(services, action, stop, triggers).then(fn, inputs, outputs, **event)
    hide_stop(run, stop)
    return run


def show_stop(stop) -> None:
    """Tell the visitor where a run stopped (a `GenerationCancelled` with its step counts)."""
    gr.Warning(say("ui.stopped_at", step=stop.step, steps=stop.steps))


class LocalizedProgress:
    """`gr.Progress` whose descriptions (catalog `Message`s) and units ("steps", "images") are in the
    visitor's language. A plain class, so it pickles into ZeroGPU's worker process like the progress it
    wraps."""

    def __init__(self, progress, language: str | None = None):
        self.progress = progress
        self.language = language or visitor_language()

    def __call__(self, value, desc: Message | str | None = None, unit: str = "steps", **kwargs):
        if isinstance(desc, Message):
            desc = desc.render(self.language)
        unit = Message(f"unit.{unit}").render(self.language)
        return self.progress(value, desc=desc, unit=unit, **kwargs)


REPORTS_MAX_AGE_S = 3600  # like the app's delete_cache: Gradio copies the files it serves into its cache


def download_folder(kind: str) -> Path:
    """A fresh folder for one result's files under Gradio's temp folder; folders of `kind` older than an
    hour are removed."""
    root = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio") / kind
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if time.time() - old.stat().st_mtime > REPORTS_MAX_AGE_S:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=root))


def download_name(settings: dict) -> str:
    """A file name that says what the image is: flux-schnell-42.png (model key and seed)."""
    return f"flux-{settings['model']}-{settings['seed']}.png"


def named_png(image: PIL.Image.Image, settings: dict, config: Settings) -> str:
    """`image` saved as a PNG named by `download_name`, with its text metadata (`image.info`) and, unless
    `config` turns marking off, XMP and a C2PA manifest (`flux_demo.provenance`); the path, which an image
    output serves under that name, so a download is not called image.png. Every output PNG goes here."""
    path = download_folder("images") / download_name(settings)
    provenance.for_settings(config).save_png(image, path)
    return str(path)
