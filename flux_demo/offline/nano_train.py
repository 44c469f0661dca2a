"""Train the nano FLUX family from scratch: ``python -m flux_demo.offline.nano_train --out DIR``.

Stages, each checkpointed under ``DIR/ckpt`` (a re-run resumes after the last finished stage):

1. ``vae``: a five-level AutoencoderKL (x16) on whole 256x256 synthetic images, with an edge-weighted
   L1 loss (letters are edges); its ``shift_factor`` / ``scaling_factor`` are then set from the measured
   latent statistics.
2. ``base``: the dev-shaped transformer (``guidance_embeds=True``, guidance input held at 1) and both
   text encoders, trained jointly by rectified flow (x_t = (1-s) x0 + s noise, predict noise - x0,
   s weighted towards high noise), from DiT's adaLN-Zero initialisation, with 10% caption dropout so
   that classifier-free guidance works.
3. ``dev``: guidance distillation. A copy of the base learns to match the base's classifier-free
   guided velocity v_u + w (v_c - v_u) for w in [1, 5], given w through its guidance embedding.
4. ``pairs`` + ``schnell``: few-step distillation. nano-dev (12 steps, guidance 3.5) maps fixed noise
   to images; a guidance-free transformer initialised from nano-dev learns the straight path between
   each noise and its image (reflow), weighted towards the four sigmas of a 4-step schnell run.

The text encoders and the VAE are frozen after stage 2, so nano-dev and nano-schnell share them (the
files are byte-identical). Everything is seeded; ``--smoke`` runs a few steps of each stage on a tiny
data set, ``--scale F`` multiplies every stage's steps (the shipped weights use the default plan, F = 1).
Writes ``DIR/nano-dev`` and ``DIR/nano-schnell`` (``save_pretrained``, safetensors),
``DIR/metrics.json`` and ``DIR/nano_loss.png``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

# Sleep rather than spin while waiting for work: spinning OpenMP threads slow training down 10-30x
# when other processes share the CPU cores. It only takes effect before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

from flux_demo.offline import nano

LOG_EVERY = 50


@dataclass
class Plan:
    """Steps and batch sizes of every stage (the defaults are the shipped run)."""

    shape_jitters: int = 2
    vae_steps: int = 1500
    vae_batch: int = 4
    vae_lr: float = 1e-3
    base_steps: int = 3500
    base_batch: int = 32
    base_lr: float = 1e-3
    dev_steps: int = 400
    dev_lr: float = 2e-4
    pairs: int = 1024
    pair_steps: int = 12
    schnell_steps: int = 600
    schnell_lr: float = 3e-4
    ema: float = 0.998
    eval_every: int = 1000
    eval_images: int = 8

    def scaled(self, factor: float) -> Plan:
        """The same plan with every step count (and the number of reflow pairs) times ``factor``."""
        names = (
            "vae_steps",
            "base_steps",
            "dev_steps",
            "pairs",
            "schnell_steps",
            "eval_every",
        )
        return dataclasses.replace(
            self, **{name: max(1, round(getattr(self, name) * factor)) for name in names}
        )

    @classmethod
    def smoke(cls) -> Plan:
        return cls(
            shape_jitters=1,
            vae_steps=3,
            vae_batch=2,
            base_steps=3,
            base_batch=4,
            dev_steps=2,
            pairs=4,
            pair_steps=2,
            schnell_steps=2,
            eval_every=0,
            eval_images=0,
        )


class Log:
    """Prints progress and keeps every logged loss for the plot and the metrics file."""

    def __init__(self, path: Path):
        self.path = path
        self.curves: dict[str, list[tuple[int, float]]] = {}
        self.started = time.time()

    def __call__(self, message: str) -> None:
        line = f"[{time.time() - self.started:7.1f}s] {message}"
        print(line, flush=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def loss(self, stage: str, step: int, value: float) -> None:
        self.curves.setdefault(stage, []).append((step, value))


class EMA:
    def __init__(self, modules: list[torch.nn.Module], decay: float):
        self.decay = decay
        self.params = [p for m in modules for p in m.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for shadow, param in zip(self.shadow, self.params, strict=True):
            shadow.lerp_(param.detach(), 1 - decay)

    @torch.no_grad()
    def copy_to(self) -> None:
        for shadow, param in zip(self.shadow, self.params, strict=True):
            param.copy_(shadow)


def _seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _lr(step: int, total: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _set_lr(optimizer, value: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = value


# --- Data -------------------------------------------------------------------------------------------


WORD_SHARE = 0.6  # words are the harder half of the grammar: they get 60% of every batch


def balanced_weights(samples: list[nano.Sample]) -> torch.Tensor:
    """Sampling weights that give word images ``WORD_SHARE`` of the draws, whatever the pool holds."""
    n_words = sum(s.kind == "word" for s in samples)
    n_shapes = len(samples) - n_words
    return torch.tensor(
        [WORD_SHARE / n_words if s.kind == "word" else (1 - WORD_SHARE) / n_shapes for s in samples]
    )


def build_dataset(grammar: nano.Grammar, plan: Plan, seed: int, smoke: bool):
    """Every word on every sign background, and every shape triple at ``plan.shape_jitters`` jitters."""
    import numpy as np

    rng = random.Random(seed)
    samples: list[nano.Sample] = []
    images = []
    words = grammar.words[:3] if smoke else grammar.words
    for word in words:
        for background in grammar.word_backgrounds:
            samples.append(nano.Sample(grammar.word_caption(word), "word", word=word, background=background))
            images.append(nano.render_word(word, grammar.colors[background]))
    triples = grammar.shape_triples()
    if smoke:
        triples = triples[:4]
    for color, shape, background in triples:
        for _ in range(plan.shape_jitters):
            caption = grammar.shape_caption(color, shape, background)
            samples.append(nano.Sample(caption, "shape", color=color, shape=shape, background=background))
            images.append(nano.render_shape(grammar.colors[color], shape, grammar.colors[background], rng))
    pixels = torch.from_numpy(np.stack([np.asarray(image) for image in images])).permute(0, 3, 1, 2)
    return samples, pixels.contiguous()  # uint8, N x 3 x 256 x 256


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    return pixels.float() / 127.5 - 1.0


# --- Stage 1: VAE ----------------------------------------------------------------------------------


def edge_weights(x: torch.Tensor) -> torch.Tensor:
    """Per-pixel loss weights: 5 near edges (letters, frames, shape outlines), 1 on flat colour.

    Edges are a few percent of the pixels but all of what makes a letter legible.
    """
    step_x = (x[..., :, 1:] - x[..., :, :-1]).abs().amax(1, keepdim=True)
    step_y = (x[..., 1:, :] - x[..., :-1, :]).abs().amax(1, keepdim=True)
    edges = torch.zeros_like(x[:, :1])
    edges[..., :, 1:] += step_x
    edges[..., 1:, :] += step_y
    return 1 + 4 * F.max_pool2d((edges > 0.2).float(), 5, stride=1, padding=2)


def train_vae(pixels: torch.Tensor, samples, plan: Plan, log: Log, device: str):
    """The autoencoder on whole 256x256 images, so its group norms see the statistics they see later."""
    vae = nano.build_vae().to(device)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=plan.vae_lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(1)
    weights = balanced_weights(samples)
    for step in range(plan.vae_steps):
        index = torch.multinomial(weights, plan.vae_batch, replacement=True, generator=generator)
        x = to_unit(pixels[index]).to(device)
        posterior = vae.encode(x).latent_dist
        latents = posterior.mode()
        # A deterministic code plus a little noise (10% of its spread): quick to learn, and the decoder
        # learns to tolerate the small errors a diffusion model makes.
        noise = torch.randn(latents.shape, generator=generator).to(device)
        recon = vae.decode(latents + 0.1 * latents.detach().std() * noise).sample
        weight = edge_weights(x)
        l1 = ((recon - x).abs() * weight).mean() / weight.mean()
        # Flat colours: the 8x8 means must match too (a colour cast is what the colour checks see).
        colour = F.l1_loss(F.avg_pool2d(recon, 8), F.avg_pool2d(x, 8))
        loss = l1 + 0.5 * F.mse_loss(recon, x) + colour + 1e-6 * posterior.kl().mean()
        _set_lr(optimizer, _lr(step, plan.vae_steps, plan.vae_lr, warmup=50))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        if step % LOG_EVERY == 0 or step == plan.vae_steps - 1:
            log.loss("vae", step, l1.item())
            log(f"vae {step}/{plan.vae_steps} weighted l1 {l1.item():.4f} colour {colour.item():.4f}")
    vae.eval()
    return vae


@torch.no_grad()
def encode_all(vae, pixels: torch.Tensor, device: str, batch: int = 32) -> torch.Tensor:
    """Posterior means of every image, unscaled (N x C x 16 x 16)."""
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
def decode_packed(vae, packed: torch.Tensor, size: int = nano.IMAGE_SIZE):
    """Packed, normalised latents -> list of PIL images, exactly as FluxPipeline decodes them."""
    from diffusers import FluxPipeline
    from PIL import Image

    latents = FluxPipeline._unpack_latents(packed, size, size, nano.VAE_SCALE_FACTOR)
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
            max_length=nano.MAX_SEQUENCE_LENGTH,
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


def tie_token_variants(text_encoder_2, tokenizer_2, grammar: nano.Grammar, trained_ids: set[int]) -> None:
    """Give every case variant and alias of a grammar word the embedding its trained spelling learned."""
    embedding = text_encoder_2.get_input_embeddings().weight
    with torch.no_grad():
        for group in nano.token_variant_groups(tokenizer_2, grammar):
            trained = [i for i in group if i in trained_ids]
            if trained:
                embedding[group] = embedding[trained].mean(0, keepdim=True)


# --- Flow matching ----------------------------------------------------------------------------------


def _ids(batch: int, device: str):
    from diffusers import FluxPipeline

    side = nano.IMAGE_SIZE // nano.SIZE_MULTIPLE
    img_ids = FluxPipeline._prepare_latent_image_ids(batch, side, side, device, torch.float32)
    txt_ids = torch.zeros(nano.MAX_SEQUENCE_LENGTH, 3, device=device)
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


def pipeline_sigmas(variant: str, steps: int) -> list[float]:
    """The sigmas FluxPipeline walks for a 256x256 image (64 tokens), ending at 0."""
    import numpy as np
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    scheduler = nano.build_scheduler(variant)
    config = scheduler.config
    mu = calculate_shift(
        (nano.IMAGE_SIZE // nano.SIZE_MULTIPLE) ** 2,
        config.get("base_image_seq_len", 256),
        config.get("max_image_seq_len", 4096),
        config.get("base_shift", 0.5),
        config.get("max_shift", 1.15),
    )
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    return [float(s) for s in scheduler.sigmas]


@torch.no_grad()
def sample(
    transformer, bank: TextBank, rows: torch.Tensor, noise: torch.Tensor, sigmas: list[float], guidance=None
):
    """Euler integration of the velocity field along ``sigmas`` (as FluxPipeline does)."""
    embeds, pooled = bank.encode(None, None, rows)
    x = noise
    g = None if guidance is None else torch.full((x.shape[0],), float(guidance), device=x.device)
    for sigma, sigma_next in itertools.pairwise(sigmas):
        t = torch.full((x.shape[0],), sigma, device=x.device)
        x = x + (sigma_next - sigma) * predict(transformer, x, t, embeds, pooled, g)
    return x


def logit_normal(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.sigmoid(torch.randn(n, generator=generator))


def base_sigma(n: int, generator: torch.Generator) -> torch.Tensor:
    """Noise levels for the base: 70% logit-normal centred high (mean 0.8), 30% uniform.

    What the caption decides (which word, which colours) is only learnt at high noise: lower down, the
    noisy latent already shows it. A centred logit-normal puts 8% of the draws above 0.8; this puts 25%.
    """
    high = torch.sigmoid(torch.randn(n, generator=generator) + 0.8)
    uniform = torch.rand(n, generator=generator)
    return torch.where(torch.rand(n, generator=generator) < 0.3, uniform, high)


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


def quick_check(images, samples: list[nano.Sample], grammar: nano.Grammar) -> dict:
    """Word read-back by OCR and background colour on a handful of images (never fatal to training)."""
    import numpy as np

    words = shapes = read = background = 0
    for image, item in zip(images, samples, strict=True):
        if item.kind == "word":
            words += 1
            try:
                read += nano.reads_word(image, item.word)
            except Exception as error:  # an OCR problem must not cost a training run
                return {"error": f"OCR failed: {error!r}"}
        else:
            shapes += 1
            array = np.asarray(image).astype(float)
            border = np.concatenate([array[:8].reshape(-1, 3), array[-8:].reshape(-1, 3)])
            background += grammar.nearest_color(np.median(border, axis=0)) == item.background
    return {"words_read": f"{read}/{words}", "backgrounds": f"{background}/{shapes}"}


def check_samples(
    transformer, vae, bank, grammar, device, variant: str, steps: int, guidance, count: int, seed: int
):
    if count == 0:
        return {"skipped": True}
    rng = random.Random(seed)
    items = [nano.random_sample(grammar, rng, "word" if i % 2 == 0 else "shape") for i in range(count)]
    rows = torch.tensor([bank.index[item.caption] for item in items], device=device)
    generator = torch.Generator().manual_seed(seed)
    noise = pack(torch.randn(count, nano.LATENT_CHANNELS, 16, 16, generator=generator)).to(device)
    x = sample(transformer, bank, rows, noise, pipeline_sigmas(variant, steps), guidance)
    return quick_check(decode_packed(vae, x), items, grammar)


# --- Stages 2-4 ------------------------------------------------------------------------------------


def train_base(latents, rows, samples, bank, encoders, plan, log, device, grammar, vae):
    transformer = nano.build_transformer(guidance_embeds=True).to(device)
    adaln_zero(transformer)
    text_encoder, text_encoder_2 = encoders
    modules = [transformer, text_encoder, text_encoder_2]
    params = [p for m in modules for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=plan.base_lr, weight_decay=0.01)
    ema = EMA(modules, plan.ema)
    generator = torch.Generator().manual_seed(2)
    ones = torch.ones(plan.base_batch, device=device)
    weights = balanced_weights(samples)
    for step in range(plan.base_steps):
        index = torch.multinomial(weights, plan.base_batch, replacement=True, generator=generator)
        x0 = latents[index].to(device)
        caption_rows = rows[index].clone()
        caption_rows[torch.rand(plan.base_batch, generator=generator) < 0.1] = 0  # caption dropout
        noise = torch.randn(x0.shape, generator=generator).to(device)
        sigma = base_sigma(plan.base_batch, generator).to(device)
        xt = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
        embeds, pooled = bank.encode(text_encoder, text_encoder_2, caption_rows.to(device))
        loss = F.mse_loss(predict(transformer, xt, sigma, embeds, pooled, ones), noise - x0)
        _set_lr(optimizer, _lr(step, plan.base_steps, plan.base_lr))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema.update(step)
        if step % LOG_EVERY == 0 or step == plan.base_steps - 1:
            log.loss("base", step, loss.item())
            log(f"base {step}/{plan.base_steps} loss {loss.item():.4f}")
        if plan.eval_every and step and step % plan.eval_every == 0:
            live = copy.deepcopy(modules)
            ema.copy_to()
            bank.freeze(text_encoder, text_encoder_2)
            result = check_samples(
                transformer, vae, bank, grammar, device, "dev", 20, 1.0, plan.eval_images, 7
            )
            bank.cache = None
            for target, source in zip(modules, live, strict=True):
                target.load_state_dict(source.state_dict())
            log(f"base {step} check (EMA, 20 steps): {result}")
    ema.copy_to()
    return transformer


def cfg_velocity(teacher, xt, sigma, embeds, pooled, empty_embeds, empty_pooled, scale):
    n = xt.shape[0]
    ones = torch.ones(2 * n, device=xt.device)
    both = predict(
        teacher,
        torch.cat([xt, xt]),
        torch.cat([sigma, sigma]),
        torch.cat([embeds, empty_embeds]),
        torch.cat([pooled, empty_pooled]),
        ones,
    )
    cond, uncond = both[:n], both[n:]
    return uncond + scale[:, None, None] * (cond - uncond)


def dev_sigma(n: int, generator: torch.Generator) -> torch.Tensor:
    """Sigmas spread like nano-dev's shifted schedule: a logit-normal pushed up by the 64-token shift."""
    shift = math.exp(pipeline_shift_mu())
    s = logit_normal(n, generator)
    return shift * s / (1 + (shift - 1) * s)


def pipeline_shift_mu() -> float:
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    return calculate_shift((nano.IMAGE_SIZE // nano.SIZE_MULTIPLE) ** 2, 256, 4096, 0.5, 1.15)


def train_dev(base, latents, rows, samples, bank, plan, log, device):
    teacher = base.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = copy.deepcopy(base).train()
    for p in student.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(student.parameters(), lr=plan.dev_lr, weight_decay=0.01)
    ema = EMA([student], plan.ema)
    generator = torch.Generator().manual_seed(3)
    empty_rows = torch.zeros(plan.base_batch, dtype=torch.long, device=device)
    empty_embeds, empty_pooled = bank.encode(None, None, empty_rows)
    weights = balanced_weights(samples)
    for step in range(plan.dev_steps):
        index = torch.multinomial(weights, plan.base_batch, replacement=True, generator=generator)
        x0 = latents[index].to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        sigma = dev_sigma(plan.base_batch, generator).to(device)
        scale = (1 + 4 * torch.rand(plan.base_batch, generator=generator)).to(device)
        xt = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
        embeds, pooled = bank.encode(None, None, rows[index].to(device))
        with torch.no_grad():
            target = cfg_velocity(teacher, xt, sigma, embeds, pooled, empty_embeds, empty_pooled, scale)
        loss = F.mse_loss(predict(student, xt, sigma, embeds, pooled, scale), target)
        _set_lr(optimizer, _lr(step, plan.dev_steps, plan.dev_lr, warmup=20))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        ema.update(step)
        if step % LOG_EVERY == 0 or step == plan.dev_steps - 1:
            log.loss("dev", step, loss.item())
            log(f"dev {step}/{plan.dev_steps} loss {loss.item():.5f}")
    ema.copy_to()
    return student.eval()


@torch.no_grad()
def make_pairs(dev, bank, samples, plan, device, grammar):
    """(noise, nano-dev image latents, caption row) for ``plan.pairs`` random grammar prompts."""
    rng = random.Random(4)
    generator = torch.Generator().manual_seed(4)
    sigmas = pipeline_sigmas("dev", plan.pair_steps)
    words = sorted({s.caption for s in samples if s.kind == "word"})
    shapes = sorted({s.caption for s in samples if s.kind == "shape"})
    noises, images, rows = [], [], []
    for start in range(0, plan.pairs, 64):
        n = min(64, plan.pairs - start)
        picks = [rng.choice(words if rng.random() < WORD_SHARE else shapes) for _ in range(n)]
        row = torch.tensor([bank.index[caption] for caption in picks], device=device)
        noise = pack(torch.randn(n, nano.LATENT_CHANNELS, 16, 16, generator=generator)).to(device)
        images.append(
            sample(dev, bank, row, noise, sigmas, guidance=nano.DEV_DEFAULTS["guidance_scale"]).cpu()
        )
        noises.append(noise.cpu())
        rows.append(row.cpu())
    return torch.cat(noises), torch.cat(images), torch.cat(rows)


def train_schnell(dev, pairs, bank, plan, log, device):
    schnell = nano.build_transformer(guidance_embeds=False).to(device)
    missing, unexpected = schnell.load_state_dict(dev.state_dict(), strict=False)
    assert not missing, missing
    assert all("guidance_embedder" in key for key in unexpected), unexpected
    schnell.train()
    noise_all, x0_all, rows_all = pairs
    optimizer = torch.optim.AdamW(schnell.parameters(), lr=plan.schnell_lr, weight_decay=0.01)
    ema = EMA([schnell], plan.ema)
    generator = torch.Generator().manual_seed(5)
    four = torch.tensor(pipeline_sigmas("schnell", 4)[:-1])
    for step in range(plan.schnell_steps):
        index = torch.randint(len(x0_all), (plan.base_batch,), generator=generator)
        noise, x0 = noise_all[index].to(device), x0_all[index].to(device)
        sigma = four[torch.randint(len(four), (plan.base_batch,), generator=generator)]
        uniform = torch.rand(plan.base_batch, generator=generator)
        sigma = torch.where(torch.rand(plan.base_batch, generator=generator) < 0.3, uniform, sigma).to(device)
        xt = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
        embeds, pooled = bank.encode(None, None, rows_all[index].to(device))
        loss = F.mse_loss(predict(schnell, xt, sigma, embeds, pooled), noise - x0)
        _set_lr(optimizer, _lr(step, plan.schnell_steps, plan.schnell_lr, warmup=50))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(schnell.parameters(), 1.0)
        optimizer.step()
        ema.update(step)
        if step % LOG_EVERY == 0 or step == plan.schnell_steps - 1:
            log.loss("schnell", step, loss.item())
            log(f"schnell {step}/{plan.schnell_steps} loss {loss.item():.5f}")
    ema.copy_to()
    return schnell.eval()


# --- Outputs -----------------------------------------------------------------------------------------


def plot_losses(curves: dict[str, list[tuple[int, float]]], path: Path) -> None:
    """A small log-scale loss plot per stage, drawn with PIL."""
    from PIL import Image, ImageDraw, ImageFont

    stages = [name for name in ("vae", "base", "dev", "schnell") if curves.get(name)]
    width, height, pad = 300, 220, 36
    image = Image.new("RGB", (width * max(1, len(stages)), height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("DejaVuSans.ttf", 11)
    for k, name in enumerate(stages):
        points = curves[name]
        xs = [p[0] for p in points]
        ys = [math.log10(max(p[1], 1e-8)) for p in points]
        x0, x1 = k * width + pad, (k + 1) * width - 10
        y0, y1 = 24, height - pad
        lo, hi = min(ys), max(ys)
        hi = hi if hi > lo else lo + 1
        span = max(1, max(xs))
        draw.rectangle([x0, y0, x1, y1], outline="black")
        coords = [
            (x0 + (x1 - x0) * x / span, y1 - (y1 - y0) * (y - lo) / (hi - lo))
            for x, y in zip(xs, ys, strict=True)
        ]
        if len(coords) > 1:
            draw.line(coords, fill=(30, 90, 200), width=2)
        label = {
            "vae": "VAE L1 (edge-weighted)",
            "base": "base flow loss",
            "dev": "guidance distill",
            "schnell": "schnell reflow",
        }[name]
        draw.text((x0, 6), label, fill="black", font=font)
        draw.text((x0, y1 + 4), f"step 0 … {max(xs)}", fill="black", font=font)
        draw.text((x0 + 2, y0 + 2), f"{10**hi:.3g}", fill="gray", font=font)
        draw.text((x0 + 2, y1 - 14), f"{10**lo:.3g}", fill="gray", font=font)
    image.save(path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Train the nano FLUX family (nano-dev, nano-schnell).")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for nano-dev/, nano-schnell/ and logs"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a few steps of every stage on tiny data")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (ignored on CUDA)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every stage's steps (e.g. 8 on a GPU); 1 = shipped run",
    )
    parser.add_argument("--until", choices=("vae",), default=None, help="stop after this stage")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = args.device
    plan = Plan.smoke() if args.smoke else Plan().scaled(args.scale)
    out: Path = args.out
    ckpt = out / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)
    log = Log(out / "train.log")
    metrics: dict = {"plan": plan.__dict__, "device": device, "seed": args.seed, "stages": {}}
    _seed(args.seed)
    grammar = nano.load_grammar()

    started = time.time()
    try:  # load the OCR scorer up front, so the checks later never depend on files changing meanwhile
        if plan.eval_images:
            nano.reads_word(nano.render_word(grammar.words[0], grammar.colors["blue"]), grammar.words[0])
    except Exception as error:
        log(f"OCR unavailable, checks will report it: {error!r}")
    samples, pixels = build_dataset(grammar, plan, args.seed, args.smoke)
    log(f"data: {len(samples)} images ({sum(s.kind == 'word' for s in samples)} words)")

    tokenizer, tokenizer_2 = nano.build_clip_tokenizer(), nano.build_nano_t5_tokenizer(grammar)
    bank = TextBank(nano.all_captions(grammar), tokenizer, tokenizer_2, device)

    # Stage 1: VAE
    stage_start = time.time()
    if (ckpt / "vae.pt").exists():
        vae = nano.build_vae().to(device)
        state = torch.load(ckpt / "vae.pt")
        vae.load_state_dict(state["weights"])
        vae.register_to_config(**state["stats"])
        metrics["stages"]["vae"] = state["metrics"]
        log.curves.update(state["curves"])
        later = ("base.pt", "dev.pt", "schnell.pt")
        # A run that only re-writes the pipelines from finished checkpoints needs no latents.
        latents_raw = None
        if (ckpt / "latents.pt").exists():
            latents_raw = torch.load(ckpt / "latents.pt")
        elif not all((ckpt / name).exists() for name in later):
            latents_raw = encode_all(vae, pixels, device)
            torch.save(latents_raw, ckpt / "latents.pt")
    else:
        vae = train_vae(pixels, samples, plan, log, device)
        latents_raw = encode_all(vae, pixels, device)
        stats = set_latent_statistics(vae, latents_raw)
        # Check the reconstructions of one sign per word and as many shapes.
        words = [i for i, s in enumerate(samples) if s.kind == "word"]
        shapes = [i for i, s in enumerate(samples) if s.kind == "shape"]
        count = 2 * plan.eval_images
        pick = words[:: len(grammar.word_backgrounds)][:count] + shapes[::37][:count]
        check = {"skipped": True}
        if count:
            scaled = pack((latents_raw[pick] - stats["shift_factor"]) * stats["scaling_factor"])
            check = quick_check(decode_packed(vae, scaled), [samples[i] for i in pick], grammar)
        stage = {"seconds": round(time.time() - stage_start, 1), **stats, "reconstruction": check}
        metrics["stages"]["vae"] = stage
        torch.save(
            {
                "weights": vae.state_dict(),
                "stats": stats,
                "metrics": stage,
                "curves": {"vae": log.curves["vae"]},
            },
            ckpt / "vae.pt",
        )
        log(f"vae done: {stage}")
    for p in vae.parameters():
        p.requires_grad_(False)
    latents = None
    if latents_raw is not None:
        latents = pack((latents_raw - vae.config.shift_factor) * vae.config.scaling_factor)
    if args.until == "vae":
        return metrics
    rows = torch.tensor([bank.index[s.caption] for s in samples])

    shared = {
        "vae": vae,
        "tokenizer": tokenizer,
        "tokenizer_2": tokenizer_2,
        **nano.build_text_encoders(len(tokenizer), len(tokenizer_2)),
    }
    text_encoder, text_encoder_2 = shared["text_encoder"].to(device), shared["text_encoder_2"].to(device)

    # Stage 2: base
    stage_start = time.time()
    if (ckpt / "base.pt").exists():
        base = nano.build_transformer(guidance_embeds=True).to(device)
        state = torch.load(ckpt / "base.pt")
        base.load_state_dict(state["transformer"])
        text_encoder.load_state_dict(state["text_encoder"])
        text_encoder_2.load_state_dict(state["text_encoder_2"])
        metrics["stages"]["base"] = state["metrics"]
        log.curves.update(state["curves"])
    else:
        text_encoder.train()
        text_encoder_2.train()
        base = train_base(
            latents, rows, samples, bank, (text_encoder, text_encoder_2), plan, log, device, grammar, vae
        )
        tie_token_variants(text_encoder_2, tokenizer_2, grammar, set(bank.t5_ids.flatten().tolist()))
        stage = {"seconds": round(time.time() - stage_start, 1)}
        metrics["stages"]["base"] = stage
        torch.save(
            {
                "transformer": base.state_dict(),
                "text_encoder": text_encoder.state_dict(),
                "text_encoder_2": text_encoder_2.state_dict(),
                "metrics": stage,
                "curves": {"base": log.curves["base"]},
            },
            ckpt / "base.pt",
        )
    text_encoder.eval()
    text_encoder_2.eval()
    for p in [*text_encoder.parameters(), *text_encoder_2.parameters()]:
        p.requires_grad_(False)
    bank.freeze(text_encoder, text_encoder_2)
    base.eval()
    if "check_4_steps" not in metrics["stages"]["base"]:
        n = plan.eval_images * 2
        metrics["stages"]["base"].update(
            {
                "check_28_steps_no_guidance": check_samples(
                    base, vae, bank, grammar, device, "dev", 28, 1.0, n, 11
                ),
                "check_4_steps": check_samples(base, vae, bank, grammar, device, "schnell", 4, 1.0, n, 11),
            }
        )
    log(f"base: {metrics['stages']['base']}")

    # Stage 3: guidance distillation -> nano-dev
    stage_start = time.time()
    if (ckpt / "dev.pt").exists():
        dev = nano.build_transformer(guidance_embeds=True).to(device)
        state = torch.load(ckpt / "dev.pt")
        dev.load_state_dict(state["transformer"])
        metrics["stages"]["dev"] = state["metrics"]
        log.curves.update(state["curves"])
        dev.eval()
    else:
        dev = train_dev(base, latents, rows, samples, bank, plan, log, device)
        n = plan.eval_images * 2
        stage = {
            "seconds": round(time.time() - stage_start, 1),
            "check_28_steps_guidance_3.5": check_samples(
                dev, vae, bank, grammar, device, "dev", 28, 3.5, n, 11
            ),
        }
        metrics["stages"]["dev"] = stage
        torch.save(
            {"transformer": dev.state_dict(), "metrics": stage, "curves": {"dev": log.curves["dev"]}},
            ckpt / "dev.pt",
        )
    log(f"dev: {metrics['stages']['dev']}")
    for p in dev.parameters():
        p.requires_grad_(False)

    # Stage 4: few-step distillation -> nano-schnell
    stage_start = time.time()
    if (ckpt / "schnell.pt").exists():
        schnell = nano.build_transformer(guidance_embeds=False).to(device)
        state = torch.load(ckpt / "schnell.pt")
        schnell.load_state_dict(state["transformer"])
        metrics["stages"]["schnell"] = state["metrics"]
        log.curves.update(state["curves"])
        schnell.eval()
    else:
        pairs = make_pairs(dev, bank, samples, plan, device, grammar)
        pair_seconds = round(time.time() - stage_start, 1)
        log(f"pairs: {len(pairs[0])} in {pair_seconds}s")
        schnell = train_schnell(dev, pairs, bank, plan, log, device)
        n = plan.eval_images * 2
        stage = {
            "seconds": round(time.time() - stage_start, 1),
            "pairs_seconds": pair_seconds,
            "check_4_steps": check_samples(schnell, vae, bank, grammar, device, "schnell", 4, None, n, 11),
        }
        metrics["stages"]["schnell"] = stage
        torch.save(
            {
                "transformer": schnell.state_dict(),
                "metrics": stage,
                "curves": {"schnell": log.curves["schnell"]},
            },
            ckpt / "schnell.pt",
        )
    log(f"schnell: {metrics['stages']['schnell']}")

    # Write the pipelines: shared encoders and VAE, one transformer each, stored in float16 (half the
    # size; `nano.load_pipelines` and the app load them back in float32).
    shared = {key: (value.cpu().half() if hasattr(value, "cpu") else value) for key, value in shared.items()}
    for variant, transformer in (("dev", dev.half()), ("schnell", schnell.half())):
        pipe = nano.make_pipeline(variant, transformer.cpu(), shared)
        pipe.save_pretrained(out / f"nano-{variant}", safe_serialization=True)
    metrics["seconds_total_this_run"] = round(time.time() - started, 1)
    metrics["stage_seconds_sum"] = round(sum(s.get("seconds", 0) for s in metrics["stages"].values()), 1)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    plot_losses(log.curves, out / "nano_loss.png")
    log(f"wrote {out / 'nano-dev'} and {out / 'nano-schnell'}")
    return metrics


if __name__ == "__main__":
    main()
