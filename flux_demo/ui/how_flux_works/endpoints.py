"""The tab's endpoints: `/trajectory`, `/word_maps`, `/encoder_ablation` and the distillation comparison.

Each follows the app's handler pattern (`event_handler`, `validate`, notes, a Stop that keeps what
finished, `LocalizedProgress`) and calls `flux_demo.watching`, never diffusers.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr
from PIL import Image

from flux_demo.faults import GenerationCancelled
from flux_demo.models import get_spec
from flux_demo.pipelines import ModelHost
from flux_demo.ui.how_flux_works.panels import Series, line_chart, text
from flux_demo.ui.server_text import visitor_language
from flux_demo.ui.widgets import (
    LocalizedProgress,
    download_folder,
    event_handler,
    named_png,
    show_notes,
    show_stop,
    stop_watch,
)
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


def request_from(host: ModelHost, prompt, model, seed, steps, guidance, width, height) -> ValidRequest:
    valid = validate(
        GenerationRequest(prompt, model, width, height, steps, guidance, seed, False), host.model_keys
    )
    show_notes(valid.notes)
    return valid


def record(host: ModelHost, valid: ValidRequest, words: list[str], progress, action: str, noisy=True):
    """A trajectory with word maps for `words`, or None when the visitor pressed Stop."""
    try:
        return trajectory.run_trajectory(
            host, valid, LocalizedProgress(progress), words, stopped=stop_watch(host, action), noisy=noisy
        )
    except GenerationCancelled as stop:
        show_stop(stop)
        return None


def make_trajectory_fn(host: ModelHost) -> Callable:
    @event_handler(host.limiter)
    def trajectory_run(
        prompt: str,
        model: str,
        seed: float,
        steps: float,
        guidance: float,
        width: float,
        height: float,
        words: str | None = None,
        progress=gr.Progress(),
    ):
        """Generate one image and return what happened at every denoising step.

        Args:
            prompt: What to draw, 1-2000 characters.
            model: Model key, one of the served models (see the model dropdown), e.g. "schnell" or "dev".
            seed: Noise seed, an integer 0-4294967295.
            steps: Denoising steps, within the model's range (schnell and klein 1-16, dev 1-50).
            guidance: Distilled guidance (dev 1-10); models that ignore it run at their fixed value.
            width: Image width in pixels, 256 up to the model's largest side (2048 for the full-size
                models, 512 for the offline nano ones), snapped to its size multiple (16; nano 32).
            height: Image height in pixels, same range as width.
            words: Optional: words of the prompt to map (comma-separated, at most 8); empty or null for none.

        Returns:
            The final PNG (identical to /generate with the same settings), the predicted clean image x₀
            after each step (captioned "step/steps · t before → after · seconds", t = σ, 1 = noise), and
            details: sigmas (steps + 1 values, 1 down to 0), timesteps (diffusers' 1000·σ), step_seconds,
            text_tokens, image_tokens, architecture, and with words, word_maps (token grid, last step).
        """
        valid = request_from(host, prompt, model, seed, steps, guidance, width, height)
        chosen = word_maps.check_words(words, valid.prompt) if words and str(words).strip() else []
        run = record(host, valid, chosen, progress, "trajectory")
        if run is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        strip = [(step.predicted, step_caption(step, valid.steps)) for step in run.steps]
        image = named_png(run.result.image, run.result.request.settings())
        return image, strip, run.details, {"request": valid, "steps": run.steps, "words": run.words}

    return trajectory_run


def make_word_maps_fn(host: ModelHost) -> Callable:
    @event_handler(host.limiter)
    def word_maps_run(
        prompt: str,
        model: str,
        seed: float,
        steps: float,
        guidance: float,
        width: float,
        height: float,
        words: str | None = None,
        progress=gr.Progress(),
    ):
        """Generate one image and map where each chosen word of the prompt lands in it.

        The maps come from the MM-DiT's joint attention (ConceptAttention): each word travels through the
        double-stream blocks on the text weights without changing the picture, and is scored against
        every image token in attention-output space; softmax over the prompt's words.

        Args:
            prompt: What to draw, 1-2000 characters.
            model: Model key, one of the served models, e.g. "schnell", "dev" or "klein".
            seed: Noise seed, an integer 0-4294967295.
            steps: Denoising steps, within the model's range (schnell and klein 1-16, dev 1-50).
            guidance: Distilled guidance (dev 1-10); models that ignore it run at their fixed value.
            width: Image width in pixels, 256 up to the model's largest side (2048; nano 512).
            height: Image height in pixels, same range as width.
            words: Words of the prompt, comma-separated, at most 8; empty for its first 8 words.

        Returns:
            The final PNG (identical to /generate), one map per word laid over the image (captioned with
            the word), and details: words, grid (rows, columns of image tokens) and word_maps (per word,
            the last step's map on the token grid, values 0-1 that sum to 1 over the prompt's words).
        """
        valid = request_from(host, prompt, model, seed, steps, guidance, width, height)
        chosen = word_maps.check_words(words or "", valid.prompt)
        run = record(host, valid, chosen, progress, "word_maps", noisy=False)
        if run is None:
            return gr.skip(), gr.skip(), gr.skip()
        final = run.result.image
        overlays = [
            (word_maps.overlay(final, run.steps[-1].word_maps[i]), w) for i, w in enumerate(run.words)
        ]
        spec = valid.spec
        grid = [valid.height // spec.size_multiple, valid.width // spec.size_multiple]
        details = {"words": run.words, "grid": grid, "word_maps": run.details.get("word_maps", {})}
        return named_png(final, run.result.request.settings()), overlays, details

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


def make_ablation_fn(host: ModelHost) -> Callable:
    @event_handler(host.limiter)
    def encoder_ablation(
        prompt: str,
        model: str,
        seed: float,
        steps: float,
        guidance: float,
        width: float,
        height: float,
        progress=gr.Progress(),
    ):
        """Render one prompt with every text encoder, then with each alone, and score the text by OCR.

        FLUX.1's `prompt` feeds CLIP (one pooled vector that modulates every block) and `prompt_2` feeds
        T5 (the tokens the image attends over); an encoder left out gets an empty prompt. FLUX.2 [klein]
        has one encoder and is refused.

        Args:
            prompt: What to draw with the text to render in quotes, e.g. a sign that says "OPEN".
            model: Model key of a model with two text encoders, e.g. "schnell" or "dev".
            seed: Noise seed, an integer 0-4294967295; the same for every run.
            steps: Denoising steps, within the model's range (schnell 1-16, dev 1-50).
            guidance: Distilled guidance (dev 1-10); models that ignore it run at their fixed value.
            width: Image width in pixels, 256 up to the model's largest side (2048; nano 512).
            height: Image height in pixels, same range as width.

        Returns:
            The images (all encoders, then each alone), a table (encoders, text read, character error
            rate 0-1, exact match) and details with the same per run.
        """
        valid = request_from(host, prompt, model, seed, steps, guidance, width, height)
        try:
            runs = ablation.run_ablation(
                host, valid, LocalizedProgress(progress), stopped=stop_watch(host, "ablation")
            )
        except GenerationCancelled as stop:
            show_stop(stop)
            return gr.skip(), gr.skip(), gr.skip()
        pipe = host.get_pipeline(valid.model)
        rows = []
        for run in runs:
            names = " + ".join(type(getattr(pipe, encoder)).__name__ for encoder in run.encoders)
            cer = None if run.score.mean_cer is None else round(run.score.mean_cer, 3)
            rows.append([names, run.score.recognised_text, cer, run.score.all_exact])
        gallery = [(run.image, f"{row[0]} · CER {row[2]}") for run, row in zip(runs, rows, strict=True)]
        headers = ["encoders", "read", "CER", "exact"]
        details = {"runs": [dict(zip(headers, row, strict=True)) for row in rows]}
        return gallery, localized(headers, rows), details

    return encoder_ablation


def localized(headers: list[str], rows: list[list]) -> dict:
    """A Dataframe value with the headers in the visitor's language."""
    language = visitor_language()
    return {"headers": [text(f"how_h_{header}", language) for header in headers], "data": rows}


def distillation_requests(host: ModelHost, prompt, model, seed, width, height) -> list[ValidRequest]:
    """The chosen model's family (models sharing its components), each at its own default steps and
    guidance, plus each guidance-distilled one at its lowest guidance (no guidance)."""
    spec = check_model(model, host.model_keys)
    family = [
        key for key in host.model_keys if spec.share_group and get_spec(key).share_group == spec.share_group
    ]
    requests = []
    for key in family or [model]:
        member = get_spec(key)
        settings = [(member.default_steps, member.default_guidance)]
        if member.guidance_range:
            settings.append((member.default_steps, member.guidance_range[0]))
        for steps, guidance in settings:
            request = GenerationRequest(prompt, key, width, height, steps, guidance, seed, False)
            requests.append(validate(request, host.model_keys))
    return requests


def make_distillation_fn(host: ModelHost) -> Callable:
    @event_handler(host.limiter)
    def distillation(prompt, model, seed, width, height, progress=gr.Progress()):
        """The model's family at its own steps, and without guidance: how far each step's x₀ still is
        from the final image, and x₀ at t ≈ 0.75, 0.5, 0.25 and at the end."""
        requests = distillation_requests(host, prompt, model, seed, width, height)
        language = visitor_language()
        runs = []
        for request in requests:
            run = record(host, request, [], progress, "distillation", noisy=False)
            if run is None:
                break
            runs.append((request, run))
        if not runs:
            return gr.skip(), gr.skip(), gr.skip()
        series, tiles, rows = [], [], []
        for request, run in runs:
            name = text(f"model_name.{request.model}", language)
            label = text("how_distill_run", language, name=name, steps=request.steps, g=request.guidance)
            distances = trajectory.distance_to_final(run)
            series.append(Series(label, [(s.sigma, d) for s, d in zip(run.steps, distances, strict=True)]))
            sigmas = [s.sigma_next for s in run.steps]
            for target in (0.75, 0.5, 0.25, 0.0):
                step = run.steps[min(range(len(sigmas)), key=lambda i, t=target: abs(sigmas[i] - t))]
                tile = step.predicted.resize(shown_size(request), Image.Resampling.BILINEAR)
                tiles.append((tile, f"{label} · t {step.sigma_next:.2f}"))
            rows.append([label, round(run.result.seconds, 2), distances[0], distances[len(distances) // 2]])
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
