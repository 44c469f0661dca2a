"""The chapter's figures as SVG, drawn on the server in the visitor's language: a line chart (the σ
schedule, how far x₀ still is from the final image), the MM-DiT diagram with the loaded and the full-size
model's figures, and RoPE's split of each attention head. SVG scales to any width and its legend is HTML
that wraps, so the figures fit a phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from flux_demo.ui.i18n import EN, KO

COLOURS = ("#e4572e", "#2e86ab", "#76b041", "#a23b72", "#f3a712", "#5c6bc0", "#00897b", "#6d4c41")
FONT = "font-family='system-ui, sans-serif'"


def text(key: str, language: str, **params) -> str:
    """UI text `key` in `language` ("ko" or "en"), filled with `params`."""
    table = KO if language == "ko" else EN
    return table.get(key, EN[key]).format(**params)


def billions(count: int, language: str) -> str:
    """A parameter count as people write it: 11.9 B, 340 M, 3.4 M; in Korean 119억, 3.4억, 345만."""
    if language == "ko":
        return f"{count / 1e8:.3g}억" if count >= 1e8 else f"{count / 1e4:,.0f}만"
    if count >= 1e9:
        return f"{count / 1e9:.3g} B"
    return f"{count / 1e6:.3g} M"


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[float, float]]
    markers: bool = True


def legend(series: list[Series]) -> str:
    items = "".join(
        f"<span style='display:inline-flex;align-items:center;gap:4px;margin:2px 10px 2px 0'>"
        f"<span style='width:14px;height:4px;background:{COLOURS[i % len(COLOURS)]};display:inline-block'>"
        f"</span>{escape(s.label)}</span>"
        for i, s in enumerate(series)
    )
    return f"<div style='display:flex;flex-wrap:wrap;font-size:13px;line-height:1.5'>{items}</div>"


def line_chart(
    series: list[Series],
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] = (0.0, 1.0),
    y_range: tuple[float, float] = (0.0, 1.0),
    notes: tuple[tuple[float, float, str], ...] = (),
    y_ticks: tuple[float, ...] | None = None,
) -> str:
    """An SVG line chart (dots on the points where `markers`), axes labelled, with `notes` written at
    data coordinates; the legend below wraps."""
    width, height, left, right, top, bottom = 480, 270, 50, 14, 14, 44
    (x0, x1), (y0, y1) = x_range, y_range

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom)

    parts = [
        f"<line x1='{left}' y1='{py(y0)}' x2='{width - right}' y2='{py(y0)}' stroke='#888'/>",
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{py(y0)}' stroke='#888'/>",
    ]
    for i in range(5):
        fx = x0 + (x1 - x0) * i / 4
        parts.append(
            f"<text x='{px(fx)}' y='{py(y0) + 14}' font-size='13' text-anchor='middle'>{fx:g}</text>"
        )
    for fy in y_ticks or [y0 + (y1 - y0) * i / 4 for i in range(5)]:
        parts.append(f"<text x='{left - 4}' y='{py(fy) + 4}' font-size='13' text-anchor='end'>{fy:g}</text>")
    parts.append(
        f"<text x='{(left + width - right) / 2}' y='{height - 6}' font-size='14' "
        f"text-anchor='middle'>{escape(x_label)}</text>"
    )
    parts.append(
        f"<text x='14' y='{(top + py(y0)) / 2}' font-size='14' text-anchor='middle' "
        f"transform='rotate(-90 14 {(top + py(y0)) / 2})'>{escape(y_label)}</text>"
    )
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        parts.append(f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='2'/>")
        if s.markers:
            parts += [
                f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='3' fill='{colour}'/>" for x, y in s.points
            ]
    for x, y, note in notes:
        parts.append(f"<text x='{px(x) + 6}' y='{py(y) + 4}' font-size='13'>{escape(note)}</text>")
    svg = (
        f"<svg viewBox='0 0 {width} {height}' role='img' style='width:100%;max-width:560px;height:auto' "
        f"{FONT} fill='currentColor'>{''.join(parts)}</svg>"
    )
    return f"<div>{svg}{legend(series)}</div>"


def _box(x, y, w, h, fill, lines: list[str], size: int = 12) -> str:
    spans = "".join(
        f"<tspan x='{x + w / 2}' dy='{0 if i == 0 else size + 3}'>{escape(line)}</tspan>"
        for i, line in enumerate(lines)
    )
    first = y + h / 2 - (len(lines) - 1) * (size + 3) / 2 + size / 3
    return (
        f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='8' fill='{fill}' fill-opacity='0.18' "
        f"stroke='{fill}'/><text x='{x + w / 2}' y='{first}' font-size='{size}' text-anchor='middle'>"
        f"{spans}</text>"
    )


def _arrow(x1, y1, x2, y2) -> str:
    return (
        f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='#888' stroke-width='1.5' "
        "marker-end='url(#a)'/>"
    )


def mmdit_diagram(loaded: dict | None, full: dict, names: dict, language: str) -> str:
    """The MM-DiT's path from prompt and noise to the velocity, each stage labelled with the full-size
    model's figures and, in brackets, the loaded model's. `names` holds the encoders' names and whether a
    pooled vector exists."""

    def both(key: str) -> str:
        return f"{full[key]:,}" + (f" ({loaded[key]:,})" if loaded else "")

    t = lambda key, **p: text(key, language, **p)  # noqa: E731 - a local shorthand
    modulation = [names["pooled"], t("how_dia_pooled")] if names.get("pooled") else [t("how_dia_time_only")]
    parts = [
        "<defs><marker id='a' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='6' markerHeight='6' "
        "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#888'/></marker></defs>",
        _box(6, 6, 112, 56, COLOURS[1], [names["tokens"], t("how_dia_tokens")], 10),
        _box(124, 6, 112, 56, COLOURS[0], [t("how_dia_noise"), t("how_dia_patches")], 10),
        _box(242, 6, 112, 56, COLOURS[4], modulation, 10),
        _arrow(62, 62, 62, 86),
        _arrow(180, 62, 180, 86),
        _arrow(298, 62, 298, 86),
        _box(
            6,
            86,
            348,
            70,
            COLOURS[3],
            [
                t("how_dia_double", count=both("double_blocks")),
                t("how_dia_double_what"),
                t("how_dia_joint"),
            ],
            12,
        ),
        _arrow(180, 156, 180, 174),
        _box(
            6,
            174,
            348,
            56,
            COLOURS[2],
            [
                t("how_dia_single", count=both("single_blocks")),
                t("how_dia_single_what"),
            ],
            12,
        ),
        _arrow(180, 230, 180, 248),
        _box(6, 248, 348, 34, COLOURS[5], [t("how_dia_out")], 12),
        f"<text x='180' y='302' font-size='11' text-anchor='middle'>"
        f"{escape(t('how_dia_width', width=both('hidden_size'), heads=both('heads')))}</text>",
    ]
    return (
        f"<svg viewBox='0 0 360 310' role='img' style='width:100%;max-width:520px;height:auto' {FONT} "
        f"fill='currentColor'>{''.join(parts)}</svg>"
    )


def rope_bar(shape: dict, language: str) -> str:
    """Each attention head's dimensions, split among the position axes (index, height, width, text)."""
    dims = [axis["dims"] for axis in shape["rope"]]
    total, x, parts = sum(dims), 10.0, []
    for i, axis in enumerate(shape["rope"]):
        w = 340 * axis["dims"] / total
        label = text(f"how_rope_axis_{axis['axis']}", language)
        parts.append(
            f"<rect x='{x:.1f}' y='10' width='{w:.1f}' height='34' fill='{COLOURS[i]}' fill-opacity='0.3' "
            f"stroke='{COLOURS[i]}'/><text x='{x + w / 2:.1f}' y='31' font-size='12' text-anchor='middle'>"
            f"{axis['dims']}</text><text x='{x + w / 2:.1f}' y='60' font-size='11' "
            f"text-anchor='middle'>{escape(label)}</text>"
        )
        x += w
    return (
        f"<svg viewBox='0 0 360 70' role='img' style='width:100%;max-width:520px;height:auto' {FONT} "
        f"fill='currentColor'>{''.join(parts)}</svg>"
    )
