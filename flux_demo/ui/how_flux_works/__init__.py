"""The "How FLUX works" tab: a lesson on the chapter's ideas, drawn from the served models and shown live.

Before any run the page shows the σ schedule, the MM-DiT diagram (the loaded model's figures beside the
full-size one's), the two block types, the text encoders and RoPE (`lesson`). A run (`/trajectory`)
records the predicted clean image and the noisy latents at each step and where each chosen word lands
(`/word_maps` without the strips); two more panels compare distilled and guided models and run the
encoder ablation (`/encoder_ablation`). Endpoints are in `endpoints`, the sections in `layout`, the
figures in `panels`.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from flux_demo.models import get_spec
from flux_demo.services import AppServices
from flux_demo.ui import share
from flux_demo.ui.how_flux_works import endpoints, lesson
from flux_demo.ui.how_flux_works.endpoints import localized, step_caption
from flux_demo.ui.how_flux_works.layout import experiment_section, form_section, lesson_section, steps_section
from flux_demo.ui.i18n import t, visitor_language
from flux_demo.ui.widgets import GPU_QUEUE, run_with_stop
from flux_demo.watching.word_maps import overlay

COUNT_HEADERS = ["encoder", "role", "tokens", "limit", "cut"]


@dataclass
class HowTab:
    """The tab's form ({field name: component}), which links fill."""

    form: dict


def show_step(index: float, recorded: dict | None):
    """x₀, x_t and the word maps at step `index` (1-based), at the picture's size, and the caption."""
    if not recorded:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
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


def build_tab(services: AppServices, demo: gr.Blocks) -> HowTab:
    model_keys = services.model_keys
    gr.Markdown(t("how_intro"))
    form = form_section(services)
    run_view = steps_section(get_spec(model_keys[0]).default_steps)
    lesson_view = lesson_section()
    distill = experiment_section(
        "how_distill_md",
        "how_distill_run_button",
        "distillation",
        "distill",
        [
            ("chart", lambda: gr.HTML(elem_id="how-distill-chart")),
            (
                "table",
                lambda: gr.Dataframe(
                    label=t("how_distill_table"), interactive=False, elem_id="how-distill-table"
                ),
            ),
            (
                "tiles",
                lambda: gr.Gallery(
                    label=t("how_distill_tiles"), columns=4, height=300, elem_id="how-distill-tiles"
                ),
            ),
        ],
    )
    ablation_view = experiment_section(
        "how_ablation_md",
        "how_ablation_run",
        "ablation",
        "ablation",
        [
            (
                "images",
                lambda: gr.Gallery(
                    label=t("how_ablation_images"), columns=3, height=300, elem_id="how-ablation-images"
                ),
            ),
            (
                "table",
                lambda: gr.Dataframe(
                    label=t("how_ablation_table"), interactive=False, elem_id="how-ablation-table"
                ),
            ),
            ("details", lambda: gr.JSON(label=t("details"), elem_id="how-ablation-details")),
        ],
    )
    recorded = gr.State(None)
    fields = ("prompt", "model", "seed", "steps", "guidance", "width", "height")
    links = {name: getattr(form, name) for name in fields}
    share.reset_on_model(
        form.model, {k: links[k] for k in ("steps", "guidance", "width", "height")}, model_keys
    )
    settings = list(links.values())

    def render_lesson(key, w, h):
        if key not in model_keys:  # from the browser: a custom value waits for a run to be refused
            return (gr.skip(),) * 5
        return lesson.render(services, key, int(w), int(h), visitor_language())

    lesson_outputs = [
        lesson_view.schedule,
        lesson_view.diagram,
        lesson_view.blocks,
        lesson_view.encoders,
        lesson_view.rope,
    ]
    for trigger in (demo.load, form.model.change):
        trigger(
            render_lesson, [form.model, form.width, form.height], lesson_outputs, api_visibility="private"
        )
    demo.load(
        lambda text, chosen: chosen or (form.words0 if text == form.prompt0 else ""),
        [form.prompt, form.words],
        form.words,
        queue=False,
        api_visibility="private",
    )
    run_event = run_with_stop(
        services,
        "trajectory",
        form.stop,
        [form.run.click],
        endpoints.make_trajectory_fn(services),
        [*settings, form.words],
        [form.final, run_view.strip, run_view.details, recorded],
        api_name="trajectory",
        concurrency_id=GPU_QUEUE,
        show_progress_on=[form.final],
    )
    step_outputs = [run_view.noisy, run_view.index, run_view.picked, run_view.picked_noisy]
    step_outputs += [run_view.picked_maps, run_view.caption]
    run_event.success(
        render_run,
        [run_view.details, recorded],
        [
            *step_outputs,
            form.animated,
            lesson_view.tokens,
            lesson_view.counts,
            run_view.view,
            lesson_view.tokens_view,
        ],
        api_visibility="private",
    )
    run_view.index.change(
        show_step, [run_view.index, recorded], step_outputs[2:], queue=False, api_visibility="private"
    )
    # /word_maps: the same run, returning only the image and the maps (API and MCP callers).
    gr.Button(visible=False).click(
        endpoints.make_word_maps_fn(services),
        [*settings, form.words],
        [
            gr.Image(visible=False, format="png", type="filepath"),
            gr.Gallery(visible=False, format="png"),
            gr.JSON(visible=False),
        ],
        api_name="word_maps",
        concurrency_id=GPU_QUEUE,
    )
    run_with_stop(
        services,
        "distillation",
        distill.stop,
        [distill.run.click],
        endpoints.make_distillation_fn(services),
        [form.prompt, form.model, form.seed, form.width, form.height],
        [distill.tiles, distill.chart, distill.table],
        api_visibility="private",
        concurrency_id=GPU_QUEUE,
    ).success(shown, None, distill.view, queue=False, api_visibility="private")
    run_with_stop(
        services,
        "ablation",
        ablation_view.stop,
        [ablation_view.run.click],
        endpoints.make_ablation_fn(services),
        settings,
        [ablation_view.images, ablation_view.table, ablation_view.details],
        api_name="encoder_ablation",
        concurrency_id=GPU_QUEUE,
    ).success(shown, None, ablation_view.view, queue=False, api_visibility="private")
    return HowTab(links)
