"""The LoRA picker of the text-to-image and comparison tabs: a curated LoRA or any Hub LoRA by id, its
scale, optionally a second one, and a card about the chosen LoRA.

A picker's dropdowns list the curated LoRAs that fit the chosen model (`flux_demo.loras.loras_for`) and
take any typed Hub id (`owner/name`); the server checks whatever arrives (`flux_demo.validation`). Its
components' labels are the API parameters' names (`lora`, `lora_scale`, `lora_2`, `lora_2_scale`), and
their initial values mean "no LoRA", so API callers that do not send them get none.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from functools import cache

import gradio as gr

from flux_demo.loras import DEFAULT_SCALE, LORA_FIELDS, LORAS, SCALE_RANGE, loras_for
from flux_demo.ui.i18n import say, t
from flux_demo.ui.widgets import NamedSlider, event_handler

PREVIEW_MAX_BYTES = 64 * 1024  # a shipped preview is inlined into the card


def lora_choices(models) -> list[tuple[str, str]]:
    """ "No LoRA" and the curated LoRAs that fit any of `models` (a model key or a list of them; the value is
    the key API callers send)."""
    keys = [models] if isinstance(models, str) else [m for m in models or () if isinstance(m, str)]
    fitting = {spec.key: spec for key in keys for spec in loras_for(key)}
    return [(t("lora_none"), ""), *((spec.name, spec.key) for spec in fitting.values())]


@dataclass
class LoraPicker:
    """The picker's inputs by API parameter name (also their form field names, for links and PNGs)."""

    fields: dict[str, gr.components.Component]
    card: gr.HTML

    @property
    def inputs(self) -> list:
        return list(self.fields.values())


def lora_picker(models, count: int = 2, elem_prefix: str = "") -> LoraPicker:
    """`count` (1 or 2) LoRA dropdowns with their scale sliders for `models` (a key or a list), in an
    accordion, and the card."""
    low, high = SCALE_RANGE
    fields: dict = {}
    with gr.Accordion(t("loras"), open=False, elem_id=f"{elem_prefix}loras"):
        for name, scale_name in LORA_FIELDS[:count]:
            with gr.Row():
                fields[name] = gr.Dropdown(
                    lora_choices(models),
                    value="",
                    label=t(name),
                    info=t("lora_info"),
                    allow_custom_value=True,  # any Hub LoRA by id; checked on the server
                    elem_id=f"{elem_prefix}{name}",
                    scale=3,
                )
                fields[scale_name] = NamedSlider(
                    low, high, value=DEFAULT_SCALE, step=0.05, label=t(scale_name), scale=2
                )
        card = gr.HTML(elem_id=f"{elem_prefix}lora-card")
    picker = LoraPicker(fields, card)
    chosen = [fields[name] for name, _ in LORA_FIELDS[:count]]
    gr.on([c.change for c in chosen], lora_card, chosen, card, queue=False, api_visibility="private")
    return picker


def follow_model(picker: LoraPicker, model: gr.components.Component) -> None:
    """When the model (a dropdown) or the models (a checkbox group) change, list the LoRAs that fit; a
    curated LoRA that fits none is unset, a typed Hub id stays as typed."""
    dropdowns = [picker.fields[name] for name, _ in LORA_FIELDS if name in picker.fields]

    @event_handler()
    def refit(models, *values):
        choices = lora_choices(models)
        fitting = {value for _, value in choices}
        # From the browser (a private event is still reachable over HTTP): anything but text is no LoRA.
        values = [value if isinstance(value, str) else "" for value in values]
        updates = [
            gr.Dropdown(choices=choices, value="" if value in LORAS and value not in fitting else value)
            for value in values
        ]
        return updates if len(updates) > 1 else updates[0]  # one output takes the update itself, not a list

    model.change(refit, [model, *dropdowns], dropdowns, queue=False, api_visibility="private")


@event_handler()
def lora_card(*values) -> str:
    """HTML about the chosen LoRAs: name, licence, trigger words, source and preview. Registry text is
    ours; a typed Hub id is the visitor's and is escaped."""
    parts = [_card(value.strip()) for value in values if isinstance(value, str) and value.strip()]
    return "".join(parts)


def _card(value: str) -> str:
    spec = LORAS.get(value)
    if spec is None:  # any Hub LoRA: the visitor's text, escaped
        return f"<p>{html.escape(say('ui.lora_hub_card', id=value[:200]))}</p>"
    lines = [f"<strong>{html.escape(spec.name)}</strong> — {html.escape(spec.summary)}"]
    if spec.trigger:
        lines.append(f"{html.escape(say('ui.lora_trigger'))}: <code>{html.escape(spec.trigger)}</code>")
    lines.append(f"{html.escape(say('ui.lora_license'))}: {html.escape(spec.license)}")
    source = html.escape(spec.source)
    if spec.repo_id:
        address = f"https://huggingface.co/{spec.repo_id}"
        source = f'<a href="{address}" target="_blank" rel="noopener">{html.escape(spec.repo_id)}</a>'
    lines.append(f"{html.escape(say('ui.lora_source'))}: {source}")
    preview = _preview(spec.key)
    image = (
        f'<img src="{preview}" alt="" style="max-height:96px;float:right;margin-left:8px">' if preview else ""
    )
    return f'<div class="lora-card">{image}{"<br>".join(lines)}</div>'


@cache
def _preview(key: str) -> str:
    """The LoRA's preview image: a Hub address, or a shipped file inlined as a data URL."""
    spec = LORAS[key]
    if not spec.preview or spec.preview.startswith("https://"):
        return spec.preview
    path = spec.path.parent / spec.preview if spec.path else None
    if path is None or not path.is_file() or path.stat().st_size > PREVIEW_MAX_BYTES:
        return ""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def link_values(*values) -> list[tuple[str, float]]:
    """The (reference, scale) pairs of a picker's values (lora, lora_scale, ...), empty ones left out."""
    pairs = zip(values[::2], values[1::2], strict=True)
    return [
        (ref.strip(), float(scale))
        for ref, scale in pairs
        if isinstance(ref, str) and ref.strip() and isinstance(scale, (int, float))
    ]


def picker_updates(values: dict) -> dict:
    """Updates for every picker field from link or PNG values (`loras`: (reference, scale) pairs): the
    run's LoRAs in order, the fields after them emptied."""
    if "loras" not in values:
        return {}
    pairs = list(values["loras"])
    updates = {}
    for index, (name, scale_name) in enumerate(LORA_FIELDS):
        updates[name], updates[scale_name] = pairs[index] if index < len(pairs) else ("", DEFAULT_SCALE)
    return updates
