"""Typography lab core: target-text extraction and OCR scoring (the suite lives in typography_suite).

OCR runs on RapidOCR (PP-OCRv4 det/rec ONNX models shipped inside the wheel, so it works offline).
Its recogniser reads Latin script, digits, symbols and Chinese characters (which covers Japanese
kanji), but it has no Hangul and only a handful of kana.  Targets it cannot spell are read by
Tesseract instead (`flux_demo.ocr_tesseract`, when installed with Korean and Japanese data); a target
neither engine can read is flagged as not ``readable`` and left out of the overall scores instead of
being counted as a model error.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from dataclasses import dataclass

from PIL import Image
from rapidfuzz.distance import Levenshtein

from flux_demo import ocr_tesseract

# One alternation so that matches never overlap: a double-quoted target may contain apostrophes
# or single quotes.  A straight or curly single quote only opens after a non-word character and
# only closes before one, so the apostrophes in "Don't" or "World's" never start or end a target.
_QUOTED = re.compile(
    r'"(?P<double>[^"]*)"'
    r"|“(?P<curly>[^”]*)”"
    r"|「(?P<corner>[^」]*)」"
    r"|『(?P<white_corner>[^』]*)』"
    r"|(?<!\w)'(?P<single>\S(?:[^\n]*?\S)?)'(?!\w)"
    r"|(?<!\w)‘(?P<curly_single>\S(?:[^\n]*?\S)?)’(?!\w)"
)
# Quote pairs quote_prompt tries in order; the first that survives a round trip wins.
_QUOTE_PAIRS = (('"', '"'), ("“", "”"), ("'", "'"), ("「", "」"))


def _collapse_spaces(text: str) -> str:
    """Newlines and runs of spaces become one space: OCR lines are joined with single spaces."""
    return " ".join(text.split())


def extract_targets(prompt: str) -> list[str]:
    """Texts the prompt asks to be written, in prompt order (quotes removed, spaces collapsed)."""
    targets = []
    for match in _QUOTED.finditer(prompt):
        text = _collapse_spaces(next(group for group in match.groups() if group is not None))
        if text:
            targets.append(text)
    return targets


def quote_prompt(text: str, scene: str) -> str:
    """Build a prompt that quotes ``text`` in ``scene`` (``{text}`` marks where it goes)."""
    text = text.strip()
    if not text:
        raise ValueError("text: enter the words the image should show (got an empty string)")
    scene = scene.strip() or "A sign that says {text}"
    for opening, closing in _QUOTE_PAIRS:
        quoted = f"{opening}{text}{closing}"
        if "{text}" in scene:
            prompt = scene.replace("{text}", quoted)
        else:
            prompt = f"{scene.rstrip(' ,.')}, with the text {quoted}"
        if _collapse_spaces(text) in extract_targets(prompt):
            return prompt
    raise ValueError(f"text: cannot quote {text!r}; it uses every quote mark (\" “” ' 「」)")


# --- the OCR engine ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OcrBox:
    """One recognised text line: ``points`` are 4 (x, y) pixel corners, ``confidence`` in 0–1."""

    points: tuple[tuple[float, float], ...]
    text: str
    confidence: float


_engine = None
_engine_lock = threading.Lock()  # guards creation
_ocr_lock = threading.Lock()  # one recognition at a time: ONNX Runtime already uses every core


def ocr_engine():
    """The process-wide RapidOCR instance, created on first use (about 0.3 s) and then reused."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                from rapidocr_onnxruntime import RapidOCR  # deferred: importing loads cv2 and ORT

                # RapidOCR attaches a DEBUG-level stream handler; keep only its warnings.
                logging.getLogger("RapidOCR").setLevel(logging.WARNING)
                _engine = RapidOCR()
    return _engine


def warm_up() -> float:
    """Create the engine and read a blank image, so the first real request does not pay for it.

    Returns the seconds it took (about 1 s on a laptop CPU, most of it ONNX Runtime start-up).
    """
    started = time.perf_counter()
    recognize(Image.new("RGB", (32, 32), "white"))
    ocr_tesseract.installed_languages()  # one `tesseract --list-langs` run
    return time.perf_counter() - started


def ocr_vocabulary() -> frozenset[str]:
    """Every character the recogniser can output (about 6,600)."""
    return frozenset(ocr_engine().text_rec.postprocess_op.character)


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
    return TESSERACT if ocr_tesseract.languages_for(missing) else None


def recognize(image: Image.Image) -> list[OcrBox]:
    """OCR the image; lines come back in reading order (top to bottom, then left to right)."""
    engine = ocr_engine()
    with _ocr_lock:
        result, _ = engine(image.convert("RGB"))
    return [
        OcrBox(tuple((float(x), float(y)) for x, y in points), text, float(score))
        for points, text, score in result or []
    ]


# --- metrics -----------------------------------------------------------------------------------


def character_error_rate(target: str, recognised: str) -> float:
    """Edit distance over the target length, capped at 1.0 (0 = perfect, 1 = nothing right).

    Whitespace is not scored: the OCR model often drops the space between words, and it never
    outputs one between CJK characters, so counting spaces would measure the OCR, not the image.
    """
    target, recognised = "".join(target.split()), "".join(recognised.split())
    if not target:
        raise ValueError("target: the text to score against must have a visible character")
    return min(1.0, Levenshtein.distance(target, recognised) / len(target))


def normalise(text: str) -> str:
    """NFKC, case-folded, without punctuation, spaces or control characters (letters of any script stay)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if unicodedata.category(c)[0] not in "PZC")


def _best_window(target: str, text: str) -> str:
    """The substring of ``text`` closest to ``target`` (case-insensitive semi-global alignment).

    Case is ignored only to *locate* the window, so the case-sensitive CER still counts case errors.
    """
    key_target, key_text = [c.casefold() for c in target], [c.casefold() for c in text]
    # cost[j] / start[j]: best alignment of the target prefix ending at text[:j], and where it starts.
    cost, start = [0] * (len(text) + 1), list(range(len(text) + 1))
    for i, char in enumerate(key_target, start=1):
        new_cost, new_start = [i], [0]
        for j, other in enumerate(key_text, start=1):
            options = (
                (cost[j - 1] + (char != other), start[j - 1]),
                (cost[j] + 1, start[j]),
                (new_cost[j - 1] + 1, new_start[j - 1]),
            )
            best = min(options, key=lambda option: option[0])
            new_cost.append(best[0])
            new_start.append(best[1])
        cost, start = new_cost, new_start
    end = min(range(len(cost)), key=lambda j: (cost[j], -(j - start[j])))
    return _grow_to_word(text, start[end], end)


def _is_spaced_letter(char: str) -> bool:
    """A letter or digit of a script that separates words with spaces (not Han or kana)."""
    return char.isalnum() and not ("\u3040" <= char <= "\u30ff" or "\u3400" <= char <= "\u9fff")


def _grow_to_word(text: str, begin: int, end: int) -> str:
    """Widen text[begin:end] to whole words, so "CAT" inside "CATALOG" is scored as "CATALOG"."""

    def joins(left: int) -> bool:  # text[left] and text[left + 1] are inside one word
        return _is_spaced_letter(text[left]) and _is_spaced_letter(text[left + 1])

    if begin == end:
        return ""
    while begin > 0 and joins(begin - 1):
        begin -= 1
    while end < len(text) and joins(end - 1):
        end += 1
    return text[begin:end]


# --- scoring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetScore:
    """How well one target text was rendered; ``cer`` in 0–1 (lower is better)."""

    target: str
    recognised: str
    cer: float
    exact: bool
    normalised_match: bool
    readable: bool  # False: no installed OCR engine can spell it (Hangul without Tesseract): ignore
    engine: str = RAPIDOCR  # whose reading ``recognised`` comes from: RAPIDOCR or TESSERACT


@dataclass(frozen=True)
class TextScore:
    """OCR score of one image against its targets; overall fields cover readable targets only."""

    targets: tuple[TargetScore, ...]
    mean_cer: float | None  # None when no target is readable
    all_exact: bool
    all_normalised: bool
    recognised_text: str  # every RapidOCR line, in reading order, joined with spaces
    boxes: tuple[OcrBox, ...]
    seconds: float  # OCR plus matching, wall clock
    tesseract_text: str | None = None  # Tesseract's whole reading; None unless a target needed it

    @classmethod
    def from_targets(cls, targets, recognised_text: str, boxes=(), seconds: float = 0.0, tesseract_text=None):
        """A score whose overall fields are derived from `targets` (only readable ones count)."""
        targets = tuple(targets)
        readable = [score for score in targets if score.readable]
        return cls(
            targets=targets,
            mean_cer=sum(score.cer for score in readable) / len(readable) if readable else None,
            all_exact=bool(readable) and all(score.exact for score in readable),
            all_normalised=bool(readable) and all(score.normalised_match for score in readable),
            recognised_text=recognised_text,
            boxes=tuple(boxes),
            seconds=seconds,
            tesseract_text=tesseract_text,
        )

    def reading(self, engine: str) -> str:
        """Everything ``engine`` (RAPIDOCR or TESSERACT) read in the image, spaces collapsed."""
        return (self.tesseract_text or "") if engine == TESSERACT else self.recognised_text


def score_target(target: str, ocr_text: str, engine: str = RAPIDOCR) -> TargetScore:
    """Score one target against ``engine``'s reading of the image (lines joined with spaces).

    The recognised text is the window of the reading that best matches the target, widened to
    whole words, so other text in the image (a subtitle, a logo) does not count against it.
    """
    target = _collapse_spaces(target)
    if not target:
        raise ValueError("expected: each target text must contain at least one visible character")
    recognised = _best_window(target, ocr_text) if ocr_text else ""
    return TargetScore(
        target=target,
        recognised=recognised,
        cer=character_error_rate(target, recognised),
        exact=recognised == target,
        normalised_match=normalise(target) == normalise(recognised),
        readable=reading_engine(target) == engine,
        engine=engine,
    )


def _read_with_tesseract(image: Image.Image, targets: list[str]) -> str | None:
    """Tesseract's reading of ``image`` in the languages the targets need; None when none needs it."""
    needed = "".join(unreadable_chars(target) for target in targets if reading_engine(target) == TESSERACT)
    text = ocr_tesseract.read(image, ocr_tesseract.languages_for(needed)) if needed else None
    return None if text is None else _collapse_spaces(unicodedata.normalize("NFKC", text))


def score_text(image: Image.Image, expected: str | list[str]) -> TextScore:
    """OCR ``image`` and score it against one expected text or a list of them."""
    targets = [_collapse_spaces(text) for text in ([expected] if isinstance(expected, str) else expected)]
    if not targets or not all(targets):
        raise ValueError("expected: give at least one target text, each with a visible character")
    started = time.perf_counter()
    boxes = recognize(image)
    # NFKC: the Chinese-trained recogniser often emits fullwidth punctuation ("，" for ",").
    ocr_text = _collapse_spaces(unicodedata.normalize("NFKC", " ".join(box.text for box in boxes)))
    tesseract_text = _read_with_tesseract(image, targets)
    scores = tuple(
        score_target(target, tesseract_text, TESSERACT)
        if tesseract_text is not None and reading_engine(target) == TESSERACT
        else score_target(target, ocr_text)
        for target in targets
    )
    return TextScore.from_targets(
        scores, ocr_text, boxes, time.perf_counter() - started, tesseract_text=tesseract_text
    )
