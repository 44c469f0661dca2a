"""The marks inside an image: the invisible watermark in its pixels and the XMP packet in its metadata, and
finding both again.

The watermark is `invisible-watermark`'s `dwtDct`: the image's Haar wavelet approximation is cut into 4×4
blocks, and the largest coefficient of each block is quantised so that it carries one bit of a 48-bit
message, repeated over the whole image. This app embeds it in the luma (Y) channel, where it survives a
JPEG re-save with chroma subsampling; the package's default (and Black Forest Labs' choice) is the U
channel, which such a JPEG erases. Anyone with the package reads it back, and counts the bits that
differ from those of b"FLUXDM" (a few may, see MAX_BIT_ERRORS):

    WatermarkDecoder("bits", 48).decode(bgr_uint8, "dwtDct", scales=[24, 0, 0], block=4)

docs/provenance.md lists the parameters, the measured robustness and what removes the mark.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

WATERMARK_MESSAGE = b"FLUXDM"  # 48 bits: ASCII "FLUXDM", hex 464c5558444d
# The Y channel (scale 24, about ±9 grey levels on the changed pixels; PSNR about 47 dB), 4×4 blocks.
WATERMARK_CONFIG = {"scales": [24, 0, 0], "block": 4}
# Black Forest Labs' FLUX code (src/flux/util.py) embeds WATERMARK_MESSAGE = 0b0010101011...101110 with the
# package's default settings (U channel, scale 36) on float pixels. It writes the bits with bin(), which
# drops the two leading zeros: 46 bits are embedded, and they repeat with a period of 46 blocks.
BFL_MESSAGE = 0b001010101111111010000111100111001111010100101110
BFL_BITS = tuple(int(bit) for bit in bin(BFL_MESSAGE)[2:])
# A mark is found when at most this many of its bits come back wrong: for an unmarked image that reads as
# random bits, the chance is 5e-8 per try (sum of C(48, k) / 2**48 for k <= 6; 1.6e-7 for BFL's 46 bits),
# about 1e-6 over all the tries of `find_watermark` (three views; ours once, BFL's twice each).
MAX_BIT_ERRORS = 6
MIN_PIXELS = 256 * 256  # the package refuses smaller images
# A copy resized to half size is read at twice its size (back on the block grid) up to this many pixels.
MAX_UPSCALED_PIXELS = 2048 * 2048

OWN_SOURCE = "flux-demo"
BFL_SOURCE = "Black Forest Labs"

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
XMP_KEY = "XML:com.adobe.xmp"  # the PNG iTXt keyword that holds an XMP packet
_NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
}
_SOURCE_TYPE = f"{{{_NAMESPACES['Iptc4xmpExt']}}}DigitalSourceType"


@dataclass(frozen=True)
class Watermark:
    """A watermark found in an image: whose it is, its message (hex) and how many bits read wrong."""

    source: str
    message: str
    bit_errors: int


def _message_bits(message: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(message, dtype=np.uint8)).astype(int)


OWN_BITS = _message_bits(WATERMARK_MESSAGE)


def _swap_2x2(pixels: np.ndarray) -> np.ndarray:
    """`pixels` with the two off-diagonal pixels of every 2×2 block swapped, over the part whose sides are
    multiples of 4 (the part the package transforms).

    invisible-watermark 0.2.0 rebuilds a marked channel with its horizontal and vertical wavelet details
    exchanged, which transposes every 2×2 block of that channel: harmless in smooth chroma, visible
    jagged edges in luma. Swapping the blocks beforehand makes that exchange undo the swap.
    """
    out = pixels.copy()
    rows, cols = pixels.shape[0] // 4 * 4, pixels.shape[1] // 4 * 4
    out[0:rows:2, 1:cols:2] = pixels[1:rows:2, 0:cols:2]
    out[1:rows:2, 0:cols:2] = pixels[0:rows:2, 1:cols:2]
    return out


def embed_watermark(image: Image.Image) -> Image.Image:
    """A copy of `image` (RGB) whose pixels carry this app's 48-bit watermark, with the same `info`;
    `image` itself when it has fewer than 256×256 pixels, which the package cannot mark."""
    import cv2
    from imwatermark import WatermarkEncoder

    if image.width * image.height < MIN_PIXELS:
        log.info("image of %dx%d is too small for the invisible watermark", *image.size)
        return image
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", WATERMARK_MESSAGE)
    # Float pixels: the package writes its result into the array it converted, and in 8 bits that
    # truncates and wraps around at 0 and 255.
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.float32)[:, :, ::-1])
    marked = encoder.encode(_swap_2x2(bgr), "dwtDct", **WATERMARK_CONFIG)
    # Only Y went through the package's exchange; U and V are still swapped: swap them back.
    yuv = cv2.cvtColor(marked, cv2.COLOR_BGR2YUV)
    yuv[:, :, 1:] = _swap_2x2(yuv[:, :, 1:])
    rgb = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)[:, :, ::-1]
    result = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")
    result.info = dict(image.info)
    return result


def _read_bits(bgr: np.ndarray, length: int, config: dict) -> np.ndarray:
    from imwatermark import WatermarkDecoder

    return np.asarray(WatermarkDecoder("bits", length).decode(bgr, "dwtDct", **config), dtype=int)


def _views(image: Image.Image) -> list[np.ndarray]:
    """The image as 8-bit BGR at its own size and, for a copy that was resized to half size, at twice it:
    smoothly, and by repeating pixels (whose wavelet approximation is then the half-size image itself)."""
    rgb = image.convert("RGB")
    pixels = rgb.width * rgb.height
    views = [rgb] if pixels >= MIN_PIXELS else []
    if MIN_PIXELS <= 4 * pixels <= MAX_UPSCALED_PIXELS:
        double = (2 * rgb.width, 2 * rgb.height)
        views += [rgb.resize(double, Image.Resampling.LANCZOS), rgb.resize(double, Image.Resampling.NEAREST)]
    return [np.ascontiguousarray(np.asarray(view)[:, :, ::-1]) for view in views]


def find_watermark(image: Image.Image) -> Watermark | None:
    """This app's watermark or Black Forest Labs' in `image`, or None."""
    own_hex = WATERMARK_MESSAGE.hex()
    bfl_hex = f"{BFL_MESSAGE:012x}"
    for bgr in _views(image):
        errors = int(np.sum(_read_bits(bgr, len(OWN_BITS), WATERMARK_CONFIG) != OWN_BITS))
        if errors <= MAX_BIT_ERRORS:
            return Watermark(OWN_SOURCE, own_hex, errors)
        # BFL marks float pixels, so the package's float colour conversion (U offset 0.5, not 128) reads
        # it back more often; try both.
        for pixels in (bgr.astype(np.float32), bgr):
            errors = int(np.sum(_read_bits(pixels, len(BFL_BITS), {}) != BFL_BITS))
            if errors <= MAX_BIT_ERRORS:
                return Watermark(BFL_SOURCE, bfl_hex, errors)
    return None


# --- XMP -------------------------------------------------------------------------------------------


def xmp_packet(creator_tool: str) -> str:
    """An XMP packet that declares the image AI-generated (IPTC digital source type
    `trainedAlgorithmicMedia`) and names the tool that made it."""
    for prefix, uri in _NAMESPACES.items():
        ElementTree.register_namespace(prefix, uri)
    root = ElementTree.Element(f"{{{_NAMESPACES['x']}}}xmpmeta")
    rdf = ElementTree.SubElement(root, f"{{{_NAMESPACES['rdf']}}}RDF")
    ElementTree.SubElement(
        rdf,
        f"{{{_NAMESPACES['rdf']}}}Description",
        {
            f"{{{_NAMESPACES['rdf']}}}about": "",
            _SOURCE_TYPE: DIGITAL_SOURCE_TYPE,
            f"{{{_NAMESPACES['xmp']}}}CreatorTool": creator_tool,
        },
    )
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>{body}<?xpacket end="w"?>'


def digital_source_type(xmp: str | bytes | None) -> str | None:
    """The IPTC digital source type an XMP packet declares (as an attribute or an element), or None.
    Packets with a DOCTYPE or entities are not read (they serve no purpose in XMP but entity attacks)."""
    if not xmp:
        return None
    text = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else str(xmp)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return None
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        value = element.get(_SOURCE_TYPE) or (element.text if element.tag == _SOURCE_TYPE else None)
        if value and value.strip():
            return value.strip()
    return None
