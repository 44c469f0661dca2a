"""The model registry: the one place that knows how the FLUX models differ.

Everything else (pipelines, generation, the tabs) reads a `ModelSpec` and never branches on a model's
name. Real entries point at Hub repo ids. Offline entries run the same pipeline classes on a CPU:
`nano-*` are small FLUX.1 and FLUX.2 [klein] models trained on a synthetic grammar and shipped in the
repository, `tiny-*` are twins with tiny random weights for fast tests (both in `flux_demo.offline`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from flux_demo.messages import Message

FLUX1_SHARED = ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae")
FLUX1_LORA_BASES = ("black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-schnell")
FLUX1_WEIGHTS_GB = (("transformer", 23.8), ("text_encoder_2", 9.5), ("text_encoder", 0.25), ("vae", 0.17))
# Transformer and Qwen3-4B text encoder from the checkpoint's file sizes; the VAE like FLUX.1's.
KLEIN_WEIGHTS_GB = (("transformer", 7.75), ("text_encoder", 8.05), ("vae", 0.17))

MIN_SIDE = 256
MAX_SIDE = 2048
SIZE_MULTIPLE = 16  # FluxPipeline floors sizes to this; we snap and report instead


@dataclass(frozen=True)
class ModelSpec:
    """How one model is loaded and called, and what the UI offers for it."""

    key: str
    name: str
    repo_id: str
    pipeline_class: str
    license: str
    license_url: str
    default_steps: int
    max_steps: int
    default_guidance: float
    # None: the model ignores guidance and always runs at `default_guidance`.
    guidance_range: tuple[float, float] | None
    max_sequence_length: int
    default_size: int = 1024
    # Models in the same group load these components once and share the objects.
    share_group: str | None = None
    shared_components: tuple[str, ...] = ()
    # Offline model: a tiny builder's name ("flux1-dev") or a shipped nano folder ("nano-dev"), resolved by
    # `flux_demo.offline.local_source`; empty for Hub checkpoints.
    offline_variant: str = ""
    # Sizes: multiples of `size_multiple` (the VAE's downsampling times FluxPipeline's 2x2 packing) from
    # MIN_SIDE to `max_side`.
    size_multiple: int = SIZE_MULTIPLE
    max_side: int = MAX_SIDE
    # bf16 weights in GB per component (public checkpoint sizes), for the ZeroGPU slice choice.
    weights_gb: tuple[tuple[str, float], ...] = ()  # (component, GB) pairs: a tuple, so a spec pickles
    # Estimated GPU seconds per step at 1024x1024, for the ZeroGPU duration request.
    seconds_per_step_1mp: float = 0.5
    min_steps: int = 1
    # Editing modes this model offers, as (mode, diffusers pipeline class) pairs: "edit" (reference images),
    # "img2img" and "inpaint" (see flux_demo.editing). The variant pipelines reuse the loaded components.
    edit_pipelines: tuple[tuple[str, str], ...] = ()
    # Largest output area for editing; a reference's size is scaled down to fit it.
    max_edit_pixels: int = 1024 * 1024
    # How the transformer's tokens map back to the VAE's latents (read by `flux_demo.watching.previews`):
    # each token packs 2x2 latent pixels of `latent_channels`; "scale_shift" undoes the VAE config's scaling
    # and shift factors (FLUX.1), "batch_norm" the VAE's batch-norm statistics (FLUX.2).
    latent_channels: int = 16
    latent_normalisation: str = "scale_shift"
    # How step previews are decoded (`flux_demo.watching.previews`): "vae", the model's own VAE (exact; for
    # the small offline VAEs), or "linear", a fitted latent->RGB map (a full-size VAE decode takes half a
    # FLUX.1 step at 1024² on an H200; the map 0.2%).
    preview_decoder: str = "linear"
    # The text encoders' roles (`flux_demo.watching`): the tokenizer whose tokens the transformer attends
    # over, whether the pipeline wraps the prompt in that tokenizer's chat template, and the pipeline
    # argument that feeds each encoder (FLUX.1: `prompt` -> CLIP's pooled vector, `prompt_2` -> T5's tokens).
    token_tokenizer: str = "tokenizer_2"
    chat_template: bool = False
    prompt_arguments: tuple[tuple[str, str], ...] = (
        ("text_encoder", "prompt"),
        ("text_encoder_2", "prompt_2"),
    )
    # How the sigma schedule shifts with the image size (read by `flux_demo.watching.trajectory`): "flux1" is
    # FluxPipeline's `calculate_shift` from the scheduler config, "flux2" Flux2's `compute_empirical_mu`.
    sigma_shift: str = "flux1"
    # The prompt's tokenizers as (pipeline attribute, token limit); a limit of 0 means
    # `max_sequence_length` (FLUX.1: CLIP's 77 tokens and T5's sequence length).
    tokenizers: tuple[tuple[str, int], ...] = (("tokenizer", 77), ("tokenizer_2", 0))
    # Model-card `base_model` ids whose LoRAs fit this model's transformer: a Hub LoRA is refused unless
    # its card names one of them (FLUX.1 LoRAs serve [dev] and [schnell] alike, as LoRA explorers treat them).
    lora_bases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name} — {self.default_steps} steps, {self.license}"

    @property
    def ignores_guidance(self) -> bool:
        return self.guidance_range is None

    @property
    def is_offline(self) -> bool:
        return bool(self.offline_variant)

    @property
    def is_nano(self) -> bool:
        """A trained offline model (draws its grammar), rather than a random tiny twin (draws noise)."""
        return self.offline_variant.startswith("nano-")

    @property
    def size_range(self) -> Message:
        """The sides this model makes: "256 to 2048, in multiples of 16"."""
        return Message("allowed.sizes", low=MIN_SIDE, high=self.max_side, multiple=self.size_multiple)

    def snap_side(self, value: float, min_side: int = MIN_SIDE) -> int:
        """The nearest multiple of `size_multiple` (halves round up), within `min_side` (rounded up to a
        multiple) and `max_side`: the size the pipeline really makes, which FluxPipeline would otherwise
        floor silently."""
        multiple = self.size_multiple
        snapped = math.floor(value / multiple + 0.5) * multiple
        low = math.ceil(min_side / multiple) * multiple
        return min(max(snapped, low), self.max_side // multiple * multiple)

    def image_tokens(self, width: int, height: int) -> int:
        """Image tokens the transformer attends over at `width` x `height`: one per `size_multiple`
        square (the VAE's downsampling times the 2x2 packing)."""
        return (height // self.size_multiple) * (width // self.size_multiple)

    def schedule_shift(self, scheduler_config, image_tokens: int, steps: int) -> float:
        """The σ schedule's shift `mu` for `image_tokens`, computed by the model's own diffusers pipeline
        function (FluxPipeline's `calculate_shift` from the scheduler config, or FLUX.2's
        `compute_empirical_mu`)."""
        if self.sigma_shift == "flux2":
            from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

            return compute_empirical_mu(image_seq_len=image_tokens, num_steps=steps)
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        return calculate_shift(
            image_tokens,
            scheduler_config.get("base_image_seq_len", 256),
            scheduler_config.get("max_image_seq_len", 4096),
            scheduler_config.get("base_shift", 0.5),
            scheduler_config.get("max_shift", 1.15),
        )

    def guidance_note(self) -> Message:
        """One line for the UI that explains what the guidance slider does for this model."""
        if self.guidance_range is None:
            return Message("model.ignores_guidance", model=self.name, value=self.default_guidance)
        low, high = self.guidance_range
        return Message(
            "model.guidance_range", model=self.name, low=low, high=high, default=self.default_guidance
        )


SCHNELL = ModelSpec(
    key="schnell",
    name="FLUX.1 [schnell]",
    repo_id="black-forest-labs/FLUX.1-schnell",
    pipeline_class="FluxPipeline",
    license="Apache-2.0",
    license_url="https://huggingface.co/black-forest-labs/FLUX.1-schnell",
    default_steps=4,
    max_steps=16,
    default_guidance=0.0,
    guidance_range=None,
    max_sequence_length=256,
    share_group="flux1",
    shared_components=FLUX1_SHARED,
    weights_gb=FLUX1_WEIGHTS_GB,
    seconds_per_step_1mp=0.45,
    edit_pipelines=(("img2img", "FluxImg2ImgPipeline"),),
    lora_bases=FLUX1_LORA_BASES,
)

DEV = ModelSpec(
    key="dev",
    name="FLUX.1 [dev]",
    repo_id="black-forest-labs/FLUX.1-dev",
    pipeline_class="FluxPipeline",
    license="FLUX.1 [dev] Non-Commercial",
    license_url="https://huggingface.co/black-forest-labs/FLUX.1-dev/blob/main/LICENSE.md",
    default_steps=28,
    max_steps=50,
    default_guidance=3.5,
    guidance_range=(1.0, 10.0),
    max_sequence_length=512,
    share_group="flux1",
    shared_components=FLUX1_SHARED,
    weights_gb=FLUX1_WEIGHTS_GB,
    seconds_per_step_1mp=0.45,
    edit_pipelines=(("img2img", "FluxImg2ImgPipeline"),),
    lora_bases=FLUX1_LORA_BASES,
)


KLEIN = ModelSpec(
    key="klein",
    name="FLUX.2 [klein] 4B",
    repo_id="black-forest-labs/FLUX.2-klein-4B",
    pipeline_class="Flux2KleinPipeline",
    license="Apache-2.0",
    license_url="https://huggingface.co/black-forest-labs/FLUX.2-klein-4B",
    default_steps=4,
    max_steps=16,
    # Step-distilled: Flux2KleinPipeline(is_distilled=True) never runs a guidance pass.
    default_guidance=1.0,
    guidance_range=None,
    max_sequence_length=512,
    weights_gb=KLEIN_WEIGHTS_GB,
    seconds_per_step_1mp=0.2,
    edit_pipelines=(("edit", "Flux2KleinPipeline"), ("inpaint", "Flux2KleinInpaintPipeline")),
    latent_channels=32,
    latent_normalisation="batch_norm",
    sigma_shift="flux2",
    tokenizers=(("tokenizer", 0),),
    token_tokenizer="tokenizer",
    chat_template=True,
    prompt_arguments=(("text_encoder", "prompt"),),
    lora_bases=("black-forest-labs/FLUX.2-klein-4B", "black-forest-labs/FLUX.2-klein-base-4B"),
)


def _tiny_twin(spec: ModelSpec, variant: str) -> ModelSpec:
    """An offline twin: same call settings, tiny weights, small default size, no sharing with real ones."""
    return dataclasses.replace(
        spec,
        key=f"tiny-{spec.key}",
        name=f"{spec.name} (offline tiny preview)",
        repo_id="",
        offline_variant=variant,
        default_size=MIN_SIDE,
        share_group=f"tiny-{spec.share_group}" if spec.share_group else None,
        weights_gb=(),
        seconds_per_step_1mp=0.05,
        max_edit_pixels=512 * 512,
        preview_decoder="vae",
        lora_bases=(f"tiny-{spec.share_group or spec.key}",),  # the tests' own LoRAs for each tiny family
    )


NANO_SIDE = 256  # the size the nano models were trained at; larger images tile and garble their signs


def _nano(spec: ModelSpec, max_sequence_length: int) -> ModelSpec:
    """A trained offline model: the real model's call settings at the 256x256 it was trained at, shipped
    weights; `max_sequence_length` is the text length it was trained at (every grammar prompt fits)."""
    family, _, variant = spec.name.partition(" [")
    return dataclasses.replace(
        spec,
        key=f"nano-{spec.key}",
        name=f"{family} nano [{variant.split(']')[0]}] (offline)",
        repo_id="",
        license="Apache-2.0",
        license_url="https://www.apache.org/licenses/LICENSE-2.0",  # trained in this repository
        offline_variant=f"nano-{spec.key}",
        default_size=NANO_SIDE,
        max_side=NANO_SIDE,
        size_multiple=32,  # the nano VAE downsamples x16
        latent_channels=16,  # the nano autoencoder's, for FLUX.1 and klein alike
        max_sequence_length=max_sequence_length,
        share_group="nano-flux1" if spec.share_group else None,
        weights_gb=(),
        seconds_per_step_1mp=0.05,
        max_edit_pixels=NANO_SIDE * NANO_SIDE,
        preview_decoder="vae",
        # nano-schnell is distilled from nano-dev: their LoRAs fit both; nano-klein has its own.
        lora_bases=("nano-dev", "nano-schnell") if spec.share_group else (f"nano-{spec.key}",),
    )


MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        spec.key: spec
        for spec in (
            SCHNELL,
            DEV,
            _nano(SCHNELL, max_sequence_length=16),  # T5 tokens
            _nano(DEV, max_sequence_length=16),
            _tiny_twin(SCHNELL, "flux1-schnell"),
            _tiny_twin(DEV, "flux1-dev"),
            KLEIN,
            _nano(KLEIN, max_sequence_length=32),  # Qwen3 tokens of the chat-templated prompt
            _tiny_twin(KLEIN, "flux2-klein"),
        )
    }
)

REAL_DEFAULT = ("schnell", "dev", "klein")
# Without a GPU: the trained nano models.
OFFLINE_DEFAULT = ("nano-schnell", "nano-dev", "nano-klein")
TINY_DEFAULT = ("tiny-schnell", "tiny-dev", "tiny-klein")  # fast tests


def get_spec(key: str) -> ModelSpec:
    """The registry entry for `key`; raises KeyError naming the known keys."""
    try:
        return MODELS[key]
    except KeyError:
        raise KeyError(f"unknown model {key!r}; known models: {', '.join(MODELS)}") from None


# ZeroGPU slices (Hugging Face's ZeroGPU docs): "large" is half an H200, "xlarge" a whole one at twice the
# visitors' quota cost. Activations and the VAE decode at 2048² need headroom on top of the weights.
ZEROGPU_LARGE_GB = 70.0
ACTIVATION_HEADROOM_GB = 8.0


def served_weights_gb(keys) -> float:
    """bf16 weights of the served models together, counting components shared by a group once."""
    counted, total = set(), 0.0
    for key in keys:
        spec = get_spec(key)
        for component, gb in spec.weights_gb:
            shared = spec.share_group is not None and component in spec.shared_components
            owner = (spec.share_group if shared else spec.key, component)
            if owner not in counted:
                counted.add(owner)
                total += gb
    return total


def zerogpu_size(keys, setting: str = "auto") -> str | None:
    """The ZeroGPU slice for serving `keys`: `setting` unless "auto", else "xlarge" only when the weights
    do not fit "large" (all three real models: 73.5 GB), else None (spaces' default, "large")."""
    if setting != "auto":
        return setting
    return "xlarge" if served_weights_gb(keys) + ACTIVATION_HEADROOM_GB > ZEROGPU_LARGE_GB else None
