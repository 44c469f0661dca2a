"""Step previews: each step's predicted clean latents x₀ as a picture whose colours are the final image's.

How a model's previews are made is its registry entry's `preview_decoder`:

* ``"vae"``: x₀ goes through the model's own VAE decode, exactly as the pipeline decodes the final
  latents, so the last step's preview *is* the final image. The offline models use it: their VAEs are
  small, and the trained nano VAE normalises over the whole picture (GroupNorm with one group), so no
  per-pixel map can stand in for it.
* ``"linear"``: an affine map from the VAE's latent channels (16 for FLUX.1, 32 for FLUX.2) to RGB, one
  preview pixel per latent pixel (1/8 of the picture's side). A full VAE decode of FLUX.1 at 1024² takes
  86 ms on an H200, half of a 174 ms step (10.5 of 74 TFLOP, bound by memory traffic); the map takes
  0.33 ms (benchmarks/preview_overhead.py). It is fitted by least squares against the VAE's own
  decodes: first of encoded test images (so the first run has a map), then of every finished run's final
  latents and the image the pipeline decoded from them (`PreviewObserver.finished`, where the job ran),
  so the map converges on the colours this model really makes. The normal equations are kept, so refitting
  is a small solve, cached per VAE object (schnell and dev share theirs).

How tokens unpack into latents (channels, normalisation) comes from the registry too.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flux_demo.models import ModelSpec
from flux_demo.watching.steps import DenoisingStep, StepObserver

PATCH = 2  # each transformer token packs 2x2 latent pixels
FIT_SIZE = 256  # side of the test images the first map is fitted on
FIT_IMAGES = 6
RIDGE = 1e-4  # keeps the solve well posed while only few colours have been seen


class LatentToRGB:
    """rgb = weight @ latent + bias per latent pixel (values 0..1), refitted as decodes accumulate.

    Holds the normal equations XᵀX and XᵀY of every (latent pixel, decoded colour) pair seen so far."""

    def __init__(self, channels: int):
        import torch

        self.channels = channels
        self.gram = torch.zeros(channels + 1, channels + 1, dtype=torch.float64)
        self.moment = torch.zeros(channels + 1, 3, dtype=torch.float64)
        self.pixels = 0  # latent pixels fitted on
        self.weight = torch.zeros(3, channels)
        self.bias = torch.full((3,), 0.5)
        self._lock = threading.Lock()

    def add(self, latents, rgb) -> None:
        """Fit on more pairs: latents (n, channels, h, w) and the decoded colours (n, 3, h, w) in 0..1."""
        import torch

        inputs = latents.detach().float().cpu().permute(0, 2, 3, 1).reshape(-1, self.channels).double()
        inputs = torch.cat([inputs, torch.ones(len(inputs), 1, dtype=torch.float64)], dim=1)
        outputs = rgb.detach().float().cpu().permute(0, 2, 3, 1).reshape(-1, 3).double()
        with self._lock:
            self.gram += inputs.T @ inputs
            self.moment += inputs.T @ outputs
            self.pixels += len(inputs)
            ridge = RIDGE * self.pixels * torch.eye(self.channels + 1, dtype=torch.float64)
            ridge[-1, -1] = 0  # the bias is not shrunk
            solution = torch.linalg.solve(self.gram + ridge, self.moment).float()
            self.weight, self.bias = solution[:-1].T.contiguous(), solution[-1].contiguous()

    def rgb(self, latents):
        """Colours (1, 3, h, w) in 0..1 for latents (1, channels, h, w), on the latents' device."""
        import torch

        weight, bias = self.weight.to(latents.device), self.bias.to(latents.device)
        return (torch.einsum("oc,bchw->bohw", weight, latents.float()) + bias.view(1, 3, 1, 1)).clamp(0, 1)


_maps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # VAE module -> LatentToRGB
_maps_lock = threading.Lock()


def latent_to_rgb(vae, spec: ModelSpec) -> LatentToRGB:
    """The VAE's preview map, first fitted on encoded test images, cached as long as the VAE lives."""
    with _maps_lock:
        fitted = _maps.get(vae)
        if fitted is None:
            fitted = _maps[vae] = LatentToRGB(spec.latent_channels)
            latents, decoded = encode_decode(vae, fit_images())
            if latents.shape[1] != spec.latent_channels:
                channels = latents.shape[1]
                raise ValueError(
                    f"the VAE has {channels} latent channels, the registry says {spec.latent_channels}"
                )
            fitted.add(latents, block_colours(decoded, latents))
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


def encode_decode(vae, images):
    """The VAE's latents of `images` (-1..1) and its decode of them."""
    import torch

    parameter = next(vae.parameters())
    with torch.inference_mode():
        latents = vae.encode(images.to(parameter.device, parameter.dtype)).latent_dist.mode()
        decoded = vae.decode(latents, return_dict=False)[0]
    return latents, decoded


def block_colours(decoded, latents):
    """A decode (-1..1, n, 3, H, W) averaged over the block of pixels each latent pixel covers, in 0..1."""
    import torch.nn.functional as F

    scale = decoded.shape[-1] // latents.shape[-1]  # 8 for FLUX, 16 for the nano VAE
    return F.avg_pool2d((decoded.float() + 1) / 2, scale).clamp(0, 1)


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


def to_image(rgb):
    """A PIL image from colours (1, 3, h, w) in 0..1."""
    import torch
    from PIL import Image

    pixels = (rgb[0].permute(1, 2, 0) * 255).round().to("cpu", torch.uint8).numpy()
    return Image.fromarray(pixels, "RGB")


class PreviewDecoder:
    """Turns one run's tokens into preview images for `spec` at `width` x `height`: the VAE's own decode
    (full size) or the fitted linear map (latent size), as the registry says."""

    def __init__(self, pipe, spec: ModelSpec, width: int, height: int):
        self.pipe, self.spec, self.width, self.height = pipe, spec, width, height
        self.to_rgb = latent_to_rgb(pipe.vae, spec) if spec.preview_decoder == "linear" else None

    def latents(self, tokens):
        return tokens_to_latents(tokens, self.spec, self.pipe.vae, self.width, self.height)

    def __call__(self, tokens):
        import torch

        latents = self.latents(tokens)
        if self.to_rgb is not None:
            return to_image(self.to_rgb.rgb(latents))
        vae = self.pipe.vae
        with torch.inference_mode():
            decoded = vae.decode(latents.to(vae.dtype), return_dict=False)[0]
        return self.pipe.image_processor.postprocess(decoded, output_type="pil")[0]

    def learn(self, tokens, image) -> None:
        """Refit the linear map on this run: its final latents and the image the pipeline decoded."""
        if self.to_rgb is None:
            return
        import numpy as np
        import torch

        latents = self.latents(tokens)
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
        decoded = pixels.permute(2, 0, 1)[None] * 2 - 1
        self.to_rgb.add(latents, block_colours(decoded, latents))


@dataclass(frozen=True)
class Preview:
    """The predicted clean image after step `step` of `steps` (1-based): the picture's size for models
    decoded by their VAE, 1/8 of it for the linear map."""

    step: int
    steps: int
    image: Any  # PIL.Image.Image
    seconds: float  # time spent making this preview


class PreviewObserver(StepObserver):
    """Decodes the predicted clean image at every step and hands it to `emit` as a `Preview`; after the
    run (`finished`) the preview map is refined with the final image, where the job ran."""

    def __init__(self, spec: ModelSpec, width: int, height: int, emit: Callable[[Preview], None]):
        super().__init__()
        self.spec, self.width, self.height, self.emit = spec, width, height, emit
        self.decode: Any = None  # a PreviewDecoder once `prepare` ran
        self.final_tokens = None

    def prepare(self, pipe) -> None:
        self.decode = PreviewDecoder(pipe, self.spec, self.width, self.height)

    def on_step(self, step: DenoisingStep) -> None:
        start = time.perf_counter()
        image = self.decode(step.predicted)
        if step.sigma_next == 0:  # x₀ is the final latents now
            self.final_tokens = step.predicted.detach().to("cpu")
        self.emit(Preview(step.index + 1, step.steps, image, time.perf_counter() - start))

    def finished(self, image) -> None:
        """After the run: fit the preview map on the final latents and the pipeline's `image`."""
        if self.decode is not None and self.final_tokens is not None:
            self.decode.learn(self.final_tokens, image)
