"""The typography lab's core: how well a model renders text, read back by OCR.

- `targets`: the texts a prompt asks for (its quoted parts), and quoting text into a prompt;
- `ocr`, `tesseract`: the OCR engines (RapidOCR; Tesseract for Hangul and kana);
- `scoring`: character error rate, exact and normalised match;
- `suite`: the 48-prompt suite (data in `examples/typography_suite.json`), its runner and reports;
- `view`: the character diff and OCR boxes the tab shows.
"""

from flux_demo.typography.scoring import TargetScore, TextScore, score_text
from flux_demo.typography.targets import extract_targets, quote_prompt

__all__ = ["TargetScore", "TextScore", "extract_targets", "quote_prompt", "score_text"]
