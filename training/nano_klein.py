"""nano-klein: a small FLUX.2 [klein] trained on the nano grammar, text to image and multi-reference edits.

Built only from the real classes (`Flux2Transformer2DModel`, `AutoencoderKLFlux2`, `Qwen3ForCausalLM` with a
`Qwen2TokenizerFast` over the grammar, `FlowMatchEulerDiscreteScheduler`) and run by `Flux2KleinPipeline`
and `Flux2KleinInpaintPipeline`. Training calls the pipeline's own static pieces (the Qwen3 prompt
embedding with hidden states 9, 18 and 27, the patchify / pack / batch-norm normalisation of latents, the
position ids that give reference k the time coordinate 10k, `compute_empirical_mu`), so it trains exactly
what the pipeline runs.

Stages (see `train`):

1. ``klein_latents``: the nano autoencoder (trained for the FLUX.1 nano family, its weights put into the
   FLUX.2 VAE class) encodes a pool of grammar pictures; the batch norm's running statistics are set
   from those latents, as FLUX.2's VAE normalises them.
2. ``klein_base``: the transformer, trained by rectified flow on text-to-image prompts, the grammar's edits
   with 1-3 references, and inpainting-style prompts, with noise levels drawn largely at the sigmas of the
   4-step schedule that klein runs by default (klein is step-distilled). The text encoder keeps its seeded
   random start; its prompt embeddings are computed once per prompt.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from flux_demo.offline.nano import Grammar
from training import grammar_images as gi
from training.common import EMA, Log, Snapshot, Stages, to_unit, train_loop

# Architecture
LATENT_CHANNELS = 16  # the nano autoencoder's; the transformer sees 4 x 16 per token after 2x2 patching
TEXT_HIDDEN = 64
TEXT_LAYERS = 28  # the pipeline stacks hidden states 9, 18 and 27, intermediate layers as in Qwen3-4B
TEXT_OUT_LAYERS = (9, 18, 27)
MAX_SEQUENCE_LENGTH = 32  # Qwen3 tokens of the chat-templated prompt; every grammar prompt fits
HIDDEN_HEADS, HEAD_DIM = 4, 32
DEFAULT_STEPS = 4
IMAGE_SIZE = gi.IMAGE_SIZE


@dataclass
class Plan:
    """Steps and batch sizes (the defaults are the shipped run)."""

    jitters: int = 4  # shape placements in the training pool (the benchmark draws fresh ones)
    steps: int = 3200
    lr: float = 1e-3
    # Batch size by number of references (0 = text to image), and how often each count is drawn.
    batch: tuple[int, ...] = (16, 12, 8, 6)
    share: tuple[float, ...] = (0.35, 0.35, 0.22, 0.08)
    ema: float = 0.998
    check_every: int = 500
    check_items: int = 2  # per task
    snapshot_every: int = 100

    def scaled(self, factor: float) -> Plan:
        return dataclasses.replace(self, steps=max(1, round(self.steps * factor)))

    @classmethod
    def smoke(cls) -> Plan:
        return cls(jitters=1, steps=3, batch=(2, 2, 2, 2), check_every=0, check_items=0)


# Within a number of references, which tasks and how often.
TASKS = (
    (("word", 0.65), ("shape", 0.35)),
    (("sign_on_color", 0.25), ("new_word", 0.45), ("inpaint", 0.3)),
    (("word_on_background", 0.5), ("shape_on_background", 0.5)),
    (("shape_from_three", 1.0),),
)


# --- Components -------------------------------------------------------------------------------------


def corpus(grammar: Grammar) -> list[str]:
    """Every prompt the grammar can write (words in three cases) and the words of Qwen3's chat template,
    so that the tokenizer's pieces are the grammar's words."""
    captions = set(all_captions(grammar))
    for word in grammar.words:
        for variant in (word.lower(), word.capitalize()):
            captions.add(grammar.word_caption(variant))
            captions.add(grammar.edits["new_word"].caption(word=variant))
    # Repeated, so that every word of the grammar is frequent enough to become one piece.
    return sorted(captions) * 4 + ["user", "assistant"] * 100


def all_captions(grammar: Grammar) -> list[str]:
    """Every text-to-image and edit prompt of the grammar."""
    captions = [grammar.word_caption(w) for w in grammar.words]
    captions += [grammar.shape_caption(*t) for t in grammar.shape_triples()]
    for edit in grammar.edits.values():
        values = {"color": grammar.colors, "word": grammar.words, "shape": grammar.shapes}
        if not edit.fields:
            captions.append(edit.caption())
        for field in edit.fields:
            captions += [edit.caption(**{field: v}) for v in values[field]]
    return captions


def build_tokenizer(grammar: Grammar):
    """A Qwen2TokenizerFast whose byte-level BPE is trained on the grammar's prompts (any text still
    tokenizes, byte by byte)."""
    from flux_demo.offline.tiny_klein import build_qwen_tokenizer

    return build_qwen_tokenizer(corpus(grammar), vocab_size=800)


def build_text_encoder(tokenizer, seed: int = 0):
    """A narrow 28-layer Qwen3ForCausalLM (width 64), kept at its seeded random start (see `TextCache`).

    Its token embeddings start at a standard deviation of 1 rather than 0.02, so that each token's
    identity dominates the hidden states the pipeline stacks, and the transformer reads the prompt from
    them."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=-(-len(tokenizer) // 64) * 64,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=2 * TEXT_HIDDEN,
        num_hidden_layers=TEXT_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen3ForCausalLM(config)
    torch.nn.init.normal_(model.get_input_embeddings().weight, std=1.0)
    return model.eval()


def build_transformer(seed: int = 0):
    """A Flux2Transformer2DModel with hidden size 128: 2 double-stream and 4 single-stream blocks."""
    from diffusers import Flux2Transformer2DModel

    torch.manual_seed(seed)
    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=4 * LATENT_CHANNELS,
        num_layers=2,
        num_single_layers=4,
        attention_head_dim=HEAD_DIM,
        num_attention_heads=HIDDEN_HEADS,
        joint_attention_dim=len(TEXT_OUT_LAYERS) * TEXT_HIDDEN,
        timestep_guidance_channels=64,
        mlp_ratio=3.0,
        axes_dims_rope=(8, 8, 8, 8),  # (T, H, W, L): T tells the output (0) from reference k (10k)
        rope_theta=2000,
        guidance_embeds=False,  # step-distilled like klein: the pipeline passes guidance=None
    )


def adaln_zero(transformer) -> None:
    """DiT's adaLN-Zero start: the shared modulations (every block's gates) and the output projection at
    zero, so every block starts as the identity and the output at zero; trains several times faster."""
    for module in (
        transformer.double_stream_modulation_img.linear,
        transformer.double_stream_modulation_txt.linear,
        transformer.single_stream_modulation.linear,
        transformer.norm_out.linear,
        transformer.proj_out,
    ):
        torch.nn.init.zeros_(module.weight)
        if module.bias is not None:
            torch.nn.init.zeros_(module.bias)


def build_vae(autoencoder_dir: Path):
    """The nano autoencoder (an `AutoencoderKL` folder) in the FLUX.2 VAE class: the same encoder and
    decoder weights; the latents are normalised by the batch norm (set by `set_batch_norm`)."""
    from diffusers import AutoencoderKL, AutoencoderKLFlux2

    source = AutoencoderKL.from_pretrained(str(autoencoder_dir), torch_dtype=torch.float32)
    c = source.config
    vae = AutoencoderKLFlux2(
        in_channels=c.in_channels,
        out_channels=c.out_channels,
        down_block_types=tuple(c.down_block_types),
        up_block_types=tuple(c.up_block_types),
        block_out_channels=tuple(c.block_out_channels),
        layers_per_block=c.layers_per_block,
        latent_channels=c.latent_channels,
        norm_num_groups=c.norm_num_groups,
        sample_size=IMAGE_SIZE,
        use_quant_conv=False,
        use_post_quant_conv=False,
        mid_block_add_attention=c.mid_block_add_attention,
    )
    missing, unexpected = vae.load_state_dict(source.state_dict(), strict=False)
    assert not unexpected, unexpected
    assert all(key.startswith("bn.") for key in missing), missing
    return vae.eval()


def build_scheduler():
    from flux_demo.offline.tiny_klein import _build_scheduler

    return _build_scheduler()


def make_pipeline(transformer, vae, text_encoder, tokenizer):
    from diffusers import Flux2KleinPipeline

    return Flux2KleinPipeline(
        scheduler=build_scheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        is_distilled=True,
    )


# --- Latents, exactly as the pipeline makes them ------------------------------------------------------


def _pipe_class():
    from diffusers import Flux2KleinPipeline

    return Flux2KleinPipeline


@torch.no_grad()
def encode_patched(vae, pixels: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """uint8 images (N x 3 x H x W) -> patchified posterior modes (N x 64 x H/32 x W/32), unnormalised."""
    pipe = _pipe_class()
    chunks = []
    for i in range(0, len(pixels), batch):
        mode = vae.encode(to_unit(pixels[i : i + batch])).latent_dist.mode()
        chunks.append(pipe._patchify_latents(mode))
    return torch.cat(chunks)


def encoder_digest(vae) -> str:
    """SHA-256 of the encoder's weights (what the latents depend on)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(vae.encoder.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()


def set_batch_norm(vae, patched: torch.Tensor) -> None:
    """The VAE's batch-norm running statistics from the patchified latents of the training pool."""
    channels = patched.transpose(0, 1).flatten(1)
    vae.bn.running_mean.copy_(channels.mean(1))
    vae.bn.running_var.copy_(channels.var(1))


def normalise(vae, patched: torch.Tensor) -> torch.Tensor:
    """As `Flux2KleinPipeline._encode_vae_image` does after patchifying, then packed to tokens."""
    mean = vae.bn.running_mean.view(1, -1, 1, 1)
    std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps)
    return _pipe_class()._pack_latents((patched - mean) / std)


class Pool:
    """Every picture the training examples use, with its packed, normalised latent tokens."""

    def __init__(self, grammar: Grammar, plan: Plan, seed: int, smoke: bool = False):
        rng = random.Random(seed)
        self.jitters = [gi.random_jitter(rng) for _ in range(plan.jitters)]
        words = grammar.words[:3] if smoke else grammar.words
        shapes = grammar.shapes[:2] if smoke else grammar.shapes
        pictures = [gi.Picture("sign", bg, word=w) for w in words for bg in grammar.word_backgrounds]
        pictures += [
            gi.Picture("shape", bg, color=c, shape=s, jitter=j)
            for c in grammar.colors
            for s in shapes
            for j in self.jitters
            for bg in grammar.colors
            if bg != c
        ]
        self.pictures = pictures
        self.index = {picture: i for i, picture in enumerate(pictures)}
        self.grammar = dataclasses.replace(grammar, words=tuple(words), shapes=tuple(shapes))
        self.tokens: torch.Tensor | None = None  # N x 64 x 64 once encoded

    def pixels(self) -> torch.Tensor:
        import numpy as np

        arrays = [np.asarray(gi.render(self.grammar, p)) for p in self.pictures]
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    def jitter(self, rng: random.Random) -> gi.Jitter:
        return rng.choice(self.jitters)

    def example(self, task: str, rng: random.Random) -> gi.Example:
        if task in ("word", "shape"):
            return gi.text_example(self.grammar, rng, task, self.jitter)
        if task == "inpaint":
            return gi.inpaint_example(self.grammar, rng, self.jitter)
        return gi.edit_example(self.grammar, task, rng, self.jitter)


# --- Training ---------------------------------------------------------------------------------------


def schedule_sigmas(steps: int = DEFAULT_STEPS, tokens: int = (IMAGE_SIZE // 32) ** 2) -> list[float]:
    """The sigmas Flux2KleinPipeline walks at ``steps`` steps for ``tokens`` image tokens (ending at 0)."""
    import numpy as np
    from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

    scheduler = build_scheduler()
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=compute_empirical_mu(tokens, steps))
    return [float(s) for s in scheduler.sigmas]


def draw_sigmas(n: int, generator: torch.Generator) -> torch.Tensor:
    """40% at the 4-step schedule's sigmas (what the pipeline runs by default), 30% logit-normal shifted
    like the schedule, 30% uniform (other step counts)."""
    import math

    from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

    four = torch.tensor(schedule_sigmas()[:-1])
    at_schedule = four[torch.randint(len(four), (n,), generator=generator)]
    shift = math.exp(compute_empirical_mu((IMAGE_SIZE // 32) ** 2, DEFAULT_STEPS))
    s = torch.sigmoid(torch.randn(n, generator=generator))
    shifted = shift * s / (1 + (shift - 1) * s)
    uniform = torch.rand(n, generator=generator)
    pick = torch.rand(n, generator=generator)
    return torch.where(pick < 0.4, at_schedule, torch.where(pick < 0.7, shifted, uniform))


def vary_case(caption: str, word: str, rng: random.Random) -> str:
    """Visitors type words in any case: one caption in five spells the word in lower or title case."""
    if word and rng.random() < 0.2:
        return caption.replace(word, rng.choice((word.lower(), word.capitalize())))
    return caption


def text_embeddings(text_encoder, tokenizer, captions: list[str]):
    """(prompt_embeds, txt_ids) exactly as `Flux2KleinPipeline.encode_prompt` makes them."""
    pipe = _pipe_class()
    embeds = pipe._get_qwen3_prompt_embeds(
        text_encoder,
        tokenizer,
        captions,
        device=text_encoder.device,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        hidden_states_layers=TEXT_OUT_LAYERS,
    )
    return embeds, pipe._prepare_text_ids(embeds).to(embeds.device)


class TextCache:
    """The frozen text encoder's prompt embeddings, computed once per caption.

    The text encoder is not trained: a 28-layer encoder's forward and backward pass cost more than the
    transformer's on 2 CPU cores, and with prompts this short its token states are enough for the
    transformer's text stream to learn what the prompt says."""

    def __init__(self, text_encoder, tokenizer):
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, captions: list[str]):
        missing = sorted({c for c in captions if c not in self.cache})
        for i in range(0, len(missing), 64):
            embeds, _ = text_embeddings(self.text_encoder, self.tokenizer, missing[i : i + 64])
            self.cache.update(zip(missing[i : i + 64], embeds, strict=True))
        embeds = torch.stack([self.cache[c] for c in captions])
        return embeds, _pipe_class()._prepare_text_ids(embeds).to(embeds.device)


def image_ids(references: int, side: int, device) -> torch.Tensor:
    """Position ids of the output's tokens (time 0) followed by each reference's (time 10, 20, ...)."""
    pipe = _pipe_class()
    shape = torch.zeros(1, 1, side, side)
    ids = pipe._prepare_latent_ids(shape)
    if references:
        ids = torch.cat([ids, pipe._prepare_image_ids([shape] * references)], dim=1)
    return ids.to(device)


def predict(transformer, x, sigma, refs, embeds, txt_ids, img_ids):
    """Velocity for the output tokens ``x`` (B x 64 x C) given reference tokens ``refs`` (B x 64k x C)."""
    hidden = torch.cat([x, refs], dim=1) if refs is not None else x
    out = transformer(
        hidden_states=hidden,
        encoder_hidden_states=embeds,
        timestep=sigma,
        img_ids=img_ids,
        txt_ids=txt_ids,
        guidance=None,
        return_dict=False,
    )[0]
    return out[:, : x.shape[1]]


class Batches:
    """Draws a batch: a number of references, then tasks of that count, their latents and captions."""

    def __init__(self, pool: Pool, plan: Plan, seed: int, device: str):
        self.pool, self.plan, self.device = pool, plan, device
        self.rng = random.Random(seed)
        self.generator = torch.Generator().manual_seed(seed)

    def state(self) -> dict:
        return {"rng": self.rng.getstate(), "generator": self.generator.get_state()}

    def restore(self, state: dict) -> None:
        self.rng.setstate(state["rng"])
        self.generator.set_state(state["generator"])

    def draw(self):
        plan, rng = self.plan, self.rng
        count = rng.choices(range(len(plan.batch)), weights=plan.share)[0]
        names, weights = zip(*TASKS[count], strict=True)
        examples = [self.pool.example(rng.choices(names, weights)[0], rng) for _ in range(plan.batch[count])]
        tokens = self.pool.tokens
        x0 = tokens[[self.pool.index[e.target] for e in examples]]
        refs = None
        if count:
            refs = torch.cat(
                [tokens[[self.pool.index[e.references[k]] for e in examples]] for k in range(count)], dim=1
            )
        captions = [vary_case(e.caption, e.target.word, rng) for e in examples]
        return count, x0, refs, captions


def train_base(
    pool: Pool, plan: Plan, transformer, text: TextCache, log: Log, device: str, snapshot: Path, check=None
):
    adaln_zero(transformer)
    batches = Batches(pool, plan, seed=2, device=device)
    side = IMAGE_SIZE // 32
    ids = [image_ids(k, side, device) for k in range(len(plan.batch))]
    ema = EMA([transformer], plan.ema)

    def loss(step: int) -> torch.Tensor:
        count, x0, refs, captions = batches.draw()
        x0 = x0.to(device)
        noise = torch.randn(x0.shape, generator=batches.generator).to(device)
        sigma = draw_sigmas(len(x0), batches.generator).to(device)
        xt = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
        embeds, txt_ids = text(captions)
        refs = refs.to(device) if refs is not None else None
        return F.mse_loss(predict(transformer, xt, sigma, refs, embeds, txt_ids, ids[count]), noise - x0)

    def run_check(step: int) -> str:
        ema.swap()
        try:
            return str(check())
        finally:
            ema.swap()

    train_loop(
        "klein_base",
        [{"params": list(transformer.parameters()), "lr": plan.lr}],
        plan.steps,
        loss,
        log,
        ema=ema,
        check=run_check if check else None,
        check_every=plan.check_every,
        snapshot=Snapshot(snapshot, plan.snapshot_every, [transformer], batches.state, batches.restore),
    )


# --- Checks -------------------------------------------------------------------------------------------


def quick_check(pipe, grammar: Grammar, per_task: int, seed: int) -> dict:
    """A few random items of every task through the pipeline: how many pass all their checks."""
    from training.checks import check_example
    from training.loading import klein_generate

    rng = random.Random(seed)
    tasks = [name for group in TASKS for name, _ in group]
    examples = []
    for task in tasks:
        for _ in range(per_task):
            if task in ("word", "shape"):
                examples.append(gi.text_example(grammar, rng, task, gi.random_jitter))
            elif task == "inpaint":
                continue  # inpainting runs through the inpaint pipeline; the benchmark measures it
            else:
                examples.append(gi.edit_example(grammar, task, rng, gi.random_jitter))
    images = [klein_generate(pipe, grammar, example, seed + i) for i, example in enumerate(examples)]
    passed: dict[str, list[int]] = {}
    for example, image in zip(examples, images, strict=True):
        ok = all(check_example(image, example, grammar).values())
        passed.setdefault(example.task, []).append(int(ok))
    return {task: f"{sum(v)}/{len(v)}" for task, v in passed.items()}


# --- The stages -------------------------------------------------------------------------------------


def train(
    out: Path,
    grammar: Grammar,
    plan: Plan,
    autoencoder: Path,
    stages: Stages,
    log: Log,
    device: str,
    smoke: bool,
) -> None:
    """Train nano-klein and write ``out/nano-klein`` (float16 safetensors)."""
    tokenizer = build_tokenizer(grammar)
    vae = build_vae(autoencoder)
    pool = Pool(grammar, plan, seed=1, smoke=smoke)
    log(f"klein pool: {len(pool.pictures)} pictures")

    def encode() -> dict:
        patched = encode_patched(vae, pool.pixels())
        set_batch_norm(vae, patched)
        bn = {k: v.clone() for k, v in vae.bn.state_dict().items()}
        return {"bn": bn, "patched": patched, "encoder": encoder_digest(vae)}

    def restore_latents(state: dict) -> None:
        # The latents (and the transformer trained on them) hold only for the encoder that made them; the
        # decoder may have been trained further since (the FLUX.1 family's decoder stage).
        if state["encoder"] != encoder_digest(vae):
            raise ValueError(f"{autoencoder} has another encoder than the one the klein latents came from")
        vae.bn.load_state_dict(state["bn"])
        pool.tokens = normalise(vae, state["patched"])

    stages.run("klein_latents", encode, restore_latents)

    transformer = build_transformer().to(device)
    text_encoder = build_text_encoder(tokenizer).to(device)
    text = TextCache(text_encoder, tokenizer)

    def check() -> dict:
        pipe = make_pipeline(transformer.eval(), vae, text_encoder, tokenizer)
        pipe.set_progress_bar_config(disable=True)
        try:
            return quick_check(pipe, grammar, plan.check_items, seed=11)
        finally:
            transformer.train()

    def base() -> dict:
        transformer.train()
        snapshot = stages.ckpt / "klein_base.snapshot.pt"
        train_base(pool, plan, transformer, text, log, device, snapshot, check if plan.check_items else None)
        transformer.eval()
        metrics = {"check_4_steps": check()} if plan.check_items else {}
        return {"transformer": transformer.state_dict(), "metrics": metrics}

    def restore_base(state: dict) -> None:
        transformer.load_state_dict(state["transformer"])

    stages.run("klein_base", base, restore_base)
    pipe = make_pipeline(transformer.cpu().eval(), vae, text_encoder.cpu(), tokenizer).to(torch.float16)
    pipe.save_pretrained(out / "nano-klein", safe_serialization=True)
    log(f"wrote {out / 'nano-klein'}")
