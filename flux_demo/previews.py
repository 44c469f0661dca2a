"""Cheap step previews: the transformer's tokens to RGB at latent resolution through a linear map.

A VAE decode per step would cost about as much as a step. A per-pixel linear map from the VAE's latent
channels (16 for FLUX.1, 32 for FLUX.2) to RGB is enough to watch an image form. The map is fitted once
per VAE object by least squares against that VAE's own decodes of encoded test images, so it works for
the real VAEs and the offline tiny ones alike, with nothing to download, and is cached while the VAE
lives. How tokens unpack into latents (channels, normalisation) comes from the model's registry entry.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from flux_demo.models import ModelSpec
from flux_demo.steps import DenoisingStep, StepObserver

PATCH = 2  # each transformer token packs 2x2 latent pixels
FIT_SIZE = 256  # side of the test images the map is fitted on
FIT_IMAGES = 6


@dataclass(frozen=True)
class LatentToRGB:
    """rgb = weight @ latent + bias per latent pixel; weight is (3, channels), values in 0..1."""

    weight: object  # torch.Tensor, float32, on the CPU
    bias: object

    def image(self, latents):
        """A PIL image at latent resolution (1/8 of the picture's side, 1/16 for nano) from VAE latents
        (1, channels, h, w)."""
        import torch
        from PIL import Image

        weight = self.weight.to(latents.device)
        rgb = torch.einsum("oc,chw->hwo", weight, latents[0].float()) + self.bias.to(latents.device)
        pixels = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        return Image.fromarray(pixels, "RGB")


_maps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # VAE module -> LatentToRGB
_fit_lock = threading.Lock()


def latent_to_rgb(vae, spec: ModelSpec) -> LatentToRGB:
    """The VAE's preview map, fitted on first use and cached as long as the VAE object lives."""
    with _fit_lock:
        fitted = _maps.get(vae)
        if fitted is None:
            fitted = _maps[vae] = fit_latent_to_rgb(vae, spec.latent_channels)
        return fitted


def fit_images(size: int = FIT_SIZE, count: int = FIT_IMAGES):
    """Deterministic images in -1..1, (count, 3, size, size): smooth random colour fields over gradients,
    so every colour and brightness appears."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator("cpu").manual_seed(0)
    fields = F.interpolate(torch.rand(count, 3, 6, 6, generator=generator), size=size, mode="bicubic")
    ramp = torch.linspace(0, 1, size)
    gradient = torch.stack([ramp.view(1, -1).expand(size, size), ramp.view(-1, 1).expand(size, size)])
    fields[:, :2] = 0.6 * fields[:, :2] + 0.4 * gradient
    return (fields.clamp(0, 1) * 2 - 1).contiguous()


def fit_latent_to_rgb(vae, channels: int) -> LatentToRGB:
    """Least squares from latents to the VAE's own decodes (averaged over the block each latent covers)."""
    import torch
    import torch.nn.functional as F

    parameter = next(vae.parameters())
    images = fit_images().to(parameter.device, parameter.dtype)
    with torch.inference_mode():
        latents = vae.encode(images).latent_dist.mode()
        decoded = vae.decode(latents, return_dict=False)[0]
    scale = decoded.shape[-1] // latents.shape[-1]  # 8 for FLUX, 16 for the nano VAE
    target = F.avg_pool2d((decoded.float() + 1) / 2, scale).clamp(0, 1)
    if latents.shape[1] != channels:
        raise ValueError(f"the VAE has {latents.shape[1]} latent channels, the registry says {channels}")
    inputs = latents.float().permute(0, 2, 3, 1).reshape(-1, channels).cpu()
    inputs = torch.cat([inputs, torch.ones(len(inputs), 1)], dim=1)
    outputs = target.permute(0, 2, 3, 1).reshape(-1, 3).cpu()
    solution = torch.linalg.lstsq(inputs, outputs).solution  # (channels + 1, 3)
    return LatentToRGB(solution[:-1].T.contiguous(), solution[-1].contiguous())


def tokens_to_latents(tokens, spec: ModelSpec, vae, width: int, height: int):
    """The pipeline's packed tokens (1, tokens, 4·channels) as the VAE's own latents (1, channels, h, w):
    undo the latent normalisation and unpack the 2x2 patches, as the pipeline does before decoding."""
    import torch

    rows, columns = height // spec.size_multiple, width // spec.size_multiple  # one token per multiple
    x = tokens[:1].float()
    if spec.latent_normalisation == "batch_norm":
        mean = vae.bn.running_mean.float().to(x.device)
        std = torch.sqrt(vae.bn.running_var.float().to(x.device) + vae.config.batch_norm_eps)
        x = x * std + mean
    channels = spec.latent_channels
    x = x.view(1, rows, columns, channels, PATCH, PATCH).permute(0, 3, 1, 4, 2, 5)
    x = x.reshape(1, channels, rows * PATCH, columns * PATCH)
    if spec.latent_normalisation == "scale_shift":
        x = x / vae.config.scaling_factor + vae.config.shift_factor
    return x


class PreviewDecoder:
    """Turns one run's tokens into preview images (1/8 size) for `spec` at `width` x `height`."""

    def __init__(self, pipe, spec: ModelSpec, width: int, height: int):
        self.vae, self.spec, self.width, self.height = pipe.vae, spec, width, height
        self.to_rgb = latent_to_rgb(pipe.vae, spec)

    def __call__(self, tokens):
        return self.to_rgb.image(tokens_to_latents(tokens, self.spec, self.vae, self.width, self.height))


@dataclass(frozen=True)
class Preview:
    """The predicted clean image after step `step` of `steps` (1-based), at 1/8 of the picture's size."""

    step: int
    steps: int
    image: object  # PIL.Image.Image
    seconds: float  # time spent making this preview


class PreviewObserver(StepObserver):
    """Decodes the predicted clean image at every step and hands it to `emit` as a `Preview`."""

    def __init__(self, spec: ModelSpec, width: int, height: int, emit: Callable[[Preview], None]):
        super().__init__()
        self.spec, self.width, self.height, self.emit = spec, width, height, emit
        self.decode: PreviewDecoder | None = None

    def prepare(self, pipe) -> None:
        self.decode = PreviewDecoder(pipe, self.spec, self.width, self.height)

    def on_step(self, step: DenoisingStep) -> None:
        start = time.perf_counter()
        image = self.decode(step.predicted)
        self.emit(Preview(step.index + 1, step.steps, image, time.perf_counter() - start))
