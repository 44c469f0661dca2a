"""Deterministic builder for an offline tiny FLUX.2 [klein] twin.

The tiny pipeline uses the real classes of `black-forest-labs/FLUX.2-klein-4B`
(`Flux2KleinPipeline`, `Flux2Transformer2DModel`, `AutoencoderKLFlux2`,
`Qwen3ForCausalLM`, `Qwen2TokenizerFast`, `FlowMatchEulerDiscreteScheduler`) with
tiny random weights, so it loads through the same `from_pretrained` path as the
real checkpoint and runs on CPU in well under a second.

It works with the pipeline's own defaults for `max_sequence_length` (512) and
`text_encoder_out_layers` ((9, 18, 27)); callers pass what they would pass to the
real distilled klein: `num_inference_steps=4, guidance_scale=1.0`.
"""

from __future__ import annotations

import json
import pathlib

import torch
from diffusers import (
    AutoencoderKLFlux2,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
)
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import AddedToken, Qwen2TokenizerFast, Qwen3Config, Qwen3ForCausalLM

CORPUS_PATH = pathlib.Path(__file__).parent / "data" / "tiny_corpus.txt"

# The call defaults (steps, guidance, sequence length) come from the registry entry `models.KLEIN`;
# these are the architecture's: the Qwen3 layers whose hidden states the pipeline stacks.
KLEIN_TEXT_ENCODER_OUT_LAYERS = (9, 18, 27)

# Qwen3-4B has 36 layers; the pipeline stacks hidden states 9, 18 and 27, so the
# tiny encoder keeps the real depth (layers are tiny, depth costs little) and
# those three stay intermediate layers exactly as in the real model.
TEXT_HIDDEN_SIZE = 16
TEXT_NUM_LAYERS = 36
JOINT_ATTENTION_DIM = len(KLEIN_TEXT_ENCODER_OUT_LAYERS) * TEXT_HIDDEN_SIZE

# The real VAE has 32 latent channels; the pipeline packs 2x2 patches, so the
# transformer sees 4 * 32 = 128 input channels (and the VAE's BatchNorm too).
LATENT_CHANNELS = 32

# The same split regex as the real Qwen2 tokenizer, so training and reloading agree.
QWEN_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
BPE_VOCAB_SIZE = 512
QWEN_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen3 marks these as added but not special: they are ordinary text in the template.
QWEN_THINK_TOKENS = ["<think>", "</think>"]

# A compact version of Qwen3's chat template: the parts the pipeline uses
# (`add_generation_prompt=True, enable_thinking=False`) render the same text.
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


def _build_tokenizer() -> Qwen2TokenizerFast:
    """Train a byte-level BPE on the bundled corpus and wrap it as a Qwen2 tokenizer."""
    return build_qwen_tokenizer(CORPUS_PATH.read_text(encoding="utf-8").splitlines(), BPE_VOCAB_SIZE)


def build_qwen_tokenizer(lines: list[str], vocab_size: int) -> Qwen2TokenizerFast:
    """A byte-level BPE of at most ``vocab_size`` pieces trained on ``lines``, wrapped as a Qwen2 tokenizer
    with Qwen3's special tokens and chat template (the nano klein builds its own over the grammar)."""
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        # All 256 byte symbols, so any text (Korean included) tokenizes without <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(lines, trainer=trainer)

    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    # Build through the class's own constructor (vocab + merges), the way a saved
    # Qwen tokenizer is rebuilt; special tokens get ids after the BPE vocabulary,
    # as in the real Qwen vocabulary.
    tokenizer = Qwen2TokenizerFast(
        vocab=model["vocab"],
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=None,
        pad_token="<|endoftext|>",
        errors="replace",
        model_max_length=131072,
    )
    # Same relative order as Qwen (<|endoftext|>, <|im_start|>, <|im_end|>), after the BPE ids.
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL_TOKENS})
    # Qwen3 instruct ends a turn, and generation, with <|im_end|>.
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_THINK_TOKENS])
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    return tokenizer


def _build_text_encoder(tokenizer: Qwen2TokenizerFast) -> Qwen3ForCausalLM:
    """A tiny Qwen3 with the real depth, so hidden states 9, 18 and 27 exist."""
    # Round the vocabulary up like Qwen does (151936 rows for 151669 tokens).
    vocab_size = -(-len(tokenizer) // 64) * 64
    config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=TEXT_HIDDEN_SIZE,
        intermediate_size=32,
        num_hidden_layers=TEXT_NUM_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=2048,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    return Qwen3ForCausalLM(config).eval()


def _build_transformer() -> Flux2Transformer2DModel:
    """A one-double-block, one-single-block FLUX.2 transformer."""
    torch.manual_seed(0)
    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=4 * LATENT_CHANNELS,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=JOINT_ATTENTION_DIM,
        timestep_guidance_channels=32,
        mlp_ratio=3.0,
        axes_dims_rope=(4, 4, 4, 4),  # four RoPE axes (T, H, W, L) summing to the head dim
        rope_theta=2000,
        # klein is step-distilled without a guidance embedding; the pipeline passes guidance=None.
        guidance_embeds=False,
    ).eval()


def _build_vae() -> AutoencoderKLFlux2:
    """A tiny FLUX.2 VAE: four blocks give the real x8 downsampling."""
    torch.manual_seed(0)
    return AutoencoderKLFlux2(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=4,
        sample_size=32,
    ).eval()


def _build_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The FLUX.2 flow-matching scheduler config (dynamic exponential shifting)."""
    # The pipeline computes `mu` itself and always passes it, so dynamic shifting
    # must be on; the other values are those shipped with the FLUX.2 checkpoints.
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
        time_shift_type="exponential",
    )


def build_tiny_klein_pipeline() -> Flux2KleinPipeline:
    """Build the tiny klein pipeline in memory (CPU, float32)."""
    tokenizer = _build_tokenizer()
    return Flux2KleinPipeline(
        scheduler=_build_scheduler(),
        vae=_build_vae(),
        text_encoder=_build_text_encoder(tokenizer),
        tokenizer=tokenizer,
        transformer=_build_transformer(),
        # The real FLUX.2-klein-4B is step-distilled: the pipeline then skips CFG.
        is_distilled=True,
    )


def build_tiny_klein(path: pathlib.Path) -> None:
    """Build the tiny klein pipeline and `save_pretrained` it into `path`."""
    build_tiny_klein_pipeline().save_pretrained(pathlib.Path(path))
