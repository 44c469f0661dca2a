"""Provenance and safety of every output image: what this app marks, and checking any image for marks.

Every generated or edited image is marked unless `FLUX_DEMO_WATERMARK=0`:
- its pixels carry an invisible `dwtDct` watermark with a 48-bit message (`marks`);
- its PNG carries XMP with the IPTC digital source type `trainedAlgorithmicMedia` (`marks`), next to the
  settings' text chunks (`metadata`);
- its PNG carries a signed C2PA manifest (`c2pa_sign`).
With `FLUX_DEMO_SAFETY_MODEL` set, an image classifier screens every output first (`safety`).

`generation` calls `Provenance.finish` where the pixels are final; the UI writes every output PNG through
`Provenance.save_png`. `check_image` reads everything back from any image file. docs/provenance.md says
how to verify the marks with common tools, and their limits.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from flux_demo import metadata
from flux_demo.config import Settings, on_space
from flux_demo.provenance import c2pa_sign, marks
from flux_demo.provenance.check import check_image
from flux_demo.provenance.safety import ContentWithheld, SafetyFilter

__all__ = ["ContentWithheld", "Provenance", "check_image", "for_settings"]

log = logging.getLogger(__name__)


class Provenance:
    """What the app does to its outputs, from its `Settings`: screen and watermark the pixels (`finish`),
    then write the PNG with its text chunks, XMP and C2PA manifest (`save_png`)."""

    def __init__(self, settings: Settings):
        self.marking = settings.watermark
        if not self.marking and on_space():
            log.warning("FLUX_DEMO_WATERMARK=0 on a Space: generated images are published without any mark")
        self.safety = (
            SafetyFilter(settings.safety_model, settings.safety_threshold) if settings.safety_model else None
        )
        self._credentials = (settings.c2pa_credentials, settings.c2pa_dir)
        self._signer: c2pa_sign.ManifestSigner | None = None
        self._lock = threading.Lock()

    def finish(self, image: Image.Image) -> Image.Image:
        """`image` screened by the content filter (raises `ContentWithheld`) and watermarked."""
        if self.safety is not None:
            self.safety.screen(image)
        return marks.embed_watermark(image) if self.marking else image

    @property
    def signer(self) -> c2pa_sign.ManifestSigner:
        """The C2PA signer, with its credentials loaded (or made) on first use."""
        with self._lock:
            if self._signer is None:
                self._signer = c2pa_sign.ManifestSigner(c2pa_sign.load_credentials(*self._credentials))
            return self._signer

    def save_png(self, image: Image.Image, path: str | Path) -> None:
        """Write `image` as a PNG at `path`: its str `info` items as text chunks (the settings) and, when
        marking, the XMP packet and a signed C2PA manifest naming the model (`info["model"]`)."""
        from flux_demo.models import get_spec

        text = {
            key: value for key, value in image.info.items() if isinstance(key, str) and isinstance(value, str)
        }
        text.pop(marks.XMP_KEY, None)
        info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        if not self.marking:
            image.save(path, format="PNG", pnginfo=info)
            return
        try:
            model_name = get_spec(text["model"]).name
        except (KeyError, ValueError):
            model_name = None
        tool = f"{metadata.SOFTWARE} ({model_name})" if model_name else metadata.SOFTWARE
        info.add_itxt(marks.XMP_KEY, marks.xmp_packet(tool))
        png = io.BytesIO()
        image.save(png, format="PNG", pnginfo=info)
        parameters: dict[str, str] = {key: text[key] for key in ("model", "mode") if key in text}
        definition = c2pa_sign.manifest(Path(path).name, model_name, parameters)
        self.signer.sign_png(png.getvalue(), Path(path), definition)


@functools.cache
def for_settings(settings: Settings) -> Provenance:
    """The one `Provenance` of these settings (the app's host's), so the content filter and the signer
    load once per process."""
    return Provenance(settings)
