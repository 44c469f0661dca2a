"""Scoring a rendered text against its target: character error rate, exact and normalised match.

Each target is read by the engine that can spell it (`ocr.reading_engine`); a target no installed
engine can read is flagged as not ``readable`` and left out of the overall scores instead of being
counted as a model error.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass

from PIL import Image
from rapidfuzz.distance import Levenshtein

from flux_demo.typography import tesseract
from flux_demo.typography.ocr import RAPIDOCR, TESSERACT, OcrBox, reading_engine, recognize, unreadable_chars
from flux_demo.typography.targets import collapse_spaces
from flux_demo.validation import InvalidInput


def character_error_rate(target: str, recognised: str) -> float:
    """Edit distance over the target length, capped at 1.0 (0 = perfect, 1 = nothing right).

    Whitespace is not scored: the OCR model often drops the space between words, and it never
    outputs one between CJK characters, so counting spaces would measure the OCR, not the image.
    """
    target, recognised = "".join(target.split()), "".join(recognised.split())
    if not target:
        raise InvalidInput("target", "input.target_visible")
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
    target = collapse_spaces(target)
    if not target:
        raise InvalidInput("expected", "input.each_target_visible")
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
    languages = tesseract.languages_for(needed) if needed else None
    text = tesseract.read(image, languages) if languages else None
    return None if text is None else collapse_spaces(unicodedata.normalize("NFKC", text))


def score_text(image: Image.Image, expected: str | list[str]) -> TextScore:
    """OCR ``image`` and score it against one expected text or a list of them."""
    targets = [collapse_spaces(text) for text in ([expected] if isinstance(expected, str) else expected)]
    if not targets or not all(targets):
        raise InvalidInput("expected", "input.some_target")
    started = time.perf_counter()
    boxes = recognize(image)
    # NFKC: the Chinese-trained recogniser often emits fullwidth punctuation ("，" for ",").
    ocr_text = collapse_spaces(unicodedata.normalize("NFKC", " ".join(box.text for box in boxes)))
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
