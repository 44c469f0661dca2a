"""The "How FLUX works" tab: a lesson on the chapter's ideas, drawn from the served models and shown live.

Before any run the page shows the σ schedule, the MM-DiT diagram (the loaded model's figures beside the
full-size one's), the two block types, the text encoders and RoPE (`lesson`). A run (`/trajectory`)
records the predicted clean image and the noisy latents at each step and where each chosen word lands
(`/word_maps` without the strips); two more panels compare distilled and guided models and run the
encoder ablation (`/encoder_ablation`). Endpoints are in `endpoints`, figures in `panels`.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from flux_demo.models import get_spec
from flux_demo.offline import nano
from flux_demo.pipelines import ModelHost
from flux_demo.ui import share
from flux_demo.ui.how_flux_works import endpoints, lesson
from flux_demo.ui.how_flux_works.endpoints import localized, step_caption
from flux_demo.ui.i18n import t
from flux_demo.ui.server_text import visitor_language
from flux_demo.ui.widgets import (
    GPU_QUEUE,
    model_choices,
    run_with_stop,
    seed_box,
    size_sliders,
    step_sliders,
    stop_button,
)
from flux_demo.validation import MAX_PROMPT_CHARS, size_for_aspect

COUNT_HEADERS = ["encoder", "role", "tokens", "limit", "cut"]


@dataclass
class HowTab:
    """The tab's form (for links) and its components the app wires."""

    form: dict


def show_step(index: float, recorded: dict | None):
    """x₀, x_t and the word maps at step `index` (1-based), at the picture's size, and the caption."""
    if not recorded:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    from flux_demo.watching.word_maps import overlay

    steps, request = recorded["steps"], recorded["request"]
    step = steps[min(max(int(index), 1), len(steps)) - 1]
    size = (request.width, request.height)
    maps = [
        (overlay(step.predicted.resize(size), step.word_maps[i]), w) for i, w in enumerate(recorded["words"])
    ]
    return step.predicted.resize(size), step.noisy.resize(size), maps, step_caption(step, len(steps))


def token_views(details: dict, language: str):
    """Highlighted tokens per encoder (its role in the label), and the counts table."""
    highlighted, rows = [], []
    for view in details["text_tokens"]:
        role = lesson.text("how_role_attended" if view["attended"] else "how_role_pooled", language)
        highlighted += [(token, f"{view['encoder']} · {role}") for token in view["tokens"]]
        rows.append([view["encoder"], role, view["count"], view["limit"], view["truncated"]])
    rows.append([lesson.text("how_image_tokens", language), "", details["image_tokens"], None, None])
    return highlighted, localized(COUNT_HEADERS, rows)


def render_run(details: dict, recorded: dict):
    """After a run: the x_t strip, the step slider, the chosen step, the word-map animations and tokens."""
    if not details or not recorded:
        return (gr.skip(),) * 11
    request = recorded["request"]
    noisy = [(step.noisy, step_caption(step, request.steps)) for step in recorded["steps"]]
    slider = gr.Slider(1, request.steps, value=request.steps, step=1, interactive=True)
    highlighted, counts = token_views(details, visitor_language())
    animated = endpoints.animations(recorded) if recorded["words"] else []
    return noisy, slider, *show_step(request.steps, recorded), animated, highlighted, counts, shown(), shown()


def shown():
    """Show a section that only holds results, once there are some."""
    return gr.Column(visible=True)


def build_tab(host: ModelHost, demo: gr.Blocks) -> HowTab:
    model_keys = host.model_keys
    first = get_spec(model_keys[0])
    width0, height0 = size_for_aspect("1:1", first)
    # Offline: a sign the nano models can write; online, a sign with a picture around it.
    prompt0 = nano.example_prompts()[0] if first.is_nano else 'A red fox holding a sign that says "FLUX"'
    words0 = "FLUX, sign" if "FLUX" in prompt0 else ""
    gr.Markdown(t("how_intro"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            prompt = gr.Textbox(
                label=t("prompt"), value=prompt0, max_length=MAX_PROMPT_CHARS, elem_id="how-prompt"
            )
            model = gr.Dropdown(
                model_choices(model_keys),
                value=first.key,
                label=t("model"),
                allow_custom_value=True,
                elem_id="how-model",
            )
            # Empty by default, so API callers who leave `words` out get no maps; the page fills it below.
            words = gr.Textbox(label=t("how_words"), info=t("how_words_info"), elem_id="how-words")
            with gr.Row():
                run = gr.Button(t("how_run"), variant="primary", elem_id="how-run", scale=3)
                stop = stop_button("trajectory")
            with gr.Accordion(t("settings"), open=False):
                seed = seed_box(42)
                steps, guidance = step_sliders(model_keys)
                width, height = size_sliders(width0, height0, first)
        with gr.Column(scale=1):
            final = gr.Image(
                label=t("result"), format="png", type="filepath", interactive=False, elem_id="how-final"
            )
            animated = gr.Gallery(label=t("how_word_maps"), columns=2, height=300, elem_id="how-word-maps")
    gr.Markdown(t("how_trajectory"))
    with gr.Column(visible=False) as steps_view:  # shown with the first run
        strip = gr.Gallery(label=t("how_predicted"), columns=4, height=300, format="png", elem_id="how-strip")
        noisy_strip = gr.Gallery(
            label=t("how_noisy"), columns=4, height=300, format="png", elem_id="how-noisy"
        )
        index = gr.Slider(
            1, first.default_steps, value=first.default_steps, step=1, label=t("how_step"), elem_id="how-step"
        )
        caption = gr.Textbox(label=t("how_caption"), interactive=False, elem_id="how-caption")
        with gr.Row():
            picked = gr.Image(
                label=t("how_predicted_one"), type="pil", format="png", interactive=False, elem_id="how-x0"
            )
            picked_noisy = gr.Image(label=t("how_noisy_one"), type="pil", format="png", interactive=False)
            picked_maps = gr.Gallery(
                label=t("how_word_maps_step"), columns=2, height=300, format="png", elem_id="how-maps-step"
            )
    gr.Markdown(t("how_words_md"))
    with gr.Accordion(t("details_json"), open=False):
        details = gr.JSON(label=t("details"), elem_id="how-details")
    share.add_copy_link(details, "how")

    gr.Markdown(t("how_schedule_md"))
    schedule = gr.HTML(elem_id="how-schedule")
    gr.Markdown(t("how_architecture_md"))
    diagram = gr.HTML(elem_id="how-diagram")
    blocks = gr.Markdown(elem_id="how-blocks")
    gr.Markdown(t("how_encoders_title"))
    encoders = gr.Markdown(elem_id="how-encoders")
    with gr.Column(visible=False) as tokens_view:  # shown with the first run
        tokens = gr.HighlightedText(label=t("how_tokens_label"), elem_id="how-tokens")
        counts = gr.Dataframe(label=t("how_counts"), elem_id="how-counts", interactive=False)
    gr.Markdown(t("how_rope_title"))
    rope = gr.HTML(elem_id="how-rope")

    gr.Markdown(t("how_distill_md"))
    with gr.Row():
        distill = gr.Button(t("how_distill_run_button"), elem_id="how-distill")
        distill_stop = stop_button("distillation")
    with gr.Column(visible=False) as distill_view:
        distill_chart = gr.HTML(elem_id="how-distill-chart")
        distill_table = gr.Dataframe(
            label=t("how_distill_table"), interactive=False, elem_id="how-distill-table"
        )
        distill_tiles = gr.Gallery(
            label=t("how_distill_tiles"), columns=4, height=300, elem_id="how-distill-tiles"
        )

    gr.Markdown(t("how_ablation_md"))
    with gr.Row():
        ablate = gr.Button(t("how_ablation_run"), elem_id="how-ablation")
        ablate_stop = stop_button("ablation")
    with gr.Column(visible=False) as ablation_view:
        ablation_images = gr.Gallery(
            label=t("how_ablation_images"), columns=3, height=300, elem_id="how-ablation-images"
        )
        ablation_table = gr.Dataframe(
            label=t("how_ablation_table"), interactive=False, elem_id="how-ablation-table"
        )
        ablation_details = gr.JSON(label=t("details"), elem_id="how-ablation-details")

    recorded = gr.State(None)
    form = {
        "prompt": prompt,
        "model": model,
        "seed": seed,
        "steps": steps,
        "guidance": guidance,
        "width": width,
        "height": height,
    }
    share.reset_on_model(
        model, {"steps": steps, "guidance": guidance, "width": width, "height": height}, model_keys
    )
    settings = [prompt, model, seed, steps, guidance, width, height]

    def render_lesson(key, w, h):
        if key not in model_keys:  # from the browser: a custom value waits for a run to be refused
            return (gr.skip(),) * 5
        return lesson.render(host, key, int(w), int(h), visitor_language())

    lesson_outputs = [schedule, diagram, blocks, encoders, rope]
    demo.load(render_lesson, [model, width, height], lesson_outputs, api_visibility="private")
    demo.load(
        lambda text, chosen: chosen or (words0 if text == prompt0 else ""),
        [prompt, words],
        words,
        queue=False,
        api_visibility="private",
    )
    model.change(render_lesson, [model, width, height], lesson_outputs, api_visibility="private")
    run_event = run_with_stop(
        host,
        "trajectory",
        stop,
        [run.click],
        endpoints.make_trajectory_fn(host),
        [*settings, words],
        [final, strip, details, recorded],
        api_name="trajectory",
        concurrency_id=GPU_QUEUE,
        show_progress_on=[final],
    )
    step_outputs = [noisy_strip, index, picked, picked_noisy, picked_maps, caption]
    run_event.success(
        render_run,
        [details, recorded],
        [*step_outputs, animated, tokens, counts, steps_view, tokens_view],
        api_visibility="private",
    )
    index.change(
        show_step,
        [index, recorded],
        step_outputs[2:],
        queue=False,
        api_visibility="private",
    )
    # /word_maps: the same run, returning only the image and the maps (API and MCP callers).
    word_button = gr.Button(visible=False)
    word_button.click(
        endpoints.make_word_maps_fn(host),
        [*settings, words],
        [
            gr.Image(visible=False, format="png", type="filepath"),
            gr.Gallery(visible=False, format="png"),
            gr.JSON(visible=False),
        ],
        api_name="word_maps",
        concurrency_id=GPU_QUEUE,
    )
    run_with_stop(
        host,
        "distillation",
        distill_stop,
        [distill.click],
        endpoints.make_distillation_fn(host),
        [prompt, model, seed, width, height],
        [distill_tiles, distill_chart, distill_table],
        api_visibility="private",
        concurrency_id=GPU_QUEUE,
    ).success(shown, None, distill_view, queue=False, api_visibility="private")
    run_with_stop(
        host,
        "ablation",
        ablate_stop,
        [ablate.click],
        endpoints.make_ablation_fn(host),
        settings,
        [ablation_images, ablation_table, ablation_details],
        api_name="encoder_ablation",
        concurrency_id=GPU_QUEUE,
    ).success(shown, None, ablation_view, queue=False, api_visibility="private")
    return HowTab(form)
