"""The nano FLUX family: small FLUX.1 models trained offline on a synthetic grammar of words and shapes.

`nano-dev` and `nano-schnell` are built from the real diffusers/transformers classes
(`FluxTransformer2DModel`, `AutoencoderKL`, `CLIPTextModel`, `T5EncoderModel`, their tokenizers and
`FlowMatchEulerDiscreteScheduler`), run by `FluxPipeline` and loaded with `from_pretrained`, exactly
like the real checkpoints. Unlike the random tiny twins they are trained (see
`flux_demo.offline.nano_train`) and draw what their grammar describes:

* words: ``a sign that says "CAT"`` — a white sign with the word in black bold capitals;
* shapes: ``a red star on a blue background``.

The grammar lives in ``examples/nano_vocabulary.json``. This module loads it, renders the synthetic
training images with PIL and the DejaVu fonts, writes the captions and builds the (untrained) model
components. Images are 256x256; the VAE downsamples x16, so a 256x256 image is 16x16 latents and
8x8 = 64 packed image tokens, and sizes must be multiples of 32.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

VOCABULARY_FILE = Path(__file__).resolve().parents[2] / "examples" / "nano_vocabulary.json"
WEIGHTS_DIR = Path(__file__).resolve().parent / "nano_weights"

IMAGE_SIZE = 256
VAE_SCALE_FACTOR = 16  # five VAE levels: 2 ** (5 - 1)
SIZE_MULTIPLE = 2 * VAE_SCALE_FACTOR  # FluxPipeline packs 2x2 latents into one token
MAX_SEQUENCE_LENGTH = 16  # T5 tokens; every grammar caption fits, and the model is trained at this length
LATENT_CHANNELS = 16
T5_DIM = 64
CLIP_DIM = 64
HIDDEN_HEADS, HEAD_DIM = 4, 32

DEV_DEFAULTS = {"num_inference_steps": 28, "guidance_scale": 3.5}
SCHNELL_DEFAULTS = {"num_inference_steps": 4, "guidance_scale": 0.0}

FONT_NAME = "DejaVuSans-Bold.ttf"
SIGN_RGB = (250, 250, 250)
INK_RGB = (15, 15, 15)


@dataclass(frozen=True)
class Grammar:
    """What the nano models can draw, as published in ``examples/nano_vocabulary.json``."""

    words: tuple[str, ...]
    colors: dict[str, tuple[int, int, int]]
    shapes: tuple[str, ...]
    templates: dict[str, str]

    def word_caption(self, word: str) -> str:
        return self.templates["word"].format(word=word)

    def shape_caption(self, color: str, shape: str, background: str) -> str:
        return self.templates["shape"].format(color=color, shape=shape, background=background)

    @property
    def word_backgrounds(self) -> tuple[str, ...]:
        """Background colours behind signs: every palette colour but the sign's own white."""
        return tuple(name for name in self.colors if name != "white")

    def shape_triples(self) -> list[tuple[str, str, str]]:
        """Every (colour, shape, background) the grammar allows: the shape never matches its background."""
        return [
            (color, shape, background)
            for color in self.colors
            for shape in self.shapes
            for background in self.colors
            if background != color
        ]

    def nearest_color(self, rgb) -> str:
        """The palette name closest to ``rgb`` (Euclidean distance in RGB)."""
        r, g, b = (float(v) for v in rgb)
        return min(
            self.colors,
            key=lambda name: (
                (self.colors[name][0] - r) ** 2
                + (self.colors[name][1] - g) ** 2
                + (self.colors[name][2] - b) ** 2
            ),
        )


@lru_cache(maxsize=4)
def load_grammar(path: str | Path = VOCABULARY_FILE) -> Grammar:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if set(data) != {"words", "colors", "shapes", "templates"}:
        raise ValueError(f"{path}: expected exactly the keys words, colors, shapes, templates")
    return Grammar(
        words=tuple(data["words"]),
        colors={name: (int(rgb[0]), int(rgb[1]), int(rgb[2])) for name, rgb in data["colors"].items()},
        shapes=tuple(data["shapes"]),
        templates=dict(data["templates"]),
    )


# Offline examples in the app (text to image and the typography lab): prompts of the grammar.
EXAMPLE_WORDS = ("FLUX", "HELLO", "CAT", "JAZZ")
EXAMPLE_SHAPES = (("red", "star", "blue"), ("yellow", "circle", "purple"), ("white", "triangle", "black"))


def example_prompts(grammar: Grammar | None = None) -> tuple[str, ...]:
    """Sign and shape prompts for the app's examples when it serves the nano models."""
    grammar = grammar or load_grammar()
    return (
        *(grammar.word_caption(word) for word in EXAMPLE_WORDS[:2]),
        *(grammar.shape_caption(*triple) for triple in EXAMPLE_SHAPES),
        *(grammar.word_caption(word) for word in EXAMPLE_WORDS[2:]),
    )


# --- Synthetic images -------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(FONT_NAME, size)


def _word_font(word: str, max_width: int, max_height: int):
    """The largest bold font (at most 72 px) that fits ``word`` inside the sign."""
    for size in range(72, 12, -2):
        font = _font(size)
        left, top, right, bottom = font.getbbox(word)
        if right - left <= max_width and bottom - top <= max_height:
            return font
    return _font(12)


def render_word(word: str, background_rgb, size: int = IMAGE_SIZE):
    """A white sign with a dark frame and ``word`` in black bold capitals, centred on a plain background."""
    from PIL import Image, ImageDraw

    scale = size / IMAGE_SIZE
    image = Image.new("RGB", (size, size), tuple(background_rgb))
    draw = ImageDraw.Draw(image)
    box = [round(18 * scale), round(70 * scale), round(238 * scale), round(186 * scale)]
    draw.rounded_rectangle(
        box, radius=round(12 * scale), fill=SIGN_RGB, outline=INK_RGB, width=round(5 * scale)
    )
    font = (
        _word_font(word, round(188 * scale), round(84 * scale))
        if scale == 1
        else _font(max(8, round(60 * scale)))
    )
    draw.text((size / 2, size / 2 + 1), word, font=font, fill=INK_RGB, anchor="mm")
    return image


def _star(cx: float, cy: float, radius: float) -> list[tuple[float, float]]:
    import math

    points = []
    for i in range(10):
        r = radius if i % 2 == 0 else radius * 0.45
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def render_shape(
    color_rgb, shape: str, background_rgb, rng: random.Random | None = None, size: int = IMAGE_SIZE
):
    """One filled shape on a plain background; ``rng`` jitters its size and position (centred without)."""
    from PIL import Image, ImageDraw

    scale = size / IMAGE_SIZE
    radius, dx, dy = 60.0, 0.0, 0.0
    if rng is not None:
        radius = rng.uniform(48, 72)
        dx, dy = rng.uniform(-24, 24), rng.uniform(-24, 24)
    radius, cx, cy = radius * scale, (128 + dx) * scale, (128 + dy) * scale
    image = Image.new("RGB", (size, size), tuple(background_rgb))
    draw = ImageDraw.Draw(image)
    fill = tuple(color_rgb)
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif shape == "square":
        half = radius * 0.85
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=fill)
    elif shape == "triangle":
        draw.polygon(
            [
                (cx, cy - radius),
                (cx + radius * 0.95, cy + radius * 0.7),
                (cx - radius * 0.95, cy + radius * 0.7),
            ],
            fill=fill,
        )
    elif shape == "star":
        draw.polygon(_star(cx, cy, radius * 1.1), fill=fill)
    elif shape == "diamond":
        draw.polygon(
            [(cx, cy - radius), (cx + radius * 0.75, cy), (cx, cy + radius), (cx - radius * 0.75, cy)],
            fill=fill,
        )
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return image


@dataclass(frozen=True)
class Sample:
    """One training or benchmark item: its caption and what it shows."""

    caption: str
    kind: str  # "word" or "shape"
    word: str = ""
    color: str = ""
    shape: str = ""
    background: str = ""


def random_sample(grammar: Grammar, rng: random.Random, kind: str | None = None) -> Sample:
    """A random grammar item; ``kind`` forces "word" or "shape" (otherwise half and half)."""
    kind = kind or rng.choice(("word", "shape"))
    if kind == "word":
        word = rng.choice(grammar.words)
        return Sample(grammar.word_caption(word), "word", word=word)
    color, shape, background = rng.choice(grammar.shape_triples())
    return Sample(
        grammar.shape_caption(color, shape, background),
        "shape",
        color=color,
        shape=shape,
        background=background,
    )


def render_sample(grammar: Grammar, sample: Sample, rng: random.Random):
    """Render one training image for ``sample``: words get a random sign background, shapes a jitter."""
    if sample.kind == "word":
        return render_word(sample.word, grammar.colors[rng.choice(grammar.word_backgrounds)])
    return render_shape(grammar.colors[sample.color], sample.shape, grammar.colors[sample.background], rng)


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


def reads_word(image, word: str) -> bool:
    """Whether RapidOCR reads ``word`` back from ``image`` (the project's normalised match)."""
    try:
        from flux_demo.typography import score_text
    except ImportError:  # the typography package may keep its scorer in a submodule
        from flux_demo.typography.scoring import score_text
    return bool(score_text(image, word).all_normalised)


def colour_checks(image, grammar: Grammar, background: str, color: str) -> tuple[bool, bool]:
    """(background right, shape colour right) for a shape image, by nearest palette colour.

    The background is the median of the border pixels (8 px all round); the shape's colour is the most
    common palette colour among the other pixels, leaving out the background's colour.
    """
    import numpy as np

    array = np.asarray(image.convert("RGB")).astype(np.float32)
    border = np.concatenate(
        [
            array[:8].reshape(-1, 3),
            array[-8:].reshape(-1, 3),
            array[:, :8].reshape(-1, 3),
            array[:, -8:].reshape(-1, 3),
        ]
    )
    predicted_background = grammar.nearest_color(np.median(border, axis=0))
    names = list(grammar.colors)
    palette = np.array([grammar.colors[name] for name in names], dtype=np.float32)
    nearest = ((array.reshape(-1, 1, 3) - palette[None]) ** 2).sum(-1).argmin(1)
    counts = np.bincount(nearest, minlength=len(names))
    counts[names.index(predicted_background)] = 0
    predicted_shape = names[int(counts.argmax())]
    return predicted_background == background, predicted_shape == color


def weights_path(variant: str) -> Path:
    """The shipped folder of ``nano-schnell`` or ``nano-dev`` (``variant`` is "schnell" or "dev")."""
    return WEIGHTS_DIR / f"nano-{variant}"


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
    """One image at ``variant``'s defaults (as the app calls it), on CPU with a seeded generator."""
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
