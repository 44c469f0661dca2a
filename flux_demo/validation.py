"""Requests and their checks: every field is checked on the server, because API callers bypass the browser.

`validate` turns a `GenerationRequest` (as received) into a `ValidRequest` (sizes snapped, seed chosen,
guidance resolved for the model, registry entry resolved), or raises `InvalidInput` naming the field and
the allowed range. The UI, links, the comparison and the typography suite all check through here.
"""

from __future__ import annotations

import math
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flux_demo.messages import Message
from flux_demo.models import MIN_SIDE, ModelSpec, get_spec

if TYPE_CHECKING:
    from flux_demo.loras import LoraChoice

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**32 - 1
MAX_IMAGES = 4  # images per run: one batched pipeline call, seeds seed ... seed + n - 1


class InvalidInput(ValueError):
    """A request field is out of range: `reason` is a catalog message (`code` with `params`, or a
    `Message`) saying what is allowed; `message` puts the field name in front; `str()` is the English."""

    def __init__(self, field_name: str, code: str | Message, **params):
        self.field = field_name
        self.reason = code if isinstance(code, Message) else Message(code, **params)
        self.message = Message("input.field", field=field_name, reason=self.reason)
        super().__init__(self.message)

    def __reduce__(self):  # pickles (ZeroGPU, Ray) with its field and reason, not the English text
        return InvalidInput, (self.field, self.reason)


@dataclass(frozen=True)
class GenerationRequest:
    """What a caller asks for, as received (not yet checked)."""

    prompt: str
    model: str
    width: float = 1024
    height: float = 1024
    steps: float = 4
    guidance: float = 0.0
    seed: float = 0
    randomize_seed: bool = False
    # (reference, scale) pairs, as `flux_demo.loras.LORA_FIELDS` names them; empty references are none.
    loras: tuple[tuple[object, object], ...] = ()
    num_images: float = 1


@dataclass(frozen=True)
class ValidRequest:
    """A checked request: sizes snapped, seed chosen, guidance resolved for the model."""

    prompt: str
    model: str
    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    notes: tuple[Message, ...] = ()  # adjustments the server made, for the visitor
    # The registry entry, resolved once at validation and carried down to the pipeline call.
    spec: ModelSpec = field(default=None, compare=False, repr=False)  # type: ignore[assignment]  # set by validate
    loras: tuple[LoraChoice, ...] = ()  # applied where the job runs (flux_demo.pipelines.adapters)
    num_images: int = 1  # image i has seed `seed + i`

    def settings(self) -> dict:
        """What reproduces the run: the PNG metadata, the link and the details all start from this. The
        LoRAs and the image count appear only when the run has them, so a plain run's keys are unchanged."""
        settings = {
            "prompt": self.prompt,
            "model": self.model,
            "width": self.width,
            "height": self.height,
            "steps": self.steps,
            "guidance": self.guidance,
            "seed": self.seed,
        }
        if self.loras:
            settings["loras"] = [choice.setting for choice in self.loras]
        if self.num_images > 1:
            settings["num_images"] = self.num_images
        return settings

    @property
    def seeds(self) -> list[int]:
        """The seed of each image of the run."""
        return [self.seed + i for i in range(self.num_images)]

    @property
    def steps_run(self) -> int:
        """Denoising steps the pipeline will run (image-to-image runs fewer than `steps`)."""
        return self.steps

    @property
    def step_pixels(self) -> int:
        """Pixels the transformer attends over in each step (references add theirs)."""
        return self.width * self.height


ASPECT_RATIOS = ("1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9")


def size_for_aspect(aspect: str, spec: ModelSpec, base: int | None = None) -> tuple[int, int]:
    """Width and height for `aspect` ("W:H") with about `base`² pixels (default: the model's default
    size), snapped to the model's sizes."""
    w_ratio, h_ratio = (int(part) for part in aspect.split(":"))
    base = base or spec.default_size
    scale = math.sqrt(base * base / (w_ratio * h_ratio))
    return spec.snap_side(w_ratio * scale), spec.snap_side(h_ratio * scale)


def check_number(field_name: str, value, allowed: Message) -> float:
    """`value` if it is a finite number; `allowed` (a catalog message) says what the field takes."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(field_name, "input.not_a_number", allowed=allowed, kind=type(value).__name__)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(field_name, "input.not_finite", allowed=allowed, value=value)
    return value


def check_integer(field_name: str, value, low: int, high: int) -> int:
    allowed = Message("allowed.integer_range", low=low, high=high)
    value = check_number(field_name, value, allowed)
    if value != int(value):
        raise InvalidInput(field_name, "input.must_be", allowed=allowed, value=value)
    value = int(value)
    if not low <= value <= high:
        raise InvalidInput(field_name, "input.must_be", allowed=allowed, value=value)
    return value


def check_flag(field_name: str, value) -> bool:
    """A true/false field (API callers can send anything)."""
    if not isinstance(value, bool):
        raise InvalidInput(field_name, "input.flag_got", value=repr(value)[:80])
    return value


def check_prompt(prompt, field_name: str = "prompt", max_chars: int = MAX_PROMPT_CHARS) -> str:
    """A prompt stripped of surrounding space; rejects empty, too long, or control characters."""
    if not isinstance(prompt, str):
        raise InvalidInput(field_name, "input.not_text", kind=type(prompt).__name__)
    prompt = prompt.strip()
    if len(prompt) > max_chars:
        raise InvalidInput(field_name, "input.too_long", limit=max_chars, length=len(prompt))
    if any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 for c in prompt):
        raise InvalidInput(field_name, "input.control_characters")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in prompt):  # lone surrogates cannot be written to a PNG
        raise InvalidInput(field_name, "input.lone_surrogate")
    # Zero-width and other invisible characters alone are as empty as spaces.
    if not any(unicodedata.category(c)[0] not in "ZC" for c in prompt):
        raise InvalidInput(field_name, "input.prompt_required")
    return prompt


def check_model(model, available: Sequence[str]) -> ModelSpec:
    if not isinstance(model, str) or model not in available:
        raise InvalidInput("model", "input.one_of_got", choices=", ".join(available), value=repr(model))
    return get_spec(model)


def validate(request: GenerationRequest, available: Sequence[str], hub_loras: bool = False) -> ValidRequest:
    """Check every field on the server (API callers bypass the browser) and resolve defaults. `hub_loras`:
    whether any Hub LoRA may be asked for by id (else only the curated ones)."""
    from flux_demo import loras  # (it imports this module's checks)

    # 1. Text and model
    prompt = check_prompt(request.prompt)
    spec = check_model(request.model, available)
    notes: list[Message] = []
    # 2. Size: check the range, then snap as FluxPipeline would floor silently otherwise
    sizes = {}
    for name in ("width", "height"):
        value = round(check_number(name, getattr(request, name), spec.size_range))
        if not MIN_SIDE <= value <= spec.max_side:
            raise InvalidInput(
                name, "input.must_be_for", allowed=spec.size_range, model=spec.name, value=value
            )
        sizes[name] = spec.snap_side(value)
        if sizes[name] != value:
            notes.append(
                Message(
                    "note.snapped", field=name, value=value, snapped=sizes[name], multiple=spec.size_multiple
                )
            )
    # 3. Steps and guidance, within the model's own range
    steps = check_integer("steps", request.steps, spec.min_steps, spec.max_steps)
    guidance = check_number("guidance", request.guidance, Message("allowed.finite"))
    if spec.guidance_range is None:
        if guidance != spec.default_guidance:
            notes.append(Message("note.guidance_unused", note=spec.guidance_note(), value=guidance))
        guidance = spec.default_guidance
    else:
        low, high = spec.guidance_range
        if not low <= guidance <= high:
            allowed = Message("allowed.range", low=low, high=high)
            raise InvalidInput(
                "guidance", "input.must_be_for", allowed=allowed, model=spec.name, value=f"{guidance:g}"
            )
    # 4. Seed: exact integer; a fresh one when asked to randomize
    if not isinstance(request.randomize_seed, bool):
        raise InvalidInput("randomize_seed", "input.flag")
    # 5. Images per run, and their seeds: seed ... seed + n - 1 must all be valid seeds
    num_images = check_integer("num_images", request.num_images, 1, MAX_IMAGES)
    seed = (
        secrets.randbelow(MAX_SEED + 2 - num_images)
        if request.randomize_seed
        else check_integer("seed", request.seed, 0, MAX_SEED + 1 - num_images)
    )
    # 6. LoRAs: curated ones that fit the model, or any Hub LoRA where allowed
    chosen = loras.check_loras(request.loras, spec.key, hub_loras)
    return ValidRequest(
        prompt,
        spec.key,
        sizes["width"],
        sizes["height"],
        steps,
        float(guidance),
        seed,
        tuple(notes),
        spec,
        chosen,
        num_images,
    )
