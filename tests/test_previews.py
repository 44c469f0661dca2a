"""Live previews: a predicted clean image per step in the final image's colours; the final image unchanged."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from flux_demo import generation
from flux_demo.models import get_spec
from flux_demo.provenance import marks
from flux_demo.validation import GenerationRequest, validate
from flux_demo.watching import previews
from flux_demo.watching.previews import PreviewObserver
from flux_demo.watching.steps import StepObserver

# The served offline models (nano ones draw their grammar) and the tiny twins the tests serve.
SERVED = ["nano-schnell", "nano-dev", "tiny-schnell", "tiny-dev", "tiny-klein"]
PROMPTS = {"nano-schnell": 'a sign that says "CAT"', "nano-dev": "a yellow circle on a purple background"}


@pytest.fixture(scope="module")
def served_host(settings):
    """A host serving the offline models, nano and tiny, loaded by the app's own code."""
    from flux_demo.pipelines import ModelHost

    return ModelHost(dataclasses.replace(settings, models=tuple(SERVED)))


def request(host, model="tiny-dev", steps=None, width=256, height=256, guidance=None):
    spec = get_spec(model)
    guidance = spec.default_guidance if guidance is None else guidance
    prompt = PROMPTS.get(model, "a red fox in the snow")
    fields = (prompt, model, width, height, steps or spec.default_steps, guidance, 7)
    return validate(GenerationRequest(*fields), host.model_keys)


def mean_difference(preview: Image.Image, final: Image.Image) -> float:
    """Mean absolute difference on the 0–255 scale, the final image resized to the preview's size."""
    final = final.convert("RGB").resize(preview.size, Image.Resampling.BOX)
    return float(np.abs(np.asarray(preview, np.float32) - np.asarray(final, np.float32)).mean())


class LastStep(StepObserver):
    def on_step(self, step):
        self.last = step


@pytest.mark.parametrize("model", ["tiny-dev", "tiny-klein"])
def test_previews_give_one_image_per_step_and_leave_the_final_image_unchanged(host, model):
    valid = request(host, model, steps=4, height=320)
    plain = generation.generate(host, valid)
    shown = []
    watched = generation.generate(
        host, valid, observer=PreviewObserver(valid.spec, valid.width, valid.height, shown.append)
    )
    assert np.array_equal(np.asarray(plain.image), np.asarray(watched.image))
    assert [(p.step, p.steps) for p in shown] == [(i, 4) for i in range(1, 5)]
    assert {p.image.size for p in shown} == {(256, 320)}  # decoded by the VAE: the picture's size
    assert len({p.image.tobytes() for p in shown}) > 1  # the picture changes as the run goes on


@pytest.mark.parametrize("model", SERVED)
def test_last_step_preview_has_the_final_images_colours(served_host, model):
    """At the last step σ_next = 0, so x₀ is the final latents: its preview must look like the result
    (target: mean difference at most 8/255)."""
    valid = request(served_host, model)
    shown = []
    result = generation.generate(
        served_host, valid, observer=PreviewObserver(valid.spec, valid.width, valid.height, shown.append)
    )
    assert mean_difference(shown[-1].image, result.image) <= 8.0


@pytest.mark.parametrize("model", ["tiny-schnell", "tiny-klein"])
def test_last_predicted_clean_latents_decode_to_the_final_image(host, model):
    """x₀ = x_next − σ_next·v at the last step (σ_next = 0) is what the pipeline decodes, and the unpacking
    (patches, FLUX.1 scale and shift, FLUX.2 batch norm) turns it into exactly the VAE's input."""
    valid = request(host, model, height=320)
    observer = LastStep()
    result = generation.generate(host, valid, observer=observer)
    pipe = host.get_pipeline(model)
    latents = previews.tokens_to_latents(
        observer.last.predicted, valid.spec, pipe.vae, valid.width, valid.height
    )
    assert latents.shape == (1, valid.spec.latent_channels, valid.height // 8, valid.width // 8)
    with torch.no_grad():
        decoded = pipe.vae.decode(latents.to(pipe.vae.dtype), return_dict=False)[0]
    image = pipe.image_processor.postprocess(decoded, output_type="pil")[0]
    assert observer.last.sigma_next == 0.0
    # The result is that image with the app's invisible watermark added (flux_demo.provenance).
    assert np.array_equal(np.asarray(marks.embed_watermark(image)), np.asarray(result.image.convert("RGB")))


def test_full_size_models_preview_with_a_fitted_map_and_offline_ones_with_their_vae():
    assert {get_spec(key).preview_decoder for key in ("schnell", "dev", "klein")} == {"linear"}
    assert {get_spec(key).preview_decoder for key in SERVED} == {"vae"}


@pytest.mark.parametrize("model", ["tiny-dev", "tiny-klein"])
def test_preview_map_is_fitted_once_per_vae_with_its_latent_channels(host, model):
    pipe, spec = host.get_pipeline(model), get_spec(model)
    fitted = previews.latent_to_rgb(pipe.vae, spec)
    assert tuple(fitted.weight.shape) == (3, spec.latent_channels)
    assert previews.latent_to_rgb(pipe.vae, spec) is fitted
    # A least-squares fit: it explains the VAE's own decodes better than their mean colour does.
    latents, decoded = previews.encode_decode(pipe.vae, previews.fit_images())
    target = previews.block_colours(decoded, latents)
    assert ((fitted.rgb(latents) - target) ** 2).mean() < 0.8 * target.var()


def test_schnell_and_dev_share_one_preview_map(host):
    assert host.get_pipeline("tiny-schnell").vae is host.get_pipeline("tiny-dev").vae
    schnell = previews.latent_to_rgb(host.get_pipeline("tiny-schnell").vae, get_spec("tiny-schnell"))
    assert schnell is previews.latent_to_rgb(host.get_pipeline("tiny-dev").vae, get_spec("tiny-dev"))


def test_linear_map_learns_the_colours_of_finished_runs(served_host):
    """The full-size models' map is refitted after each run on its final latents and image, where the job
    ran (`StepObserver.finished`), so it moves toward the colours the model really makes (shown on the
    trained nano VAE with the linear decoder forced)."""
    spec = dataclasses.replace(get_spec("nano-schnell"), preview_decoder="linear")
    valid = dataclasses.replace(request(served_host, "nano-schnell"), spec=spec)

    def last_preview_error():
        shown = []
        observer = PreviewObserver(spec, valid.width, valid.height, shown.append)
        result = generation.generate(served_host, valid, observer=observer)
        return mean_difference(shown[-1].image, result.image), observer, result

    before, observer, _ = last_preview_error()  # the runner refits the map when a run finishes
    after, _, _ = last_preview_error()
    one_per_latent = (valid.width // 16, valid.height // 16)  # the nano VAE downsamples x16
    assert observer.decode(observer.final_tokens).size == one_per_latent
    assert after < before
