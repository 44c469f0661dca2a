"""PNG text metadata that records how an image was made, and reading it back.

The keys are documented in docs/api.md. Values are plain strings, so any PNG tool can read them, and
seeds are written as decimal integers, never floats.
"""

from __future__ import annotations

from collections.abc import Mapping

from PIL import Image

from flux_demo import __version__
from flux_demo.loras import settings_text

# Written into every generated PNG, in this order; edited images add EDIT_KEYS.
PNG_KEYS = ("prompt", "model", "seed", "steps", "guidance", "width", "height", "app_version")
# `mode`: edit, img2img or inpaint; `strength` where it applies; `references`: the SHA-256 of each input
# image's pixels, comma-separated, in order (images cannot travel in a link or a PNG, their hashes can).
EDIT_KEYS = ("mode", "strength", "references")
# Where a run had them: `loras` ("reference:scale,...", see flux_demo.loras) and `num_images`, the run's
# image count (this image's own seed is `seed`).
RUN_KEYS = ("loras", "num_images")
SOFTWARE = f"flux-demo {__version__}"


def png_text(
    *,
    prompt: str,
    model: str,
    seed: int,
    steps: int,
    guidance: float,
    width: int,
    height: int,
    mode: str | None = None,
    strength: float | None = None,
    references: tuple[str, ...] = (),
    loras: tuple[tuple[str, float], ...] = (),
    num_images: int = 1,
) -> dict[str, str]:
    """The text chunks for one generated image (edit and run keys only where they apply)."""
    edit = {"mode": mode} if mode else {}
    if strength is not None:
        edit["strength"] = f"{float(strength):g}"
    if references:
        edit["references"] = ",".join(references)
    if loras:
        edit["loras"] = settings_text(loras)
    if num_images > 1:
        edit["num_images"] = str(int(num_images))
    return {
        "prompt": prompt,
        "model": model,
        "seed": str(int(seed)),
        "steps": str(int(steps)),
        "guidance": f"{float(guidance):g}",
        "width": str(int(width)),
        "height": str(int(height)),
        **edit,
        "app_version": __version__,
        "Software": SOFTWARE,
    }


def attach(image: Image.Image, text: Mapping[str, str]) -> Image.Image:
    """Put `text` into `image.info`; Gradio writes its str items as PNG text chunks when it saves."""
    image.info.update(text)
    return image


def read_png_text(image: Image.Image) -> dict[str, str]:
    """The known keys present in an opened PNG's text chunks (missing keys are left out)."""
    source = getattr(image, "text", None) or image.info
    return {key: str(source[key]) for key in (*PNG_KEYS, *EDIT_KEYS, *RUN_KEYS) if key in source}
