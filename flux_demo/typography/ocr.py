"""The OCR engines: RapidOCR for most scripts, Tesseract for Hangul and kana.

RapidOCR (PP-OCRv4 det/rec ONNX models shipped inside the wheel, so it works offline) reads Latin
script, digits, symbols and Chinese characters (which covers Japanese kanji), but it has no Hangul and
only a handful of kana. Targets it cannot spell are read by Tesseract instead (`typography.tesseract`,
when installed with Korean and Japanese data).

The RapidOCR instance is a process-wide resource like an imported module: created once on first use
and shared, with one recognition at a time (ONNX Runtime already uses every core).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass

from PIL import Image

from flux_demo.typography import tesseract

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OcrBox:
    """One recognised text line: ``points`` are 4 (x, y) pixel corners, ``confidence`` in 0–1."""

    points: tuple[tuple[float, float], ...]
    text: str
    confidence: float


# Bounds on the work one image can cause: OCR time grows with pixels (detection) and with text lines
# (one recognition pass each). A 4096² page of dense text took minutes before these bounds.
MAX_OCR_SIDE = 1280  # larger images are scaled down (aspect kept) before OCR
MAX_OCR_LINES = 64  # only the largest text lines are read; a test image or a sign has a handful
OCR_TIME_BUDGET_S = 5.0  # recognition stops starting new batches of lines after this long

_engine_lock = threading.Lock()  # guards creation
_ocr_lock = threading.Lock()  # one recognition at a time: ONNX Runtime already uses every core


def ocr_engine():
    """The process-wide RapidOCR instance, created on first use (about 0.3 s) and then reused."""
    with _engine_lock:
        return _create_engine()


@functools.cache
def _create_engine():
    from rapidocr_onnxruntime import RapidOCR  # deferred: importing loads cv2 and ORT

    class BoundedRapidOCR(RapidOCR):
        """RapidOCR that recognises at most MAX_OCR_LINES detected lines (the largest ones, kept in
        reading order) and starts no new batch of lines after OCR_TIME_BUDGET_S; lines left unread
        count as not recognised."""

        def __init__(self):
            super().__init__()
            self.recognizer = self._recognise_all = self.text_rec
            self.text_rec = self._recognise_within_budget

        def _recognise_within_budget(self, crops, *args):
            # Small batches, so the budget is checked often: one very wide line alone can take a second.
            started, results, batch = time.perf_counter(), [], 2
            for begin in range(0, len(crops), batch):
                if time.perf_counter() - started > OCR_TIME_BUDGET_S:
                    log.warning(
                        "OCR time budget spent: %d of %d lines unread", len(crops) - begin, len(crops)
                    )
                    results.extend([("", 0.0)] * (len(crops) - begin))
                    break
                results.extend(self._recognise_all(crops[begin : begin + batch], *args)[0])
            return results, time.perf_counter() - started

        def auto_text_det(self, img):
            boxes, elapsed = super().auto_text_det(img)
            if boxes is not None and len(boxes) > MAX_OCR_LINES:
                areas = [_quad_area(box) for box in boxes]
                keep = sorted(sorted(range(len(boxes)), key=lambda i: -areas[i])[:MAX_OCR_LINES])
                boxes = [boxes[i] for i in keep] if isinstance(boxes, list) else boxes[keep]
            return boxes, elapsed

    # RapidOCR attaches a DEBUG-level stream handler; keep only its warnings.
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return BoundedRapidOCR()


def _quad_area(points) -> float:
    """Area of a detected quadrilateral (shoelace formula), in pixels."""
    xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
    return abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2


def warm_up() -> float:
    """Create the engine and read a blank image, so the first real request does not pay for it.

    Returns the seconds it took (about 1 s on a laptop CPU, most of it ONNX Runtime start-up).
    """
    started = time.perf_counter()
    recognize(Image.new("RGB", (32, 32), "white"))
    tesseract.installed_languages()  # one `tesseract --list-langs` run
    return time.perf_counter() - started


def ocr_vocabulary() -> frozenset[str]:
    """Every character the recogniser can output (about 6,600)."""
    return frozenset(ocr_engine().recognizer.postprocess_op.character)


def unreadable_chars(text: str) -> str:
    """Characters of ``text`` (spaces aside) that the OCR model cannot output, in order, deduplicated."""
    vocabulary = ocr_vocabulary()
    return "".join(dict.fromkeys(c for c in text if not c.isspace() and c not in vocabulary))


RAPIDOCR, TESSERACT = "rapidocr", "tesseract"  # the engines, as TargetScore.engine names them


def reading_engine(target: str) -> str | None:
    """The engine that reads ``target``: RapidOCR when it can spell every character, else Tesseract
    when its installed languages cover the rest (Hangul, kana), else None (the target is not scored)."""
    missing = unreadable_chars(target)
    if not missing:
        return RAPIDOCR
    return TESSERACT if tesseract.languages_for(missing) else None


def recognize(image: Image.Image) -> list[OcrBox]:
    """OCR the image; lines come back in reading order (top to bottom, then left to right), with
    points in the image's own pixels even when it was scaled down for OCR (see MAX_OCR_SIDE)."""
    engine = ocr_engine()
    scale = min(1.0, MAX_OCR_SIDE / max(image.size))
    if scale < 1.0:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    with _ocr_lock:
        result, _ = engine(image.convert("RGB"))
    return [
        OcrBox(tuple((float(x) / scale, float(y) / scale) for x, y in points), text, float(score))
        for points, text, score in result or []
    ]
