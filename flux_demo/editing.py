"""Editing with input images: FLUX.2 [klein] multi-reference edits, FLUX.1 image-to-image, klein inpainting.

An `EditRequest` (as received) goes through `validate_edit`, which checks every field and every image
(header first, then pixels) and returns a `ValidEdit`: a `ValidRequest` that also carries the decoded
images, their SHA-256 hashes, the mode and the strength. `run_edit` runs it through
`generation.generate` with `call_pipeline`, which asks the host for the mode's pipeline class built
from the loaded components (`ModelHost.variant`), so no weight is loaded twice.

Which model offers which mode lives in the registry (`ModelSpec.edit_pipelines`); what each mode takes
lives here (`EditMode`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from flux_demo import generation
from flux_demo.models import MIN_SIDE, SIZE_MULTIPLE, ModelSpec, get_spec
from flux_demo.validation import GenerationRequest, InvalidInput, ValidRequest, check_model, check_number
from flux_demo.validation import validate as validate_generation

MIN_IMAGE_SIDE = 64  # pixels, for every input image
MAX_IMAGE_SIDE = 4096
MAX_ASPECT = 8  # longest side over shortest side
MAX_TOTAL_PIXELS = 40_000_000  # all input images together
MIN_OUTPUT_SIDE = 64
STRENGTH_RANGE = (0.05, 1.0)
KLEIN_REFERENCE_PIXELS = 1024 * 1024  # Flux2KleinPipeline scales each reference down to this area


@dataclass(frozen=True)
class EditMode:
    """What one editing mode takes: how many input images, and whether strength, a mask and guidance."""

    name: str
    max_images: int
    uses_strength: bool = False
    uses_mask: bool = False
    uses_guidance: bool = False
    # Each reference adds its own tokens to every step (klein's multi-reference conditioning).
    references_add_tokens: bool = False


MODES = {
    mode.name: mode
    for mode in (
        EditMode("edit", max_images=10, references_add_tokens=True),
        EditMode("img2img", max_images=1, uses_strength=True, uses_guidance=True),
        EditMode("inpaint", max_images=1, uses_strength=True, uses_mask=True),
    )
}


def installed(class_name: str) -> bool:
    """Whether the installed diffusers has `class_name` (its lazy module lists names without importing)."""
    import diffusers

    return class_name in dir(diffusers)


def modes_for(spec: ModelSpec) -> dict[str, str]:
    """{mode: pipeline class} that `spec` offers with the installed diffusers."""
    return {mode: cls for mode, cls in spec.edit_pipelines if installed(cls)}


def missing_modes(spec: ModelSpec) -> dict[str, str]:
    """{mode: reason} for the registry's modes of `spec` that cannot run here."""
    return {
        mode: f"the installed diffusers has no {cls} (it needs diffusers 0.42.1 or newer)"
        for mode, cls in spec.edit_pipelines
        if not installed(cls)
    }


@dataclass(frozen=True)
class EditRequest:
    """What a caller asks for, as received: `images` are file paths or PIL images, in order."""

    prompt: str
    model: str
    mode: str
    images: Sequence = ()
    mask: object = None
    strength: float | None = None
    steps: float = 4
    guidance: float | None = None
    seed: float = 0
    randomize_seed: bool = False
    width: float = 0  # 0 x 0: the first image's size, scaled to the model's area and snapped
    height: float = 0


@dataclass(frozen=True)
class ValidEdit(ValidRequest):
    """A checked edit: a `ValidRequest` plus the decoded input images and what the mode needs."""

    mode: str = "edit"
    strength: float | None = None
    pipeline_class: str = ""
    references: tuple[str, ...] = ()  # SHA-256 of each input image's RGB pixels, in order
    size_source: str = "requested"
    reference_pixels: int = 0  # pixels the references add to every step
    images: tuple = field(default=(), compare=False, repr=False)
    mask: object = field(default=None, compare=False, repr=False)

    def settings(self) -> dict:
        extra = {"mode": self.mode, "references": self.references}
        if self.strength is not None:
            extra["strength"] = self.strength
        return {**super().settings(), **extra}

    @property
    def steps_run(self) -> int:
        return steps_run(self.steps, self.strength)

    @property
    def step_pixels(self) -> int:
        return self.width * self.height + self.reference_pixels


def steps_run(steps: int, strength: float | None) -> int:
    """Steps diffusers runs for `steps` at `strength` (it skips the first `steps × (1 - strength)`)."""
    if strength is None:
        return steps
    return steps - int(max(steps - min(steps * strength, steps), 0))


def pixel_hash(image: Image.Image) -> str:
    """SHA-256 of an image's RGB pixels (8 bits per channel, row by row), as 64 hex digits."""
    return hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()


def load_image(field_name: str, source) -> Image.Image:
    """An input image as RGB, checked from its header before any pixel is decoded: a PNG, JPEG or WebP
    of 64 to 4096 pixels a side with an aspect ratio of at most 8:1. Camera rotation (EXIF) is applied."""
    if isinstance(source, tuple):  # a gallery item: (path or image, caption)
        source = source[0]
    if isinstance(source, Image.Image):
        check_image_size(field_name, *source.size)
        return ImageOps.exif_transpose(source).convert("RGB")
    if not isinstance(source, (str, Path)):
        raise InvalidInput(field_name, f"must be an image file, got {type(source).__name__}")
    try:
        with warnings.catch_warnings():
            # The size check below refuses large images before decoding; PIL's own warning adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
        with image:
            if image.format not in ("PNG", "JPEG", "WEBP"):
                raise InvalidInput(field_name, f"must be a PNG, JPEG or WebP image, got {image.format}")
            check_image_size(field_name, *image.size)
            return ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InvalidInput(
            field_name, "must be a PNG, JPEG or WebP image (the file could not be read)"
        ) from None


def check_image_size(field_name: str, width: int, height: int) -> None:
    if min(width, height) < MIN_IMAGE_SIDE or max(width, height) > MAX_IMAGE_SIDE:
        raise InvalidInput(
            field_name,
            f"each side must be {MIN_IMAGE_SIDE} to {MAX_IMAGE_SIDE} pixels, got {width}×{height}",
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InvalidInput(field_name, f"aspect ratio must be at most {MAX_ASPECT}:1, got {width}×{height}")


def output_size(spec: ModelSpec, first: tuple[int, int], width, height) -> tuple[int, int, str]:
    """Output (width, height, where the size came from). 0 × 0 takes the first image's size, scaled
    down to the model's editing area and snapped to multiples of 16; one side 0 keeps its aspect."""
    allowed = f"0 (the first image's size) or {MIN_OUTPUT_SIDE} to {spec.max_side} for {spec.name}"
    sides = {}
    for name, value in (("width", width), ("height", height)):
        value = round(check_number(name, value, allowed))
        if value and not MIN_OUTPUT_SIDE <= value <= spec.max_side:
            raise InvalidInput(name, f"must be {allowed}, got {value}")
        sides[name] = value
    if sides["width"] and sides["height"]:
        return snap(sides["width"], spec), snap(sides["height"], spec), "requested"
    ref_w, ref_h = first
    if sides["width"] or sides["height"]:
        scale = sides["width"] / ref_w if sides["width"] else sides["height"] / ref_h
        return (
            snap(ref_w * scale, spec),
            snap(ref_h * scale, spec),
            f"first image's aspect ({ref_w}×{ref_h})",
        )
    scale = min(1.0, math.sqrt(spec.max_edit_pixels / (ref_w * ref_h)))
    width, height = snap(ref_w * scale, spec), snap(ref_h * scale, spec)
    if width * height > spec.max_edit_pixels:  # rounding up overshot the area: round down instead
        width, height = (snap(side * scale - spec.size_multiple / 2, spec) for side in (ref_w, ref_h))
    return width, height, f"first image ({ref_w}×{ref_h})"


def snap(value: float, spec: ModelSpec) -> int:
    """Nearest multiple of the model's size multiple within MIN_OUTPUT_SIDE..its largest side."""
    multiple = spec.size_multiple
    snapped = math.floor(value / multiple + 0.5) * multiple
    low = math.ceil(MIN_OUTPUT_SIDE / multiple) * multiple
    return min(max(snapped, low), spec.max_side // multiple * multiple)


def fit_area(image: Image.Image, pixels: int) -> Image.Image:
    """`image` scaled down (aspect kept) to at most `pixels` pixels; a smaller image is returned as is."""
    scale = math.sqrt(pixels / (image.width * image.height))
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def reference_pixels(image: Image.Image) -> int:
    """Pixels klein conditions on for one reference (scaled to at most 1 MP, floored to multiples of 16)."""
    w, h = image.size
    scale = min(1.0, math.sqrt(KLEIN_REFERENCE_PIXELS / (w * h)))
    return (int(w * scale) // SIZE_MULTIPLE * SIZE_MULTIPLE) * (
        int(h * scale) // SIZE_MULTIPLE * SIZE_MULTIPLE
    )


def validate_edit(request: EditRequest, available: Sequence[str]) -> ValidEdit:
    """Check every field and image on the server (API callers bypass the browser); errors name the field."""
    # 1. Text, model, steps, guidance and seed: the same rules as text-to-image
    mode = MODES.get(request.mode)
    if mode is None:
        raise InvalidInput("mode", f"must be one of {', '.join(MODES)}, got {request.mode!r}")
    # No guidance given (the edit and inpaint endpoints have none): the model's default.
    guidance = (
        check_model(request.model, available).default_guidance
        if request.guidance is None
        else request.guidance
    )
    base = validate_generation(
        GenerationRequest(
            request.prompt,
            request.model,
            MIN_SIDE,
            MIN_SIDE,
            request.steps,
            guidance,
            request.seed,
            request.randomize_seed,
        ),
        available,
    )
    spec = base.spec
    offered = modes_for(spec)
    if mode.name not in offered:
        able = [key for key in available if mode.name in modes_for(get_spec(key))]
        missing = missing_modes(spec).get(mode.name)
        why = f" here: {missing}" if missing else ""
        raise InvalidInput(
            "model",
            f"{spec.name} does not offer {mode.name}{why}; models that do: {', '.join(able) or 'none'}",
        )
    notes = list(base.notes)
    # 2. Strength, where the mode has one
    strength = None
    if mode.uses_strength:
        low, high = STRENGTH_RANGE
        strength = float(check_number("strength", request.strength, f"{low:g} to {high:g}"))
        if not low <= strength <= high:
            raise InvalidInput("strength", f"must be from {low:g} to {high:g}, got {strength:g}")
    # 3. Images: count, then each header, then the total
    field_name = "references" if mode.max_images > 1 else "image"
    images_in = (
        list(request.images or ())
        if not isinstance(request.images, (str, Path, Image.Image))
        else [request.images]
    )
    if not 1 <= len(images_in) <= mode.max_images:
        allowed = f"1 to {mode.max_images} images" if mode.max_images > 1 else "one image"
        raise InvalidInput(field_name, f"must hold {allowed}, got {len(images_in)}")
    images = tuple(
        load_image(f"{field_name}[{i}]" if mode.max_images > 1 else field_name, item)
        for i, item in enumerate(images_in, 1)
    )
    total = sum(im.width * im.height for im in images)
    if total > MAX_TOTAL_PIXELS:
        raise InvalidInput(
            field_name,
            f"must hold at most {MAX_TOTAL_PIXELS / 1e6:g} megapixels in all, got {total / 1e6:.1f}",
        )
    # 4. Mask, the same size as the image: white repaints
    mask = None
    if mode.uses_mask:
        if request.mask is None:
            raise InvalidInput("mask", "is required: paint the area to repaint in white")
        mask = load_image("mask", request.mask).convert("L")
        if mask.size != images[0].size:
            raise InvalidInput(
                "mask",
                f"must be the same size as the image ({images[0].width}×{images[0].height}), "
                f"got {mask.width}×{mask.height}",
            )
        mask = mask.point(lambda v: 255 if v > 127 else 0)
        if not mask.getbbox():
            raise InvalidInput("mask", "is empty: paint the area to repaint in white")
    # 5. Output size
    width, height, source = output_size(spec, images[0].size, request.width, request.height)
    if source != "requested":
        notes.append(f"size {width}×{height} from the {source}, snapped to multiples of {spec.size_multiple}")
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(ValidRequest)}
    # References become tokens at their own size: keep them within the area the model edits at (klein: the
    # 1 MP its pipeline allows anyway; the nano models: the 256x256 they were trained at).
    conditioning = (
        tuple(fit_area(im, spec.max_edit_pixels) for im in images) if mode.references_add_tokens else images
    )
    return ValidEdit(
        **{**fields, "width": width, "height": height, "notes": tuple(notes)},
        mode=mode.name,
        strength=strength,
        pipeline_class=offered[mode.name],
        references=tuple(pixel_hash(im) for im in images),
        size_source=source,
        reference_pixels=sum(map(reference_pixels, conditioning)) if mode.references_add_tokens else 0,
        images=conditioning,
        mask=mask,
    )


def call_pipeline(host, loaded, request: ValidEdit, on_step_end):
    """Run the mode's pipeline (a `from_pipe` view of `loaded`) for `request`; `generation._denoise` calls
    this inside the GPU slot. Module-level, so ZeroGPU can pickle it."""

    mode = MODES[request.mode]
    pipe = host.variant(loaded.spec.key, request.pipeline_class)
    images = list(request.images) if mode.max_images > 1 else request.images[0]
    extra = {"strength": request.strength} if mode.uses_strength else {}
    if mode.uses_mask:
        extra["mask_image"] = request.mask
    return pipe(**generation.pipeline_kwargs(loaded, request, on_step_end), image=images, **extra)


def run_edit(host, request: ValidEdit, progress=None) -> generation.GenerationResult:
    """Run a validated edit on `host`; the details add the mode, the size used and where it came from,
    the number of input images and the steps actually run."""
    result = generation.generate(host, request, progress, call=call_pipeline)
    result.details.update(
        size=f"{request.width}×{request.height}",
        size_source=request.size_source,
        reference_count=len(request.references),
        steps_run=request.steps_run,
    )
    return result
