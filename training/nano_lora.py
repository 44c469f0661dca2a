"""Train the nano LoRAs: ``python -m training.nano_lora --effect inverted-sign --out DIR``.

Small LoRAs for the FLUX.1 nano models, so the app's LoRA picker does something visible offline:

* ``inverted-sign``: a sign's colours inverted, a dark sign with light letters;
* ``yellow-sign``: a sign as a road sign, a yellow face with dark letters;
* ``monochrome-shapes``: a shape picture in shades of grey, as a black-and-white photograph;
* ``outlined-shapes``: a shape drawn as its outline, hollow, on the same background (not shipped: its
  check cannot tell it from the base model).

Each effect changes one kind of grammar image and leaves the other as it was (the unchanged images are in
every batch, so the LoRA learns to leave them alone). One LoRA serves both nano-dev and nano-schnell, as
FLUX.1 LoRAs serve [dev] and [schnell]: the adapter's weights are shared between the two transformers
during training (half of every batch runs through each). Only the transformers get adapters; the text
encoders and the VAE are frozen.

Writes ``DIR/<effect>/`` with ``pytorch_lora_weights.safetensors`` (float16, loaded by diffusers'
``load_lora_weights``), its card ``README.md`` (base models, trigger, licence, what was measured) and
``metrics.json``: the share of images showing the effect at LoRA scale 1 and 0 on both models, measured
through ``FluxPipeline`` with the saved file loaded as the app loads it. ``--smoke`` runs a few steps.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flux_demo.offline.nano import Grammar
from training.common import Log, seed_everything, train_loop  # first: it sets how idle threads wait

WEIGHT_NAME = "pytorch_lora_weights.safetensors"
BASE_MODELS = ("nano-dev", "nano-schnell")
# The attention and feed-forward projections of every block, as FLUX LoRAs usually target them.
TARGET_MODULES = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "add_q_proj",
    "add_k_proj",
    "add_v_proj",
    "to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
    "proj_mlp",
)
KEY_RGB, KEY_BACKGROUND_RGB = (0, 255, 0), (255, 0, 255)  # colours no grammar image uses


@dataclass(frozen=True)
class Plan:
    rank: int = 8
    steps: int = 800
    batch: int = 8  # per model: each step runs `batch` images through nano-dev and as many through schnell
    lr: float = 2e-3
    effect_share: float = 0.6  # of every batch; the rest are unchanged images of the other kind
    eval_prompts: int = 24  # per model and scale, for the measured shares
    seed: int = 0

    @staticmethod
    def smoke() -> Plan:
        return Plan(steps=3, batch=8, eval_prompts=1)


# --- The effects, drawn and measured --------------------------------------------------------------


def _key_mask(image, key_rgb, tolerance: int = 100):
    """Pixels of `image` (rendered on a key colour) that are not the key colour: what was drawn."""
    import numpy as np

    array = np.asarray(image.convert("RGB")).astype(np.int32)
    return np.abs(array - np.array(key_rgb)).sum(-1) > tolerance


def sign_mask(word: str):
    """The sign (frame, face and letters) of ``word``'s picture, as a boolean H x W array."""
    from training import grammar_images as gi

    return _key_mask(gi.render_word(word, KEY_RGB), KEY_RGB)


def draw_inverted_sign(grammar: Grammar, picture):
    """``picture`` (a sign) with the sign's light and dark swapped: a dark face, light letters and frame."""
    import numpy as np
    from PIL import Image

    from training import grammar_images as gi

    array = np.asarray(gi.render(grammar, picture)).astype(np.int32)
    inside = sign_mask(picture.word)
    array[inside] = np.array(gi.SIGN_RGB) + np.array(gi.INK_RGB) - array[inside]
    return Image.fromarray(array.clip(0, 255).astype(np.uint8))


def draw_outlined_shape(grammar: Grammar, picture, width: int = 10):
    """``picture`` (a shape) hollow: only a ``width``-pixel outline in the shape's colour."""
    from PIL import Image, ImageFilter

    from training import grammar_images as gi

    image = gi.render(grammar, picture)
    keyed = gi.render_shape(KEY_RGB, picture.shape, KEY_BACKGROUND_RGB, jitter=picture.jitter)
    shape = Image.fromarray(_key_mask(keyed, KEY_BACKGROUND_RGB, 200).astype("uint8") * 255)
    inside = shape.filter(ImageFilter.MinFilter(2 * width + 1))
    image.paste(Image.new("RGB", image.size, grammar.colors[picture.background]), mask=inside)
    return image


ROAD_YELLOW = (245, 196, 0)
SIGN_BOX = (slice(75, 182), slice(23, 234))  # inside the sign's frame (rows, columns) at 256x256


def draw_yellow_sign(grammar: Grammar, picture):
    """``picture`` (a sign) as a road sign: a yellow face, the letters and frame dark as before."""
    import numpy as np
    from PIL import Image

    from training import grammar_images as gi

    array = np.asarray(gi.render(grammar, picture)).astype(np.float32)
    inside = sign_mask(picture.word)
    ink, face, yellow = (np.array(rgb, dtype=np.float32) for rgb in (gi.INK_RGB, gi.SIGN_RGB, ROAD_YELLOW))
    # Each channel mapped linearly from [ink, face] to [ink, yellow]: anti-aliased edges stay smooth.
    array[inside] = ink + (array[inside] - ink) * (yellow - ink) / np.maximum(face - ink, 1)
    return Image.fromarray(array.clip(0, 255).astype(np.uint8))


def shows_yellow_sign(image) -> bool:
    """Whether the sign's face is yellow: inside its frame, the median blue is under 100 and the median
    red over 150 (a plain sign's face is white: blue about 245)."""
    import numpy as np

    array = np.asarray(image.convert("RGB").resize((256, 256)))[SIGN_BOX]
    red, blue = np.median(array[..., 0]), np.median(array[..., 2])
    return bool(blue < 100 and red > 150)


def draw_monochrome_shape(grammar: Grammar, picture):
    """``picture`` (a shape) in shades of grey: its luminance, as a black-and-white photograph."""
    from training import grammar_images as gi

    return gi.render(grammar, picture).convert("L").convert("RGB")


def chroma(image):
    """Per pixel, how far from grey: the largest minus the smallest of R, G and B (0 for grey)."""
    import numpy as np

    array = np.asarray(image.convert("RGB").resize((256, 256))).astype(np.int16)
    return array.max(axis=-1) - array.min(axis=-1)


def shows_monochrome(image) -> bool:
    """Whether an image is grey: its median chroma under 30 of 255 (a palette colour has 170 or more; a
    white or black picture on white or black passes without any effect)."""
    import numpy as np

    return float(np.median(chroma(image))) < 30


def shows_inverted_sign(image) -> bool:
    """Whether the sign in a 256x256 sign image is dark: its median brightness below the middle grey (a
    plain sign is white with black letters: mostly light)."""
    import numpy as np

    gray = np.asarray(image.convert("L").resize((256, 256)))
    return float(np.median(gray[sign_mask("FLUX")])) < 128


def hollow_share(image, grammar: Grammar) -> float:
    """The share of a shape's area that shows the background: holes / (holes + shape pixels). Shape
    pixels are those far from the background colour (read from the border); holes are background pixels
    that the border's background cannot reach (PIL's flood fill). A filled shape gives about 0."""
    import numpy as np
    from PIL import Image, ImageDraw

    from training.checks import background_colour

    array = np.asarray(image.convert("RGB").resize((256, 256))).astype(np.float32)
    background = np.array(grammar.colors[background_colour(array, grammar)], dtype=np.float32)
    shape = np.sqrt(((array - background) ** 2).sum(-1)) > 80
    canvas = Image.fromarray(shape.astype(np.uint8) * 255)
    ImageDraw.floodfill(canvas, (0, 0), 128)  # the background the border reaches
    holes = np.asarray(canvas) == 0
    area = holes.sum() + shape.sum()
    return float(holes.sum() / area) if area else 0.0


def shows_outlined_shape(image, grammar: Grammar) -> bool:
    return hollow_share(image, grammar) > 0.3


@dataclass(frozen=True)
class Effect:
    name: str
    kind: str  # the grammar images it changes: "word" (signs) or "shape"
    title: str
    summary: str
    draw: Callable  # (grammar, picture) -> the changed PIL image
    shows: Callable  # (image, grammar) -> whether an image shows the effect


EFFECTS = {
    "inverted-sign": Effect(
        "inverted-sign",
        "word",
        "nano inverted sign",
        "Signs come out inverted: a dark sign with light letters. Shapes are left as they are.",
        draw_inverted_sign,
        lambda image, _grammar: shows_inverted_sign(image),
    ),
    "yellow-sign": Effect(
        "yellow-sign",
        "word",
        "nano yellow sign",
        "Signs come out as road signs: a yellow face with dark letters. Shapes are left as they are.",
        draw_yellow_sign,
        lambda image, _grammar: shows_yellow_sign(image),
    ),
    "monochrome-shapes": Effect(
        "monochrome-shapes",
        "shape",
        "nano monochrome shapes",
        "Shape pictures come out in shades of grey, as a black-and-white photograph. Signs are left as "
        "they are.",
        draw_monochrome_shape,
        lambda image, _grammar: shows_monochrome(image),
    ),
    "outlined-shapes": Effect(
        "outlined-shapes",
        "shape",
        "nano outlined shapes",
        "Shapes come out as outlines, hollow, in their colour. Signs are left as they are.",
        draw_outlined_shape,
        shows_outlined_shape,
    ),
}


# --- Training ---------------------------------------------------------------------------------------


def training_data(grammar: Grammar, effect: Effect, seed: int, smoke: bool):
    """(examples, uint8 target pixels N x 3 x 256 x 256, effect mask N): the nano training set with the
    effect drawn on the images of its kind and the others unchanged."""
    import numpy as np
    import torch

    from training import nano_flux1 as nf

    samples, pixels = nf.build_dataset(grammar, jitters=1, seed=seed, smoke=smoke)
    changed = torch.tensor([s.task == effect.kind for s in samples])
    for i in torch.nonzero(changed).flatten().tolist():
        drawn = np.asarray(effect.draw(grammar, samples[i].target))
        pixels[i] = torch.from_numpy(drawn.copy()).permute(2, 0, 1)
    return samples, pixels, changed


def add_shared_lora(transformers, rank: int):
    """A LoRA adapter ("default") on each transformer, with the first one's weights shared by all: one
    set of trainable parameters serves both models."""
    from peft import LoraConfig

    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=list(TARGET_MODULES), init_lora_weights=True)
    first, *others = transformers
    first.add_adapter(config)
    owners = dict(first.named_modules())
    for transformer in others:
        transformer.add_adapter(config)
        for name, module in transformer.named_modules():
            if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
                module.lora_A["default"].weight = owners[name].lora_A["default"].weight
                module.lora_B["default"].weight = owners[name].lora_B["default"].weight
    params = [p for p in first.parameters() if p.requires_grad]
    return config, params


def train(pipes: dict, grammar: Grammar, effect: Effect, plan: Plan, log, smoke: bool) -> dict:
    """Train the effect's LoRA on nano-dev and nano-schnell (`pipes`: "dev", "schnell"); returns its
    state dict (diffusers' transformer keys) and the LoRA config."""
    import torch
    import torch.nn.functional as F
    from peft.utils import get_peft_model_state_dict

    from training import nano_flux1 as nf
    from training.nano_flux1_train import base_sigma

    dev, schnell = pipes["dev"], pipes["schnell"]
    samples, pixels, changed = training_data(grammar, effect, plan.seed, smoke)
    log(f"data: {len(samples)} images, {int(changed.sum())} with the effect")
    vae = dev.vae
    raw = nf.encode_all(vae, pixels, "cpu")
    latents = nf.pack((raw - vae.config.shift_factor) * vae.config.scaling_factor)
    bank = nf.TextBank([s.caption for s in samples], dev.tokenizer, dev.tokenizer_2, "cpu")
    bank.freeze(dev.text_encoder, dev.text_encoder_2)
    rows = torch.tensor([bank.index[s.caption] for s in samples])
    share = plan.effect_share
    weights = torch.where(changed, share / changed.sum(), (1 - share) / (~changed).sum().clamp(min=1))
    for module in (dev.transformer, schnell.transformer):
        module.requires_grad_(False)
    config, params = add_shared_lora([dev.transformer, schnell.transformer], plan.rank)
    log(f"LoRA rank {plan.rank}: {sum(p.numel() for p in params)} parameters")
    generator = torch.Generator().manual_seed(plan.seed + 1)
    ones = torch.ones(plan.batch)

    def flow_loss(transformer, guidance) -> torch.Tensor:
        index = torch.multinomial(weights, plan.batch, replacement=True, generator=generator)
        x0 = latents[index]
        noise = torch.randn(x0.shape, generator=generator)
        sigma = base_sigma(plan.batch, generator)
        xt = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
        embeds, pooled = bank.encode(None, None, rows[index])
        return F.mse_loss(nf.predict(transformer, xt, sigma, embeds, pooled, guidance), noise - x0)

    def loss(step: int) -> torch.Tensor:
        return flow_loss(dev.transformer, ones) + flow_loss(schnell.transformer, None)

    train_loop("lora", [{"params": params, "lr": plan.lr}], plan.steps, loss, log, warmup=50)
    state = {
        key: value.detach().to(torch.float16)
        for key, value in get_peft_model_state_dict(dev.transformer).items()
    }
    for transformer in (dev.transformer, schnell.transformer):
        transformer.delete_adapters("default")
    return {"state": state, "config": config}


def save(folder: Path, trained: dict, effect: Effect, metrics: dict) -> Path:
    """The LoRA file (diffusers' format, with its config as safetensors metadata) and a first card."""
    from diffusers import FluxPipeline

    folder.mkdir(parents=True, exist_ok=True)
    config = trained["config"].to_dict()
    metadata = {key: config[key] for key in ("r", "lora_alpha", "target_modules", "use_dora", "bias")}
    metadata["target_modules"] = sorted(metadata["target_modules"])
    FluxPipeline.save_lora_weights(
        folder,
        transformer_lora_layers=trained["state"],
        weight_name=WEIGHT_NAME,
        transformer_lora_adapter_metadata=metadata,
    )
    (folder / "README.md").write_text(card(effect, metrics), encoding="utf-8")
    return folder / WEIGHT_NAME


def card(effect: Effect, metrics: dict) -> str:
    """The model card: the Hub's front matter (base models, licence, no trigger word) and what it does."""
    shares = metrics.get("shares", {})
    lines = [
        "---",
        "base_model:",
        *(f"- {base}" for base in BASE_MODELS),
        "library_name: diffusers",
        "license: apache-2.0",
        "tags: [lora, flux, nano, text-to-image]",
        'instance_prompt: ""',
        "---",
        f"# {effect.title}",
        "",
        f"{effect.summary} A LoRA (rank {metrics.get('rank')}) for the FLUX.1 nano models of this "
        "repository, trained by `python -m training.nano_lora`; no trigger word.",
        "",
        "Share of images that show the effect (nano grammar prompts of its kind, seeds 0..N-1):",
        "",
        "| model | scale 0 | scale 1 |",
        "|---|---|---|",
        *(f"| {model} | {s['0']:.0%} | {s['1']:.0%} |" for model, s in shares.items()),
        "",
    ]
    return "\n".join(lines)


# --- Measuring through the pipeline, as the app runs it --------------------------------------------


def eval_prompts(grammar: Grammar, effect: Effect, count: int) -> list[str]:
    rng = random.Random(1234)
    if effect.kind == "word":
        return [grammar.word_caption(grammar.words[i % len(grammar.words)]) for i in range(count)]
    return [grammar.shape_caption(*rng.choice(grammar.shape_triples())) for _ in range(count)]


def measure(pipes: dict, lora_file: Path, grammar: Grammar, effect: Effect, count: int) -> dict:
    """{model: {"0": share, "1": share}}: the share of `count` prompts of the effect's kind (seed i for
    prompt i) whose image shows it, with the LoRA loaded from `lora_file` at scale 0 and 1."""
    from training.loading import generate

    prompts = eval_prompts(grammar, effect, count)
    shares = {}
    for variant, pipe in pipes.items():
        pipe.load_lora_weights(str(lora_file.parent), weight_name=lora_file.name, adapter_name="effect")
        shares[f"nano-{variant}"] = {}
        for scale in (0.0, 1.0):
            pipe.set_adapters(["effect"], [scale])
            images = [generate(pipe, prompt, seed, variant) for seed, prompt in enumerate(prompts)]
            shown = sum(effect.shows(image, grammar) for image in images)
            shares[f"nano-{variant}"][f"{scale:g}"] = shown / len(prompts)
        pipe.unload_lora_weights()
    return shares


def preview(pipe, lora_file: Path, grammar: Grammar, effect: Effect, path: Path, side: int = 96) -> None:
    """A small strip for the app's LoRA card: one prompt of the effect's kind at scale 0, then 1."""
    from PIL import Image

    from training.loading import generate

    prompt = eval_prompts(grammar, effect, 1)[0]
    pipe.load_lora_weights(str(lora_file.parent), weight_name=lora_file.name, adapter_name="effect")
    strip = Image.new("RGB", (2 * side, side))
    for index, scale in enumerate((0.0, 1.0)):
        pipe.set_adapters(["effect"], [scale])
        strip.paste(generate(pipe, prompt, 0, "schnell").resize((side, side)), (index * side, 0))
    pipe.unload_lora_weights()
    strip.save(path, optimize=True)


def main(argv: list[str] | None = None) -> dict:
    import torch

    from flux_demo.offline.nano import WEIGHTS_DIR, load_grammar
    from training.loading import load_pipelines

    parser = argparse.ArgumentParser(description="Train a nano LoRA.")
    parser.add_argument("--effect", choices=sorted(EFFECTS), required=True)
    parser.add_argument("--out", type=Path, required=True, help="the LoRA goes to OUT/<effect>/")
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="the nano pipelines to train on")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--eval-prompts", type=int, default=None, help="prompts per model and scale")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--measure-only", action="store_true", help="measure OUT/<effect>'s LoRA again")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    plan = Plan.smoke() if args.smoke else Plan()
    if args.steps is not None:
        plan = Plan(**{**plan.__dict__, "steps": args.steps})
    if args.eval_prompts is not None:
        plan = Plan(**{**plan.__dict__, "eval_prompts": args.eval_prompts})
    effect = EFFECTS[args.effect]
    folder = args.out / effect.name
    folder.mkdir(parents=True, exist_ok=True)
    log = Log(folder / "train.log")
    seed_everything(plan.seed)
    grammar = load_grammar()
    pipes = load_pipelines(args.weights)
    lora_file = folder / WEIGHT_NAME
    if args.measure_only:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    else:
        started = time.time()
        trained = train(pipes, grammar, effect, plan, log, args.smoke)
        metrics = {"effect": effect.name, "rank": plan.rank, "plan": plan.__dict__}
        metrics["train_seconds"] = round(time.time() - started, 1)
        save(folder, trained, effect, metrics)
    metrics["weights"] = str(args.weights)
    metrics["shares"] = measure(pipes, lora_file, grammar, effect, plan.eval_prompts)
    metrics["bytes"] = lora_file.stat().st_size
    (folder / "README.md").write_text(card(effect, metrics), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    preview(pipes["schnell"], lora_file, grammar, effect, folder / "preview.png")
    log(f"measured: {metrics['shares']}")
    return metrics


if __name__ == "__main__":
    main()
