"""The stages that train nano-schnell and nano-dev (see `training.nano_flux1` for the components).

1. ``vae``: a five-level AutoencoderKL (x16) on whole 256x256 synthetic images, with an edge-weighted
   L1 loss (letters are edges); its ``shift_factor`` / ``scaling_factor`` are then set from the measured
   latent statistics.
2. ``base``: the dev-shaped transformer (``guidance_embeds=True``, guidance input held at 1) and both
   text encoders, trained jointly by rectified flow (x_t = (1-s) x0 + s noise, predict noise - x0,
   s weighted towards high noise), from DiT's adaLN-Zero initialisation, with 10% caption dropout so
   that classifier-free guidance works.
3. ``dev``: guidance distillation. A copy of the base learns to match the base's classifier-free
   guided velocity v_u + w (v_c - v_u) for w in [1, 5], given w through its guidance embedding.
4. ``schnell``: few-step distillation. nano-dev (12 steps, guidance 3.5) maps fixed noise to images; a
   guidance-free transformer initialised from nano-dev learns the straight path between each noise and
   its image (reflow), weighted towards the four sigmas of a 4-step schnell run.
5. ``decoder``: the VAE's decoder alone, trained further on fresh renders with the encoder frozen. The
   latent space does not change, so the transformers stay valid, and flat colours and edges come out
   cleaner.

The text encoders and the VAE's encoder are frozen after stage 2, so nano-dev and nano-schnell share them
(the files are byte-identical).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from flux_demo.offline.nano import Grammar
from training import grammar_images as gi
from training import nano_flux1 as nf
from training.common import EMA, Log, Snapshot, Stages, reconstruction_loss, to_unit, train_loop


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
    decoder_steps: int = 600
    decoder_batch: int = 4
    decoder_lr: float = 5e-4
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
            "decoder_steps",
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
            decoder_steps=2,
            decoder_batch=2,
            eval_every=0,
            eval_images=0,
        )


# --- Stage 1 and 5: the autoencoder ------------------------------------------------------------------


def train_vae(vae, pixels: torch.Tensor, samples, plan: Plan, log: Log, device: str) -> None:
    """The autoencoder on whole 256x256 images, so its group norms see the statistics they see later."""
    generator = torch.Generator().manual_seed(1)
    weights = nf.balanced_weights(samples)

    def loss(step: int) -> torch.Tensor:
        index = torch.multinomial(weights, plan.vae_batch, replacement=True, generator=generator)
        x = to_unit(pixels[index]).to(device)
        posterior = vae.encode(x).latent_dist
        latents = posterior.mode()
        # A deterministic code plus a little noise (10% of its spread): quick to learn, and the decoder
        # learns to tolerate the small errors a diffusion model makes.
        noise = torch.randn(latents.shape, generator=generator).to(device)
        recon = vae.decode(latents + 0.1 * latents.detach().std() * noise).sample
        return reconstruction_loss(recon, x)[0] + 1e-6 * posterior.kl().mean()

    groups = [{"params": list(vae.parameters()), "lr": plan.vae_lr}]
    train_loop("vae", groups, plan.vae_steps, loss, log, warmup=50, weight_decay=0.0)
    vae.eval()


def render_batch(grammar: Grammar, rng: random.Random, count: int) -> torch.Tensor:
    """``count`` fresh training-style images (60% shapes at random placements, 40% signs), uint8."""
    import numpy as np

    kinds = ["word" if rng.random() < 0.4 else "shape" for _ in range(count)]
    items = [gi.text_example(grammar, rng, kind, gi.random_jitter) for kind in kinds]
    arrays = [np.asarray(gi.render(grammar, item.target)) for item in items]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def train_decoder(vae, grammar: Grammar, plan: Plan, log: Log, device: str, snapshot: Path) -> None:
    """The decoder alone, on fresh renders encoded by the frozen encoder (plus the same 10% noise)."""
    rng = random.Random(6)
    generator = torch.Generator().manual_seed(6)
    vae.decoder.train()

    def loss(step: int) -> torch.Tensor:
        x = to_unit(render_batch(grammar, rng, plan.decoder_batch)).to(device)
        with torch.no_grad():
            latents = vae.encode(x).latent_dist.mode()
        noise = torch.randn(latents.shape, generator=generator).to(device)
        recon = vae.decode(latents + 0.1 * latents.std() * noise).sample
        return reconstruction_loss(recon, x)[0]

    def state() -> dict:
        return {"rng": rng.getstate(), "generator": generator.get_state()}

    def restore(saved: dict) -> None:
        rng.setstate(saved["rng"])
        generator.set_state(saved["generator"])

    groups = [{"params": list(vae.decoder.parameters()), "lr": plan.decoder_lr}]
    train_loop(
        "decoder",
        groups,
        plan.decoder_steps,
        loss,
        log,
        warmup=20,
        weight_decay=0.0,
        snapshot=Snapshot(snapshot, 50, [vae.decoder], state, restore),
    )
    vae.eval()


# --- Stages 2-4 --------------------------------------------------------------------------------------


def base_sigma(n: int, generator: torch.Generator) -> torch.Tensor:
    """Noise levels for the base: 70% logit-normal centred high (mean 0.8), 30% uniform.

    What the caption decides (which word, which colours) is only learnt at high noise: lower down, the
    noisy latent already shows it. A centred logit-normal puts 8% of the draws above 0.8; this puts 25%.
    """
    high = torch.sigmoid(torch.randn(n, generator=generator) + 0.8)
    uniform = torch.rand(n, generator=generator)
    return torch.where(torch.rand(n, generator=generator) < 0.3, uniform, high)


def train_base(base, latents, rows, samples, bank, encoders, plan: Plan, log: Log, device: str, check):
    nf.adaln_zero(base)
    text_encoder, text_encoder_2 = encoders
    modules = [base, text_encoder, text_encoder_2]
    ema = EMA(modules, plan.ema)
    generator = torch.Generator().manual_seed(2)
    ones = torch.ones(plan.base_batch, device=device)
    weights = nf.balanced_weights(samples)

    def loss(step: int) -> torch.Tensor:
        index = torch.multinomial(weights, plan.base_batch, replacement=True, generator=generator)
        x0 = latents[index].to(device)
        caption_rows = rows[index].clone()
        caption_rows[torch.rand(plan.base_batch, generator=generator) < 0.1] = 0  # caption dropout
        noise = torch.randn(x0.shape, generator=generator).to(device)
        sigma = base_sigma(plan.base_batch, generator).to(device)
        xt = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
        embeds, pooled = bank.encode(text_encoder, text_encoder_2, caption_rows.to(device))
        return F.mse_loss(nf.predict(base, xt, sigma, embeds, pooled, ones), noise - x0)

    def run_check(step: int) -> str:
        ema.swap()
        bank.freeze(text_encoder, text_encoder_2)
        try:
            return str(check(base))
        finally:
            bank.cache = None
            ema.swap()

    groups = [{"params": [p for m in modules for p in m.parameters()], "lr": plan.base_lr}]
    train_loop(
        "base", groups, plan.base_steps, loss, log, ema=ema, check=run_check, check_every=plan.eval_every
    )


def cfg_velocity(teacher, xt, sigma, embeds, pooled, empty_embeds, empty_pooled, scale):
    n = xt.shape[0]
    ones = torch.ones(2 * n, device=xt.device)
    both = nf.predict(
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
    shift = math.exp(nf.pipeline_shift_mu())
    s = torch.sigmoid(torch.randn(n, generator=generator))
    return shift * s / (1 + (shift - 1) * s)


def train_dev(base, latents, rows, samples, bank, plan: Plan, log: Log, device: str):
    teacher = base.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = copy.deepcopy(base).train()
    for p in student.parameters():
        p.requires_grad_(True)
    ema = EMA([student], plan.ema)
    generator = torch.Generator().manual_seed(3)
    empty_rows = torch.zeros(plan.base_batch, dtype=torch.long, device=device)
    empty_embeds, empty_pooled = bank.encode(None, None, empty_rows)
    weights = nf.balanced_weights(samples)

    def loss(step: int) -> torch.Tensor:
        index = torch.multinomial(weights, plan.base_batch, replacement=True, generator=generator)
        x0 = latents[index].to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        sigma = dev_sigma(plan.base_batch, generator).to(device)
        scale = (1 + 4 * torch.rand(plan.base_batch, generator=generator)).to(device)
        xt = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
        embeds, pooled = bank.encode(None, None, rows[index].to(device))
        with torch.no_grad():
            target = cfg_velocity(teacher, xt, sigma, embeds, pooled, empty_embeds, empty_pooled, scale)
        return F.mse_loss(nf.predict(student, xt, sigma, embeds, pooled, scale), target)

    groups = [{"params": list(student.parameters()), "lr": plan.dev_lr}]
    train_loop("dev", groups, plan.dev_steps, loss, log, warmup=20, ema=ema)
    return student.eval()


@torch.no_grad()
def make_pairs(dev, bank, samples, plan: Plan, device: str):
    """(noise, nano-dev image latents, caption row) for ``plan.pairs`` random grammar prompts."""
    rng = random.Random(4)
    generator = torch.Generator().manual_seed(4)
    sigmas = nf.pipeline_sigmas("dev", plan.pair_steps)
    words = sorted({s.caption for s in samples if s.task == "word"})
    shapes = sorted({s.caption for s in samples if s.task == "shape"})
    noises, images, rows = [], [], []
    for start in range(0, plan.pairs, 64):
        n = min(64, plan.pairs - start)
        picks = [rng.choice(words if rng.random() < nf.WORD_SHARE else shapes) for _ in range(n)]
        row = torch.tensor([bank.index[caption] for caption in picks], device=device)
        noise = nf.pack(torch.randn(n, nf.LATENT_CHANNELS, 16, 16, generator=generator)).to(device)
        guidance = nf.DEV_DEFAULTS["guidance_scale"]
        images.append(nf.sample(dev, bank, row, noise, sigmas, guidance=guidance).cpu())
        noises.append(noise.cpu())
        rows.append(row.cpu())
    return torch.cat(noises), torch.cat(images), torch.cat(rows)


def train_schnell(schnell, dev, pairs, bank, plan: Plan, log: Log, device: str) -> None:
    missing, unexpected = schnell.load_state_dict(dev.state_dict(), strict=False)
    assert not missing, missing
    assert all("guidance_embedder" in key for key in unexpected), unexpected
    schnell.train()
    noise_all, x0_all, rows_all = pairs
    ema = EMA([schnell], plan.ema)
    generator = torch.Generator().manual_seed(5)
    four = torch.tensor(nf.pipeline_sigmas("schnell", 4)[:-1])

    def loss(step: int) -> torch.Tensor:
        index = torch.randint(len(x0_all), (plan.base_batch,), generator=generator)
        noise, x0 = noise_all[index].to(device), x0_all[index].to(device)
        sigma = four[torch.randint(len(four), (plan.base_batch,), generator=generator)]
        uniform = torch.rand(plan.base_batch, generator=generator)
        sigma = torch.where(torch.rand(plan.base_batch, generator=generator) < 0.3, uniform, sigma).to(device)
        xt = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
        embeds, pooled = bank.encode(None, None, rows_all[index].to(device))
        return F.mse_loss(nf.predict(schnell, xt, sigma, embeds, pooled), noise - x0)

    groups = [{"params": list(schnell.parameters()), "lr": plan.schnell_lr}]
    train_loop("schnell", groups, plan.schnell_steps, loss, log, warmup=50, ema=ema)
    schnell.eval()


# --- The run -----------------------------------------------------------------------------------------


def seed_checkpoints(folder: Path, stages: Stages) -> None:
    """Checkpoints of the tokenizers, vae, base (its text encoders), dev and schnell stages from finished
    pipelines in ``folder`` (nano-schnell/ and nano-dev/), so that a run only trains the stages after them.
    The base transformer is not shipped (nano-dev replaced it): the seeded base holds the text encoders."""
    from diffusers import FluxPipeline

    def load(name: str):
        return FluxPipeline.from_pretrained(str(folder / name), torch_dtype=torch.float32)

    schnell, dev = load("nano-schnell"), load("nano-dev")
    seeded = {"seeded_from": str(folder)}
    records = {
        "tokenizers": {"tokenizer": schnell.tokenizer, "tokenizer_2": schnell.tokenizer_2},
        "vae": {"vae": schnell.vae.state_dict(), "stats": dict(schnell.vae.config)},
        "base": {
            "transformer": None,
            "text_encoder": schnell.text_encoder.state_dict(),
            "text_encoder_2": schnell.text_encoder_2.state_dict(),
        },
        "dev": {"transformer": dev.transformer.state_dict()},
        "schnell": {"transformer": schnell.transformer.state_dict()},
    }
    for name, record in records.items():
        if not stages.done(name):
            torch.save({**record, "metrics": dict(seeded), "curves": {}}, stages.ckpt / f"{name}.pt")


def train(
    out: Path,
    grammar: Grammar,
    plan: Plan,
    stages: Stages,
    log: Log,
    device: str,
    seed: int,
    smoke: bool,
    until: str | None,
) -> None:
    """Train nano-dev and nano-schnell and write ``out/nano-dev`` and ``out/nano-schnell``."""
    samples, pixels = nf.build_dataset(grammar, plan.shape_jitters, seed, smoke)
    log(f"data: {len(samples)} images ({sum(s.task == 'word' for s in samples)} words)")
    # Kept with the checkpoints: the CLIP tokenizer's BPE numbers its pieces differently in every process,
    # and a resumed run must feed the text encoders the ids they were trained on.
    tokenizers: dict = {}

    def build_tokenizers() -> dict:
        return {"tokenizer": nf.build_clip_tokenizer(), "tokenizer_2": nf.build_nano_t5_tokenizer(grammar)}

    stages.run("tokenizers", build_tokenizers, tokenizers.update)
    tokenizer, tokenizer_2 = tokenizers["tokenizer"], tokenizers["tokenizer_2"]
    bank = nf.TextBank(nf.all_captions(grammar), tokenizer, tokenizer_2, device)
    vae = nf.build_vae().to(device)

    def vae_stage() -> dict:
        train_vae(vae, pixels, samples, plan, log, device)
        stats = nf.set_latent_statistics(vae, nf.encode_all(vae, pixels, device))
        return {"vae": vae.state_dict(), "stats": stats, "metrics": {**stats, **reconstruction_check()}}

    def restore_vae(state: dict) -> None:
        vae.load_state_dict(state["vae"])
        vae.register_to_config(
            shift_factor=state["stats"]["shift_factor"], scaling_factor=state["stats"]["scaling_factor"]
        )

    def reconstruction_check() -> dict:
        """One sign per word and as many shapes, encoded and decoded: words read, colours kept."""
        if not plan.eval_images:
            return {}
        words = [i for i, s in enumerate(samples) if s.task == "word"][:: len(grammar.word_backgrounds)]
        shapes = [i for i, s in enumerate(samples) if s.task == "shape"][::37]
        pick = words[: 2 * plan.eval_images] + shapes[: 2 * plan.eval_images]
        raw = nf.encode_all(vae, pixels[pick], device)
        scaled = nf.pack((raw - vae.config.shift_factor) * vae.config.scaling_factor)
        return {
            "reconstruction": nf.quick_check(
                nf.decode_packed(vae, scaled), [samples[i] for i in pick], grammar
            )
        }

    stages.run("vae", vae_stage, restore_vae)
    if until == "vae":
        return
    for p in vae.parameters():
        p.requires_grad_(False)
    rows = torch.tensor([bank.index[s.caption] for s in samples])
    shared = {
        "vae": vae,
        "tokenizer": tokenizer,
        "tokenizer_2": tokenizer_2,
        **nf.build_text_encoders(len(tokenizer), len(tokenizer_2)),
    }
    encoders = (shared["text_encoder"].to(device), shared["text_encoder_2"].to(device))
    base = nf.build_transformer(guidance_embeds=True).to(device)
    dev = nf.build_transformer(guidance_embeds=True).to(device)
    schnell = nf.build_transformer(guidance_embeds=False).to(device)
    needs_latents = not all(stages.done(name) for name in ("base", "dev", "schnell"))
    latents = None
    if needs_latents:
        latents = nf.pack(
            (nf.encode_all(vae, pixels, device) - vae.config.shift_factor) * vae.config.scaling_factor
        )

    def check(transformer, variant: str, steps: int, guidance) -> dict:
        n = plan.eval_images * 2
        return nf.check_samples(transformer, vae, bank, grammar, device, variant, steps, guidance, n, 11)

    def base_stage() -> dict:
        for encoder in encoders:
            encoder.train()
        train_base(
            base,
            latents,
            rows,
            samples,
            bank,
            encoders,
            plan,
            log,
            device,
            lambda model: nf.check_samples(
                model, vae, bank, grammar, device, "dev", 20, 1.0, plan.eval_images, 7
            ),
        )
        nf.tie_token_variants(encoders[1], tokenizer_2, grammar, set(bank.t5_ids.flatten().tolist()))
        base.eval()
        return {
            "transformer": base.state_dict(),
            "text_encoder": encoders[0].state_dict(),
            "text_encoder_2": encoders[1].state_dict(),
        }

    def restore_base(state: dict) -> None:
        if state["transformer"] is not None:
            base.load_state_dict(state["transformer"])
        encoders[0].load_state_dict(state["text_encoder"])
        encoders[1].load_state_dict(state["text_encoder_2"])
        for encoder in encoders:
            encoder.eval()
            for p in encoder.parameters():
                p.requires_grad_(False)
        bank.freeze(*encoders)
        base.eval()

    stages.run("base", base_stage, restore_base)

    def dev_stage() -> dict:
        trained = train_dev(base, latents, rows, samples, bank, plan, log, device)
        dev.load_state_dict(trained.state_dict())
        return {
            "transformer": dev.state_dict(),
            "metrics": {"check_28_steps_guidance_3.5": check(dev, "dev", 28, 3.5)},
        }

    stages.run("dev", dev_stage, lambda state: dev.load_state_dict(state["transformer"]))
    dev.eval()
    for p in dev.parameters():
        p.requires_grad_(False)

    def schnell_stage() -> dict:
        pairs = make_pairs(dev, bank, samples, plan, device)
        train_schnell(schnell, dev, pairs, bank, plan, log, device)
        return {
            "transformer": schnell.state_dict(),
            "metrics": {"check_4_steps": check(schnell, "schnell", 4, None)},
        }

    stages.run("schnell", schnell_stage, lambda state: schnell.load_state_dict(state["transformer"]))

    def decoder_stage() -> dict:
        for p in vae.decoder.parameters():
            p.requires_grad_(True)
        train_decoder(vae, grammar, plan, log, device, stages.ckpt / "decoder.snapshot.pt")
        return {"decoder": vae.decoder.state_dict(), "metrics": reconstruction_check()}

    stages.run("decoder", decoder_stage, lambda state: vae.decoder.load_state_dict(state["decoder"]))

    # Write the pipelines: shared encoders and VAE, one transformer each, stored in float16 (half the size;
    # the app loads them back in float32).
    shared["text_encoder"], shared["text_encoder_2"] = encoders
    shared = {key: (value.cpu().half() if hasattr(value, "cpu") else value) for key, value in shared.items()}
    for variant, transformer in (("dev", dev), ("schnell", schnell)):
        pipe = nf.make_pipeline(variant, transformer.cpu().half(), shared)
        pipe.save_pretrained(out / f"nano-{variant}", safe_serialization=True)
    log(f"wrote {out / 'nano-dev'} and {out / 'nano-schnell'}")
