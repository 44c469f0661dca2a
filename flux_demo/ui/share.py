"""Sharing: "Copy link" next to results, filling the form from a link or a dropped PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gradio as gr
from PIL import Image, UnidentifiedImageError

from flux_demo import metadata, permalink
from flux_demo.generation import size_for_aspect
from flux_demo.models import get_spec
from flux_demo.ui.i18n import t

# The full URL is built in the browser: behind a proxy or inside an iframe only the page knows its address.
_COPY_JS = """(query) => {
    if (!query) { return ""; }
    const url = window.location.origin + window.location.pathname + "?" + query;
    if (navigator.clipboard) { navigator.clipboard.writeText(url).catch(() => {}); }
    return url;
}"""


def add_copy_link(details: gr.JSON, tab: str) -> gr.Textbox:
    """A "Copy link" button and the link it copies, built from a result's `details` (seed included)."""
    query = gr.Textbox(visible=False)
    with gr.Row():
        copy = gr.Button(t("copy_link"), size="sm", scale=0, elem_id=f"{tab}-copy-link")
        link = gr.Textbox(
            show_label=False,
            placeholder=t("link_placeholder"),
            scale=4,
            interactive=False,
            elem_id=f"{tab}-link",
        )
    details.change(
        lambda d: permalink.link_query(d, tab) if d else "",
        details,
        query,
        queue=False,
        api_visibility="private",
    )
    copy.click(None, query, link, js=_COPY_JS)
    return link


def form_updates(values: dict, model_keys: Sequence[str]) -> list:
    """Updates for the text-to-image form (`TextToImageTab.form`) from checked values; fields not given
    are left as they are."""
    from flux_demo.ui.text_to_image import slider_ranges

    model = values.get("model")
    steps_args, guidance_args = slider_ranges(model) if model else ({}, {})
    skip = gr.skip()
    aspect = skip
    if "width" in values or "height" in values:
        aspect = "Custom"
    elif model:  # a new model without a size: its own native 1:1 size
        width, height = size_for_aspect("1:1", get_spec(model).default_size)
        values, aspect = {**values, "width": width, "height": height}, "1:1"
    if "steps" in values:
        steps_args["value"] = values["steps"]
    if "guidance" in values:
        guidance_args["value"] = values["guidance"]
    return [
        values.get("prompt", skip),
        model or skip,
        aspect,
        values.get("width", skip),
        values.get("height", skip),
        gr.Slider(**steps_args) if steps_args else skip,
        gr.Slider(**guidance_args) if guidance_args else skip,
        values.get("seed", skip),
        False if "seed" in values else skip,  # a shared seed must not be re-randomized
    ]


def read_png_settings(png: str | None, model_keys: Sequence[str]) -> tuple[dict, list[str]]:
    """Checked settings from a PNG's text metadata; raises gr.Error naming the `png` field."""
    if not png:
        raise gr.Error("png: drop a PNG made by this app (or one with the same metadata keys)")
    try:
        with Image.open(png) as image:
            if image.format != "PNG":
                raise gr.Error(f"png: must be a PNG file, got {image.format or 'an unknown format'}")
            text = metadata.read_png_text(image)
    except (UnidentifiedImageError, OSError):
        raise gr.Error(f"png: {Path(png).name} is not a readable image") from None
    if not text:
        raise gr.Error(
            f"png: no generation settings found; expected text keys {', '.join(metadata.PNG_KEYS)}"
        )
    return permalink.parse_settings(text, model_keys)


def add_png_restore(form: list, model_keys: Sequence[str]) -> gr.File:
    """A drop box: a PNG made by this app (or with the same keys) refills the form with its settings."""
    with gr.Accordion(t("restore"), open=False):
        png = gr.File(label=t("restore_png"), file_types=[".png"], type="filepath", elem_id="restore-png")

    def restore(path):
        values, problems = read_png_settings(path, model_keys)
        for problem in problems:
            gr.Warning(problem)
        gr.Info(f"Restored {', '.join(values)} from the PNG.")
        return form_updates(values, model_keys)

    png.upload(restore, png, form, api_visibility="private")
    return png


def link_updates(values: dict, model_keys: Sequence[str]) -> list:
    """Updates for the comparison form (`ComparisonTab.form`) from a link's checked values."""
    skip = gr.skip()
    return [values.get(key, skip) for key in ("prompt", "models", "seed", "width", "height")]


def wire_permalinks(
    demo: gr.Blocks, tabs: gr.Tabs, notice: gr.Markdown, forms: tuple[list, list], model_keys
):
    """Fill the forms (text to image, comparison) from the page URL's query parameters when it opens;
    ignored parameters are listed in `notice`."""
    generate_form, compare_form = forms

    def apply_link(request: gr.Request):
        values, problems = permalink.parse_settings(dict(request.query_params), model_keys)
        message = "**Some link parameters were ignored:** " + "; ".join(problems) if problems else ""
        return [
            *form_updates(dict(values), model_keys),
            *link_updates(values, model_keys),
            gr.Tabs(selected=values["tab"]) if "tab" in values else gr.skip(),
            gr.Markdown(message, visible=bool(problems)),
        ]

    demo.load(
        apply_link, None, [*generate_form, *compare_form, tabs, notice], queue=False, api_visibility="private"
    )
