"""Editing with input images: FLUX.2 [klein] multi-reference edits, FLUX.1 image-to-image, klein inpainting.

An `EditRequest` (as received) goes through `validate_edit`, which checks every field and every image
(header first, then pixels) and returns a `ValidEdit`: a `ValidRequest` that also carries the decoded
images, their SHA-256 hashes, the mode and the strength. `run_edit` runs it through
`generation.generate` with `call_pipeline`, which asks the replica for the mode's pipeline class built
from the loaded components (`Replica.variant`), so no weight is loaded twice.

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
from flux_demo.messages import Message
from flux_demo.models import MIN_SIDE, ModelSpec, get_spec
from flux_demo.pipelines import runner
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


def missing_modes(spec: ModelSpec) -> dict[str, Message]:
    """{mode: reason} for the registry's modes of `spec` that cannot run here."""
    return {
        mode: Message("edit.diffusers_missing", pipeline=cls)
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
        extra: dict[str, object] = {"mode": self.mode, "references": self.references}
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
        raise InvalidInput(field_name, "input.not_an_image_file", kind=type(source).__name__)
    try:
        with warnings.catch_warnings():
            # The size check below refuses large images before decoding; PIL's own warning adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
        with image:
            if image.format not in ("PNG", "JPEG", "WEBP"):
                raise InvalidInput(field_name, "input.image_format_got", format=image.format)
            check_image_size(field_name, *image.size)
            return ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InvalidInput(field_name, "input.image_unreadable") from None


def image_size(field_name: str, source) -> tuple[int, int]:
    """An input image's (width, height) from its header alone: nothing is decoded."""
    if isinstance(source, tuple):  # a gallery item: (path or image, caption)
        source = source[0]
    if isinstance(source, Image.Image):
        return source.size
    if not isinstance(source, (str, Path)):
        raise InvalidInput(field_name, "input.not_an_image_file", kind=type(source).__name__)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                if image.format not in ("PNG", "JPEG", "WEBP"):
                    raise InvalidInput(field_name, "input.image_format_got", format=image.format)
                return image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InvalidInput(field_name, "input.image_unreadable") from None


def check_images(field_name: str, sources: Sequence, max_images: int) -> list[tuple[int, int]]:
    """Check 1 to `max_images` input images from their headers: each one's sides and aspect, then all
    of them together against MAX_TOTAL_PIXELS, before any pixel is decoded; returns their sizes."""
    if not 1 <= len(sources) <= max_images:
        allowed = (
            Message("allowed.images", count=max_images) if max_images > 1 else Message("allowed.one_image")
        )
        raise InvalidInput(field_name, "input.image_count", allowed=allowed, count=len(sources))
    sizes = []
    for index, source in enumerate(sources, 1):
        name = f"{field_name}[{index}]" if max_images > 1 else field_name
        size = image_size(name, source)
        check_image_size(name, *size)
        sizes.append(size)
    total = sum(width * height for width, height in sizes)
    if total > MAX_TOTAL_PIXELS:
        raise InvalidInput(field_name, "input.total_pixels", limit=MAX_TOTAL_PIXELS / 1e6, total=total / 1e6)
    return sizes


def check_image_size(field_name: str, width: int, height: int) -> None:
    if min(width, height) < MIN_IMAGE_SIDE or max(width, height) > MAX_IMAGE_SIDE:
        raise InvalidInput(
            field_name,
            "input.image_sides",
            low=MIN_IMAGE_SIDE,
            high=MAX_IMAGE_SIDE,
            width=width,
            height=height,
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InvalidInput(field_name, "input.image_aspect", limit=MAX_ASPECT, width=width, height=height)


def output_size(spec: ModelSpec, first: tuple[int, int], width, height) -> tuple[int, int, Message | None]:
    """Output (width, height, where the size came from: None when requested). 0 × 0 takes the first
    image's size, scaled down to the model's editing area and snapped to its size multiple; one side 0
    keeps its aspect."""
    allowed = Message("allowed.output_size", low=MIN_OUTPUT_SIDE, high=spec.max_side, model=spec.name)
    sides = {}
    for name, value in (("width", width), ("height", height)):
        value = round(check_number(name, value, allowed))
        if value and not MIN_OUTPUT_SIDE <= value <= spec.max_side:
            raise InvalidInput(name, "input.must_be", allowed=allowed, value=value)
        sides[name] = value

    def snap(value: float) -> int:
        return spec.snap_side(value, MIN_OUTPUT_SIDE)

    if sides["width"] and sides["height"]:
        return snap(sides["width"]), snap(sides["height"]), None
    ref_w, ref_h = first
    if sides["width"] or sides["height"]:
        scale = sides["width"] / ref_w if sides["width"] else sides["height"] / ref_h
        return (
            snap(ref_w * scale),
            snap(ref_h * scale),
            Message("note.first_image_aspect", width=ref_w, height=ref_h),
        )
    scale = min(1.0, math.sqrt(spec.max_edit_pixels / (ref_w * ref_h)))
    width, height = snap(ref_w * scale), snap(ref_h * scale)
    if width * height > spec.max_edit_pixels:  # rounding up overshot the area: round down instead
        width, height = (snap(side * scale - spec.size_multiple / 2) for side in (ref_w, ref_h))
    return width, height, Message("note.first_image", width=ref_w, height=ref_h)


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


def reference_pixels(image: Image.Image, spec: ModelSpec) -> int:
    """Pixels klein conditions on for one reference (scaled to at most 1 MP, floored to the model's size
    multiple, as the pipeline resizes references)."""
    w, h = image.size
    scale = min(1.0, math.sqrt(KLEIN_REFERENCE_PIXELS / (w * h)))
    multiple = spec.size_multiple
    return (int(w * scale) // multiple * multiple) * (int(h * scale) // multiple * multiple)


def validate_edit(request: EditRequest, available: Sequence[str]) -> ValidEdit:
    """Check every field and image on the server (API callers bypass the browser); errors name the field."""
    # 1. Text, model, steps, guidance and seed: the same rules as text-to-image
    mode = MODES.get(request.mode)
    if mode is None:
        raise InvalidInput("mode", "input.one_of_got", choices=", ".join(MODES), value=repr(request.mode))
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
        raise InvalidInput(
            "model",
            "input.mode_unsupported",
            model=spec.name,
            mode=mode.name,
            why=Message("input.mode_unsupported_here", reason=missing) if missing else "",
            able=", ".join(able) or Message("input.none"),
        )
    notes = list(base.notes)
    # 2. Strength, where the mode has one
    strength = None
    if mode.uses_strength:
        low, high = STRENGTH_RANGE
        strength = float(
            check_number("strength", request.strength, Message("allowed.span", low=low, high=high))
        )
        if not low <= strength <= high:
            allowed = Message("allowed.range", low=low, high=high)
            raise InvalidInput("strength", "input.must_be", allowed=allowed, value=f"{strength:g}")
    # 3. Images: count, then each header, then the total
    field_name = "references" if mode.max_images > 1 else "image"
    images_in = (
        list(request.images or ())
        if not isinstance(request.images, (str, Path, Image.Image))
        else [request.images]
    )
    check_images(field_name, images_in, mode.max_images)  # from the headers, before any decoding
    images = tuple(
        load_image(f"{field_name}[{i}]" if mode.max_images > 1 else field_name, item)
        for i, item in enumerate(images_in, 1)
    )
    # 4. Mask, the same size as the image: white repaints
    mask = None
    if mode.uses_mask:
        if request.mask is None:
            raise InvalidInput("mask", "input.mask_required")
        mask = load_image("mask", request.mask).convert("L")
        if mask.size != images[0].size:
            raise InvalidInput(
                "mask",
                "input.mask_size",
                width=images[0].width,
                height=images[0].height,
                mask_width=mask.width,
                mask_height=mask.height,
            )
        mask = mask.point(lambda v: 255 if v > 127 else 0)
        if not mask.getbbox():
            raise InvalidInput("mask", "input.mask_empty")
    # 5. Output size
    width, height, source = output_size(spec, images[0].size, request.width, request.height)
    if source is not None:
        notes.append(
            Message("note.edit_size", width=width, height=height, source=source, multiple=spec.size_multiple)
        )
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
        size_source=str(source) if source is not None else "requested",
        reference_pixels=sum(reference_pixels(image, spec) for image in conditioning)
        if mode.references_add_tokens
        else 0,
        images=conditioning,
        mask=mask,
    )


def call_pipeline(replica, loaded, request: ValidEdit, on_step_end):
    """Run the mode's pipeline (a `from_pipe` view of `loaded`) for `request`; `pipelines.runner` calls
    this inside the GPU slot, where the job runs. Module-level, so it pickles (ZeroGPU, Ray)."""

    mode = MODES[request.mode]
    pipe = replica.variant(loaded.spec.key, request.pipeline_class)
    images = list(request.images) if mode.max_images > 1 else request.images[0]
    extra: dict[str, object] = {"strength": request.strength} if mode.uses_strength else {}
    if mode.uses_mask:
        extra["mask_image"] = request.mask
    return pipe(**runner.pipeline_kwargs(loaded, request, on_step_end), image=images, **extra)


def run_edit(backend, request: ValidEdit, progress=None, stopped=None) -> generation.GenerationResult:
    """Run a validated edit on `backend`; the details add the mode, the size used and where it came from,
    the number of input images and the steps actually run."""
    result = generation.generate(backend, request, progress, call=call_pipeline, stopped=stopped)
    result.details.update(
        size=f"{request.width}×{request.height}",
        size_source=request.size_source,
        reference_count=len(request.references),
        steps_run=request.steps_run,
    )
    return result
