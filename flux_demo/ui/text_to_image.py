"""The text-to-image tab and its `/generate` endpoint."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from flux_demo import generation
from flux_demo.models import MODELS, get_spec
from flux_demo.offline import nano
from flux_demo.services import AppServices
from flux_demo.ui import history, live, share
from flux_demo.ui.endpoints import Final, endpoint, one_image
from flux_demo.ui.i18n import say, t
from flux_demo.ui.lora_picker import follow_model, lora_picker
from flux_demo.ui.widgets import (
    CUSTOM_SIZE,
    GPU_QUEUE,
    NamedSlider,
    PageGallery,
    aspect_choices,
    live_preview_box,
    model_choices,
    named_png,
    run_with_stop,
    seed_box,
    size_sliders,
    step_sliders,
    stop_button,
)
from flux_demo.validation import (
    ASPECT_RATIOS,
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    GenerationRequest,
    check_flag,
    size_for_aspect,
    validate,
)

EXAMPLE_PROMPTS = (
    "A cute robot reading a book in a cozy library, warm lighting",
    "A neon sign that reads 'HELLO FLUX' on a rainy street at night",
    "A beautiful landscape painting in the style of Monet",
    'A chalkboard menu in a small cafe that says "Soup of the day: Tomato $4.50"',
    "A golden retriever puppy playing in autumn leaves, shallow depth of field",
    'A vintage travel poster with the title "VISIT SEOUL" above a night skyline',
    "A pixel art castle on a floating island with waterfalls, 16-bit style",
)


def make_generate_fn(services: AppServices):
    """The `/generate` handler, bound to `services` and the models it serves."""

    @endpoint(services, "generate", cost=one_image, outputs=4)
    def generate(
        prompt: str,
        model: str,
        width: float,
        height: float,
        steps: float,
        guidance: float,
        seed: float,
        randomize_seed: bool,
        previews: bool = False,
        lora: str = "",
        lora_scale: float = 1.0,
        lora_2: str = "",
        lora_2_scale: float = 1.0,
        num_images: float = 1,
        run=gr.Progress(),
    ):
        """Generate one image with a FLUX model (or up to four in one run), optionally with LoRA adapters.

        Args:
            prompt: What to draw, 1-2000 characters. Put text to render in quotes: a sign that says "OPEN".
            model: Model key, one of the served models: $models.
            width: Image width in pixels, $sizes.
            height: Image height in pixels, $sizes.
            steps: Denoising steps, within the model's range: $steps.
            guidance: Distilled guidance: $guidance.
            seed: Noise seed, an integer 0-4294967295; the same seed and settings give the same image.
            randomize_seed: If true, a fresh random seed is drawn and returned.
            previews: If true, first stream the predicted clean image after every step (the image only),
                then the final outputs; the final image is the same either way. Off unless asked for.
            lora: Optional LoRA: a curated key for the model ($loras) or any Hub LoRA id, owner/name or
                owner/name/file.safetensors. Empty: none.
            lora_scale: The LoRA's strength, 0-2 (0 gives the image without it).
            lora_2: Optional second LoRA, as `lora`.
            lora_2_scale: The second LoRA's strength, 0-2.
            num_images: Images in one batched run, 1-4; image i has seed seed+i and equals a run of that seed.

        Returns:
            The first PNG (with its generation parameters as text metadata), its seed, and details
            (model, steps, guidance, size, seconds; `seeds` and `loras` where the run has them).
        """
        request = GenerationRequest(
            prompt=prompt,
            model=model,
            width=width,
            height=height,
            steps=steps,
            guidance=guidance,
            seed=seed,
            randomize_seed=randomize_seed,
            loras=((lora, lora_scale), (lora_2, lora_2_scale)),
            num_images=num_images,
        )
        valid = validate(request, services.model_keys, hub_loras=services.settings.hub_loras)
        run.notes(valid.notes)
        if check_flag("previews", previews):
            frame = lambda image: (image, gr.skip(), gr.skip(), gr.skip())  # noqa: E731  (the image only)
            frames = live.generate_with_previews(services.backend, valid, run.progress, frame, run.stopped)
            result = yield from frames
        else:
            result = generation.generate(services.backend, valid, run.progress, stopped=run.stopped)
        # Every image through `named_png` (its file name, its metadata); the page shows them all.
        images = enumerate(result.images)
        paths = [named_png(image, result.image_settings(i), services.settings) for i, image in images]
        # The batch gallery only for a batch: a hidden one holding the first image again would cost an
        # API caller a download of it (gradio_client fetches skip_api outputs' files before it drops them).
        gallery = gr.Gallery(paths if len(paths) > 1 else [], visible=len(paths) > 1)
        yield Final((paths[0], result.request.seed, result.details, gallery))  # one message, not two

    return generate


def result_summary(details: dict | None) -> str:
    """One line for people: "FLUX.1 [schnell] · 4 steps · 1024×1024 · 0.41 s · seed 42 · cuda bfloat16"."""
    if not details:
        return ""
    try:
        line = say(
            "ui.summary",
            model=details["model_name"],
            steps=details["steps"],
            width=details["width"],
            height=details["height"],
            seconds=float(details["seconds"]),
            seed=details["seed"],
        )
        if details.get("device"):
            line += say("ui.summary_device", device=details["device"], dtype=details.get("dtype", ""))
    except (KeyError, TypeError, ValueError):  # it comes back from the browser: show nothing rather than fail
        return ""
    return f"**{line}**"


def aspect_size(aspect: str, model: str):
    """Width and height for a preset at the model's native pixel count; 'Custom' leaves them alone."""
    if aspect == CUSTOM_SIZE:
        return gr.skip(), gr.skip()
    if aspect not in ASPECT_RATIOS or model not in MODELS:  # private, but still from the browser
        return gr.skip(), gr.skip()
    spec = get_spec(model)
    return size_for_aspect(aspect, spec)


def remember_run(services: AppServices):
    """After a run: the run (its first image and details) in front of the visitor's history."""

    def remember(image, details, stored):
        entries = history.added(stored, image, details, services.model_keys)
        return entries, history.gallery_items(entries)

    return remember


@dataclass
class TextToImageTab:
    """The tab's components, for the permalink wiring that fills the form."""

    form: dict  # {field name: component} that a link or a PNG can fill (share.field_updates)
    run: gr.Button
    image: gr.Image
    seed_used: gr.Number
    details: gr.JSON
    summary: gr.Markdown


def build_tab(services: AppServices) -> TextToImageTab:
    model_keys = services.model_keys
    first = get_spec(model_keys[0])
    width0, height0 = size_for_aspect("1:1", first)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            prompt = gr.Textbox(
                label=t("prompt"),
                placeholder=(
                    nano.example_prompts()[0]
                    if first.is_nano
                    else 'A neon sign that reads "HELLO FLUX" on a rainy street at night'
                ),
                lines=1,
                max_lines=6,
                max_length=MAX_PROMPT_CHARS,
                info=t("prompt_info"),
                elem_id="prompt",
            )
            model = gr.Dropdown(
                model_choices(model_keys),
                value=first.key,
                label=t("model"),
                elem_id="model",
                # Checked by `validation.validate`, whose error names the field and the served models.
                allow_custom_value=True,
            )
            with gr.Row():
                run = gr.Button(t("run"), variant="primary", elem_id="run", scale=3)
                stop = stop_button("generate")
            previews = live_preview_box(info=t("live_preview_info"), elem_id="previews")
            num_images = NamedSlider(
                1,
                MAX_IMAGES,
                value=1,
                step=1,
                label=t("num_images"),
                info=t("num_images_info"),
                elem_id="num-images",
            )
            loras = lora_picker(first.key)
            with gr.Accordion(t("advanced"), open=False):
                aspect = gr.Radio(aspect_choices(), value="1:1", label=t("aspect"))
                width, height = size_sliders(width0, height0, first)
                steps, guidance = step_sliders(model_keys)
                with gr.Row():
                    seed = seed_box()
                    randomize = gr.Checkbox(True, label=t("randomize"))
            form = {
                "prompt": prompt,
                "model": model,
                "aspect": aspect,
                "width": width,
                "height": height,
                "steps": steps,
                "guidance": guidance,
                "seed": seed,
                "randomize": randomize,
                "num_images": num_images,
                **loras.fields,
            }
            share.add_png_restore(form, model_keys)
        with gr.Column(scale=1):
            image = gr.Image(label=t("result"), format="png", type="pil", interactive=False, elem_id="result")
            summary = gr.Markdown(t("no_result_yet"), elem_id="summary", container=True)
            # Shown with the first result: a 0 here before any run would read like a result.
            seed_used = gr.Number(
                label=t("seed_used"), precision=0, interactive=False, visible=False, elem_id="seed-used"
            )
            batch = PageGallery(
                label=t("batch"), columns=MAX_IMAGES, format="png", visible=False, elem_id="result-gallery"
            )
            with gr.Accordion(t("details_json"), open=False):
                details = gr.JSON(label=t("details"), elem_id="details")
            share.add_copy_link(details, "generate")
            recent, recent_gallery = history.build(form, model_keys)

    inputs = [
        prompt,
        model,
        width,
        height,
        steps,
        guidance,
        seed,
        randomize,
        previews,
        *loras.inputs,
        num_images,
    ]
    outputs = [image, seed_used, details, batch]
    generate_fn = make_generate_fn(services)
    run_event = run_with_stop(
        services,
        "generate",
        stop,
        [run.click, prompt.submit],
        generate_fn,
        inputs,
        outputs,
        api_name="generate",
        concurrency_id=GPU_QUEUE,
        show_progress_on=[image],  # one progress bar, over the image
    )
    run_event.success(
        lambda details: (result_summary(details), gr.Number(visible=True)),
        details,
        [summary, seed_used],
        queue=False,
        api_visibility="private",
    )
    run_event.success(
        remember_run(services),
        [image, details, recent],
        [recent, recent_gallery],
        queue=False,
        api_visibility="private",
    )
    follow_model(loras, model)
    share.reset_on_model(
        model, {k: form[k] for k in ("steps", "guidance", "aspect", "width", "height")}, model_keys
    )
    aspect.input(aspect_size, [aspect, model], [width, height], queue=False, api_visibility="private")
    # An example fills the prompt and nothing else: the model, the seed and Live preview stay as the
    # visitor set them, and Run draws it with them. Offline, they are prompts the nano models can draw.
    examples = nano.example_prompts() if first.is_nano else EXAMPLE_PROMPTS
    gr.Examples([[p] for p in examples], [prompt], label=t("examples"), examples_per_page=len(examples))
    return TextToImageTab(form, run, image, seed_used, details, summary)
