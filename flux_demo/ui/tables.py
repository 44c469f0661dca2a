"""Table headers in the visitor's language.

Gradio translates labels in the browser but not a Dataframe's headers, so the server sends them: each
result table comes back with headers in the visitor's language (`localized_table`), and the empty
tables get theirs when the page opens (`translate_headers_on_load`). API callers that send no Korean
Accept-Language get the English headers, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr

from flux_demo.ui.i18n import visitor_language

HEADERS_KO = {
    "model": "모델",
    "status": "상태",
    "seconds": "초",
    "steps": "스텝",
    "s/step": "초/스텝",
    "peak VRAM GB": "최대 VRAM GB",
    "exact": "정확히 일치",
    "normalised": "정규화 일치",
    "seed": "시드",
    "guidance": "가이던스",
    "target": "대상 글자",
    "recognised": "OCR이 읽은 글자",
    "engine": "엔진",
    "readable": "읽을 수 있음",
    "mean CER": "평균 CER",
    "exact rate": "정확 일치율",
    "normalised rate": "정규화 일치율",
    "scored": "채점됨",
    "not scored": "채점 안 됨",
    "category": "카테고리",
}


# Widths in the tables' font (Gradio's monospace, 14 px): a Latin letter or digit, a Hangul syllable (from
# a CJK fallback font), and the padding around a cell's text.
LATIN_PX, HANGUL_PX, CELL_PX = 9, 15, 24


@dataclass(frozen=True)
class Column:
    """One result-table column: its English `header`, Gradio `datatype`, and `chars`, the widest value
    that must stay on one line (a number never wraps; text wraps between words)."""

    header: str
    datatype: str = "number"
    chars: int = 6


def text_px(text: str) -> int:
    """An upper bound on the width of `text` in the tables' font."""
    return sum(HANGUL_PX if "\uac00" <= char <= "\ud7a3" else LATIN_PX for char in text)


def column_px(column: Column) -> int:
    """A width that fits the column's values on one line and every word of its header, in English and
    in Korean, so a header never breaks inside a word."""
    words = [*column.header.split(), *HEADERS_KO.get(column.header, "").split()]
    return max(column.chars * LATIN_PX, *map(text_px, words)) + CELL_PX


def table_style(columns: Sequence[Column]) -> dict:
    """Dataframe arguments for a result table: its headers, datatypes and fixed column widths. Fixed
    widths make a narrow screen scroll the table sideways rather than squeeze a number onto one
    character per line; the page's CSS keeps words whole (assets/page.css)."""
    return {
        "headers": [column.header for column in columns],
        "datatype": [column.datatype for column in columns],
        "column_widths": [f"{column_px(column)}px" for column in columns],
        "wrap": True,
    }


def table_headers(headers: Sequence[str], language: str | None = None) -> list[str]:
    """`headers` (English) in `language` (default: the current visitor's); technical ones (CER) stay."""
    if (language or visitor_language()) != "ko":
        return list(headers)
    return [HEADERS_KO.get(header, header) for header in headers]


def localized_table(headers: Sequence[str], rows: list[list], language: str | None = None) -> dict:
    """A Dataframe value: `rows` under `headers` in the visitor's language."""
    return {"headers": table_headers(headers, language), "data": rows}


def translate_headers_on_load(demo: gr.Blocks, tables: Sequence[tuple[gr.Dataframe, Sequence[str]]]) -> None:
    """When the page opens, give each (table, English headers) its headers in the visitor's language,
    keeping the rows it starts with."""
    components = [table for table, _ in tables]

    def translate():
        if visitor_language() == "en":
            return [gr.skip()] * len(tables)
        updates = []
        for table, headers in tables:
            rows = _rows(table.value)
            updates.append(localized_table(headers, rows or [[None] * len(headers)]))
        return updates

    demo.load(translate, None, components, queue=False, api_visibility="private")


def _rows(value) -> list[list]:
    """The rows of a Dataframe's initial value (Gradio keeps it as a dict, a model or a DataFrame)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return value.get("data") or []
    if hasattr(value, "values") and hasattr(value, "columns"):  # pandas
        return value.values.tolist()
    return list(value or [])
