"""Typography lab views: a character diff for ``gr.HighlightedText`` and OCR boxes drawn on an image."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from flux_demo.messages import Message
from flux_demo.typography.ocr import OcrBox

# Labels of char_diff (and score_diff's "not scored"), with colours for gr.HighlightedText(color_map=...).
NOT_SCORED = "not scored"
DIFF_COLORS = {
    "correct": "#22c55e",
    "wrong": "#ef4444",
    "missing": "#f59e0b",
    "extra": "#a855f7",
    NOT_SCORED: "#9ca3af",
}
TARGET_HEADERS = ["target", "recognised", "CER", "exact", "normalised", "engine", "readable"]

# Noto CJK first: it also covers Latin, so Korean and Japanese labels do not turn into boxes.
_LABEL_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)


def char_diff(target: str, recognised: str | None) -> list[tuple[str, str | None]]:
    """Character diff of what the image says against the target, as (text, label) pairs.

    Labels: "correct" (shared text), "wrong" (recognised text replacing target text), "missing"
    (target text absent from the image, shown as the target's characters) and "extra"
    (recognised text the target does not have).
    """
    recognised = recognised or ""
    matcher = difflib.SequenceMatcher(None, target, recognised, autojunk=False)
    pieces: list[tuple[str, str | None]] = []
    for operation, t_from, t_to, r_from, r_to in matcher.get_opcodes():
        if operation == "equal":
            pieces.append((target[t_from:t_to], "correct"))
        elif operation == "replace":
            pieces.append((recognised[r_from:r_to], "wrong"))
        elif operation == "delete":
            pieces.append((target[t_from:t_to], "missing"))
        else:
            pieces.append((recognised[r_from:r_to], "extra"))
    return pieces


@cache
def _label_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font for box labels, ``size`` in pixels; falls back to Pillow's built-in font."""
    for path in _LABEL_FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def draw_boxes(image: Image.Image, boxes: Iterable[OcrBox]) -> Image.Image:
    """A copy of ``image`` with each OCR polygon outlined and its text and confidence above it."""
    canvas = image.convert("RGB")  # convert() always copies, so the caller's image is untouched
    draw = ImageDraw.Draw(canvas)
    # Scale strokes and labels with the image so they stay legible on 256² and 2048² alike.
    line_width = max(2, min(canvas.size) // 256)
    font = _label_font(max(12, min(canvas.size) // 40))
    for box in boxes:
        points = [(round(x), round(y)) for x, y in box.points]
        draw.polygon(points, outline=(255, 0, 128), width=line_width)
        label = f"{box.text} ({box.confidence:.2f})"
        left = min(x for x, _ in points)
        top = min(y for _, y in points)
        anchor = "ld"  # label sits on the box's top edge, above it
        if draw.textbbox((left, top), label, font=font, anchor=anchor)[1] < 0:
            anchor = "la"  # no room above the image top: put it just inside the box instead
        x0, y0, x1, y1 = draw.textbbox((left, top), label, font=font, anchor=anchor)
        draw.rectangle((x0 - 2, y0 - 2, x1 + 2, y1 + 2), fill=(255, 0, 128))
        draw.text((left, top), label, font=font, fill="white", anchor=anchor)
    return canvas


# --- views of a score dict (as made by `suite.score_as_dict`) -------------------------


def score_boxes(scores: dict) -> list[OcrBox]:
    """The OCR lines of a score dict, back as `OcrBox` objects for `draw_boxes`."""
    return [
        OcrBox(tuple(tuple(point) for point in box["points"]), box["text"], box["confidence"])
        for box in scores["boxes"]
    ]


def _say(code: str, language: str, **params) -> str:
    return Message(code, **params).render(language)


def score_rows(scores: dict, language: str = "en") -> list[list]:
    """One table row per target, in TARGET_HEADERS order; "readable" says which characters the OCR lacks."""
    return [
        [
            target["target"],
            target["recognised"],
            target["cer"],
            target["exact"],
            target["normalised_match"],
            target["engine"],
            _say("ui.yes", language)
            if target["readable"]
            else _say("ui.unreadable_no", language, chars=target["unreadable_chars"]),
        ]
        for target in scores["targets"]
    ]


def score_diff(scores: dict) -> list[tuple[str, str | None]]:
    """Every target's char_diff, spaced apart; a target the OCR cannot read is labelled "not scored"."""
    pieces: list[tuple[str, str | None]] = []
    for target in scores["targets"]:
        if pieces:
            pieces.append(("   ", None))
        if target["readable"]:
            pieces.extend(char_diff(target["target"], target["recognised"]))
        else:
            pieces.append((target["target"], NOT_SCORED))
    return pieces


def score_summary(scores: dict, language: str = "en") -> str:
    """One line of Markdown: the overall figures, or why nothing was scored."""
    if scores["mean_cer"] is None:
        return _say("ui.not_scored_summary", language)

    def mark(ok: bool) -> str:
        return f"**{_say('ui.yes', language)}**" if ok else _say("ui.no", language)

    return _say(
        "ui.score_summary",
        language,
        cer=scores["mean_cer"],
        exact=mark(scores["exact_match"]),
        normalised=mark(scores["normalised_match"]),
        seconds=scores["ocr_seconds"],
    )
