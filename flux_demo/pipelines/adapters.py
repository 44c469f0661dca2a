"""LoRA adapters where a job runs: the checked file of each choice, and the transformer's active adapters.

A request carries its LoRA choices (`flux_demo.loras.LoraChoice`); the replica that runs the job turns
them into adapters, so the same request gives the same pixels on any backend:

1. `LoraFiles.fetch(request)`, before the GPU slot (network and disk): a shipped LoRA's file, or a Hub
   LoRA's file downloaded with `huggingface_hub` into its cache, after these checks, each refused with
   `InvalidInput("lora", ...)`: a `.safetensors` file (never a pickle), at most `max_bytes`, and for any
   Hub LoRA (not a curated one) a model card whose `base_model` is one of the served model's
   `ModelSpec.lora_bases`, as the LoRA explorers check it.
2. `Adapters.activate(files)`, inside the GPU slot: the transformer's adapters become exactly the
   request's, at their scales, through diffusers' `load_lora_weights` (PEFT). Without LoRAs the adapters
   are disabled, so the base weights run untouched (LoRA weights are never fused): the same seed gives the
   same pixels as before any LoRA was loaded. Adapters stay loaded for later requests (a few per model,
   least recently used out).

With a compiled transformer (`FLUX_DEMO_COMPILE=regional`), adapters live in `MAX_LORAS` fixed slots and a
new LoRA is hot-swapped into a slot (`enable_lora_hotswap`: ranks padded to `HOTSWAP_RANK`, scales kept
as tensors and changed in place), so a new LoRA or a new scale reuses the compiled graphs instead of
recompiling. Only the transformer gets adapters: the text encoders are shared between models
(FLUX.1 [schnell] and [dev]), so a LoRA's text-encoder layers, if any, are not applied.
"""

from __future__ import annotations

import collections
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flux_demo.loras import MAX_LORAS, LoraChoice
from flux_demo.models import ModelSpec
from flux_demo.validation import InvalidInput

log = logging.getLogger(__name__)

MAX_CACHED_ADAPTERS = 4  # per model and replica, without compilation
HOTSWAP_RANK = 128  # the highest LoRA rank a compiled transformer takes without recompiling
SAFETENSORS = ".safetensors"


@dataclass(frozen=True)
class LoraFile:
    """A choice's checked local file; `identity` names its exact content (repository revision or file
    state), so an adapter is loaded once however often it is asked for."""

    choice: LoraChoice
    path: str
    identity: str

    @property
    def adapter_name(self) -> str:
        return "lora_" + hashlib.sha256(self.identity.encode()).hexdigest()[:12]


class LoraFiles:
    """Checked local files for a request's LoRA choices (see the module docstring). `endpoint` is the
    Hub's address (None: huggingface_hub's own, `HF_ENDPOINT`)."""

    def __init__(self, max_bytes: int, endpoint: str | None = None):
        self.max_bytes, self.endpoint = max_bytes, endpoint

    def fetch(self, request) -> tuple[LoraFile, ...]:
        """The files of `request`'s LoRAs, in order (none for requests without LoRAs, such as edits)."""
        return tuple(self._fetch(choice, request.spec) for choice in getattr(request, "loras", ()))

    def _fetch(self, choice: LoraChoice, spec: ModelSpec) -> LoraFile:
        shipped = choice.spec.path if choice.spec is not None else None
        if shipped is not None:
            self._check_size(shipped.name, shipped.stat().st_size)
            stat = shipped.stat()
            return LoraFile(choice, str(shipped), f"{shipped}@{stat.st_mtime_ns}:{stat.st_size}")
        return self._from_hub(choice, spec)

    def _from_hub(self, choice: LoraChoice, spec: ModelSpec) -> LoraFile:
        import huggingface_hub
        from huggingface_hub.errors import HfHubHTTPError

        repo = choice.repo_id
        try:
            info = huggingface_hub.HfApi(endpoint=self.endpoint).model_info(repo, files_metadata=True)
        except (HfHubHTTPError, OSError, ValueError) as err:
            raise InvalidInput("lora", "input.lora_unreachable", repo=repo, error=_short(err)) from None
        sizes = {s.rfilename: s.size for s in info.siblings or ()}
        filename = self._pick_file(repo, choice.weight_name, sizes)
        self._check_size(filename, sizes[filename] or 0)
        if choice.spec is None:  # a curated entry says itself which models it fits
            self._check_base(repo, info.card_data, spec)
        try:
            path = huggingface_hub.hf_hub_download(repo, filename, revision=info.sha, endpoint=self.endpoint)
        except (HfHubHTTPError, OSError, ValueError) as err:
            raise InvalidInput("lora", "input.lora_unreachable", repo=repo, error=_short(err)) from None
        self._check_size(filename, Path(path).stat().st_size)  # the Hub's listing could be wrong
        return LoraFile(choice, path, f"{repo}@{info.sha}/{filename}")

    @staticmethod
    def _pick_file(repo: str, wanted: str, sizes: dict[str, int | None]) -> str:
        """The named file, else the repository's only .safetensors file."""
        if wanted:
            if wanted not in sizes:
                raise InvalidInput("lora", "input.lora_missing_file", repo=repo, file=wanted)
            return wanted
        candidates = sorted(name for name in sizes if name.endswith(SAFETENSORS))
        if not candidates:
            raise InvalidInput("lora", "input.lora_no_safetensors", repo=repo)
        if len(candidates) > 1:
            raise InvalidInput(
                "lora", "input.lora_several_files", repo=repo, files=", ".join(candidates[:10])
            )
        return candidates[0]

    def _check_size(self, filename: str, size: int) -> None:
        if not filename.endswith(SAFETENSORS):
            raise InvalidInput("lora", "input.lora_safetensors", file=filename)
        if size > self.max_bytes:
            mb = lambda n: f"{n / 1e6:.0f}"  # noqa: E731
            raise InvalidInput(
                "lora", "input.lora_too_large", file=filename, size=mb(size), limit=mb(self.max_bytes)
            )

    @staticmethod
    def _check_base(repo: str, card_data, spec: ModelSpec) -> None:
        """The model card's `base_model` (a string or a list) must name one of the model's LoRA bases."""
        base = getattr(card_data, "base_model", None) if card_data is not None else None
        bases = [base] if isinstance(base, str) else list(base or [])
        if not bases:
            raise InvalidInput("lora", "input.lora_no_base", repo=repo, model=spec.name)
        if not set(bases) & set(spec.lora_bases):
            raise InvalidInput(
                "lora", "input.lora_wrong_base", repo=repo, base=", ".join(bases), model=spec.name
            )


def _short(err: Exception) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0][:120]}" if str(err) else type(err).__name__


def is_compiled(speed: dict[str, str]) -> bool:
    """Whether the speed options compiled the transformer with torch.compile (`pipelines.speed`)."""
    return speed.get("compile", "off").startswith("regional")


class Adapters:
    """The LoRA adapters of one loaded model on one replica (see the module docstring). Call `activate`
    for every job on the model, inside its GPU slot, so each job runs with exactly its own adapters."""

    def __init__(self, pipe, speed: dict[str, str], spec: ModelSpec):
        self.pipe, self.spec = pipe, spec
        self.transformer = pipe.transformer
        self.aot = speed.get("compile", "").startswith("ahead-of-time")
        self.hotswap = is_compiled(speed)
        # Without hotswap: adapter name -> file identity, least recently used first.
        self.cached: collections.OrderedDict[str, str] = collections.OrderedDict()
        # With hotswap: the file identity in each slot, and each slot's LoRA scalings at scale 1.
        self.slots: list[str | None] = [None] * MAX_LORAS
        self.unit_scalings: dict[str, dict[str, float]] = {}

    def activate(self, files: Sequence[LoraFile]) -> None:
        """Make the transformer's adapters exactly `files`, at their choices' scales (none: disabled)."""
        if not files:
            if self.cached or any(self.slots):
                self.transformer.disable_lora()
            return
        if self.aot:
            raise InvalidInput("lora", "input.lora_with_aoti")
        if self.hotswap:
            self._activate_slots(files)
        else:
            names = [self._cache(file) for file in files]
            self.transformer.set_adapters(names, [file.choice.scale for file in files])
        self.transformer.enable_lora()

    # --- without compilation: named adapters, a few kept -----------------------------------------

    def _cache(self, file: LoraFile) -> str:
        name = file.adapter_name
        if name in self.cached:
            self.cached.move_to_end(name)
            return name
        while len(self.cached) >= MAX_CACHED_ADAPTERS:
            old, _ = self.cached.popitem(last=False)
            self.transformer.delete_adapters(old)
        self._load(file, name, hotswap=False)
        self.cached[name] = file.identity
        return name

    # --- compiled: fixed slots, hot-swapped ------------------------------------------------------

    def _activate_slots(self, files: Sequence[LoraFile]) -> None:
        """Swap each file into its slot (a slot not asked for stays loaded at scale 0, so the set of
        active adapters, which the compiled graphs depend on, changes only when a slot is first used)."""
        for index, file in enumerate(files):
            if self.slots[index] == file.identity:
                continue
            slot, first = f"slot_{index}", self.slots[index] is None
            if first:
                # Before a slot's first adapter: pad its rank and make its scale a tensor, so later swaps
                # and scales change values in place.
                self.transformer.enable_lora_hotswap(target_rank=HOTSWAP_RANK, check_compiled="ignore")
            self._load(file, slot, hotswap=not first)
            self.slots[index] = file.identity
            if first:
                self.transformer.set_adapter([f"slot_{i}" for i, held in enumerate(self.slots) if held])
            self.unit_scalings[slot] = self._scalings(slot)
        for index, held in enumerate(self.slots):
            if held:
                self._set_scale(f"slot_{index}", files[index].choice.scale if index < len(files) else 0.0)

    def _scalings(self, slot: str) -> dict[str, float]:
        return {
            name: float(module.scaling[slot])
            for name, module in self.transformer.named_modules()
            if slot in getattr(module, "scaling", {})
        }

    def _set_scale(self, slot: str, scale: float) -> None:
        """Every layer's scaling for `slot` at `scale` times its scale-1 value, written into the existing
        tensor (a new Python float would make torch.compile recompile)."""
        modules = dict(self.transformer.named_modules())
        for name, unit in self.unit_scalings[slot].items():
            modules[name].scaling[slot].fill_(unit * scale)

    # --- loading ---------------------------------------------------------------------------------

    def _load(self, file: LoraFile, name: str, hotswap: bool) -> None:
        """Load `file` into the transformer as adapter `name` (in place of the adapter of that name with
        `hotswap`), through diffusers' LoRA loader; a LoRA that does not fit the model is refused."""
        choice = file.choice
        try:
            self.pipe.load_lora_weights(
                str(Path(file.path).parent),
                weight_name=Path(file.path).name,
                adapter_name=name,
                hotswap=hotswap,
            )
        except Exception as err:
            log.warning("loading LoRA %s into %s failed", choice.reference, self.spec.key, exc_info=True)
            if not hotswap and name in getattr(self.transformer, "peft_config", {}):
                self.transformer.delete_adapters(name)
            raise InvalidInput(
                "lora",
                "input.lora_not_loadable",
                repo=choice.reference,
                model=self.spec.name,
                error=_short(err),
            ) from None
        self._drop_text_encoder_layers(name)
        log.info("loaded LoRA %s into %s as %s", choice.reference, self.spec.key, name)

    def _drop_text_encoder_layers(self, name: str) -> None:
        """Remove what a LoRA put into the text encoders (shared between models: see the module doc)."""
        for component in getattr(self.pipe, "_lora_loadable_modules", ()):
            encoder = getattr(self.pipe, component, None)
            if encoder is None or encoder is self.transformer:
                continue
            if name in (getattr(encoder, "peft_config", None) or {}):
                encoder.delete_adapter(name)
