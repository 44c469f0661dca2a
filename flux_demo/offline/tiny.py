"""Offline tiny FLUX models: the real pipeline classes with tiny, deterministic random weights.

The Hub cannot be reached here, in CI or on the GPU machine, so the app, the tests and the CPU default
run on these twins. They are written with `save_pretrained` and read back through the same
`from_pretrained` call that loads real checkpoints. Like the real schnell and dev, `flux1-schnell` and
`flux1-dev` have byte-identical text encoders, tokenizers and VAE and differ only in the transformer
(dev has guidance embeddings) and the scheduler configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from importlib import resources
from pathlib import Path

# Bump when the builders change, so stale caches are rebuilt instead of reused.
TINY_FORMAT = 2

_CORPUS = "data/tiny_corpus.txt"
_T5_DIM = 32
_CLIP_DIM = 32

# The real checkpoints' scheduler configurations (FlowMatchEulerDiscreteScheduler).
SCHEDULER_CONFIGS = {
    "flux1-schnell": {"shift": 1.0, "use_dynamic_shifting": False},
    "flux1-dev": {
        "shift": 3.0,
        "use_dynamic_shifting": True,
        "base_shift": 0.5,
        "max_shift": 1.15,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
    },
}

_build_lock = threading.Lock()


def _corpus_lines() -> list[str]:
    text = resources.files("flux_demo.offline").joinpath(_CORPUS).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def build_clip_tokenizer():
    """A CLIPTokenizer with a byte-pair vocabulary trained on the bundled corpus."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    bpe = Tokenizer(models.BPE(unk_token="<|endoftext|>", end_of_word_suffix="</w>"))
    bpe.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|startoftext|>", "<|endoftext|>"],
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus_lines(), trainer)
    model = json.loads(bpe.to_str())["model"]
    return CLIPTokenizer(
        vocab=model["vocab"], merges=[tuple(m) for m in model["merges"]], model_max_length=77
    )


def build_t5_tokenizer():
    """A T5Tokenizer with a unigram vocabulary trained on the bundled corpus (<pad>=0, </s>=1, <unk>=2)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    unigram = Tokenizer(models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=500, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    unigram.train_from_iterator(_corpus_lines(), trainer)
    vocab = [tuple(piece) for piece in json.loads(unigram.to_str())["model"]["vocab"]]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def build_flux1_shared(clip_vocab: int, t5_vocab: int) -> dict:
    """Text encoders and VAE of the tiny FLUX.1 pair, seeded before each module as diffusers' tests do."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=clip_vocab,
            hidden_size=_CLIP_DIM,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=_CLIP_DIM,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    torch.manual_seed(0)
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=t5_vocab,
            d_model=_T5_DIM,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    torch.manual_seed(0)
    # Four blocks give the real x8 downsampling; 16 latent channels as in the real FLUX VAE.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=4,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.1159,  # the real FLUX.1 VAE config (SD3 uses 0.0609)
        scaling_factor=0.3611,
    )
    return {"text_encoder": text_encoder, "text_encoder_2": text_encoder_2, "vae": vae}


def build_flux1_transformer(guidance_embeds: bool):
    """A two-block FluxTransformer2DModel; dev's variant has guidance embeddings."""
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,  # 16 latent channels packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_T5_DIM,
        pooled_projection_dim=_CLIP_DIM,
        guidance_embeds=guidance_embeds,
        axes_dims_rope=(4, 6, 6),
    )


def build_flux1_pair(root: Path) -> None:
    """Write `flux1-schnell` and `flux1-dev` under `root`, sharing byte-identical encoders and VAE."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    tokenizer, tokenizer_2 = build_clip_tokenizer(), build_t5_tokenizer()
    shared = build_flux1_shared(len(tokenizer), len(tokenizer_2))
    for variant, guidance_embeds in (("flux1-schnell", False), ("flux1-dev", True)):
        pipe = FluxPipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIGS[variant]),
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            transformer=build_flux1_transformer(guidance_embeds),
            **shared,
        )
        pipe.save_pretrained(root / variant)


def build_flux2_klein(root: Path) -> None:
    """Write `flux2-klein` under `root` (see flux_demo.offline.tiny_klein for its components)."""
    from flux_demo.offline.tiny_klein import build_tiny_klein

    build_tiny_klein(root / "flux2-klein")


# Each builder writes `root / variant`, and possibly siblings that share its components.
_BUILDERS = {
    "flux1-schnell": build_flux1_pair,
    "flux1-dev": build_flux1_pair,
    "flux2-klein": build_flux2_klein,
}


def ensure_tiny_model(variant: str, tiny_dir: Path) -> Path:
    """The saved pipeline folder for `variant`, building it first if this cache has none.

    The build goes to a temporary folder that is renamed into place, so concurrent processes never see a
    half-written model.
    """
    if variant not in _BUILDERS:
        raise KeyError(f"no offline builder for {variant!r}; known: {', '.join(sorted(_BUILDERS))}")
    root = Path(tiny_dir) / f"v{TINY_FORMAT}"
    target = root / variant
    with _build_lock:
        if (target / "model_index.json").exists():
            return target
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            _BUILDERS[variant](staging)
            for built in staging.iterdir():
                if not (root / built.name / "model_index.json").exists():
                    shutil.rmtree(root / built.name, ignore_errors=True)
                    os.replace(built, root / built.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
