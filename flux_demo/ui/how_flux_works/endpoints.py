"""The tab's endpoints: `/trajectory`, `/word_maps`, `/encoder_ablation` and the distillation comparison.

Each goes through the app's endpoint runner (`flux_demo.ui.endpoints`: admission price, notes, a Stop that
keeps what finished, localized progress) and calls `flux_demo.watching`, never diffusers.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr
from PIL import Image

from flux_demo.models import MODELS, get_spec
from flux_demo.services import AppServices
from flux_demo.ui.endpoints import Run, endpoint, image_units, one_image, scored_image
from flux_demo.ui.how_flux_works.panels import Series, line_chart, text
from flux_demo.ui.i18n import visitor_language
from flux_demo.ui.widgets import download_folder, named_png
from flux_demo.validation import GenerationRequest, ValidRequest, check_model, validate
from flux_demo.watching import ablation, trajectory, word_maps

SHOWN_SIDE = 320  # word-map animations and distillation tiles are drawn at most this wide
FRAME_MS = 450


def step_caption(step, steps: int) -> str:
    """ "2/4 · t 0.750 → 0.500 · 0.21 s": the chapter's t (= σ) before and after the step."""
    return f"{step.index}/{steps} · t {step.sigma:.3f} → {step.sigma_next:.3f} · {step.seconds:.2f} s"


def shown_size(request: ValidRequest) -> tuple[int, int]:
    scale = min(1.0, SHOWN_SIDE / max(request.width, request.height))
    return round(request.width * scale), round(request.height * scale)


def request_from(
    services: AppServices, run: Run, prompt, model, seed, steps, guidance, width, height
) -> ValidRequest:
    request = GenerationRequest(
        prompt=prompt, model=model, width=width, height=height, steps=steps, guidance=guidance, seed=seed
    )
    valid = validate(request, services.model_keys)
    run.notes(valid.notes)
    return valid


def record(services: AppServices, valid: ValidRequest, words: list[str], run: Run, noisy=True):
    """A trajectory with word maps for `words`; a Stop raises `GenerationCancelled` to the runner."""
    return trajectory.run_trajectory(services.backend, valid, run.progress, words, run.stopped, noisy)


def make_trajectory_fn(services: AppServices) -> Callable:
    @endpoint(services, "trajectory", cost=one_image, outputs=4)
    def trajectory_run(
        prompt: str,
        model: str,
        seed: float,
        steps: float,
        guidance: float,
        width: float,
        height: float,
        words: str | None = None,
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
            words: Optional: words of the prompt to map (comma-separated, at most 8); empty or null for none.

        Returns:
            The final PNG (identical to /generate with the same settings), the predicted clean image x₀
            after each step (captioned "step/steps · t before → after · seconds", t = σ, 1 = noise), and
            details: sigmas (steps + 1 values, 1 down to 0), timesteps (diffusers' 1000·σ), step_seconds,
            text_tokens, image_tokens, architecture, and with words, word_maps (token grid, last step).
        """
        valid = request_from(services, run, prompt, model, seed, steps, guidance, width, height)
        chosen = word_maps.check_words(words, valid.prompt) if words and str(words).strip() else []
        recorded = record(services, valid, chosen, run)
        strip = [(step.predicted, step_caption(step, valid.steps)) for step in recorded.steps]
        image = named_png(recorded.result.image, valid.settings(), services.settings)
        return (
            image,
            strip,
            recorded.details,
            {"request": valid, "steps": recorded.steps, "words": recorded.words},
        )

    return trajectory_run


def make_word_maps_fn(services: AppServices) -> Callable:
    @endpoint(services, "word_maps", cost=one_image, outputs=3)
    def word_maps_run(
        prompt: str,
        model: str,
        seed: float,
        steps: float,
        guidance: float,
        width: float,
        height: float,
        words: str | None = None,
        run=gr.Progress(),
    ):
        """Generate one image and map where each chosen word of the prompt lands in it.

        The maps are the model's own cross-attention, read without changing the picture: in every
        single-stream block, the attention probability from each image token to the word's tokens,
        averaged over heads and blocks.

        Args:
            prompt: What to draw, 1-2000 characters.
            model: Model key, one of the served models: $models.
            seed: Noise seed, an integer 0-4294967295.
            steps: Denoising steps, within the model's range: $steps.
            guidance: Distilled guidance: $guidance.
            width: Image width in pixels, $sizes.
            height: Image height in pixels, $sizes.
            words: Words of the prompt, comma-separated, at most 8; empty for its first 8 words.

        Returns:
            The final PNG (identical to /generate), one map per word laid over the image (captioned with
            the word), and details: words, grid (rows, columns of image tokens) and word_maps (per word,
            the last step's map on the token grid, values 0-1 scaled so its strongest token is 1).
        """
        valid = request_from(services, run, prompt, model, seed, steps, guidance, width, height)
        chosen = word_maps.check_words(words or "", valid.prompt)
        recorded = record(services, valid, chosen, run, noisy=False)
        final = recorded.result.image
        last = recorded.steps[-1].word_maps
        overlays = [(word_maps.overlay(final, last[i]), w) for i, w in enumerate(recorded.words)]
        spec = valid.spec
        grid = [valid.height // spec.size_multiple, valid.width // spec.size_multiple]
        details = {"words": recorded.words, "grid": grid, "word_maps": recorded.details.get("word_maps", {})}
        return named_png(final, valid.settings(), services.settings), overlays, details

    return word_maps_run


def animations(recorded: dict) -> list[tuple[str, str]]:
    """Per word, an animated GIF of its map over x₀, one frame per step."""
    request, steps = recorded["request"], recorded["steps"]
    size = shown_size(request)
    folder = download_folder("word-maps")
    shown = []
    for i, word in enumerate(recorded["words"]):
        frames = [word_maps.overlay(step.predicted.resize(size), step.word_maps[i]) for step in steps]
        path = folder / f"{i}.gif"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0)
        shown.append((str(path), word))
    return shown


def ablation_cost(values) -> float:
    """Every encoder, then each alone: one scored image per run."""
    spec = MODELS.get(values.get("model")) if isinstance(values.get("model"), str) else None
    return scored_image(values) * (1 + len(spec.prompt_arguments) if spec else 1)


def make_ablation_fn(services: AppServices) -> Callable:
    @endpoint(services, "ablation", cost=ablation_cost, outputs=3)
    def encoder_ablation(
        prompt: str,
        model: str,
        seed: float,
        steps: float,
        guidance: float,
        width: float,
        height: float,
        run=gr.Progress(),
    ):
        """Render one prompt with every text encoder, then with each alone, and score the text by OCR.

        FLUX.1's `prompt` feeds CLIP (one pooled vector that modulates every block) and `prompt_2` feeds
        T5 (the tokens the image attends over); an encoder left out gets an empty prompt. FLUX.2 [klein]
        has one encoder and is refused.

        Args:
            prompt: What to draw with the text to render in quotes, e.g. a sign that says "OPEN".
            model: Model key, one of the served models: $models.
            seed: Noise seed, an integer 0-4294967295; the same for every run.
            steps: Denoising steps, within the model's range: $steps.
            guidance: Distilled guidance: $guidance.
            width: Image width in pixels, $sizes.
            height: Image height in pixels, $sizes.

        Returns:
            The images (all encoders, then each alone), a table (encoders, text read, character error
            rate 0-1, exact match) and details with the same per run.
        """
        valid = request_from(services, run, prompt, model, seed, steps, guidance, width, height)
        runs = ablation.run_ablation(services.backend, valid, run.progress, stopped=run.stopped)
        rows = []
        for each in runs:
            names = " + ".join(each.names.get(encoder, encoder) for encoder in each.encoders)
            cer = None if each.score.mean_cer is None else round(each.score.mean_cer, 3)
            rows.append([names, each.score.recognised_text, cer, each.score.all_exact])
        gallery = [(each.image, f"{row[0]} · CER {row[2]}") for each, row in zip(runs, rows, strict=True)]
        headers = ["encoders", "read", "CER", "exact"]
        details = {"runs": [dict(zip(headers, row, strict=True)) for row in rows]}
        return gallery, localized(headers, rows), details

    return encoder_ablation


def localized(headers: list[str], rows: list[list]) -> dict:
    """A Dataframe value with the headers in the visitor's language."""
    language = visitor_language()
    return {"headers": [text(f"how_h_{header}", language) for header in headers], "data": rows}


def distillation_plan(model: str, model_keys) -> list[tuple[str, int, float]]:
    """The chosen model's family (served models sharing its components), each at its own default steps
    and guidance, plus each guidance-distilled one at its lowest guidance (no guidance)."""
    spec = get_spec(model)
    family = [key for key in model_keys if spec.share_group and get_spec(key).share_group == spec.share_group]
    plan = []
    for key in family or [model]:
        member = get_spec(key)
        plan.append((key, member.default_steps, member.default_guidance))
        if member.guidance_range:
            plan.append((key, member.default_steps, member.guidance_range[0]))
    return plan


def distillation_cost(model_keys):
    def cost(values) -> float:
        model = values.get("model")
        if not isinstance(model, str) or model not in model_keys:
            return one_image(values)  # refused by the handler before any work
        plan = distillation_plan(model, model_keys)
        return max(sum(image_units({**values, "steps": steps}, key) for key, steps, _ in plan), 1 / 64)

    return cost


def distillation_requests(services: AppServices, prompt, model, seed, width, height) -> list[ValidRequest]:
    check_model(model, services.model_keys)
    requests = []
    for key, steps, guidance in distillation_plan(model, services.model_keys):
        request = GenerationRequest(
            prompt=prompt, model=key, width=width, height=height, steps=steps, guidance=guidance, seed=seed
        )
        requests.append(validate(request, services.model_keys))
    return requests


def make_distillation_fn(services: AppServices) -> Callable:
    @endpoint(services, "distillation", cost=distillation_cost(services.model_keys), outputs=3)
    def distillation(prompt, model, seed, width, height, run=gr.Progress()):
        """The model's family at its own steps, and without guidance: how far each step's x₀ still is
        from the final image, and x₀ at t ≈ 0.75, 0.5, 0.25 and at the end."""
        requests = distillation_requests(services, prompt, model, seed, width, height)
        language = visitor_language()
        runs = [(request, record(services, request, [], run, noisy=False)) for request in requests]
        series, tiles, rows = [], [], []
        for request, recorded in runs:
            name = text(f"model_name.{request.model}", language)
            label = text("how_distill_run", language, name=name, steps=request.steps, g=request.guidance)
            distances = trajectory.distance_to_final(recorded)
            points = [(s.sigma, d) for s, d in zip(recorded.steps, distances, strict=True)]
            series.append(Series(label, points))
            sigmas = [s.sigma_next for s in recorded.steps]
            for target in (0.75, 0.5, 0.25, 0.0):
                step = recorded.steps[min(range(len(sigmas)), key=lambda i, t=target: abs(sigmas[i] - t))]
                tile = step.predicted.resize(shown_size(request), Image.Resampling.BILINEAR)
                tiles.append((tile, f"{label} · t {step.sigma_next:.2f}"))
            seconds = round(recorded.result.seconds, 2)
            rows.append([label, seconds, distances[0], distances[len(distances) // 2]])
        top = max(max(d for _, d in s.points) for s in series) or 1.0
        chart = line_chart(
            series,
            text("how_distill_x", language),
            text("how_distill_y", language),
            x_range=(1.0, 0.0),
            y_range=(0.0, float(round(top + 5, -1))),
        )
        return tiles, chart, localized(["run", "seconds", "after_step_1", "halfway"], rows)

    return distillation
