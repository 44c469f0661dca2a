"""The synthetic images of the nano grammar, rendered with PIL and the DejaVu fonts.

A `Picture` describes one image of the grammar (a sign with a word, or one shape on a plain background);
`render` draws it. An `Example` is one training or benchmark item: a prompt, the reference pictures
(none for text to image) and the picture the prompt asks for. Training pairs and benchmark prompts come
from the same builders (`text_example`, `edit_example`), so what is measured is what was taught.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

from flux_demo.offline.nano import Grammar

IMAGE_SIZE = 256
FONT_NAME = "DejaVuSans-Bold.ttf"
SIGN_RGB = (250, 250, 250)
INK_RGB = (15, 15, 15)

Jitter = tuple[float, float, float]  # (radius, dx, dy) in pixels at 256x256
CENTRED: Jitter = (60.0, 0.0, 0.0)


def random_jitter(rng: random.Random) -> Jitter:
    """A shape's size and offset from the centre: radius 48-72 px, offsets within ±24 px."""
    return (rng.uniform(48, 72), rng.uniform(-24, 24), rng.uniform(-24, 24))


@dataclass(frozen=True)
class Picture:
    """One image of the grammar: a sign (``word`` on a white sign) or a ``color`` ``shape``, on a plain
    ``background``; ``jitter`` places the shape."""

    kind: str  # "sign" or "shape"
    background: str
    word: str = ""
    color: str = ""
    shape: str = ""
    jitter: Jitter = CENTRED


@dataclass(frozen=True)
class Example:
    """A prompt, its reference pictures (image 1, 2, ...) and the picture it asks for."""

    task: str  # "word", "shape" (text to image), "inpaint", or an edit's name in the grammar
    caption: str
    references: tuple[Picture, ...]
    target: Picture


# --- Drawing ----------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(FONT_NAME, size)


def _word_font(word: str, max_width: int, max_height: int):
    """The largest bold font (at most 72 px) that fits ``word`` inside the sign."""
    for size in range(72, 12, -2):
        font = _font(size)
        left, top, right, bottom = font.getbbox(word)
        if right - left <= max_width and bottom - top <= max_height:
            return font
    return _font(12)


def render_word(word: str, background_rgb, size: int = IMAGE_SIZE):
    """A white sign with a dark frame and ``word`` in black bold capitals, centred on a plain background."""
    from PIL import Image, ImageDraw

    scale = size / IMAGE_SIZE
    image = Image.new("RGB", (size, size), tuple(background_rgb))
    draw = ImageDraw.Draw(image)
    box = [round(18 * scale), round(70 * scale), round(238 * scale), round(186 * scale)]
    draw.rounded_rectangle(
        box, radius=round(12 * scale), fill=SIGN_RGB, outline=INK_RGB, width=round(5 * scale)
    )
    font = (
        _word_font(word, round(188 * scale), round(84 * scale))
        if scale == 1
        else _font(max(8, round(60 * scale)))
    )
    draw.text((size / 2, size / 2 + 1), word, font=font, fill=INK_RGB, anchor="mm")
    return image


def _star(cx: float, cy: float, radius: float) -> list[tuple[float, float]]:
    points = []
    for i in range(10):
        r = radius if i % 2 == 0 else radius * 0.45
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def render_shape(
    color_rgb,
    shape: str,
    background_rgb,
    rng: random.Random | None = None,
    size: int = IMAGE_SIZE,
    jitter: Jitter | None = None,
):
    """One filled shape on a plain background, placed by ``jitter`` (or a fresh one drawn from ``rng``;
    centred with neither)."""
    from PIL import Image, ImageDraw

    if jitter is None:
        jitter = random_jitter(rng) if rng is not None else CENTRED
    scale = size / IMAGE_SIZE
    radius, dx, dy = jitter
    radius, cx, cy = radius * scale, (128 + dx) * scale, (128 + dy) * scale
    image = Image.new("RGB", (size, size), tuple(background_rgb))
    draw = ImageDraw.Draw(image)
    fill = tuple(color_rgb)
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif shape == "square":
        half = radius * 0.85
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=fill)
    elif shape == "triangle":
        draw.polygon(
            [
                (cx, cy - radius),
                (cx + radius * 0.95, cy + radius * 0.7),
                (cx - radius * 0.95, cy + radius * 0.7),
            ],
            fill=fill,
        )
    elif shape == "star":
        draw.polygon(_star(cx, cy, radius * 1.1), fill=fill)
    elif shape == "diamond":
        draw.polygon(
            [(cx, cy - radius), (cx + radius * 0.75, cy), (cx, cy + radius), (cx - radius * 0.75, cy)],
            fill=fill,
        )
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return image


def render(grammar: Grammar, picture: Picture, size: int = IMAGE_SIZE):
    """Draw ``picture`` with the grammar's palette."""
    if picture.kind == "sign":
        return render_word(picture.word, grammar.colors[picture.background], size)
    return render_shape(
        grammar.colors[picture.color],
        picture.shape,
        grammar.colors[picture.background],
        size=size,
        jitter=picture.jitter,
    )


# --- Prompts and what they ask for --------------------------------------------------------------------

JitterSource = Callable[[random.Random], Jitter]


def text_example(grammar: Grammar, rng: random.Random, kind: str, jitter: JitterSource) -> Example:
    """A text-to-image item: a sign ("word", on a random sign background) or a shape ("shape")."""
    if kind == "word":
        word = rng.choice(grammar.words)
        target = Picture("sign", rng.choice(grammar.word_backgrounds), word=word)
        return Example("word", grammar.word_caption(word), (), target)
    color, shape, background = rng.choice(grammar.shape_triples())
    target = Picture("shape", background, color=color, shape=shape, jitter=jitter(rng))
    return Example("shape", grammar.shape_caption(color, shape, background), (), target)


def _other(rng: random.Random, choices, *excluded):
    return rng.choice([c for c in choices if c not in excluded])


def _sign(grammar: Grammar, rng: random.Random, *not_backgrounds: str) -> Picture:
    background = _other(rng, grammar.word_backgrounds, *not_backgrounds)
    return Picture("sign", background, word=rng.choice(grammar.words))


def _shape(grammar, rng, jitter: JitterSource, *, not_color=(), not_shape="", not_background=()) -> Picture:
    color = _other(rng, grammar.colors, *not_color)
    background = _other(rng, grammar.colors, color, *not_background)
    shape = _other(rng, grammar.shapes, not_shape)
    return Picture("shape", background, color=color, shape=shape, jitter=jitter(rng))


def _any(grammar, rng, jitter: JitterSource, *, not_background=()) -> Picture:
    """A reference whose background is what counts: a sign or a shape, equally often."""
    if rng.random() < 0.5:
        return _sign(grammar, rng, *not_background)
    return _shape(grammar, rng, jitter, not_color=not_background, not_background=not_background)


def edit_example(grammar: Grammar, name: str, rng: random.Random, jitter: JitterSource) -> Example:
    """An item of the grammar's edit ``name`` with random references, and the picture it asks for."""
    edit = grammar.edits[name]
    if name == "sign_on_color":
        ref = _sign(grammar, rng)
        color = _other(rng, grammar.word_backgrounds, ref.background)
        return Example(name, edit.caption(color=color), (ref,), replace(ref, background=color))
    if name == "new_word":
        ref = _sign(grammar, rng)
        word = _other(rng, grammar.words, ref.word)
        return Example(name, edit.caption(word=word), (ref,), replace(ref, word=word))
    if name == "word_on_background":
        sign = _sign(grammar, rng)
        # The second image's background must suit a sign (not white) and differ from the first's.
        second = _any(grammar, rng, jitter, not_background=(sign.background, "white"))
        target = replace(sign, background=second.background)
        return Example(name, edit.caption(), (sign, second), target)
    if name in ("shape_on_background", "shape_from_three"):
        shape = _shape(grammar, rng, jitter)
        first = _any(grammar, rng, jitter, not_background=(shape.color, shape.background))
        target = replace(shape, background=first.background)
        if name == "shape_on_background":
            return Example(name, edit.caption(shape=shape.shape), (first, shape), target)
        other = _shape(grammar, rng, jitter, not_shape=shape.shape)  # image 2: another shape, left out
        return Example(name, edit.caption(shape=shape.shape), (first, other, shape), target)
    raise ValueError(f"no example builder for the edit {name!r}")


def inpaint_example(grammar: Grammar, rng: random.Random, jitter: JitterSource) -> Example:
    """A shape prompt with image 1 showing another shape at the same place on the same background: what
    klein inpainting asks (the pipeline passes the image being repainted as image 1). A sign's word is
    repainted with the `new_word` edit's prompt instead ("image 1 with the word DOG")."""
    ref = _shape(grammar, rng, jitter)
    color = _other(rng, grammar.colors, ref.background)
    shape = rng.choice(grammar.shapes)
    target = replace(ref, color=color, shape=shape)
    return Example("inpaint", grammar.shape_caption(color, shape, ref.background), (ref,), target)


def change_mask(picture: Picture, size: int = IMAGE_SIZE):
    """A mask (white = repaint) over the part of ``picture`` an inpainting prompt replaces: the sign's face
    for a sign, a square round the shape (its placement enlarged by a quarter) for a shape."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    scale = size / IMAGE_SIZE
    if picture.kind == "sign":
        face = [26, 78, 230, 178]  # inside the sign's frame (18, 70, 238, 186)
        draw.rectangle([round(v * scale) for v in face], fill=255)
    else:
        radius, dx, dy = picture.jitter
        half = 1.25 * radius * scale
        cx, cy = (128 + dx) * scale, (128 + dy) * scale
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=255)
    return mask


def example_to_json(example: Example) -> dict:
    from dataclasses import asdict

    return asdict(example)


def example_from_json(data: dict) -> Example:
    def picture(p: dict) -> Picture:
        return Picture(**{**p, "jitter": tuple(p["jitter"])})

    return Example(
        data["task"], data["caption"], tuple(picture(p) for p in data["references"]), picture(data["target"])
    )
