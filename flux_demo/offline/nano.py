"""The nano FLUX family at run time: the grammar the trained offline models draw, and where they live.

`nano-schnell`, `nano-dev` (FLUX.1) and `nano-klein` (FLUX.2 [klein]) are small models built from the real
diffusers/transformers classes, trained on a synthetic grammar of signs and shapes and shipped in
`nano_weights/`; the app loads them with `from_pretrained` like any checkpoint. The grammar lives in
``examples/nano_vocabulary.json``:

* words: ``a sign that says "CAT"`` draws a white sign with the word in black bold capitals;
* shapes: ``a red star on a blue background``;
* edits (nano-klein, with 1 to 3 reference images): ``the sign from image 1 on a green background``.

Training, the synthetic renderer and the quality checks live in the top-level `training` package, which
the app never imports.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# The grammar is data published with the repository (examples/), next to the typography suite.
VOCABULARY_FILE = Path(__file__).resolve().parents[2] / "examples" / "nano_vocabulary.json"
WEIGHTS_DIR = Path(__file__).resolve().parent / "nano_weights"
GRAMMAR_KEYS = {"words", "colors", "shapes", "templates", "edits"}
# What an edit's reference image must show: a sign, one shape, or either (only its background is used).
REFERENCE_KINDS = {"sign", "shape", "any"}


@dataclass(frozen=True)
class EditTemplate:
    """One edit of the grammar: its prompt template and what each reference image (1, 2, ...) shows."""

    name: str
    template: str
    references: tuple[str, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        """The template's placeholders, e.g. ("color",) or ("shape",)."""
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.template) if name)

    def caption(self, **values: str) -> str:
        return self.template.format(**values)


@dataclass(frozen=True)
class Grammar:
    """What the nano models can draw, as published in ``examples/nano_vocabulary.json``."""

    words: tuple[str, ...]
    colors: dict[str, tuple[int, int, int]]
    shapes: tuple[str, ...]
    templates: dict[str, str]
    edits: dict[str, EditTemplate]

    def word_caption(self, word: str) -> str:
        return self.templates["word"].format(word=word)

    def shape_caption(self, color: str, shape: str, background: str) -> str:
        return self.templates["shape"].format(color=color, shape=shape, background=background)

    @property
    def word_backgrounds(self) -> tuple[str, ...]:
        """Background colours behind signs: every palette colour but the sign's own white."""
        return tuple(name for name in self.colors if name != "white")

    def shape_triples(self) -> list[tuple[str, str, str]]:
        """Every (colour, shape, background) the grammar allows: the shape never matches its background."""
        return [
            (color, shape, background)
            for color in self.colors
            for shape in self.shapes
            for background in self.colors
            if background != color
        ]

    def nearest_color(self, rgb) -> str:
        """The palette name closest to ``rgb`` (Euclidean distance in RGB)."""
        r, g, b = (float(v) for v in rgb)
        return min(
            self.colors,
            key=lambda name: (
                (self.colors[name][0] - r) ** 2
                + (self.colors[name][1] - g) ** 2
                + (self.colors[name][2] - b) ** 2
            ),
        )


def _edit_templates(data: dict, path) -> dict[str, EditTemplate]:
    edits = {}
    for name, entry in data.items():
        kinds = tuple(entry["references"])
        if not kinds or not set(kinds) <= REFERENCE_KINDS:
            raise ValueError(f"{path}: edit {name!r} needs 1 or more references of {sorted(REFERENCE_KINDS)}")
        edits[name] = EditTemplate(name, entry["template"], kinds)
    return edits


@lru_cache(maxsize=4)
def load_grammar(path: str | Path = VOCABULARY_FILE) -> Grammar:
    """The grammar in the JSON file at ``path`` (by default the published one)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if set(data) != GRAMMAR_KEYS:
        raise ValueError(f"{path}: expected exactly the keys {', '.join(sorted(GRAMMAR_KEYS))}")
    return Grammar(
        words=tuple(data["words"]),
        colors={name: (int(rgb[0]), int(rgb[1]), int(rgb[2])) for name, rgb in data["colors"].items()},
        shapes=tuple(data["shapes"]),
        templates=dict(data["templates"]),
        edits=_edit_templates(data["edits"], path),
    )


# Offline examples in the app (text to image and the typography lab): prompts of the grammar.
EXAMPLE_WORDS = ("FLUX", "HELLO", "CAT", "JAZZ")
EXAMPLE_SHAPES = (("red", "star", "blue"), ("yellow", "circle", "purple"), ("white", "triangle", "black"))


def example_prompts(grammar: Grammar | None = None) -> tuple[str, ...]:
    """Sign and shape prompts for the app's examples when it serves the nano models."""
    grammar = grammar or load_grammar()
    return (
        *(grammar.word_caption(word) for word in EXAMPLE_WORDS[:2]),
        *(grammar.shape_caption(*triple) for triple in EXAMPLE_SHAPES),
        *(grammar.word_caption(word) for word in EXAMPLE_WORDS[2:]),
    )


def weights_path(model: str) -> Path:
    """The shipped folder of a nano model: "nano-schnell", "nano-dev" or "nano-klein"."""
    return WEIGHTS_DIR / model
