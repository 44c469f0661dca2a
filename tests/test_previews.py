"""Live previews on the tiny models: one predicted clean image per step, the final image unchanged."""

import numpy as np
import pytest
import torch

from flux_demo import generation, previews
from flux_demo.models import get_spec
from flux_demo.previews import PreviewObserver
from flux_demo.provenance import marks
from flux_demo.steps import StepObserver
from flux_demo.validation import GenerationRequest, validate


def request(host, model="tiny-dev", steps=4, width=256, height=320, guidance=None):
    spec = get_spec(model)
    guidance = spec.default_guidance if guidance is None else guidance
    return validate(
        GenerationRequest("a red fox in the snow", model, width, height, steps, guidance, 7), host.model_keys
    )


class LastStep(StepObserver):
    def on_step(self, step):
        self.last = step


@pytest.mark.parametrize("model", ["tiny-dev", "tiny-klein"])
def test_previews_give_one_image_per_step_and_leave_the_final_image_unchanged(host, model):
    valid = request(host, model)
    plain = generation.generate(host, valid)
    shown = []
    watched = generation.generate(
        host, valid, observer=PreviewObserver(valid.spec, valid.width, valid.height, shown.append)
    )
    assert np.array_equal(np.asarray(plain.image), np.asarray(watched.image))
    assert [(p.step, p.steps) for p in shown] == [(i, 4) for i in range(1, 5)]
    assert {p.image.size for p in shown} == {(256 // 8, 320 // 8)}
    assert len({p.image.tobytes() for p in shown}) > 1  # the picture changes as the run goes on


@pytest.mark.parametrize("model", ["tiny-schnell", "tiny-klein"])
def test_last_predicted_clean_latents_decode_to_the_final_image(host, model):
    """x0 = x_next − σ_next·v at the last step (σ_next = 0) is what the pipeline decodes, and the unpacking
    (patches, FLUX.1 scale and shift, FLUX.2 batch norm) turns it into exactly the VAE's input."""
    valid = request(host, model)
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


@pytest.mark.parametrize("model", ["tiny-dev", "tiny-klein"])
def test_preview_map_is_fitted_once_per_vae_with_its_latent_channels(host, model):
    pipe, spec = host.get_pipeline(model), get_spec(model)
    fitted = previews.latent_to_rgb(pipe.vae, spec)
    assert tuple(fitted.weight.shape) == (3, spec.latent_channels)
    assert previews.latent_to_rgb(pipe.vae, spec) is fitted
    # The map is a least-squares fit: it explains the VAE's own decodes better than their mean colour.
    images = previews.fit_images().to(pipe.vae.dtype)
    with torch.no_grad():
        latents = pipe.vae.encode(images).latent_dist.mode()
        decoded = pipe.vae.decode(latents, return_dict=False)[0]
    target = torch.nn.functional.avg_pool2d((decoded.float() + 1) / 2, 8)
    predicted = torch.einsum("oc,bchw->bohw", fitted.weight, latents.float()) + fitted.bias.view(1, 3, 1, 1)
    assert ((predicted - target) ** 2).mean() < 0.8 * target.var()


def test_schnell_and_dev_share_one_preview_map(host):
    assert host.get_pipeline("tiny-schnell").vae is host.get_pipeline("tiny-dev").vae
    spec = get_spec("tiny-schnell")
    assert previews.latent_to_rgb(host.get_pipeline("tiny-schnell").vae, spec) is previews.latent_to_rgb(
        host.get_pipeline("tiny-dev").vae, get_spec("tiny-dev")
    )
