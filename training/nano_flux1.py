"""nano-schnell and nano-dev: the components of the small FLUX.1 models, their data and flow helpers.

They are built only from the real classes (`FluxTransformer2DModel`, `AutoencoderKL`, `CLIPTextModel` with a
`CLIPTokenizer`, `T5EncoderModel` with a `T5Tokenizer` over the grammar, `FlowMatchEulerDiscreteScheduler`)
and run by `FluxPipeline`. Images are 256x256; the VAE downsamples x16, so a 256x256 image is 16x16
latents and 8x8 = 64 packed image tokens. The stages that train them are in `training.nano_flux1_train`.
"""

from __future__ import annotations

import itertools
import random

import torch

from flux_demo.offline.nano import Grammar
from training import grammar_images as gi

IMAGE_SIZE = gi.IMAGE_SIZE
VAE_SCALE_FACTOR = 16  # five VAE levels: 2 ** (5 - 1)
SIZE_MULTIPLE = 2 * VAE_SCALE_FACTOR  # FluxPipeline packs 2x2 latents into one token
MAX_SEQUENCE_LENGTH = 16  # T5 tokens; every grammar caption fits, and the model is trained at this length
LATENT_CHANNELS = 16
T5_DIM = 64
CLIP_DIM = 64
HIDDEN_HEADS, HEAD_DIM = 4, 32

DEV_DEFAULTS = {"num_inference_steps": 28, "guidance_scale": 3.5}
SCHNELL_DEFAULTS = {"num_inference_steps": 4, "guidance_scale": 0.0}


# --- Tokenizers and model components ----------------------------------------------------------------


def caption_words(grammar: Grammar) -> list[str]:
    """Every whitespace-free word the templates and the grammar use, lower-cased."""
    words = set()
    for template in grammar.templates.values():
        for part in template.replace('"', " ").split():
            if "{" not in part:
                words.add(part.lower())
    words.update(name.lower() for name in grammar.colors)
    words.update(shape.lower() for shape in grammar.shapes)
    words.update(word.lower() for word in grammar.words)
    return sorted(words)


# Prompts people type that mean the same as a grammar word: the T5 embedding of the alias is tied to it.
ALIASES = {"an": "a", "grey": "gray", "says:": "says"}


def _case_variants(word: str) -> list[str]:
    return list(dict.fromkeys((word.lower(), word.upper(), word.capitalize())))


def build_nano_t5_tokenizer(grammar: Grammar):
    """A T5Tokenizer whose unigram vocabulary holds every grammar word as one piece.

    Words are pieces both after a space ("▁cat") and straight after an opening quote ("cat"), each in
    lower, upper and capitalised case (training ties their embeddings, see `tie_token_variants`);
    single characters are a low-score fallback, so any prompt still tokenizes.
    """
    import string

    from transformers import T5Tokenizer

    vocab: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    seen = {piece for piece, _ in vocab}

    def add(piece: str, score: float) -> None:
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, score))

    add('▁"', -1.0)
    add('"', -1.0)
    for word in [*caption_words(grammar), *ALIASES]:
        for variant in _case_variants(word):
            add("▁" + variant, -1.0)
            add(variant, -1.5)
    for char in string.ascii_letters + string.digits + string.punctuation:
        add(char, -8.0)
        add("▁" + char, -8.5)
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def token_variant_groups(tokenizer, grammar: Grammar) -> list[list[int]]:
    """Groups of T5 token ids that must share one embedding: case variants and aliases of each word."""
    families: dict[str, list[str]] = {word: _case_variants(word) for word in caption_words(grammar)}
    for alias, target in ALIASES.items():
        families.setdefault(target, []).extend(_case_variants(alias))
    groups = []
    for variants in families.values():
        for prefix in ("▁", ""):
            ids = tokenizer.convert_tokens_to_ids([prefix + v for v in variants])
            groups.append([i for i in dict.fromkeys(ids) if i != tokenizer.unk_token_id])
    return [group for group in groups if len(group) > 1]


def build_clip_tokenizer():
    """The byte-pair CLIPTokenizer of the tiny twins (lower-cases; vocabulary from the bundled corpus)."""
    from flux_demo.offline.tiny import build_clip_tokenizer as tiny_clip_tokenizer

    return tiny_clip_tokenizer()


def build_text_encoders(clip_vocab: int, t5_vocab: int, seed: int = 0) -> dict:
    """Small CLIP and T5 text encoders (trained jointly with the base transformer)."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=clip_vocab,
            hidden_size=CLIP_DIM,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=CLIP_DIM,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    torch.manual_seed(seed + 1)
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=t5_vocab,
            d_model=T5_DIM,
            d_kv=16,
            d_ff=128,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
            feed_forward_proj="relu",
            dropout_rate=0.0,
        )
    )
    return {"text_encoder": text_encoder, "text_encoder_2": text_encoder_2}


def build_vae(seed: int = 0):
    """A five-level AutoencoderKL (x16 downsampling, 16 latent channels, no attention)."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 5,
        up_block_types=("UpDecoderBlock2D",) * 5,
        block_out_channels=(8, 16, 32, 64, 96),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        # One group: each norm pools all its channels. With few channels per group a norm cannot tell flat
        # colours apart (it removes each group's mean and scale).
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        mid_block_add_attention=False,
        scaling_factor=1.0,
        shift_factor=0.0,
    )


def build_transformer(guidance_embeds: bool, num_layers: int = 3, num_single_layers: int = 6, seed: int = 0):
    """A FluxTransformer2DModel with hidden size 128; dev's variant has a guidance embedding."""
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=4 * LATENT_CHANNELS,
        num_layers=num_layers,
        num_single_layers=num_single_layers,
        attention_head_dim=HEAD_DIM,
        num_attention_heads=HIDDEN_HEADS,
        joint_attention_dim=T5_DIM,
        pooled_projection_dim=CLIP_DIM,
        guidance_embeds=guidance_embeds,
        axes_dims_rope=(8, 12, 12),
    )


def build_scheduler(variant: str):
    """The scheduler of the real checkpoint that ``variant`` ("schnell" or "dev") mirrors."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from flux_demo.offline.tiny import SCHEDULER_CONFIGS

    return FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIGS[f"flux1-{variant}"])


def make_pipeline(variant: str, transformer, shared: dict):
    """A FluxPipeline for ``variant`` around ``transformer`` and the shared encoders, tokenizers and VAE."""
    from diffusers import FluxPipeline

    return FluxPipeline(scheduler=build_scheduler(variant), transformer=transformer, **shared)


def all_captions(grammar: Grammar) -> list[str]:
    """Every caption the grammar can write (one per word, one per shape triple)."""
    words = [grammar.word_caption(word) for word in grammar.words]
    return words + [grammar.shape_caption(*triple) for triple in grammar.shape_triples()]


# --- Data -------------------------------------------------------------------------------------------

WORD_SHARE = 0.6  # words are the harder half of the grammar: they get 60% of every batch


def balanced_weights(samples: list[gi.Example]) -> torch.Tensor:
    """Sampling weights that give word images ``WORD_SHARE`` of the draws, whatever the pool holds."""
    n_words = sum(s.task == "word" for s in samples)
    n_shapes = len(samples) - n_words
    return torch.tensor(
        [WORD_SHARE / n_words if s.task == "word" else (1 - WORD_SHARE) / n_shapes for s in samples]
    )


def build_dataset(grammar: Grammar, jitters: int, seed: int, smoke: bool):
    """Every word on every sign background, and every shape triple at ``jitters`` random placements:
    (examples, uint8 pixels N x 3 x 256 x 256)."""
    import numpy as np

    rng = random.Random(seed)
    samples: list[gi.Example] = []
    words = grammar.words[:3] if smoke else grammar.words
    for word in words:
        for background in grammar.word_backgrounds:
            samples.append(
                gi.Example("word", grammar.word_caption(word), (), gi.Picture("sign", background, word))
            )
    triples = grammar.shape_triples()
    for color, shape, background in triples[:4] if smoke else triples:
        for _ in range(jitters):
            picture = gi.Picture("shape", background, color=color, shape=shape, jitter=gi.random_jitter(rng))
            samples.append(gi.Example("shape", grammar.shape_caption(color, shape, background), (), picture))
    images = [np.asarray(gi.render(grammar, s.target)) for s in samples]
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return samples, pixels.contiguous()


@torch.no_grad()
def encode_all(vae, pixels: torch.Tensor, device: str, batch: int = 32) -> torch.Tensor:
    """Posterior means of every image, unscaled (N x C x 16 x 16)."""
    from training.common import to_unit

    chunks = [
        vae.encode(to_unit(pixels[i : i + batch]).to(device)).latent_dist.mode().cpu()
        for i in range(0, len(pixels), batch)
    ]
    return torch.cat(chunks)


def set_latent_statistics(vae, latents: torch.Tensor) -> dict:
    shift = latents.mean().item()
    scale = 1.0 / latents.std().item()
    vae.register_to_config(shift_factor=round(shift, 4), scaling_factor=round(scale, 4))
    return {"shift_factor": vae.config.shift_factor, "scaling_factor": vae.config.scaling_factor}


def pack(latents: torch.Tensor) -> torch.Tensor:
    from diffusers import FluxPipeline

    b, c, h, w = latents.shape
    return FluxPipeline._pack_latents(latents, b, c, h, w)


@torch.no_grad()
def decode_packed(vae, packed: torch.Tensor, size: int = IMAGE_SIZE):
    """Packed, normalised latents -> list of PIL images, exactly as FluxPipeline decodes them."""
    from diffusers import FluxPipeline
    from PIL import Image

    latents = FluxPipeline._unpack_latents(packed, size, size, VAE_SCALE_FACTOR)
    latents = latents / vae.config.scaling_factor + vae.config.shift_factor
    images = vae.decode(latents).sample.clamp(-1, 1)
    array = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in array]


# --- Text conditioning ------------------------------------------------------------------------------


class TextBank:
    """Token ids of every caption (plus the empty one) and the encoders that embed them."""

    def __init__(self, captions: list[str], tokenizer, tokenizer_2, device: str):
        self.captions = ["", *sorted(set(captions))]
        self.index = {caption: i for i, caption in enumerate(self.captions)}
        self.clip_ids = tokenizer(
            self.captions,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(device)
        self.t5_ids = tokenizer_2(
            self.captions,
            padding="max_length",
            max_length=MAX_SEQUENCE_LENGTH,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(device)
        self.cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def encode(self, text_encoder, text_encoder_2, rows: torch.Tensor):
        if self.cache is not None:
            return self.cache[0][rows], self.cache[1][rows]
        pooled = text_encoder(self.clip_ids[rows], output_hidden_states=False).pooler_output
        embeds = text_encoder_2(self.t5_ids[rows], output_hidden_states=False)[0]
        return embeds, pooled

    @torch.no_grad()
    def freeze(self, text_encoder, text_encoder_2) -> None:
        self.cache = None
        rows = torch.arange(len(self.captions), device=self.clip_ids.device)
        self.cache = self.encode(text_encoder, text_encoder_2, rows)


def tie_token_variants(text_encoder_2, tokenizer_2, grammar: Grammar, trained_ids: set[int]) -> None:
    """Give every case variant and alias of a grammar word the embedding its trained spelling learned."""
    embedding = text_encoder_2.get_input_embeddings().weight
    with torch.no_grad():
        for group in token_variant_groups(tokenizer_2, grammar):
            trained = [i for i in group if i in trained_ids]
            if trained:
                embedding[group] = embedding[trained].mean(0, keepdim=True)


# --- Flow matching ----------------------------------------------------------------------------------


def _ids(batch: int, device: str):
    from diffusers import FluxPipeline

    side = IMAGE_SIZE // SIZE_MULTIPLE
    img_ids = FluxPipeline._prepare_latent_image_ids(batch, side, side, device, torch.float32)
    txt_ids = torch.zeros(MAX_SEQUENCE_LENGTH, 3, device=device)
    return img_ids, txt_ids


def predict(transformer, x, sigma, embeds, pooled, guidance=None):
    img_ids, txt_ids = _ids(x.shape[0], x.device)
    return transformer(
        hidden_states=x,
        encoder_hidden_states=embeds,
        pooled_projections=pooled,
        timestep=sigma,
        guidance=guidance,
        img_ids=img_ids,
        txt_ids=txt_ids,
        return_dict=False,
    )[0]


def pipeline_shift_mu() -> float:
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    return calculate_shift((IMAGE_SIZE // SIZE_MULTIPLE) ** 2, 256, 4096, 0.5, 1.15)


def pipeline_sigmas(variant: str, steps: int) -> list[float]:
    """The sigmas FluxPipeline walks for a 256x256 image (64 tokens), ending at 0."""
    import numpy as np

    scheduler = build_scheduler(variant)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=pipeline_shift_mu())
    return [float(s) for s in scheduler.sigmas]


@torch.no_grad()
def sample(transformer, bank: TextBank, rows, noise, sigmas: list[float], guidance=None):
    """Euler integration of the velocity field along ``sigmas`` (as FluxPipeline does)."""
    embeds, pooled = bank.encode(None, None, rows)
    x = noise
    g = None if guidance is None else torch.full((x.shape[0],), float(guidance), device=x.device)
    for sigma, sigma_next in itertools.pairwise(sigmas):
        t = torch.full((x.shape[0],), sigma, device=x.device)
        x = x + (sigma_next - sigma) * predict(transformer, x, t, embeds, pooled, g)
    return x


def adaln_zero(transformer) -> None:
    """DiT's adaLN-Zero initialisation: every block starts as the identity and the output at zero.

    The modulation layers give each block's residual gates; zeroing them (and the final projection) lets
    a freshly built transformer train several times faster than PyTorch's default initialisation.
    """
    ends = ("norm1.linear", "norm1_context.linear", "norm.linear", "norm_out.linear")
    for name, module in transformer.named_modules():
        if name.endswith(ends) or name == "proj_out":
            torch.nn.init.zeros_(module.weight)
            torch.nn.init.zeros_(module.bias)


# --- Quick checks ------------------------------------------------------------------------------------


def quick_check(images, samples: list[gi.Example], grammar: Grammar) -> dict:
    """Word read-back by OCR and background colour on a handful of images (never fatal to training)."""
    import numpy as np

    from training.checks import background_colour, reads_word

    words = shapes = read = background = 0
    for image, item in zip(images, samples, strict=True):
        if item.task == "word":
            words += 1
            try:
                read += reads_word(image, item.target.word)
            except Exception as error:  # an OCR problem must not cost a training run
                return {"error": f"OCR failed: {error!r}"}
        else:
            shapes += 1
            array = np.asarray(image).astype(np.float32)
            background += background_colour(array, grammar) == item.target.background
    return {"words_read": f"{read}/{words}", "backgrounds": f"{background}/{shapes}"}


def check_samples(transformer, vae, bank, grammar, device, variant: str, steps: int, guidance, count, seed):
    if count == 0:
        return {"skipped": True}
    rng = random.Random(seed)
    items = [gi.text_example(grammar, rng, ("word", "shape")[i % 2], gi.random_jitter) for i in range(count)]
    rows = torch.tensor([bank.index[item.caption] for item in items], device=device)
    generator = torch.Generator().manual_seed(seed)
    noise = pack(torch.randn(count, LATENT_CHANNELS, 16, 16, generator=generator)).to(device)
    x = sample(transformer, bank, rows, noise, pipeline_sigmas(variant, steps), guidance)
    return quick_check(decode_packed(vae, x), items, grammar)
