"""The shipped nano pipelines, loaded and called as the app does (for the benchmark and the tests)."""

from __future__ import annotations

from pathlib import Path

from flux_demo.offline.nano import WEIGHTS_DIR
from training import grammar_images as gi
from training.nano_flux1 import DEV_DEFAULTS, IMAGE_SIZE, MAX_SEQUENCE_LENGTH, SCHNELL_DEFAULTS


def load_pipelines(weights: Path = WEIGHTS_DIR) -> dict:
    """nano-schnell and nano-dev through `FluxPipeline.from_pretrained`, in float32 (the files hold
    float16), with nano-dev reusing nano-schnell's encoders, tokenizers and VAE as the app does."""
    import torch
    from diffusers import FluxPipeline

    from flux_demo.models import FLUX1_SHARED

    # diffusers on Python 3.10 wants str paths, not Path objects.
    schnell = FluxPipeline.from_pretrained(str(Path(weights) / "nano-schnell"), dtype=torch.float32)
    shared = {name: getattr(schnell, name) for name in FLUX1_SHARED}
    dev = FluxPipeline.from_pretrained(str(Path(weights) / "nano-dev"), dtype=torch.float32, **shared)
    for pipe in (schnell, dev):
        pipe.set_progress_bar_config(disable=True)
    return {"schnell": schnell, "dev": dev}


def generate(pipe, prompt: str, seed: int, variant: str, size: int = IMAGE_SIZE, **overrides):
    """One FLUX.1 nano image at ``variant``'s defaults (as the app calls it), with a seeded CPU generator."""
    import torch

    kwargs = dict(DEV_DEFAULTS if variant == "dev" else SCHNELL_DEFAULTS)
    kwargs.update(overrides)
    return pipe(
        prompt,
        height=size,
        width=size,
        generator=torch.Generator("cpu").manual_seed(seed),
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        **kwargs,
    ).images[0]


def load_klein(weights: Path = WEIGHTS_DIR, mode: str = "edit"):
    """nano-klein through `Flux2KleinPipeline.from_pretrained` in float32; ``mode="inpaint"`` gives the
    `Flux2KleinInpaintPipeline` over the same components, as the app builds it."""
    import torch
    from diffusers import Flux2KleinInpaintPipeline, Flux2KleinPipeline

    pipe = Flux2KleinPipeline.from_pretrained(str(Path(weights) / "nano-klein"), dtype=torch.float32)
    if mode == "inpaint":
        pipe = Flux2KleinInpaintPipeline.from_pipe(pipe)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def klein_generate(pipe, grammar, example: gi.Example, seed: int, steps: int | None = None, size=IMAGE_SIZE):
    """One nano-klein image for ``example``: its prompt, with its reference pictures rendered as images."""
    import torch

    from flux_demo.models import get_spec

    spec = get_spec("nano-klein")
    references = [gi.render(grammar, picture) for picture in example.references]
    return pipe(
        prompt=example.caption,
        image=references or None,
        height=size,
        width=size,
        num_inference_steps=steps or spec.default_steps,
        guidance_scale=spec.default_guidance,
        max_sequence_length=spec.max_sequence_length,
        generator=torch.Generator("cpu").manual_seed(seed),
    ).images[0]


def klein_inpaint(pipe, grammar, example: gi.Example, seed: int, strength: float = 1.0, steps=None):
    """Inpaint ``example``'s first reference (the image being repainted) under `gi.change_mask` of its
    target, with its prompt, as the app's /inpaint calls `Flux2KleinInpaintPipeline`."""
    import torch

    from flux_demo.models import get_spec

    spec = get_spec("nano-klein")
    source = gi.render(grammar, example.references[0])
    return pipe(
        prompt=example.caption,
        image=source,
        mask_image=gi.change_mask(example.target),
        strength=strength,
        height=source.height,
        width=source.width,
        num_inference_steps=steps or spec.default_steps,
        guidance_scale=spec.default_guidance,
        max_sequence_length=spec.max_sequence_length,
        generator=torch.Generator("cpu").manual_seed(seed),
    ).images[0]
