"""The offline tiny FLUX.2 [klein] twin builds, reloads and generates like the real one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (
    AutoencoderKLFlux2,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
)
from transformers import Qwen2TokenizerFast, Qwen3ForCausalLM

from flux_demo.models import KLEIN
from flux_demo.offline.tiny_klein import (
    KLEIN_TEXT_ENCODER_OUT_LAYERS,
    build_tiny_klein,
)

PROMPT = "A neon sign that reads 'HELLO FLUX' on a rainy street at night"
KOREAN_PROMPT = "비 오는 밤거리에 '안녕 플럭스'라고 쓰인 네온 간판"
MODULES = ("transformer", "vae", "text_encoder")


@pytest.fixture(scope="module")
def klein_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-klein")
    build_tiny_klein(path)
    return path


@pytest.fixture(scope="module")
def pipe(klein_dir):
    pipeline = Flux2KleinPipeline.from_pretrained(klein_dir)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def generate(pipe, prompt=PROMPT, *, seed=0, width=256, height=256, guidance=KLEIN.default_guidance):
    """One image with the real klein call settings (prompt must be a keyword: `image` comes first)."""
    return pipe(
        prompt=prompt,
        width=width,
        height=height,
        num_inference_steps=KLEIN.default_steps,
        guidance_scale=guidance,
        max_sequence_length=KLEIN.max_sequence_length,
        text_encoder_out_layers=KLEIN_TEXT_ENCODER_OUT_LAYERS,
        generator=torch.Generator("cpu").manual_seed(seed),
    ).images[0]


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def reference(pipe) -> np.ndarray:
    """The pixels of `generate(pipe)` (PROMPT, seed 0, 256², default guidance), which several tests compare
    against."""
    return pixels(generate(pipe))


def test_build_saves_a_pipeline_that_from_pretrained_reloads_with_the_real_classes(klein_dir, pipe):
    assert (klein_dir / "model_index.json").is_file()
    assert isinstance(pipe, Flux2KleinPipeline)
    assert isinstance(pipe.transformer, Flux2Transformer2DModel)
    assert isinstance(pipe.vae, AutoencoderKLFlux2)
    assert isinstance(pipe.text_encoder, Qwen3ForCausalLM)
    assert isinstance(pipe.tokenizer, Qwen2TokenizerFast)
    assert isinstance(pipe.scheduler, FlowMatchEulerDiscreteScheduler)
    assert pipe.config.is_distilled is True
    assert pipe.vae_scale_factor == 8
    assert pipe.transformer.dtype == torch.float32


def test_component_shapes_fit_the_pipeline_defaults(pipe):
    # Hidden states 9, 18 and 27 exist and are stacked into the transformer's context width.
    assert pipe.text_encoder.config.num_hidden_layers >= max(KLEIN_TEXT_ENCODER_OUT_LAYERS)
    embeds, _ = pipe.encode_prompt(prompt=PROMPT, device="cpu")
    assert embeds.shape == (1, KLEIN.max_sequence_length, pipe.transformer.config.joint_attention_dim)
    # The 2x2 packing turns the VAE's latent channels into the transformer's input channels.
    assert pipe.transformer.config.in_channels == 4 * pipe.vae.config.latent_channels


def test_chat_template_renders_the_qwen3_no_thinking_generation_prompt(pipe):
    text = pipe.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    im_start = pipe.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert pipe.tokenizer(text).input_ids[0] == im_start
    assert pipe.tokenizer.pad_token == "<|endoftext|>"
    assert pipe.tokenizer.eos_token == "<|im_end|>"


def test_generates_an_image_of_exactly_the_requested_size(pipe, reference):
    assert reference.shape[:2] == (256, 256)
    assert generate(pipe, width=320, height=256).size == (320, 256)


def test_same_seed_gives_identical_pixels_and_another_seed_differs(pipe, reference):
    np.testing.assert_array_equal(pixels(generate(pipe, seed=0)), reference)
    assert not np.array_equal(pixels(generate(pipe, seed=2)), reference)


def test_the_prompt_conditions_the_image(pipe, reference):
    assert not np.array_equal(pixels(generate(pipe, "A watercolor fox")), reference)


def test_distilled_pipeline_ignores_guidance_like_the_real_klein(pipe, reference):
    assert KLEIN.default_guidance != 4.0
    np.testing.assert_array_equal(pixels(generate(pipe, guidance=4.0)), reference)


def test_korean_prompt_round_trips_through_the_tokenizer_and_generates(pipe):
    ids = pipe.tokenizer(KOREAN_PROMPT).input_ids
    assert pipe.tokenizer.decode(ids) == KOREAN_PROMPT
    image = generate(pipe, KOREAN_PROMPT)
    assert image.size == (256, 256)
    assert pixels(image).std() > 0


def test_two_builds_give_identical_weights_and_tokenizer(tmp_path):
    build_tiny_klein(tmp_path / "a")
    build_tiny_klein(tmp_path / "b")
    first = Flux2KleinPipeline.from_pretrained(tmp_path / "a")
    second = Flux2KleinPipeline.from_pretrained(tmp_path / "b")
    for name in MODULES:
        a, b = getattr(first, name).state_dict(), getattr(second, name).state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs between builds"
    tokenizer_a = (tmp_path / "a" / "tokenizer" / "tokenizer.json").read_bytes()
    assert tokenizer_a == (tmp_path / "b" / "tokenizer" / "tokenizer.json").read_bytes()
