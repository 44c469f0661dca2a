"""LoRA adapters: the curated list, what a request's LoRA choice is, and its checks.

A request may ask for up to `MAX_LORAS` adapters, each with its own scale. An adapter is named either by a
curated key (`LORAS`: Hub LoRAs the LoRA explorers list, and the two trained here for the nano models,
shipped under `flux_demo/offline/nano_weights/loras/`), or as any Hub LoRA by its repository id,
`owner/name`, optionally followed by the weight file's path in the repository
(`owner/name/dir/file.safetensors`; a `https://huggingface.co/...` address works too). Which models a
curated LoRA fits is part of its entry; for any Hub LoRA, the model card's `base_model` is checked against
the served model's `ModelSpec.lora_bases` where the file is fetched (`flux_demo.pipelines.adapters`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from flux_demo.messages import Message
from flux_demo.validation import InvalidInput, check_number

MAX_LORAS = 2
SCALE_RANGE = (0.0, 2.0)
DEFAULT_SCALE = 1.0
MAX_REFERENCE_CHARS = 200
LORA_FIELDS = (("lora", "lora_scale"), ("lora_2", "lora_2_scale"))  # API parameters, in order
# A Hub repository id (owner/name, as the Hub spells them), then optionally a file path in it.
_HUB_REFERENCE = re.compile(
    r"^(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95})(?:/(?P<file>[\w .\-/]{1,200}))?$"
)
_HUB_ADDRESS = re.compile(
    r"^https://huggingface\.co/(?P<repo>[^/]+/[^/]+)(?:/(?:blob|resolve)/[^/]+/(?P<file>.+))?$"
)
SHIPPED_DIR = Path(__file__).resolve().parent / "offline" / "nano_weights" / "loras"


@dataclass(frozen=True)
class LoraSpec:
    """One curated LoRA: where its file is, which models it fits, and what to tell people about it."""

    key: str
    name: str
    fits: tuple[str, ...]  # model keys (flux_demo.models) it was trained for
    license: str
    weight_name: str  # the .safetensors file in the repository or the shipped folder
    repo_id: str = ""  # Hub repository; empty for a LoRA shipped in this repository
    folder: str = ""  # shipped LoRA: its folder under `SHIPPED_DIR`
    trigger: str = ""  # words the prompt should contain for the effect ("" for none)
    preview: str = ""  # an example image: a Hub address, or a file in the shipped folder
    summary: str = ""

    @property
    def path(self) -> Path | None:
        """The shipped file, or None for a Hub LoRA."""
        return SHIPPED_DIR / self.folder / self.weight_name if self.folder else None

    @property
    def source(self) -> str:
        """Where it comes from, for people: a Hub id or the shipped folder."""
        return self.repo_id or f"flux_demo/offline/nano_weights/loras/{self.folder}"


FLUX1_DEV_LICENSE = "FLUX.1 [dev] Non-Commercial"

LORAS: Mapping[str, LoraSpec] = MappingProxyType(
    {
        spec.key: spec
        for spec in (
            LoraSpec(
                key="nano-inverted-sign",
                name="nano inverted sign",
                fits=("nano-schnell", "nano-dev"),
                license="Apache-2.0",
                weight_name="pytorch_lora_weights.safetensors",
                folder="inverted-sign",
                preview="preview.png",
                summary="Signs come out inverted: a dark sign with light letters.",
            ),
            LoraSpec(
                key="nano-yellow-sign",
                name="nano yellow sign",
                fits=("nano-schnell", "nano-dev"),
                license="Apache-2.0",
                weight_name="pytorch_lora_weights.safetensors",
                folder="yellow-sign",
                preview="preview.png",
                summary="Signs come out as road signs: a yellow face with dark letters.",
            ),
            LoraSpec(
                key="ghibsky",
                name="Ghibsky illustration",
                fits=("schnell", "dev"),
                license=FLUX1_DEV_LICENSE,
                weight_name="lora.safetensors",
                repo_id="aleksa-codes/flux-ghibsky-illustration",
                trigger="GHIBSKY style",
                preview="https://huggingface.co/aleksa-codes/flux-ghibsky-illustration/resolve/main/images/example1.jpg",
                summary="Dreamy painted skies and landscapes.",
            ),
            LoraSpec(
                key="xlabs-realism",
                name="XLabs realism",
                fits=("schnell", "dev"),
                license=FLUX1_DEV_LICENSE,
                weight_name="lora.safetensors",
                repo_id="XLabs-AI/flux-RealismLora",
                summary="More photographic skin, light and detail.",
            ),
            LoraSpec(
                key="klein-curls",
                name="Curl geometry (klein 4B)",
                fits=("klein",),
                license="Apache-2.0",
                weight_name="beenga_curl_v1.safetensors",
                repo_id="beenga8/beenga-curl-v1",
                summary="Sharper curly hair; ask for curls in the prompt.",
            ),
        )
    }
)


@dataclass(frozen=True)
class LoraChoice:
    """One adapter a request asks for, checked: a curated entry or a Hub file, and its scale."""

    reference: str  # a curated key, or "owner/name[/file.safetensors]"
    scale: float
    spec: LoraSpec | None = None  # the curated entry; None for any Hub LoRA
    repo_id: str = ""  # the Hub repository (curated Hub entries too)
    weight_name: str = ""  # the file in the repository; "" = its only .safetensors file

    @property
    def setting(self) -> tuple[str, float]:
        """(reference, scale): what links, PNGs and the details carry."""
        return self.reference, self.scale


def loras_for(model_key: str) -> list[LoraSpec]:
    """The curated LoRAs that fit `model_key`."""
    return [spec for spec in LORAS.values() if model_key in spec.fits]


def parse_reference(text: str) -> tuple[str, str]:
    """(repo_id, weight file or "") of a Hub reference; raises InvalidInput naming `lora`."""
    match = _HUB_ADDRESS.match(text) or _HUB_REFERENCE.match(text)
    if match is None or ".." in text:
        raise InvalidInput("lora", "input.lora_reference", value=repr(text[:80]), known=_known())
    weight = (match["file"] or "").strip("/")
    if weight and not weight.endswith(".safetensors"):
        raise InvalidInput("lora", "input.lora_safetensors", file=weight[:80])
    return match["repo"], weight


def _known() -> str:
    return ", ".join(LORAS)


def check_scale(field_name: str, value) -> float:
    """A LoRA scale within `SCALE_RANGE`."""
    low, high = SCALE_RANGE
    allowed = Message("allowed.range", low=low, high=high)
    value = float(check_number(field_name, value, allowed))
    if not low <= value <= high:
        raise InvalidInput(field_name, "input.must_be", allowed=allowed, value=f"{value:g}")
    return value


def check_lora(
    reference,
    scale,
    model_key: str,
    hub_allowed: bool,
    field_name: str = "lora",
    scale_field: str = "lora_scale",
) -> LoraChoice | None:
    """One checked LoRA choice for `model_key` (None for an empty reference): a curated key that fits the
    model, or a Hub reference where any Hub LoRA is allowed."""
    if reference is None:
        return None
    if not isinstance(reference, str):
        raise InvalidInput(field_name, "input.not_text", kind=type(reference).__name__)
    reference = reference.strip()
    if not reference:
        return None
    if len(reference) > MAX_REFERENCE_CHARS:
        raise InvalidInput(field_name, "input.too_long", limit=MAX_REFERENCE_CHARS, length=len(reference))
    scale = check_scale(scale_field, scale)
    spec = LORAS.get(reference)
    if spec is not None:
        if model_key not in spec.fits:
            fitting = ", ".join(s.key for s in loras_for(model_key)) or Message("input.none")
            raise InvalidInput(
                field_name,
                "input.lora_wrong_model",
                lora=spec.name,
                fits=", ".join(spec.fits),
                choices=fitting,
            )
        return LoraChoice(spec.key, scale, spec, spec.repo_id, spec.weight_name)
    if "/" not in reference:
        raise InvalidInput(field_name, "input.lora_unknown", value=repr(reference[:80]), known=_known())
    if not hub_allowed:
        raise InvalidInput(field_name, "input.lora_hub_off", known=_known())
    try:
        repo_id, weight = parse_reference(reference)
    except InvalidInput as err:
        raise InvalidInput(field_name, err.reason) from None
    canonical = f"{repo_id}/{weight}" if weight else repo_id
    return LoraChoice(canonical, scale, None, repo_id, weight)


def check_loras(
    pairs: Sequence[tuple[object, object]], model_key: str, hub_allowed: bool
) -> tuple[LoraChoice, ...]:
    """The request's LoRA choices ((reference, scale) per `LORA_FIELDS` entry), empty ones left out; the
    same LoRA twice is refused."""
    chosen: list[LoraChoice] = []
    for (reference, scale), (field_name, scale_field) in zip(pairs, LORA_FIELDS, strict=False):
        choice = check_lora(reference, scale, model_key, hub_allowed, field_name, scale_field)
        if choice is None:
            continue
        if any(c.reference == choice.reference for c in chosen):
            raise InvalidInput(field_name, "input.lora_twice", lora=choice.reference)
        chosen.append(choice)
    return tuple(chosen)


def settings_text(choices: Sequence[tuple[str, float]]) -> str:
    """ "ref:scale,ref:scale": how links and PNGs carry a run's LoRAs."""
    return ",".join(f"{reference}:{scale:g}" for reference, scale in choices)


def parse_settings_text(text: str) -> list[tuple[str, float]]:
    """The (reference, scale) pairs of `settings_text`, each scale checked (the references are checked
    against the model when the request is validated)."""
    pairs = []
    for item in text.split(","):
        reference, sep, scale = item.strip().rpartition(":")
        if not sep or not reference:
            raise InvalidInput("loras", "input.lora_pairs")
        value = float(scale)
        if not math.isfinite(value):
            raise InvalidInput("loras", "input.lora_pairs")
        pairs.append((reference, check_scale("lora_scale", value)))
    if len(pairs) > MAX_LORAS:
        raise InvalidInput("loras", "input.lora_count", count=MAX_LORAS)
    return pairs
