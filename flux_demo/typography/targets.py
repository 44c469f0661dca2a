"""Target texts: what a prompt asks to be written (the quoted parts), and quoting text into a prompt.

Linear in the prompt's length: each quote kind is found by one left-to-right scan, never by a
backtracking pattern.
"""

from __future__ import annotations

from flux_demo.validation import InvalidInput

# Paired quotes whose content is anything up to the first closing mark (newlines included).
_PAIRED = {'"': '"', "“": "”", "「": "」", "『": "』"}
# Single quotes only open after a non-word character and only close before one, and their content
# starts and ends with a visible character on one line, so the apostrophes in "Don't" or "World's"
# never start or end a target, while 'Don't Panic' is one target.
_SINGLE = {"'": "'", "‘": "’"}


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"  # what the `re` module calls \w


def _next_index(length: int, hit) -> list[int]:
    """For each position k, the smallest j >= k where `hit(j)`, or `length` when there is none."""
    nxt = [length] * (length + 1)
    for j in range(length - 1, -1, -1):
        nxt[j] = j if hit(j) else nxt[j + 1]
    return nxt


def _quoted_spans(prompt: str) -> list[tuple[int, int]]:
    """(start, end) of each quoted text, leftmost first and never overlapping: one pass plus lookup
    tables, so the work is linear in the prompt's length whatever it contains."""
    n = len(prompt)
    closing = {mark: _next_index(n, lambda j, m=mark: prompt[j] == m) for mark in _PAIRED.values()}
    newline = _next_index(n, lambda j: prompt[j] == "\n")
    single_close = {
        mark: _next_index(
            n,
            lambda j, m=mark: (
                prompt[j] == m
                and j > 0
                and not prompt[j - 1].isspace()
                and (j + 1 == n or not _is_word(prompt[j + 1]))
            ),
        )
        for mark in _SINGLE.values()
    }
    spans, i = [], 0
    while i < n:
        char, end = prompt[i], None
        if char in _PAIRED:
            j = closing[_PAIRED[char]][i + 1]
            end = j if j < n else None
        elif (
            char in _SINGLE
            and (i == 0 or not _is_word(prompt[i - 1]))
            and i + 2 < n
            and not prompt[i + 1].isspace()
        ):
            j = single_close[_SINGLE[char]][i + 2]
            end = j if j < n and j < newline[i + 1] else None
        if end is None:
            i += 1
            continue
        spans.append((i + 1, end))
        i = end + 1
    return spans


# Quote pairs quote_prompt tries in order; the first that survives a round trip wins.
_QUOTE_PAIRS = (('"', '"'), ("“", "”"), ("'", "'"), ("「", "」"))


def collapse_spaces(text: str) -> str:
    """Newlines and runs of spaces become one space: OCR lines are joined with single spaces."""
    return " ".join(text.split())


def extract_targets(prompt: str) -> list[str]:
    """Texts the prompt asks to be written, in prompt order (quotes removed, spaces collapsed)."""
    texts = (collapse_spaces(prompt[start:end]) for start, end in _quoted_spans(prompt))
    return [text for text in texts if text]


def quote_prompt(text: str, scene: str) -> str:
    """Build a prompt that quotes ``text`` in ``scene`` (``{text}`` marks where it goes)."""
    text = text.strip()
    if not text:
        raise InvalidInput("text", "input.text_empty")
    scene = scene.strip() or "A sign that says {text}"
    for opening, closing in _QUOTE_PAIRS:
        quoted = f"{opening}{text}{closing}"
        if "{text}" in scene:
            prompt = scene.replace("{text}", quoted)
        else:
            prompt = f"{scene.rstrip(' ,.')}, with the text {quoted}"
        if collapse_spaces(text) in extract_targets(prompt):
            return prompt
    raise InvalidInput("text", "input.cannot_quote", text=repr(text), quotes="\" “” ' 「」")
