"""The trajectory's figures against the loaded modules: block counts, token counts, the σ schedule, and the
full-size architectures' figures from their published configurations."""

import numpy as np
import pytest

from flux_demo import generation
from flux_demo.models import get_spec
from flux_demo.validation import GenerationRequest, validate
from flux_demo.watching import architecture, trajectory

PROMPT = 'A red fox holding a sign that says "FLUX"'


def run(host, model, steps=4, width=256, height=320):
    spec = get_spec(model)
    request = GenerationRequest(PROMPT, model, width, height, steps, spec.default_guidance, 5)
    valid = validate(request, host.model_keys)
    return valid, trajectory.run_trajectory(host, valid)


@pytest.mark.parametrize("model", ["tiny-dev", "tiny-klein"])
def test_trajectory_records_every_step_and_its_final_image_matches_generate(host, model):
    valid, recorded = run(host, model)
    details = recorded.details
    assert [s.index for s in recorded.steps] == [1, 2, 3, 4]
    assert len(details["sigmas"]) == 5 and details["sigmas"][0] == 1.0 and details["sigmas"][-1] == 0.0
    assert all(a > b for a, b in zip(details["sigmas"], details["sigmas"][1:], strict=False))
    assert len(details["timesteps"]) == len(details["step_seconds"]) == 4
    assert all(seconds > 0 for seconds in details["step_seconds"])
    assert {s.predicted.size for s in recorded.steps} == {(256, 320)}  # decoded by the model's VAE
    plain = generation.generate(host, valid)
    assert np.array_equal(np.asarray(plain.image), np.asarray(recorded.result.image))


@pytest.mark.parametrize("model", ["tiny-schnell", "tiny-dev", "tiny-klein"])
def test_recorded_sigmas_are_the_schedule_the_plot_shows(host, model):
    _, recorded = run(host, model, steps=6, width=512, height=256)
    assert recorded.details["sigmas"] == pytest.approx(
        trajectory.schedule(host.settings, model, 6, 512, 256), abs=1e-5
    )
    pipe = host.get_pipeline(model)
    assert recorded.details["timesteps"] == pytest.approx(
        [float(t) for t in pipe.scheduler.timesteps], abs=1e-3
    )


def test_dev_shifts_its_schedule_with_image_size_and_schnell_does_not(host):
    small, large = (trajectory.schedule(host.settings, "tiny-dev", 28, side, side) for side in (256, 2048))
    assert all(b >= a for a, b in zip(small, large, strict=True)) and large[14] > small[14] + 0.05
    assert (
        trajectory.schedule(host.settings, "tiny-schnell", 4, 256, 256)
        == trajectory.schedule(host.settings, "tiny-schnell", 4, 2048, 2048)
        == [1.0, 0.75, 0.5, 0.25, 0.0]
    )


@pytest.mark.parametrize("model", ["tiny-dev", "tiny-klein"])
def test_architecture_is_read_from_the_loaded_transformer(host, model):
    arch = architecture.loaded(host, model)
    pipe = host.get_pipeline(model)
    transformer = pipe.transformer
    assert arch["double_blocks"] == len(transformer.transformer_blocks) == transformer.config.num_layers
    assert (
        arch["single_blocks"]
        == len(transformer.single_transformer_blocks)
        == transformer.config.num_single_layers
    )
    assert (
        arch["hidden_size"] == transformer.config.num_attention_heads * transformer.config.attention_head_dim
    )
    counts = arch["parameters"]
    assert counts["transformer"] == sum(p.numel() for p in transformer.parameters())
    assert (
        counts["double_blocks"] + counts["single_blocks"] + counts["embedders_and_output"]
        == counts["transformer"]
    )
    assert counts["vae"] == sum(p.numel() for p in pipe.vae.parameters())
    assert arch["vae"]["latent_channels"] == get_spec(model).latent_channels


def test_schnell_and_dev_report_their_shared_components(host):
    host.get("tiny-schnell")
    shared = architecture.loaded(host, "tiny-dev")["shared_with"]
    for name in ("text_encoder", "text_encoder_2", "vae"):
        assert shared[name] == ["tiny-schnell"]
    assert "transformer" not in shared


def test_token_counts_match_the_tokenizers_and_limits(host):
    pipe = host.get_pipeline("tiny-dev")
    clip, t5 = trajectory.text_tokens(pipe, get_spec("tiny-dev"), PROMPT)
    assert clip["limit"] == 77 and t5["limit"] == get_spec("tiny-dev").max_sequence_length
    assert clip["count"] == len(pipe.tokenizer(PROMPT)["input_ids"]) == len(clip["tokens"])
    assert t5["count"] == len(pipe.tokenizer_2(PROMPT)["input_ids"])
    long_prompt = " ".join(["fox"] * 120)
    clip_long, _ = trajectory.text_tokens(pipe, get_spec("tiny-dev"), long_prompt)
    assert clip_long["count"] == 77 and clip_long["truncated"] == 122 - 77


@pytest.mark.parametrize(("model", "width", "height"), [("tiny-dev", 320, 256), ("nano-dev", 256, 256)])
def test_image_tokens_are_the_tokens_the_transformer_really_attends_over(host, model, width, height):
    """The registry's count (one token per size multiple: 16 px for FLUX.1, 32 px for the x16 nano VAE)
    is the sequence length of the latents the pipeline hands the transformer."""
    from flux_demo.watching.steps import StepObserver

    class Lengths(StepObserver):
        def on_step(self, step):
            self.seen.append(step.noisy.shape[1])

    observer = Lengths()
    observer.seen = []
    valid = validate(GenerationRequest("a red star", model, width, height, 1, 3.5, 1), (model,))
    generation.generate(host, valid, observer=observer)
    assert observer.seen == [valid.spec.image_tokens(valid.width, valid.height)]


def test_align_by_sigma_pairs_each_step_with_the_nearest_sigma():
    schnell = [1.0, 0.75, 0.5, 0.25]
    dev = [1 - i / 28 for i in range(28)]
    pairs = trajectory.align_by_sigma(schnell, dev)
    assert pairs == [(0, 0), (1, 7), (2, 14), (3, 21)]


def test_the_full_size_figures_are_the_chapters():
    """FLUX.1: 19 double-stream and 38 single-stream blocks, width 3072, 24 heads, about 12 B parameters
    (about 0.34 B per double block, 0.14 B per single); klein 4B from its own published configuration."""
    flux1 = architecture.shape(get_spec("dev"), architecture.published(get_spec("dev"))["transformer"])
    assert (flux1["double_blocks"], flux1["single_blocks"], flux1["hidden_size"], flux1["heads"]) == (
        19,
        38,
        3072,
        24,
    )
    assert 11.8e9 < flux1["parameters"]["transformer"] < 12.0e9
    assert 0.33e9 < flux1["parameters"]["double_block"] < 0.35e9
    assert 0.13e9 < flux1["parameters"]["single_block"] < 0.15e9
    klein = architecture.shape(get_spec("klein"), architecture.published(get_spec("klein"))["transformer"])
    assert (klein["double_blocks"], klein["single_blocks"], klein["hidden_size"]) == (5, 20, 3072)
    assert 3.5e9 < klein["parameters"]["transformer"] < 4.5e9
    t5 = architecture.encoder_parameters("FluxPipeline")["text_encoder_2"]
    assert 4.6e9 < t5 < 4.9e9  # T5-XXL's encoder: the chapter's 4.7 B


@pytest.mark.parametrize("model", ["tiny-dev", "tiny-klein", "nano-dev"])
def test_rope_axes_split_each_head_as_the_config_says(host, model):
    config = architecture.transformer_config(host.settings, model)
    shape = architecture.shape(get_spec(model), config)
    assert [axis["dims"] for axis in shape["rope"]] == list(config["axes_dims_rope"])
    assert sum(axis["dims"] for axis in shape["rope"]) == shape["head_dim"]


def test_the_architecture_is_read_before_any_run_without_loading_weights(fresh_host):
    """The page draws the diagram when it opens: from the checkpoint's config file, not the weights."""
    config = architecture.transformer_config(fresh_host.settings, "tiny-dev")
    assert not fresh_host.is_loaded("tiny-dev")
    loaded = dict(fresh_host.get_pipeline("tiny-dev").transformer.config)
    assert {k: loaded[k] for k in config} == config
