"""The Edit tab: FLUX.2 [klein] with 1–10 reference images (`/edit`), FLUX.1 image-to-image (`/img2img`)
and klein inpainting (`/inpaint`). The registry says which model offers which mode; `editing` says what
each mode takes, and this tab shows only those controls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio.data_classes import FileData, GradioRootModel
from gradio.utils import get_upload_folder, is_in_or_equal
from PIL import Image

from flux_demo import editing
from flux_demo.messages import Message
from flux_demo.models import MAX_SIDE, SIZE_MULTIPLE, ModelSpec, get_spec
from flux_demo.services import AppServices
from flux_demo.ui import share
from flux_demo.ui.edit_endpoints import make_handlers
from flux_demo.ui.i18n import t
from flux_demo.ui.widgets import (
    GPU_QUEUE,
    NamedImage,
    NamedSlider,
    Refused,
    download_folder,
    event_handler,
    hide_stop,
    model_choices,
    refusal,
    seed_box,
    step_sliders,
    stop_button,
    stoppable,
)
from flux_demo.validation import MAX_PROMPT_CHARS, InvalidInput

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples" / "edit"
EXAMPLES = (  # (prompt, reference file names) drawn by examples/edit/draw_references.py
    ("Put the red ball from image 2 on the blue sofa from image 1", ("sofa.png", "ball.png")),
    ("The same room at night, lit by a warm lamp", ("sofa.png",)),
    ('A poster with the word "FLUX" in the style of image 1', ("stripes.png",)),
)
# Offline, one edit of the nano grammar per template, with references drawn from the grammar
# (examples/edit/draw_nano_references.py); file names are relative to EXAMPLES_DIR.
NANO_EXAMPLES_FILE = EXAMPLES_DIR / "nano" / "examples.json"


def examples_for(spec: ModelSpec) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(prompt, reference file names) of the tab's examples: grammar edits where nano-klein is served."""
    if not spec.is_nano:
        return EXAMPLES
    items = json.loads(NANO_EXAMPLES_FILE.read_text(encoding="utf-8"))
    return tuple((item["prompt"], tuple(f"nano/{name}" for name in item["files"])) for item in items)


class ReferenceData(GradioRootModel):
    """The references as sent: a gallery's items from the page, plain files from `gradio_client`
    (`references=[handle_file(a), handle_file(b)]`), or anything else from elsewhere, which
    `ReferenceGallery.preprocess` refuses with a message naming the field (instead of a pydantic trace)."""

    root: list[Any]


def inline_schema(schema: dict) -> dict:
    """`schema` with every `#/$defs/...` reference replaced by its definition and no `$defs` left: the API
    and MCP describe a parameter on its own, where a reference to a shared `$defs` points nowhere."""
    definitions = schema.get("$defs", {})

    def resolve(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


class ReferenceGallery(gr.Gallery):
    """A gallery input whose value is the list of image paths, in order (empty: []). Only headers are
    read here: the count, each image's sides and aspect, and all of them together are checked before
    anything is decoded (`editing.check_images`)."""

    is_template = True
    data_model = ReferenceData

    def get_block_name(self) -> str:
        return "gallery"

    def api_info(self) -> dict:
        """A list of image files, self-contained (see `inline_schema`)."""
        return {"type": "array", "items": inline_schema(FileData.model_json_schema())}

    def preprocess(self, payload):
        if payload is None or not payload.root:
            return []
        paths = []
        try:
            for index, item in enumerate(payload.root[: editing.MODES["edit"].max_images + 1], 1):
                if isinstance(item, dict):
                    item = item.get("image", item)
                if isinstance(item, str) and item.startswith("data:"):  # MCP sends files as data: URLs
                    paths.append(data_url_file(f"references[{index}]", item))
                elif isinstance(item, dict) and isinstance(item.get("path"), str):
                    # Gradio checks only files sent with their FileData meta; a bare path must still be
                    # an upload (or a result) in Gradio's folder, never a file elsewhere on the server.
                    if not is_in_or_equal(item["path"], get_upload_folder()):
                        raise InvalidInput(f"references[{index}]", "input.not_uploaded")
                    paths.append(item["path"])
                else:
                    raise InvalidInput("references", "input.references_files", kind=type(item).__name__)
            editing.check_images("references", paths, editing.MODES["edit"].max_images)
        except InvalidInput as err:
            return Refused(err)
        return paths


MAX_DATA_URL_BYTES = 20 * 1024 * 1024  # as an upload (launch_options' max_file_size)


def data_url_file(field_name: str, url: str) -> str:
    """A `data:image/...;base64,...` reference saved as a file under Gradio's temp folder (its header is
    checked like an upload's, by the caller); anything else is refused naming the field."""
    import base64
    import binascii

    header, _, encoded = url.partition(",")
    if not (header.startswith("data:image/") and header.endswith(";base64")):
        raise InvalidInput(field_name, "input.references_files", kind="str")
    if len(encoded) * 3 // 4 > MAX_DATA_URL_BYTES:
        raise InvalidInput(field_name, "input.file_too_large", megabytes=MAX_DATA_URL_BYTES // (1024 * 1024))
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise InvalidInput(field_name, "input.image_unreadable") from None
    path = download_folder("references") / "reference"
    path.write_bytes(data)
    return str(path)


class MaskEditor(gr.ImageEditor):
    """The mask editor, whose background and layers are checked from their headers before Gradio decodes
    them (a painted layer the size of the first reference at most)."""

    is_template = True

    def get_block_name(self) -> str:
        return "imageeditor"

    def preprocess(self, payload):
        if payload is None:
            return None
        files = [payload.background, payload.composite, *(payload.layers or [])]
        paths = [getattr(file, "path", None) for file in files]
        try:
            for path in filter(None, paths):
                editing.check_image_size("mask", *editing.image_size("mask", path))
        except InvalidInput as err:
            return Refused(err)
        return super().preprocess(payload)


def edit_models(model_keys) -> list[str]:
    """The served models that offer any editing mode."""
    return [key for key in model_keys if editing.modes_for(get_spec(key))]


# --- private UI events -------------------------------------------------------------------------


def mode_choices(model: str, current: str | None = None):
    """The mode radio for `model`: its modes, keeping `current` (e.g. set by a link) where offered."""
    modes = list(editing.modes_for(get_spec(model)))
    return gr.Radio(
        choices=[(t(f"mode_{m}"), m) for m in modes], value=current if current in modes else modes[0]
    )


def mode_controls(mode: str) -> list:
    """Visibility of [strength, guidance, mask editor, run edit, run img2img, run inpaint] for `mode`."""
    spec = editing.MODES.get(mode, editing.MODES["edit"])
    shown = [spec.uses_strength, spec.uses_guidance, spec.uses_mask]
    return [gr.update(visible=v) for v in shown] + [gr.update(visible=mode == m) for m in editing.MODES]


@event_handler()
def first_image(references: list):
    """The first reference's path (img2img and inpaint take one image), or None."""
    return references[0] if references else None


@event_handler()
def mask_canvas(references: list):
    """The mask editor, opened over the first reference."""
    return {"background": references[0], "layers": [], "composite": None} if references else None


@event_handler()
def painted_mask(editor: dict | None, references: list):
    """(first reference, mask) from the editor: painted pixels (any layer's alpha) are white."""
    if not references:
        return None, None
    with Image.open(references[0]) as first:
        size = first.size
    layers = (editor or {}).get("layers") or []
    alpha = np.zeros(size[::-1], dtype=bool)
    for layer in layers:
        layer = layer.convert("RGBA").resize(size, Image.NEAREST)
        alpha |= np.asarray(layer)[..., 3] > 0
    return references[0], Image.fromarray(np.where(alpha, 255, 0).astype(np.uint8), "L")


@event_handler()
def add_reference(result, references: list):
    """The gallery with the result appended (a gallery holds at most 10)."""
    if result is None:
        raise refusal(Message("input.run_first"))
    limit = editing.MODES["edit"].max_images
    if len(references) >= limit:
        raise refusal(InvalidInput("references", "input.references_full", limit=limit).message)
    return [*references, result]


@event_handler()
def before_after(result, references: list):
    return (references[0], result) if references and result is not None else None


def shown_with_a_result():
    """ "Use as reference" and the seed used, hidden until there is a result."""
    return gr.Button(visible=True), gr.Number(visible=True)


def link_settings(details: dict | None) -> dict | None:
    return details or None


@dataclass
class EditTab:
    form: dict  # {field name: component} that a link or a PNG can fill


def build_tab(services: AppServices) -> EditTab:
    keys = edit_models(services.model_keys)
    if not keys:
        gr.Markdown(t("edit_none"))
        return EditTab({})
    # The headline mode (klein with references) first, where it is served.
    keys.sort(key=lambda key: "edit" not in editing.modes_for(get_spec(key)))
    first = get_spec(keys[0])
    missing = [
        f"{get_spec(k).name} {m}: {why}"
        for k in keys
        for m, why in editing.missing_modes(get_spec(k)).items()
    ]
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            gr.Markdown(t("edit_note"), elem_id="edit-note")
            if missing:
                gr.Markdown("**Not offered here:** " + "; ".join(missing), elem_id="edit-missing")
            references_note = gr.Markdown(visible=False, elem_id="edit-references-note")
            references = ReferenceGallery(
                label=t("references"),
                type="filepath",
                interactive=True,
                columns=4,
                height=280,
                file_types=["image"],
                elem_id="edit-references",
            )
            prompt = gr.Textbox(
                label=t("prompt"),
                lines=1,
                max_lines=6,
                max_length=MAX_PROMPT_CHARS,
                placeholder="Put the cat from image 2 on the sofa from image 1",
                elem_id="edit-prompt",
            )
            with gr.Row():
                model = gr.Dropdown(
                    model_choices(keys),
                    value=first.key,
                    label=t("model"),
                    allow_custom_value=True,
                    elem_id="edit-model",
                )
                modes = list(editing.modes_for(first))
                mode = gr.Radio(
                    [(t(f"mode_{m}"), m) for m in modes], value=modes[0], label=t("mode"), elem_id="edit-mode"
                )
            strength = NamedSlider(0.05, 1.0, value=0.75, step=0.05, label=t("strength"), visible=False)
            with gr.Group(visible=False) as mask_group:
                editor = MaskEditor(
                    label=t("mask"),
                    type="pil",
                    sources=(),
                    layers=False,
                    transforms=(),
                    brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"),
                    elem_id="edit-mask",
                )
                load_mask = gr.Button(t("mask_load"), size="sm")
            with gr.Row():
                runs = {
                    m: gr.Button(
                        t("run"), variant="primary", elem_id=f"edit-run-{m}", scale=3, visible=m == "edit"
                    )
                    for m in editing.MODES
                }
                stop = stop_button("edit")
            with gr.Accordion(t("advanced"), open=False):
                gr.Markdown(t("edit_size_info"))
                with gr.Row():
                    width, height = (
                        NamedSlider(0, MAX_SIDE, value=0, step=SIZE_MULTIPLE, label=t(side))
                        for side in ("width", "height")
                    )
                steps, guidance = step_sliders(keys)
                guidance.visible = editing.MODES[modes[0]].uses_guidance
                with gr.Row():
                    seed = seed_box()
                    randomize = gr.Checkbox(True, label=t("randomize"))
            # A link or PNG names a mode; the radio takes it once the model's choices are in place.
            requested_mode = gr.Textbox(visible=False)
            form = {
                "prompt": prompt,
                "model": model,
                "mode": requested_mode,
                "strength": strength,
                "width": width,
                "height": height,
                "steps": steps,
                "guidance": guidance,
                "seed": seed,
                "randomize": randomize,
                "references_note": references_note,
            }
            share.add_png_restore(form, services.model_keys)
        with gr.Column(scale=1):
            # Also an input of private events (use as reference, before/after): checked from its header.
            result = NamedImage(
                label=t("result"),
                format="png",
                type="pil",
                interactive=False,
                elem_id="edit-result",
                max_side=editing.MAX_IMAGE_SIDE,
                field="result",
            )
            # Shown with the first result: before a run there is nothing to reuse and no seed.
            use = gr.Button(t("use_as_reference"), size="sm", elem_id="edit-use", visible=False)
            slider = gr.ImageSlider(label=t("before_after"), type="pil", format="png", elem_id="edit-slider")
            seed_used = gr.Number(
                label=t("seed_used"), precision=0, interactive=False, visible=False, elem_id="edit-seed-used"
            )
            with gr.Accordion(t("details_json"), open=False):
                details = gr.JSON(label=t("details"), elem_id="edit-details")
            share.add_copy_link(details, "edit", pick=link_settings)
            gr.Markdown(t("edit_link_info"))
    # Hidden inputs of /img2img and /inpaint, filled from the gallery and the mask editor.
    image = NamedImage(
        label="image", type="filepath", format="png", visible=False, max_side=editing.MAX_IMAGE_SIDE
    )
    mask = NamedImage(
        label="mask", type="filepath", format="png", visible=False, max_side=editing.MAX_IMAGE_SIDE
    )

    edit_fn, img2img_fn, inpaint_fn = make_handlers(services)
    outputs = [result, seed_used, details]
    private: dict[str, Any] = {"queue": False, "api_visibility": "private"}
    started = {
        mode: stoppable(services, "edit", stop, [button.click], press=index == 0)
        for index, (mode, button) in enumerate(runs.items())
    }
    events = [
        started["edit"].then(
            edit_fn,
            [prompt, references, model, seed, randomize, steps, width, height],
            outputs,
            api_name="edit",
            concurrency_id=GPU_QUEUE,
        ),
        started["img2img"]
        .then(first_image, references, image, **private)
        .success(
            img2img_fn,
            [prompt, image, model, strength, seed, randomize, steps, guidance, width, height],
            outputs,
            api_name="img2img",
            concurrency_id=GPU_QUEUE,
        ),
        started["inpaint"]
        .then(painted_mask, [editor, references], [image, mask], **private)
        .success(
            inpaint_fn,
            [prompt, image, mask, model, strength, seed, randomize, steps],
            outputs,
            api_name="inpaint",
            concurrency_id=GPU_QUEUE,
        ),
    ]
    for event in events:
        event.success(before_after, [result, references], slider, **private)
        event.success(shown_with_a_result, None, [use, seed_used], **private)
        hide_stop(event, stop)
    use.click(add_reference, [result, references], references, **private)
    model.change(mode_choices, [model, mode], mode, **private)
    requested_mode.change(mode_choices, [model, requested_mode], mode, **private)
    share.reset_on_model(model, {"steps": steps, "guidance": guidance}, services.model_keys)
    # The canvas takes its background once it is visible.
    mode.change(mode_controls, mode, [strength, guidance, mask_group, *runs.values()], **private).then(
        mask_canvas, references, editor, **private
    )
    load_mask.click(mask_canvas, references, editor, **private)
    if "edit" in editing.modes_for(first):
        examples = examples_for(first)
        gr.Examples(
            [
                [prompt_text, [str(EXAMPLES_DIR / name) for name in names], first.key]
                for prompt_text, names in examples
            ],
            [prompt, references, model],
            label=t("examples"),
            example_labels=[prompt_text for prompt_text, _ in examples],
        )
    return EditTab(form)
