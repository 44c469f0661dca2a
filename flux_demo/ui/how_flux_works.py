"""The "How FLUX works" tab and its `/trajectory` endpoint: watch a run denoise, step by step.

Everything shown comes from the loaded model and the run itself (`flux_demo.trajectory`): the predicted
clean image and the noisy latents at each step, σ and t, the seconds each step took, the σ schedule,
the prompt's tokens and the transformer's shape.
"""

from __future__ import annotations

import logging

import gradio as gr
import pandas as pd

from flux_demo import trajectory
from flux_demo.models import MAX_SIDE, get_spec
from flux_demo.offline import nano
from flux_demo.services import AppServices
from flux_demo.ui import share
from flux_demo.ui.endpoints import endpoint, one_image
from flux_demo.ui.i18n import model_title, t
from flux_demo.ui.widgets import (
    GPU_QUEUE,
    hide_stop,
    model_choices,
    named_png,
    seed_box,
    size_sliders,
    step_sliders,
    stop_button,
    stoppable,
)
from flux_demo.validation import MAX_PROMPT_CHARS, GenerationRequest, size_for_aspect, validate

log = logging.getLogger(__name__)

WIDE = MAX_SIDE  # the largest size, where FLUX.1 [dev] shifts its schedule furthest


def enlarged(image, request):
    return image.resize((request.width, request.height))


def step_caption(step, steps: int) -> str:
    sigmas = f"σ={step.sigma:.3f}→{step.sigma_next:.3f}"
    return f"{step.index}/{steps} · t={step.timestep:.0f} · {sigmas} · {step.seconds:.2f} s"


def make_trajectory_fn(services: AppServices):
    @endpoint(services, "how", cost=one_image, outputs=4)
    def trajectory_run(
        prompt: str,
        model: str,
        seed: float,
        steps: float,
        guidance: float,
        width: float,
        height: float,
        run=gr.Progress(),
    ):
        """Generate one image and return what happened at every denoising step.

        Args:
            prompt: What to draw, 1-2000 characters.
            model: Model key, one of the served models: $models.
            seed: Noise seed, an integer 0-4294967295.
            steps: Denoising steps, within the model's range: $steps.
            guidance: Distilled guidance: $guidance.
            width: Image width in pixels, $sizes.
            height: Image height in pixels, $sizes.

        Returns:
            The final PNG (identical to /generate with the same settings), the predicted clean image after
            each step (1/8 of the size, captioned with t, σ and seconds), and details: sigmas (steps + 1
            values, 1 down to 0), timesteps, step_seconds, text_tokens, image_tokens and architecture.
        """
        request = GenerationRequest(
            prompt=prompt, model=model, width=width, height=height, steps=steps, guidance=guidance, seed=seed
        )
        valid = validate(request, services.model_keys)
        run.notes(valid.notes)
        recorded = trajectory.run_trajectory(services.backend, valid, run.progress, run.stopped)
        strip = [(step.predicted, step_caption(step, valid.steps)) for step in recorded.steps]
        final = named_png(recorded.result.image, valid.settings(), services.settings)
        return final, strip, recorded.details, {"request": valid, "steps": recorded.steps}

    return trajectory_run


def show_step(index: float, recorded: dict | None):
    """The predicted clean image and the noisy latents at step `index` (1-based), enlarged, captioned."""
    if not recorded:
        return gr.skip(), gr.skip(), gr.skip()
    steps = recorded["steps"]
    step = steps[min(max(int(index), 1), len(steps)) - 1]
    request = recorded["request"]
    return enlarged(step.predicted, request), enlarged(step.noisy, request), step_caption(step, len(steps))


def schedule_frame(services: AppServices, model: str, width: int, height: int) -> pd.DataFrame:
    """σ against progress through the run for every served model at its default steps (schnell's 4 over
    dev's 28), at the chosen size and at the largest, where FLUX.1 [dev]'s shift shows. A model whose
    scheduler cannot be read (a checkpoint not downloaded) is left out."""
    rows = []
    keys = [model, *(key for key in services.model_keys if key != model)]
    runs = [(key, size) for key in keys for size in ((width, height), (WIDE, WIDE))]
    for key, (w, h) in dict.fromkeys(runs):
        steps = get_spec(key).default_steps
        try:
            sigmas = trajectory.schedule(services.settings, key, steps, w, h)
        except OSError:
            log.info("no scheduler config for %s; left out of the schedule plot", key)
            continue
        series = f"{key} · {steps} steps · {w}×{h}"
        last = len(sigmas) - 1
        rows += [{"progress": i / last, "sigma": sigma, "run": series} for i, sigma in enumerate(sigmas)]
    return pd.DataFrame(rows)


def token_views(details: dict):
    """Highlighted tokens per encoder, and a table of counts."""
    highlighted, counts = [], []
    for view in details["text_tokens"]:
        highlighted += [(token, view["encoder"]) for token in view["tokens"]]
        counts.append([view["encoder"], view["count"], view["limit"], view["truncated"]])
    counts.append(["image tokens (H/16)·(W/16)", details["image_tokens"], None, None])
    return highlighted, counts


def architecture_rows(details: dict) -> list[list]:
    arch = details["architecture"]
    rows = [
        [name, arch[name]]
        for name in ("transformer", "double_blocks", "single_blocks", "hidden_size", "heads")
    ]
    rows += [[f"parameters: {part}", f"{count:,}"] for part, count in arch["parameters"].items()]
    rows += [[f"shared: {part}", ", ".join(others)] for part, others in arch["shared_with"].items()]
    return rows


def make_render_fn(services: AppServices):
    def render(details: dict, recorded: dict):
        if not details or not recorded:
            return (gr.skip(),) * 9
        request = recorded["request"]
        noisy = [(step.noisy, step_caption(step, request.steps)) for step in recorded["steps"]]
        highlighted, counts = token_views(details)
        picked = show_step(request.steps, recorded)
        slider = gr.Slider(1, request.steps, value=request.steps, step=1, interactive=True)
        frame = schedule_frame(services, request.model, request.width, request.height)
        return noisy, slider, *picked, frame, highlighted, counts, architecture_rows(details)

    return render


def two_images(values) -> float:
    """The side-by-side run: one image of each model."""
    return one_image(values) + one_image({**values, "model": values.get("model_b")})


def make_side_by_side_fn(services: AppServices):
    @endpoint(services, "how", cost=two_images)
    def side_by_side(
        prompt, model, prompt_b, model_b, seed, steps, guidance, width, height, run=gr.Progress()
    ):
        """Two trajectories with the same seed and size, paired step by step by the nearest σ."""
        runs = []
        for which, (text, key) in enumerate(((prompt, model), (prompt_b, model_b))):
            spec = get_spec(key) if key in services.model_keys else None
            # The second model runs at its own default steps and guidance: schnell 4 against dev 28.
            own_steps = steps if which == 0 or spec is None else spec.default_steps
            own_guidance = guidance if which == 0 or spec is None else spec.default_guidance
            request = GenerationRequest(
                prompt=text,
                model=key,
                width=width,
                height=height,
                steps=own_steps,
                guidance=own_guidance,
                seed=seed,
            )
            valid = validate(request, services.model_keys)
            runs.append(
                (valid, trajectory.run_trajectory(services.backend, valid, run.progress, run.stopped))
            )
        (first, a), (second, b) = runs
        pairs = trajectory.align_by_sigma([s.sigma for s in a.steps], [s.sigma for s in b.steps])
        names = model_title(first.spec.key), model_title(second.spec.key)
        gallery = []
        for i, j in pairs:
            gallery.append((a.steps[i].predicted, f"A {names[0]} · {step_caption(a.steps[i], first.steps)}"))
            gallery.append((b.steps[j].predicted, f"B {names[1]} · {step_caption(b.steps[j], second.steps)}"))
        return gallery

    return side_by_side


def build_tab(services: AppServices) -> None:
    model_keys = services.model_keys
    first = get_spec(model_keys[0])
    width0, height0 = size_for_aspect("1:1", first)
    # Offline: a sign the nano models can write, and nano-dev beside nano-schnell (tiny-klein draws noise).
    prompt0 = nano.example_prompts()[0] if first.is_nano else 'A red fox on a sign that says "FLUX"'
    model_b0 = model_keys[1] if first.is_nano and len(model_keys) > 1 else model_keys[-1]
    gr.Markdown(t("how_intro"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            prompt = gr.Textbox(
                label=t("prompt"),
                value=prompt0,
                max_length=MAX_PROMPT_CHARS,
                elem_id="how-prompt",
            )
            model = gr.Dropdown(
                model_choices(model_keys), value=first.key, label=t("model"), allow_custom_value=True
            )
            with gr.Row():
                run = gr.Button(t("how_run"), variant="primary", elem_id="how-run", scale=3)
                stop = stop_button("how")
            with gr.Accordion(t("settings"), open=False):
                seed = seed_box(42)
                steps, guidance = step_sliders(model_keys)
                width, height = size_sliders(width0, height0, first)
        with gr.Column(scale=1):
            final = gr.Image(
                label=t("result"), format="png", type="pil", interactive=False, elem_id="how-final"
            )
    gr.Markdown(t("how_trajectory"))
    strip = gr.Gallery(label=t("how_predicted"), columns=8, height=240, format="png", elem_id="how-strip")
    noisy_strip = gr.Gallery(label=t("how_noisy"), columns=8, height=240, format="png", elem_id="how-noisy")
    index = gr.Slider(
        1, first.default_steps, value=first.default_steps, step=1, label=t("how_step"), elem_id="how-step"
    )
    with gr.Row():
        picked = gr.Image(
            label=t("how_predicted_one"), type="pil", format="png", interactive=False, elem_id="how-x0"
        )
        picked_noisy = gr.Image(label=t("how_noisy_one"), type="pil", format="png", interactive=False)
    caption = gr.Textbox(label=t("how_caption"), interactive=False, elem_id="how-caption")
    gr.Markdown(t("how_schedule"))
    plot = gr.LinePlot(
        x="progress", y="sigma", color="run", label=t("how_schedule_plot"), elem_id="how-schedule"
    )
    gr.Markdown(t("how_tokens"))
    tokens = gr.HighlightedText(label=t("how_tokens_label"), elem_id="how-tokens")
    counts = gr.Dataframe(
        headers=["encoder", "tokens", "limit", "cut"], label=t("how_counts"), elem_id="how-counts"
    )
    gr.Markdown(t("how_architecture"))
    arch = gr.Dataframe(
        headers=["part", "value"], label=t("how_architecture_label"), elem_id="how-architecture"
    )
    details = gr.JSON(label=t("details"), elem_id="how-details")
    with gr.Accordion(t("how_side_by_side"), open=False):
        with gr.Row():
            prompt_b = gr.Textbox(label=t("how_prompt_b"), value=prompt0)
            model_b = gr.Dropdown(
                model_choices(model_keys),
                value=model_b0,
                label=t("how_model_b"),
                allow_custom_value=True,
            )
        side_run = gr.Button(t("how_side_run"), elem_id="how-side-run")
        pairs = gr.Gallery(label=t("how_pairs"), columns=2, height="auto", format="png", elem_id="how-pairs")
    recorded = gr.State(None)
    share.reset_on_model(
        model, {"steps": steps, "guidance": guidance, "width": width, "height": height}, model_keys
    )

    run_event = stoppable(services, "how", stop, [run.click]).then(
        make_trajectory_fn(services),
        [prompt, model, seed, steps, guidance, width, height],
        [final, strip, details, recorded],
        api_name="trajectory",
        concurrency_id=GPU_QUEUE,
    )
    run_event.then(
        make_render_fn(services),
        [details, recorded],
        [noisy_strip, index, picked, picked_noisy, caption, plot, tokens, counts, arch],
        api_visibility="private",
    )
    index.change(
        show_step, [index, recorded], [picked, picked_noisy, caption], queue=False, api_visibility="private"
    )
    side_event = stoppable(services, "how", stop, [side_run.click], press=False).then(
        make_side_by_side_fn(services),
        [prompt, model, prompt_b, model_b, seed, steps, guidance, width, height],
        pairs,
        api_visibility="private",
        concurrency_id=GPU_QUEUE,
    )
    hide_stop(run_event, stop)
    hide_stop(side_event, stop)
