"""Tesseract, the second OCR engine: it reads the Korean and Japanese kana that RapidOCR cannot.

Optional at run time: it needs the ``tesseract`` binary with its ``kor`` / ``jpn`` language data
(Debian: ``tesseract-ocr tesseract-ocr-kor tesseract-ocr-jpn``, listed in packages.txt for Spaces)
and the ``pytesseract`` wrapper.  Without them, `languages_for` returns None and those targets stay
*not scored*, as before.
"""

from __future__ import annotations

import logging
import re
import shutil
from functools import cache

from PIL import Image

log = logging.getLogger(__name__)

# Tesseract language -> the characters it is used for.  Han goes with jpn: kanji in a kana target.
LANGUAGE_SCRIPTS = {
    "kor": re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]"),  # Hangul jamo and syllables
    "jpn": re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9d\u3400-\u9fff]"),  # kana, kanji
}
# Sparse text: find every piece of text in no set layout.  The default page layout (--psm 3) drops
# or garbles half of a short centred sign; --psm 11 reads 97% of the test renders exactly.
CONFIG = "--psm 11"
TIMEOUT_SECONDS = 30  # one 1024² image takes well under a second; this only stops a hung process


@cache
def installed_languages() -> frozenset[str]:
    """Languages of the installed Tesseract, checked once; empty when Tesseract is missing."""
    if shutil.which("tesseract") is None:
        return frozenset()
    try:
        import pytesseract

        return frozenset(pytesseract.get_languages(config=""))
    except Exception as error:  # ImportError, TesseractNotFoundError, a broken install
        log.warning("Tesseract is unavailable, so Korean and kana stay unscored: %s", error)
        return frozenset()


def languages_for(chars: str) -> str | None:
    """Tesseract's ``lang`` argument ("kor", "jpn" or "kor+jpn") that covers every character of
    ``chars``; None when one of them is in no known script or its language data is not installed."""
    needed = set()
    for char in chars:
        language = next((lang for lang, script in LANGUAGE_SCRIPTS.items() if script.match(char)), None)
        if language is None:
            return None
        needed.add(language)
    if not needed or not needed <= installed_languages():
        return None
    return "+".join(lang for lang in LANGUAGE_SCRIPTS if lang in needed)


def read(image: Image.Image, languages: str) -> str | None:
    """All text Tesseract finds in ``image`` with ``languages`` ("kor+jpn"), lines joined with
    newlines; None when Tesseract fails, so the caller can leave the target unscored."""
    import pytesseract

    try:
        return pytesseract.image_to_string(
            image.convert("RGB"), lang=languages, config=CONFIG, timeout=TIMEOUT_SECONDS
        )
    except (RuntimeError, OSError) as error:  # TesseractError and the timeout are RuntimeErrors
        log.warning("Tesseract failed on a %s image with %s: %s", image.size, languages, error)
        return None
