"""The Typography lab tab: write a quoted prompt, generate and OCR-score it, run the suite, score any image.

Named endpoints: `/typography` (generate and score), `/score_text` (score an uploaded image) and
`/typography_suite` (suite run and leaderboard).
"""

from __future__ import annotations

import string
import threading
from collections.abc import Sequence

import gradio as gr
from PIL import Image

from flux_demo import typography
from flux_demo.comparison import check_models
from flux_demo.config import Settings
from flux_demo.faults import GenerationCancelled
from flux_demo.messages import Message
from flux_demo.models import MODELS, get_spec
from flux_demo.offline import nano
from flux_demo.services import AppServices
from flux_demo.typography import ocr, suite
from flux_demo.typography.view import (
    DIFF_COLORS,
    NOT_SCORED,
    TARGET_HEADERS,
    draw_boxes,
    score_boxes,
    score_diff,
    score_rows,
    score_summary,
)
from flux_demo.ui import check, share
from flux_demo.ui.endpoints import each_model, endpoint, ocr_only, scored_image
from flux_demo.ui.i18n import model_title, say, t, visitor_language
from flux_demo.ui.tables import Column, localized_table, table_style
from flux_demo.ui.widgets import (
    GPU_QUEUE,
    OCR_CONCURRENCY,
    OCR_QUEUE,
    NamedCheckboxGroup,
    NamedImage,
    NamedSlider,
    download_folder,
    event_handler,
    model_choices,
    named_png,
    run_with_stop,
    seed_box,
    size_sliders,
    step_sliders,
    stop_button,
)
from flux_demo.validation import (
    MAX_PROMPT_CHARS,
    GenerationRequest,
    InvalidInput,
    check_integer,
    check_prompt,
    validate,
)

DEFAULT_SUITE_PROMPTS = 6
# The result tables: (datatype, widest one-line value in characters) per column, in header order.
TARGET_STYLE = table_style(
    [
        Column(header, *spec)
        for header, spec in zip(
            TARGET_HEADERS,
            [("str", 10), ("str", 10), ("number", 5), ("bool", 2), ("bool", 2), ("str", 9), ("str", 4)],
            strict=True,
        )
    ]
)
_FIGURES = [("number", 5), ("number", 5), ("number", 5), ("number", 3), ("number", 3)]
LEADERBOARD_STYLE = table_style(
    [Column(h, *spec) for h, spec in zip(suite.LEADERBOARD_HEADERS, [("str", 12), *_FIGURES], strict=True)]
)
CATEGORY_STYLE = table_style(
    [
        Column(h, *spec)
        for h, spec in zip(suite.CATEGORY_HEADERS, [("str", 12), ("str", 12), *_FIGURES], strict=True)
    ]
)


# --- handlers ----------------------------------------------------------------------------------


@event_handler()
def write_prompt(text: str, scene: str, model: str | None = None) -> str:
    """The prompt helper: ``scene`` with ``text`` quoted where ``{text}`` is, or appended. For a nano
    model, the sign of its grammar with ``text`` (upper case), the one template it was trained on: a
    scene is beyond it, and a word outside its vocabulary is said to be (a pop-up)."""
    text = check_prompt(text, "text", suite.MAX_EXPECTED_CHARS)
    scene = suite.check_scene(scene)
    if isinstance(model, str) and model in MODELS and get_spec(model).is_nano:
        grammar = nano.load_grammar()
        word = text.upper()
        if word not in grammar.words or scene:
            gr.Info(say("ui.nano_prompt", words=", ".join(grammar.words)))
        return grammar.word_caption(word)
    return typography.quote_prompt(text, scene or "")


def make_typography_fn(services: AppServices):
    """The `/typography` handler, bound to `services` and the models it serves."""

    @endpoint(services, "typography", cost=scored_image, outputs=2)
    def typography_run(
        prompt: str,
        model: str,
        seed: float,
        steps: float,
        guidance: float,
        width: float,
        height: float,
        run=gr.Progress(),
    ):
        """Generate an image whose prompt quotes text, then OCR-score how well the text was rendered.

        Args:
            prompt: 1-2000 characters with the text to render in quotes: a sign that says "OPEN".
            model: Model key, one of the served models: $models.
            seed: Noise seed, an integer 0-4294967295.
            steps: Denoising steps, within the model's range: $steps.
            guidance: Distilled guidance: $guidance.
            width: Image width in pixels, $sizes.
            height: Image height in pixels, $sizes.

        Returns:
            The PNG (with its generation parameters as metadata) and a dict: recognised_text
            (RapidOCR), tesseract_text (null unless a Korean or kana target needed Tesseract),
            mean_cer (0-1, lower is better; null when no target is readable), exact_match,
            normalised_match, targets (per quoted text: target, recognised, cer, exact,
            normalised_match, readable, engine), boxes (OCR lines), ocr_seconds and details.
        """
        request = GenerationRequest(
            prompt=prompt, model=model, width=width, height=height, steps=steps, guidance=guidance, seed=seed
        )
        valid = validate(request, services.model_keys)
        targets = suite.prompt_targets(valid.prompt)
        run.notes(valid.notes)
        result, score = suite.generate_and_score(services.backend, valid, targets, run.progress, run.stopped)
        image = named_png(result.image, result.request.settings(), services.settings)
        return image, {**suite.score_as_dict(score), "details": result.details}

    return typography_run


def make_score_fn(services: AppServices):
    """The `/score_text` handler: OCR only, priced as such against the visitor's limit."""

    @endpoint(services, cost=ocr_only)
    def score_text(image: Image.Image, expected: str) -> dict:
        """OCR-score any image against the text it should show (works for images from any model).

        Args:
            image: The image to score, at most 4096x4096 pixels.
            expected: The text the image should show, 1-500 characters; newlines count as spaces.

        Returns:
            A dict: recognised_text (all RapidOCR lines), tesseract_text (Tesseract's reading, for
            Korean and kana; null when not needed), mean_cer (0-1, lower is better; null when no
            installed OCR engine can read the expected text), exact_match, normalised_match (ignoring
            case, punctuation and spaces), targets (each with the engine that read it), boxes and
            ocr_seconds.
        """
        image = suite.check_image(image)
        expected = suite.check_expected(expected)
        return suite.score_as_dict(typography.score_text(image, expected))

    return score_text


def make_suite_fn(services: AppServices, entries: Sequence[suite.SuiteEntry]):
    """The `/typography_suite` handler, bound to `services`, the models it serves and the suite."""
    model_keys = services.model_keys

    def typography_suite(
        models: list[str], count: float, categories: list[str], seed: float, run=gr.Progress()
    ):
        """Run suite prompts on several models, OCR-score every image and rank the models.

        Args:
            models: Model keys to compare, one or more of the served models: $models.
            count: Suite prompts per model, 1-$count, taken in turn from each category.
            categories: Categories to draw prompts from ($categories); an empty list means all of them.
            seed: Noise seed used for every image, an integer 0-4294967295.

        Returns:
            The leaderboard (per model: mean CER, exact-match rate, normalised-match rate, images
            scored, images not scored), per-category results, the images with captions
            "model · id · CER", and the CSV and JSON reports.
        """
        models = check_models(models, model_keys)
        count = check_integer("count", count, 1, len(entries))
        chosen = suite.select_entries(entries, count, categories or ())
        total = len(chosen) * len(models)
        if total > suite.MAX_SUITE_IMAGES:
            raise InvalidInput(
                "count",
                "input.suite_too_many",
                limit=suite.MAX_SUITE_IMAGES,
                count=count,
                models=len(models),
                total=total,
            )
        progress = run.progress
        progress((0, total), desc=Message("progress.suite"), unit="images")
        images: list[suite.ScoredImage] = []

        def advance(done: int, total: int, image: suite.ScoredImage) -> None:
            images.append(image)
            progress((done, total), desc=suite_caption(image), unit="images")

        try:
            suite.run_suite(services.backend, chosen, models, seed, on_image=advance, stopped=run.stopped)
        except GenerationCancelled:  # the page's Stop: score and report what finished
            gr.Warning(say("ui.stopped_images", done=len(images), total=total))
        csv_path, json_path = suite.write_reports(images, download_folder("typography-suite"))
        return (
            localized_table(suite.LEADERBOARD_HEADERS, named_rows(suite.leaderboard_rows(images))),
            localized_table(suite.CATEGORY_HEADERS, named_rows(suite.category_rows(images), category=1)),
            [(suite_png(image, services.settings), suite_caption(image)) for image in images],
            str(csv_path),
            str(json_path),
        )

    served = {"count": str(len(entries)), "categories": ", ".join(suite.suite_categories(list(entries)))}
    typography_suite.__doc__ = string.Template(typography_suite.__doc__ or "").safe_substitute(served)
    return endpoint(services, "suite", cost=each_model("count", 1, len(entries)))(typography_suite)


def suite_png(image: suite.ScoredImage, config: Settings) -> str:
    """A suite image as an output PNG (see `named_png`)."""
    return named_png(image.image, {"model": image.model, "seed": image.seed}, config)


def suite_caption(image: suite.ScoredImage) -> str:
    """ "FLUX.1 [schnell] · sw-01 · CER 0.12": the model's name, the suite id and the score."""
    score = image.score.mean_cer
    cer = say("ui.unreadable") if score is None else f"CER {score:.2f}"
    return f"{model_title(image.model)} · {image.entry.id} · {cer}"


def named_rows(rows: list[list], category: int | None = None) -> list[list]:
    """Table rows whose first cell is a model key, with the model's name instead (as in the comparison),
    and the category (column `category`) in the visitor's language. The reports keep the keys."""
    named = []
    for row in rows:
        row = [model_title(row[0]), *row[1:]]
        if category is not None:
            row[category] = say_category(row[category])
        named.append(row)
    return named


def say_category(category: str) -> str:
    from flux_demo.ui.i18n import EN, KO

    table = KO if visitor_language() == "ko" else EN
    return table.get(f"category.{category}", category)


@event_handler()
def show_score(image: Image.Image | None, scores: dict | None):
    """The views of a score dict: the image with OCR boxes, a summary, a per-target table and a diff.
    Both come back from the browser, so both are checked like any other input."""
    if image is None or not scores:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    image = suite.check_image(image)
    scores = suite.check_score_dict(scores)
    labels = diff_labels()
    language = visitor_language()
    return (
        draw_boxes(image, score_boxes(scores)),
        score_summary(scores, language),
        localized_table(TARGET_HEADERS, score_rows(scores, language)),
        gr.HighlightedText(
            [(text, labels.get(label, label)) for text, label in score_diff(scores)],
            color_map={labels[label]: colour for label, colour in DIFF_COLORS.items()},
            show_legend=True,
        ),
    )


DIFF_LABELS_KO = {
    "correct": "맞음",
    "wrong": "틀림",
    "missing": "빠짐",
    "extra": "더 있음",
    NOT_SCORED: "채점 안 됨",
}


def diff_labels() -> dict[str, str]:
    """The diff's labels (its legend) in the visitor's language."""
    if visitor_language() == "ko":
        return DIFF_LABELS_KO
    return {label: label for label in DIFF_COLORS}


# --- layout ------------------------------------------------------------------------------------


class ScoreViews:
    """The components that show one score: OCR boxes, summary, per-target table, diff and raw JSON."""

    def __init__(self, prefix: str):
        self.boxes = gr.Image(
            label=t("ocr_read"), type="pil", format="png", interactive=False, elem_id=f"{prefix}-boxes"
        )
        self.summary = gr.Markdown(elem_id=f"{prefix}-summary")
        self.table = gr.Dataframe(
            label=t("per_target"), interactive=False, elem_id=f"{prefix}-targets", **TARGET_STYLE
        )
        self.diff = gr.HighlightedText(
            label=t("char_diff"),
            color_map=DIFF_COLORS,
            show_legend=False,  # shown with the first diff, in the visitor's language (see show_score)
            combine_adjacent=True,
            elem_id=f"{prefix}-diff",
        )
        with gr.Accordion(t("scores_json"), open=False):
            self.scores = gr.JSON(label=t("scores"), elem_id=f"{prefix}-json")

    def show_after(self, event, image: gr.Image) -> None:
        """Fill the views from the JSON once ``event`` (which outputs ``self.scores``) succeeds."""
        event.success(
            show_score,
            [image, self.scores],
            [self.boxes, self.summary, self.table, self.diff],
            api_visibility="private",
            concurrency_id="score-views",
            concurrency_limit=2,
        )


def build_generate_section(services: AppServices, tables: list) -> dict:
    """The generate-and-score section; returns its form ({field name: component}) for links, and adds
    its tables with their English headers to `tables`."""
    model_keys = services.model_keys
    first = get_spec(model_keys[0])
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            with gr.Group():
                text = gr.Textbox(label=t("typo_text"), placeholder="OPEN 24/7", elem_id="typo-text")
                scene = gr.Textbox(
                    label=t("scene"),
                    max_length=suite.MAX_SCENE_CHARS,
                    placeholder="A neon sign above a bar at night",
                    info=t("scene_info"),
                    elem_id="typo-scene",
                )
                write = gr.Button(t("write_prompt"), size="sm", elem_id="typo-write")
            prompt = gr.Textbox(
                label=t("typo_prompt"),
                placeholder='A neon sign above a bar at night that says "OPEN 24/7"',
                lines=2,
                max_length=MAX_PROMPT_CHARS,
                elem_id="typo-prompt",
            )
            model = gr.Dropdown(
                model_choices(model_keys),
                value=first.key,
                label=t("model"),
                allow_custom_value=True,  # checked by `validation.validate`, which names the field
                elem_id="typo-model",
            )
            with gr.Accordion(t("settings"), open=False):
                seed = seed_box()
                steps, guidance = step_sliders(model_keys)
                width, height = size_sliders(first.default_size, first.default_size)
            with gr.Row():
                run = gr.Button(t("typo_run"), variant="primary", elem_id="typo-run", scale=3)
                stop = stop_button("typography")
            if first.is_nano:  # offline: signs the nano models can write
                grammar = nano.load_grammar()
                gr.Examples(
                    [[grammar.word_caption(word)] for word in nano.EXAMPLE_WORDS],
                    [prompt],
                    label=t("examples"),
                    examples_per_page=len(nano.EXAMPLE_WORDS),
                )
        with gr.Column(scale=1):
            image = NamedImage(
                label=t("generated_image"),
                type="pil",
                format="png",
                interactive=False,
                elem_id="typo-image",
                max_side=suite.MAX_SCORE_SIDE,  # it comes back from the browser to draw the OCR boxes
            )
            views = ScoreViews("typo")
            tables.append((views.table, TARGET_HEADERS))
            share.add_copy_link(views.scores, "typography", pick=lambda scores: scores.get("details"))
    write.click(write_prompt, [text, scene, model], prompt, queue=False, api_visibility="private")
    share.reset_on_model(
        model, {"steps": steps, "guidance": guidance, "width": width, "height": height}, model_keys
    )
    event = run_with_stop(
        services,
        "typography",
        stop,
        [run.click, prompt.submit],
        make_typography_fn(services),
        [prompt, model, seed, steps, guidance, width, height],
        [image, views.scores],
        api_name="typography",
        # Not the GPU group: the GPU part waits for the backend's GPU slot, and OCR then runs without
        # holding the GPU for the next visitor.
        concurrency_id=OCR_QUEUE,
        concurrency_limit=OCR_CONCURRENCY,
        show_progress_on=[image],  # one progress bar
    )
    views.show_after(event, image)
    return {
        "prompt": prompt,
        "model": model,
        "seed": seed,
        "steps": steps,
        "guidance": guidance,
        "width": width,
        "height": height,
    }


def build_score_section(services: AppServices, tables: list) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            upload = NamedImage(
                label=t("score_image"),  # not "image": Gradio's own translations use that key for a group
                type="pil",
                sources=["upload", "clipboard"],
                elem_id="score-upload",
                field="image",
                max_side=suite.MAX_SCORE_SIDE,
            )
            expected = gr.Textbox(
                label=t("expected"),
                placeholder="OPEN 24/7",
                max_length=suite.MAX_EXPECTED_CHARS,
                info=t("expected_info"),
                elem_id="score-expected",
            )
            run = gr.Button(t("score"), variant="primary", elem_id="score-run")
        with gr.Column(scale=1):
            views = ScoreViews("score")
            tables.append((views.table, TARGET_HEADERS))
    event = gr.on(
        [run.click, expected.submit],
        make_score_fn(services),
        [upload, expected],
        views.scores,
        api_name="score_text",
        concurrency_id=OCR_QUEUE,
        concurrency_limit=OCR_CONCURRENCY,
    )
    views.show_after(event, upload)


def suite_entries(model_keys: Sequence[str]) -> list[suite.SuiteEntry]:
    """The suite for the served models: the data file's prompts, after the nano section when a nano
    model is served."""
    entries = suite.load_suite()
    if any(get_spec(key).is_nano for key in model_keys):
        entries = [*suite.nano_entries(nano.load_grammar()), *entries]
    return entries


def build_suite_section(services: AppServices, tables: list) -> None:
    model_keys = services.model_keys
    entries = suite_entries(model_keys)
    shown = suite.suite_categories(entries)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            models = NamedCheckboxGroup(
                model_choices(model_keys), value=list(model_keys), label=t("models"), elem_id="suite-models"
            )
            count = NamedSlider(
                1,
                len(entries),
                value=min(DEFAULT_SUITE_PROMPTS, len(entries)),
                step=1,
                label=t("count"),
                info=t("count_info"),
                elem_id="suite-count",
            )
            categories = NamedCheckboxGroup(
                [(t(f"category.{category}"), category) for category in shown],
                value=[suite.NANO_CATEGORY] if suite.NANO_CATEGORY in shown else [],  # offline: nano signs
                label=t("categories"),
            )
            seed = seed_box()
            with gr.Row():
                run = gr.Button(t("suite_run"), variant="primary", elem_id="suite-run", scale=3)
                stop = stop_button("suite")
        with gr.Column(scale=2):
            board = gr.Dataframe(
                label=t("leaderboard"), interactive=False, elem_id="suite-leaderboard", **LEADERBOARD_STYLE
            )
            per_category = gr.Dataframe(
                label=t("by_category"), interactive=False, elem_id="suite-categories", **CATEGORY_STYLE
            )
            tables += [(board, suite.LEADERBOARD_HEADERS), (per_category, suite.CATEGORY_HEADERS)]
            with gr.Row():
                csv_file = gr.DownloadButton(t("download_csv"), visible=False, elem_id="suite-csv")
                json_file = gr.DownloadButton(t("download_json"), visible=False, elem_id="suite-json")
            gallery = gr.Gallery(
                label=t("suite_images"), columns=4, height="auto", format="png", elem_id="suite-gallery"
            )
    run_with_stop(
        services,
        "suite",
        stop,
        [run.click],
        make_suite_fn(services, entries),
        [models, count, categories, seed],
        [board, per_category, gallery, csv_file, json_file],
        api_name="typography_suite",
        concurrency_id=GPU_QUEUE,
        show_progress_on=board,
    ).success(
        # The API returns plain file paths; the page shows the buttons once there is something to get.
        lambda: (gr.DownloadButton(visible=True), gr.DownloadButton(visible=True)),
        None,
        [csv_file, json_file],
        queue=False,
        api_visibility="private",
    )


def build_tab(services: AppServices) -> tuple[dict, list]:
    """The Typography lab: generate and score, run the suite, score any image. Returns the
    generate-and-score form ({field name: component}) that a link can fill, and the tables with their
    English headers (see tables.translate_headers_on_load)."""
    tables: list = []
    model_keys = services.model_keys
    # The first score would otherwise pay about a second to start the OCR engine.
    threading.Thread(target=ocr.warm_up, daemon=True, name="ocr-warm-up").start()
    gr.Markdown(t("typo_intro"), elem_id="typo-intro")
    if any(get_spec(key).is_offline for key in model_keys):
        gr.Markdown(t("typo_offline_note"), elem_id="typo-offline-note")
    with gr.Tabs(elem_id="typo-sections", overflow_behavior="wrap"):
        with gr.Tab(t("typo_tab_generate"), id="typo-generate"):
            form = build_generate_section(services, tables)
        with gr.Tab(t("typo_tab_suite"), id="typo-suite"):
            build_suite_section(services, tables)
        with gr.Tab(t("typo_tab_score"), id="typo-score"):
            build_score_section(services, tables)
        with gr.Tab(t("typo_tab_check"), id="typo-check"):
            check.build_section(services)
    return form, tables
