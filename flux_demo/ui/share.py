"""Sharing: "Copy link" next to results, filling the form from a link or a dropped PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gradio as gr
from PIL import Image, UnidentifiedImageError

from flux_demo import editing, metadata, permalink
from flux_demo.messages import Message
from flux_demo.models import MIN_SIDE, get_spec
from flux_demo.ui.i18n import say, t
from flux_demo.ui.widgets import CUSTOM_SIZE, as_text, refusal, slider_ranges
from flux_demo.validation import InvalidInput, size_for_aspect

# The full URL is built in the browser: behind a proxy or inside an iframe only the page knows its address.
_URL_JS = "(query) => (query ? window.location.origin + window.location.pathname + '?' + query : '')"
_COPY_JS = """(url) => {
    if (url && navigator.clipboard) { navigator.clipboard.writeText(url).catch(() => {}); }
    return url;
}"""


def add_copy_link(source: gr.JSON, tab: str, pick=None, elem_prefix: str | None = None) -> gr.Textbox:
    """The link to a result, built from its settings in `source` (seed included), and a button that
    copies it; `pick` extracts the settings when `source` holds more than them. The elements' ids start
    with `elem_prefix` (default: the tab)."""
    query = gr.Textbox(visible=False)
    prefix = elem_prefix or tab
    with gr.Row():
        copy = gr.Button(t("copy_link"), size="sm", scale=0, elem_id=f"{prefix}-copy-link")
        link = gr.Textbox(
            label=t("link_label"),  # not shown, but read out by screen readers
            show_label=False,
            placeholder=t("link_placeholder"),
            scale=4,
            interactive=False,
            elem_id=f"{prefix}-link",
        )

    def to_query(value) -> str:
        settings = pick(value) if pick and value else value
        return permalink.link_query(settings, tab) if settings else ""

    source.change(to_query, source, query, queue=False, api_visibility="private")
    # The link appears with each result; the button copies it.
    query.change(None, query, link, js=_URL_JS)
    copy.click(None, link, link, js=_COPY_JS)
    return link


def field_updates(values: dict, model_keys: Sequence[str]) -> dict[str, object]:
    """Form updates by field name (prompt, model, aspect, width, height, steps, guidance, seed,
    randomize, models, settings, num_images, the LoRA picker's fields) from checked link or PNG values;
    fields not given are absent."""
    from flux_demo.comparison import recommended_settings
    from flux_demo.ui.lora_picker import picker_updates

    copied = ("prompt", "seed", "width", "height", "models", "mode", "strength", "num_images")
    updates = {key: values[key] for key in copied if key in values}
    updates |= picker_updates(values)
    if "references" in values:  # images cannot travel in a link or a PNG: say which ones to add again
        updates["references_note"] = gr.Markdown(references_note(values["references"]), visible=True)
    model = values.get("model")
    spec = get_spec(model) if model else None
    if "seed" in values:
        updates["randomize"] = False  # a shared seed must not be re-randomized
    if "width" in values or "height" in values:
        updates["aspect"] = CUSTOM_SIZE
    elif spec:  # a new model without a size: its own native 1:1 size
        updates["width"], updates["height"] = size_for_aspect("1:1", spec)
        updates["aspect"] = "1:1"
    # A new model brings its own slider ranges and defaults; explicit values override the defaults.
    sliders = dict(zip(("steps", "guidance"), slider_ranges(model), strict=True)) if model else {}
    for key in ("steps", "guidance"):
        if key in values:
            sliders[key] = {**sliders.get(key, {}), "value": values[key]}
    if spec:  # the size sliders narrow to the model's own sizes (the server checks them again)
        for key in ("width", "height"):
            # A model with one size (the nano models' 256²) shows it on a locked slider: Gradio needs
            # minimum < maximum.
            one_size = spec.max_side <= MIN_SIDE
            sliders[key] = {
                "maximum": max(spec.max_side, MIN_SIDE + spec.size_multiple),
                "step": spec.size_multiple,
                "interactive": not one_size,
            }
            if key in updates:
                sliders[key]["value"] = updates[key]
    updates |= {key: gr.Slider(**args) for key, args in sliders.items()}
    if model:
        updates["model"] = model
    if "settings" in values:
        chosen = values["settings"]
        updates["settings"] = [[key, *chosen.get(key, recommended_settings(key))] for key in model_keys]
    return updates


def references_note(hashes: Sequence[str]) -> str:
    """What the edit form says when a link or PNG names reference images it cannot carry."""
    listed = ", ".join(f"{i}. `{h[:12]}`" for i, h in enumerate(hashes, 1))
    return t("references_again") + f" ({len(hashes)}): {listed}"


def form_updates(form: dict, values: dict, model_keys: Sequence[str]) -> list:
    """Updates for the components of `form` ({field name: component}), skipping fields not given."""
    updates = field_updates(values, model_keys)
    return [updates.get(name, gr.skip()) for name in form]


def reset_on_model(model: gr.Dropdown, form: dict, model_keys: Sequence[str]) -> None:
    """When the visitor picks another model, reset `form`'s steps, guidance and size to its defaults.

    `.input` fires on the visitor's own changes only, so a link or PNG that sets the model keeps its values.
    """

    def reset(key):
        # The dropdown takes typed text (so the server's own check names a wrong model on Run): text that
        # names no served model changes nothing here.
        if key not in model_keys:
            return [gr.skip() for _ in form]
        return form_updates(form, {"model": key}, model_keys)

    model.input(
        reset,
        model,
        list(form.values()),
        queue=False,
        api_visibility="private",
    )


def read_png_settings(png: str | None, model_keys: Sequence[str]) -> tuple[dict, list[Message]]:
    """Checked settings from a PNG's text metadata; raises gr.Error naming the `png` field."""
    if not png:
        raise refusal(InvalidInput("png", "input.png_required").message)
    try:
        with Image.open(png) as image:
            if image.format != "PNG":
                found = image.format or Message("input.unknown_format")
                raise refusal(InvalidInput("png", "input.not_png", format=found).message)
            # Text chunks after the pixels are read only by decoding them: refuse huge images first.
            editing.check_image_size("png", *image.size)
            text = metadata.read_png_text(image)
    except InvalidInput as err:
        raise refusal(err.message) from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise refusal(InvalidInput("png", "input.not_readable_image", name=Path(png).name).message) from None
    if not text:
        keys = ", ".join(metadata.PNG_KEYS)
        raise refusal(InvalidInput("png", "input.no_settings", keys=keys).message)
    return permalink.parse_settings(text, model_keys)


def add_png_restore(form: dict, model_keys: Sequence[str]) -> gr.File:
    """A drop box: a PNG made by this app (or with the same keys) refills the form with its settings."""
    with gr.Accordion(t("restore"), open=False):
        png = gr.File(label=t("restore_png"), file_types=[".png"], type="filepath", elem_id="restore-png")

    def restore(path):
        values, problems = read_png_settings(path, model_keys)
        for problem in problems:
            gr.Warning(as_text(say(problem)))
        gr.Info(say("ui.restored", fields=", ".join(values)))
        return form_updates(form, values, model_keys)

    png.upload(restore, png, list(form.values()), api_visibility="private")
    return png


def wire_permalinks(demo: gr.Blocks, tabs: gr.Tabs, notice: gr.HTML, forms: Sequence[dict], model_keys):
    """Fill every tab's form ({field name: component}) from the page URL's query parameters when it
    opens; ignored parameters are listed in `notice`."""

    def apply_link(request: gr.Request):
        values, problems = permalink.parse_settings(dict(request.query_params), model_keys)
        ignored = "; ".join(as_text(say(problem)) for problem in problems)
        message = f"<p><strong>{say('ui.link_ignored')}</strong> {ignored}</p>" if problems else ""
        return [
            *(update for form in forms for update in form_updates(form, values, model_keys)),
            gr.Tabs(selected=values["tab"]) if "tab" in values else gr.skip(),
            gr.HTML(message, visible=bool(problems)),
        ]

    components = [component for form in forms for component in form.values()]
    demo.load(apply_link, None, [*components, tabs, notice], queue=False, api_visibility="private")
