"""Checking any image for provenance marks: this app's watermark (or Black Forest Labs'), a C2PA manifest,
an IPTC digital source type, and the generation settings of a PNG made here."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from flux_demo import metadata
from flux_demo.provenance import c2pa_sign, marks
from flux_demo.validation import InvalidInput

MAX_CHECK_SIDE = 4096  # pixels a side; the header is read first, so a larger image is never decoded


def check_image(path: str | Path) -> dict:
    """What marks the image file at `path` carries:

    - `watermark` (bool): an invisible watermark of this app or of Black Forest Labs was found;
    - `watermark_message`: its message as 12 hex digits (this app's `464c5558444d`, ASCII "FLUXDM"), or
      None; `watermark_source` ("flux-demo" or "Black Forest Labs") and `watermark_bit_errors`;
    - `c2pa`: a summary of its C2PA manifest (signer, actions, validation), or None;
    - `digital_source_type`: the IPTC digital source type from the manifest, else from XMP, or None;
    - `settings`: the generation settings in its PNG text chunks (strings by key), or None.

    Raises `InvalidInput` naming `image` for a file that is not an image or is larger than 4096 a side.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            if max(width, height) > MAX_CHECK_SIDE:
                raise InvalidInput(
                    "image", "input.image_too_large", limit=MAX_CHECK_SIDE, width=width, height=height
                )
            mime_type = Image.MIME.get(image.format or "", "")
            image.load()
            settings = metadata.read_png_text(image) or None
            xmp_source_type = marks.digital_source_type(image.info.get("xmp"))
            found = marks.find_watermark(image)
    except (UnidentifiedImageError, OSError) as err:
        raise InvalidInput("image", "input.could_not_read", error=type(err).__name__) from None
    manifest = c2pa_sign.read_manifest(path, mime_type)
    return {
        "watermark": found is not None,
        "watermark_message": found.message if found else None,
        "watermark_source": found.source if found else None,
        "watermark_bit_errors": found.bit_errors if found else None,
        "c2pa": manifest,
        "digital_source_type": c2pa_sign.digital_source_type(manifest) or xmp_source_type,
        "settings": settings,
    }
