"""The tab's sections: the form and the run's outputs, the strips of one run, the chapter's figures and the
two experiment panels. Each returns its components by name; `build_tab` wires them."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from flux_demo.models import get_spec
from flux_demo.offline import nano
from flux_demo.services import AppServices
from flux_demo.ui import share
from flux_demo.ui.i18n import t
from flux_demo.ui.widgets import model_choices, seed_box, size_sliders, step_sliders, stop_button
from flux_demo.validation import MAX_PROMPT_CHARS, size_for_aspect


def form_section(services: AppServices) -> SimpleNamespace:
    """The prompt, model, words and settings, the Run and Stop buttons, the result and the word maps."""
    model_keys = services.model_keys
    first = get_spec(model_keys[0])
    width0, height0 = size_for_aspect("1:1", first)
    ui = SimpleNamespace()
    # Offline: a sign the nano models can write; online, a sign with a picture around it.
    ui.prompt0 = nano.example_prompts()[0] if first.is_nano else 'A red fox holding a sign that says "FLUX"'
    ui.words0 = "FLUX, sign" if "FLUX" in ui.prompt0 else ""
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            ui.prompt = gr.Textbox(
                label=t("prompt"), value=ui.prompt0, max_length=MAX_PROMPT_CHARS, elem_id="how-prompt"
            )
            ui.model = gr.Dropdown(
                model_choices(model_keys),
                value=first.key,
                label=t("model"),
                allow_custom_value=True,
                elem_id="how-model",
            )
            # Empty by default, so API callers who leave `words` out get no maps; the page fills it in.
            ui.words = gr.Textbox(label=t("how_words"), info=t("how_words_info"), elem_id="how-words")
            with gr.Row():
                ui.run = gr.Button(t("how_run"), variant="primary", elem_id="how-run", scale=3)
                ui.stop = stop_button("trajectory")
            with gr.Accordion(t("settings"), open=False):
                ui.seed = seed_box(42)
                ui.steps, ui.guidance = step_sliders(model_keys)
                ui.width, ui.height = size_sliders(width0, height0, first)
        with gr.Column(scale=1):
            ui.final = gr.Image(
                label=t("result"), format="png", type="filepath", interactive=False, elem_id="how-final"
            )
            ui.animated = gr.Gallery(label=t("how_word_maps"), columns=2, height=300, elem_id="how-word-maps")
    return ui


def steps_section(default_steps: int) -> SimpleNamespace:
    """The x₀ and x_t strips and one chosen step, hidden until the first run."""
    ui = SimpleNamespace()
    gr.Markdown(t("how_trajectory"))
    with gr.Column(visible=False) as ui.view:
        ui.strip = gr.Gallery(
            label=t("how_predicted"), columns=4, height=300, format="png", elem_id="how-strip"
        )
        ui.noisy = gr.Gallery(label=t("how_noisy"), columns=4, height=300, format="png", elem_id="how-noisy")
        ui.index = gr.Slider(
            1, default_steps, value=default_steps, step=1, label=t("how_step"), elem_id="how-step"
        )
        ui.caption = gr.Textbox(label=t("how_caption"), interactive=False, elem_id="how-caption")
        with gr.Row():
            ui.picked = gr.Image(
                label=t("how_predicted_one"), type="pil", format="png", interactive=False, elem_id="how-x0"
            )
            ui.picked_noisy = gr.Image(label=t("how_noisy_one"), type="pil", format="png", interactive=False)
            ui.picked_maps = gr.Gallery(
                label=t("how_word_maps_step"), columns=2, height=300, format="png", elem_id="how-maps-step"
            )
    gr.Markdown(t("how_words_md"))
    with gr.Accordion(t("details_json"), open=False):
        ui.details = gr.JSON(label=t("details"), elem_id="how-details")
    share.add_copy_link(ui.details, "how")
    return ui


def lesson_section() -> SimpleNamespace:
    """The chapter's figures (drawn when the page opens) and the run's tokens (hidden until a run)."""
    ui = SimpleNamespace()
    gr.Markdown(t("how_schedule_md"))
    ui.schedule = gr.HTML(elem_id="how-schedule")
    gr.Markdown(t("how_architecture_md"))
    ui.diagram = gr.HTML(elem_id="how-diagram")
    ui.blocks = gr.Markdown(elem_id="how-blocks")
    gr.Markdown(t("how_encoders_title"))
    ui.encoders = gr.Markdown(elem_id="how-encoders")
    with gr.Column(visible=False) as ui.tokens_view:
        ui.tokens = gr.HighlightedText(label=t("how_tokens_label"), elem_id="how-tokens")
        ui.counts = gr.Dataframe(label=t("how_counts"), elem_id="how-counts", interactive=False)
    gr.Markdown(t("how_rope_title"))
    ui.rope = gr.HTML(elem_id="how-rope")
    return ui


def experiment_section(text: str, button: str, action: str, elem: str, outputs: list) -> SimpleNamespace:
    """A panel that explains an experiment, runs it (with Stop) and shows `outputs` once it has run;
    `outputs` are (name, component factory) pairs."""
    ui = SimpleNamespace()
    gr.Markdown(t(text))
    with gr.Row():
        ui.run = gr.Button(t(button), elem_id=f"how-{elem}")
        ui.stop = stop_button(action)
    with gr.Column(visible=False) as ui.view:
        for name, make in outputs:
            setattr(ui, name, make())
    return ui
