"""The comparison tab: one prompt on several models side by side (`/compare`), and a seed sweep."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr

from flux_demo import comparison
from flux_demo.comparison import MAX_SWEEP_SEEDS, ModelRun
from flux_demo.models import get_spec
from flux_demo.offline import nano
from flux_demo.services import AppServices
from flux_demo.ui import live, share
from flux_demo.ui.endpoints import each_model, endpoint
from flux_demo.ui.i18n import model_title, say, t
from flux_demo.ui.lora_picker import follow_model, link_values, lora_picker
from flux_demo.ui.tables import Column, localized_table, table_style
from flux_demo.ui.widgets import (
    GPU_QUEUE,
    NamedCheckboxGroup,
    NamedDataframe,
    NamedSlider,
    event_handler,
    live_preview_box,
    model_choices,
    named_png,
    run_with_stop,
    seed_box,
    size_sliders,
    stop_button,
)
from flux_demo.validation import (
    MAX_PROMPT_CHARS,
    MAX_SEED,
    InvalidInput,
    check_flag,
    check_integer,
    size_for_aspect,
)

SETTINGS_HEADERS = ["model", "steps", "guidance"]
COLUMNS = [
    Column("model", "str", 12),
    Column("status", "str", 4),
    Column("seconds", chars=6),
    Column("steps", chars=2),
    Column("s/step", chars=6),
    Column("peak VRAM GB", chars=5),
    Column("CER", chars=5),
    Column("exact", "bool", 2),
    Column("normalised", "bool", 2),
]
SWEEP_COLUMNS = [Column("seed", chars=10), *COLUMNS]
TABLE_STYLE, SWEEP_TABLE_STYLE = table_style(COLUMNS), table_style(SWEEP_COLUMNS)
TABLE_HEADERS, SWEEP_HEADERS = TABLE_STYLE["headers"], SWEEP_TABLE_STYLE["headers"]


def settings_rows(model_keys: Sequence[str]) -> list[list]:
    """The editable per-model settings table, starting from each model's recommended values."""
    return [[key, *comparison.recommended_settings(key)] for key in model_keys]


def parse_settings(rows) -> dict[str, tuple[float, float]]:
    """{model: (steps, guidance)} from the settings table (rows of model, steps, guidance)."""
    if rows is None:
        return {}
    if hasattr(rows, "values"):  # a pandas DataFrame
        rows = rows.values.tolist()
    overrides = {}
    for row in rows:
        if len(row) != 3 or not isinstance(row[0], str):
            raise InvalidInput("settings", "input.settings_rows")
        overrides[row[0]] = (row[1], row[2])
    return overrides


def table_row(run: ModelRun) -> list:
    name = model_title(run.model)
    if not run.ok:
        return [name, say(run.error), None, None, None, None, None, None, None]
    details, score = run.result.details, run.score
    cells = [
        name,
        say("ui.ok"),
        details["seconds"],
        details["steps"],
        details["seconds_per_step"],
        details["peak_vram_gb"],
    ]
    if score is None or score.mean_cer is None:
        return [*cells, None, None, None]
    return [*cells, round(score.mean_cer, 3), score.all_exact, score.all_normalised]


def caption(run: ModelRun, with_seed: bool = False) -> str:
    """The model's name and its CER; with the seed first, so a cut-off caption still shows it."""
    text = model_title(run.model)
    if run.request is not None and run.request.loras:
        text += "".join(f" + {choice.reference} ×{choice.scale:g}" for choice in run.request.loras)
    if with_seed:
        text = f"{say('ui.seed_caption', seed=run.request.seed)} · {text}"
    if run.score is not None and run.score.mean_cer is not None:
        text += f" · CER {run.score.mean_cer:.2f}"
    return text


def make_compare_fn(services: AppServices):
    @endpoint(services, "compare", cost=each_model())
    def compare(
        prompt: str,
        models: list[str],
        seed: float,
        width: float,
        height: float,
        settings: list[list] | None = None,
        previews: bool = False,
        lora: str = "",
        lora_scale: float = 1.0,
        run=gr.Progress(),
    ):
        """Run one prompt, seed and size on several FLUX models, one after another.

        Args:
            prompt: What to draw, 1-2000 characters. Quoted text is OCR-scored per model.
            models: Model keys to compare, each at most once, from: $models.
            seed: Noise seed, an integer 0-4294967295, shared by all models.
            width: Image width in pixels, $sizes.
            height: Image height in pixels, $sizes.
            settings: Optional rows [model, steps, guidance]; models not listed use their recommended values.
            previews: If true, the gallery also shows the running model's predicted clean image at every step.
            lora: Optional LoRA for the models it fits: a curated key ($loras) or a Hub LoRA id (owner/name).
            lora_scale: The LoRA's strength, 0-2.

        Returns:
            A gallery of (image, caption) as each model finishes, a table per model (seconds, steps,
            seconds per step, peak VRAM on CUDA, OCR scores), an image slider of the first two, and the
            finished images' files by model.
        """
        requests = comparison.plan_requests(
            prompt,
            models,
            [seed],
            width,
            height,
            parse_settings(settings),
            services.model_keys,
            (lora, lora_scale),
            services.settings.hub_loras,
        )
        gallery, rows, images = [], [], {}
        previews = check_flag("previews", previews)
        runs = live.compare_with_previews(services.backend, requests, run.progress, previews, run.stopped)
        with live.PreviewFiles() as files:
            yield from compared(runs, gallery, rows, images, files, services.settings)

    return compare


def compared(runs, gallery: list, rows: list, images: dict, files, config):
    """The comparison's outputs after each finished model, with the running model's preview in between."""
    for finished in runs:
        if isinstance(finished, tuple):  # (request, preview): the running model's latest step
            request, preview = finished
            label = f"{model_title(request.model)} · {preview.step}/{preview.steps}"
            table = localized_table(TABLE_HEADERS, rows)
            yield [*gallery, (files.shown(preview, request), label)], table, gr.skip(), gr.skip()
            continue
        rows.append(table_row(finished))
        if finished.ok:
            path = named_png(finished.result.image, finished.request.settings(), config)
            gallery.append((path, caption(finished)))
            images[finished.model] = path  # the session keeps file names, not pixels
        pair = tuple(images.values())[:2]
        yield gallery, localized_table(TABLE_HEADERS, rows), (pair if len(pair) == 2 else None), images


def slider_pickers(images: dict) -> tuple:
    """Left/right choices for the slider: the models that produced an image."""
    keys = list(images)
    choices = [(model_title(k), k) for k in keys]
    left = keys[0] if keys else None
    right = keys[1] if len(keys) > 1 else left
    return gr.Dropdown(choices, value=left), gr.Dropdown(choices, value=right)


def pick_pair(left: str, right: str, images: dict):
    """The slider's two images, chosen from the finished runs."""
    if left not in images or right not in images:
        return gr.skip()
    return images[left], images[right]


def make_sweep_fn(services: AppServices):
    @endpoint(services, "sweep", cost=each_model("seeds", 2, MAX_SWEEP_SEEDS))
    def seed_sweep(
        prompt: str,
        models: list[str],
        first_seed: float,
        seeds: float,
        width: float,
        height: float,
        run=gr.Progress(),
    ):
        """A grid of K consecutive seeds x the chosen models, to show a difference is not one lucky seed.

        Args:
            prompt: What to draw, 1-2000 characters.
            models: Model keys to compare, each at most once, from: $models.
            first_seed: The first seed, 0-4294967295; the sweep uses first_seed, first_seed+1, ...
            seeds: How many seeds, 2-8.
            width: Image width in pixels, $sizes.
            height: Image height in pixels, $sizes.

        Returns:
            The grid as a gallery (row = seed, column = model) with captions, and a per-run table.
        """
        count = check_integer("seeds", seeds, 2, MAX_SWEEP_SEEDS)
        start = check_integer("first_seed", first_seed, 0, MAX_SEED - count + 1)
        requests = comparison.plan_requests(
            prompt, models, range(start, start + count), width, height, {}, services.model_keys
        )
        gallery, rows = [], []
        for finished in comparison.run_all(services.backend, requests, run.progress, stopped=run.stopped):
            rows.append([finished.request.seed, *table_row(finished)])
            if finished.ok:
                path = named_png(finished.result.image, finished.request.settings(), services.settings)
                gallery.append((path, caption(finished, with_seed=True)))
            yield gallery, localized_table(SWEEP_HEADERS, rows)

    return seed_sweep


@event_handler()
def sweep_columns(chosen):
    """One gallery column per model, so each row of the sweep's grid is one seed."""
    return gr.Gallery(columns=max(1, len(chosen or ())))


@dataclass
class ComparisonTab:
    """The inputs a link can fill, {field name: component} (see share.field_updates), and the tables
    with their English headers (see tables.translate_headers_on_load)."""

    form: dict
    tables: list


@event_handler()
def link_settings(prompt, models, seed, width, height, settings, *lora) -> dict:
    """What a link to this comparison carries: its inputs, each chosen model's steps and guidance, and
    its LoRA."""
    chosen = {model: values for model, values in parse_settings(settings).items() if model in (models or ())}
    return {
        "prompt": prompt,
        "models": models,
        "seed": seed,
        "width": width,
        "height": height,
        "settings": chosen,
        "loras": link_values(*lora),
    }


def build_tab(services: AppServices) -> ComparisonTab:
    model_keys = services.model_keys
    specs = [get_spec(key) for key in model_keys]
    base = max(spec.default_size for spec in specs)
    narrowest = min(specs, key=lambda spec: (spec.max_side, -spec.size_multiple))  # sizes all models take
    width0, height0 = size_for_aspect("1:1", narrowest, base)
    # Offline, a sign the nano models can write, on the nano models only (tiny-klein draws noise), so
    # that the comparison shows nano-schnell at 4 steps against nano-dev at 28 with guidance.
    trained = [spec.key for spec in specs if spec.is_nano]
    prompt0 = (
        nano.example_prompts()[0] if trained else 'A chalkboard cafe menu that says "FLUX" in white chalk'
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            prompt = gr.Textbox(
                label=t("prompt"),
                value=prompt0,
                max_length=MAX_PROMPT_CHARS,
                elem_id="compare-prompt",
            )
            models = NamedCheckboxGroup(
                model_choices(model_keys),
                value=trained or list(model_keys),
                label=t("models"),
                elem_id="compare-models",
            )
            seed = seed_box(42)
            width, height = size_sliders(width0, height0, narrowest)
            settings = NamedDataframe(
                value=settings_rows(model_keys),  # by keyword: Gradio drops positional args of subclasses
                field="settings",
                headers=SETTINGS_HEADERS,
                elem_id="compare-settings",
                datatype=["str", "number", "number"],
                label=t("compare_settings"),
                static_columns=[0],
                row_count=(len(model_keys), "fixed"),
                column_count=(3, "fixed"),
                type="array",
            )
            with gr.Row():
                run = gr.Button(t("compare"), variant="primary", elem_id="compare-run", scale=3)
                stop = stop_button("compare")
            previews = live_preview_box(elem_id="compare-previews")
            loras = lora_picker(trained or list(model_keys), count=1, elem_prefix="compare-")
            with gr.Accordion(t("sweep"), open=False):
                sweep_seeds = NamedSlider(2, MAX_SWEEP_SEEDS, value=3, step=1, label=t("sweep_seeds"))
                with gr.Row():
                    sweep = gr.Button(t("sweep_run"), elem_id="sweep-run", scale=3)
                    sweep_stop = stop_button("sweep")
        with gr.Column(scale=2):
            gallery = gr.Gallery(
                label=t("results"),
                columns=len(model_keys),
                format="png",
                elem_id="compare-gallery",
                height="auto",
            )
            slider = gr.ImageSlider(
                label=t("compare_two"), type="pil", format="png", elem_id="compare-slider"
            )
            with gr.Row():
                left = gr.Dropdown(label=t("left"), choices=[], interactive=True)
                right = gr.Dropdown(label=t("right"), choices=[], interactive=True)
            table = gr.Dataframe(label=t("per_model"), elem_id="compare-table", **TABLE_STYLE)
            shared = gr.JSON(visible=False)
            share.add_copy_link(shared, "compare")
            sweep_gallery = gr.Gallery(
                label=t("sweep"),
                format="png",
                elem_id="sweep-gallery",
                height="auto",
                object_fit="contain",
                columns=len(model_keys),
            )
            sweep_table = gr.Dataframe(label=t("sweep_runs"), elem_id="sweep-table", **SWEEP_TABLE_STYLE)
    images = gr.State({})
    run_with_stop(
        services,
        "compare",
        stop,
        [run.click],
        make_compare_fn(services),
        [prompt, models, seed, width, height, settings, previews, *loras.inputs],
        [gallery, table, slider, images],
        api_name="compare",
        concurrency_id=GPU_QUEUE,
        show_progress_on=[gallery],  # one progress bar
    ).then(slider_pickers, images, [left, right], queue=False, api_visibility="private").then(
        link_settings,
        [prompt, models, seed, width, height, settings, *loras.inputs],
        shared,
        queue=False,
        api_visibility="private",
    )
    for picker in (left, right):
        picker.change(pick_pair, [left, right, images], slider, queue=False, api_visibility="private")
    sweep.click(sweep_columns, models, sweep_gallery, queue=False, api_visibility="private")
    run_with_stop(
        services,
        "sweep",
        sweep_stop,
        [sweep.click],
        make_sweep_fn(services),
        [prompt, models, seed, sweep_seeds, width, height],
        [sweep_gallery, sweep_table],
        api_name="seed_sweep",
        concurrency_id=GPU_QUEUE,
        show_progress_on=[sweep_gallery],
    )
    follow_model(loras, models)
    form = {"prompt": prompt, "models": models, "seed": seed, "width": width, "height": height}
    form |= loras.fields
    tables = [(settings, SETTINGS_HEADERS), (table, TABLE_HEADERS), (sweep_table, SWEEP_HEADERS)]
    return ComparisonTab({**form, "settings": settings}, tables)
