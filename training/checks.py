"""Does an image show what its prompt asked for? The word read back by OCR, colours by nearest palette
colour. Used by the training checks, the quality benchmark and the tests."""

from __future__ import annotations

from flux_demo.offline.nano import Grammar
from training.grammar_images import Example, Picture

BORDER = 8  # pixels all round that count as the background


def reads_word(image, word: str) -> bool:
    """Whether RapidOCR reads ``word`` back from ``image`` (the project's normalised match)."""
    from flux_demo.typography import score_text

    return bool(score_text(image, word).all_normalised)


def colour_checks(image, grammar: Grammar, background: str, color: str) -> tuple[bool, bool]:
    """(background right, shape colour right) for a shape image, by nearest palette colour.

    The background is the median of the border pixels (8 px all round); the shape's colour is the most
    common palette colour among the other pixels, leaving out the background's colour.
    """
    import numpy as np

    array = np.asarray(image.convert("RGB")).astype(np.float32)
    predicted_background = background_colour(array, grammar)
    names = list(grammar.colors)
    palette = np.array([grammar.colors[name] for name in names], dtype=np.float32)
    nearest = ((array.reshape(-1, 1, 3) - palette[None]) ** 2).sum(-1).argmin(1)
    counts = np.bincount(nearest, minlength=len(names))
    counts[names.index(predicted_background)] = 0
    predicted_shape = names[int(counts.argmax())]
    return predicted_background == background, predicted_shape == color


def background_colour(array, grammar: Grammar) -> str:
    """The palette colour nearest the median of an image's border pixels (``array``: H x W x 3)."""
    import numpy as np

    b = BORDER
    border = np.concatenate([a.reshape(-1, 3) for a in (array[:b], array[-b:], array[:, :b], array[:, -b:])])
    return grammar.nearest_color(np.median(border, axis=0))


def check_picture(image, picture: Picture, grammar: Grammar) -> dict[str, bool]:
    """The checks that apply to ``picture``: a sign's word and background, a shape's background and colour."""
    if picture.kind == "sign":
        import numpy as np

        background = background_colour(np.asarray(image.convert("RGB")).astype(np.float32), grammar)
        return {"word": reads_word(image, picture.word), "background": background == picture.background}
    background, color = colour_checks(image, grammar, picture.background, picture.color)
    return {"background": background, "shape_color": color}


def check_example(image, example: Example, grammar: Grammar) -> dict[str, bool]:
    """The checks of what ``example``'s prompt asks for: `check_picture` of its target, less the background
    of a text-to-image sign (``a sign that says "CAT"`` names no background; training draws it at random)."""
    checks = check_picture(image, example.target, grammar)
    if example.task == "word":
        del checks["background"]
    return checks
