"""Where each word of the prompt lands: per-word maps from the MM-DiT's joint attention (ConceptAttention).

ConceptAttention (Helbling et al. 2025, arXiv 2502.04320) sends extra "concept" tokens through the
double-stream blocks on the *text* stream's weights (its modulation, projections and MLP). They attend to
themselves and to the image tokens, but nothing attends to them, so the picture does not change. A
concept's map is the dot product of its attention output with each image token's attention output (the
output space, sharper than the attention weights), averaged over the later double-stream blocks, with a
softmax over the concepts at each image token.

Here the concepts are the prompt's own words: each starts as the mean of its tokens in the text stream the
first double-stream block receives, and the competitors of the softmax are all the prompt's words, so a
word's map says which part of the picture that word wins. The concept pass runs each double-stream block a
second time with the concepts in place of the text (the block's own forward, so one piece of code serves
FLUX.1 and FLUX.2); its cost is that of the double-stream blocks again, paid only when maps are asked for.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from flux_demo.models import ModelSpec
from flux_demo.validation import InvalidInput
from flux_demo.watching.steps import own_thread

MAX_WORDS = 8  # maps returned per request
WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")  # letters and digits, with inner apostrophes and hyphens


@dataclass(frozen=True)
class Word:
    """One word of the prompt and the positions of its tokens in the text stream the transformer reads."""

    text: str
    positions: tuple[int, ...]


def prompt_words(prompt: str) -> list[str]:
    """The prompt's distinct words in order (case-insensitive; the first spelling is kept)."""
    seen: dict[str, str] = {}
    for match in WORD.finditer(prompt):
        seen.setdefault(match.group().casefold(), match.group())
    return list(seen.values())


def check_words(words: str, prompt: str) -> list[str]:
    """The chosen words (comma- or space-separated, "" for all) as they appear in the prompt; at most
    MAX_WORDS. Raises InvalidInput naming `words` for a word the prompt does not contain."""
    available = {word.casefold(): word for word in prompt_words(prompt)}
    if not isinstance(words, str):
        raise InvalidInput("words", "input.words_text", value=repr(words)[:80])
    asked = [w for w in re.split(r"[,\s]+", words.strip()) if w] or list(available.values())
    chosen = []
    for word in asked:
        found = available.get(word.strip("\"'“”").casefold())
        if found is None:
            listed = ", ".join(available.values()) or "none"
            raise InvalidInput("words", "input.word_not_in_prompt", word=repr(word[:40]), words=listed)
        if found not in chosen:
            chosen.append(found)
    if len(chosen) > MAX_WORDS:
        raise InvalidInput("words", "input.too_many_words", limit=MAX_WORDS, count=len(chosen))
    return chosen


def _common_prefix(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def locate_words(pipe, spec: ModelSpec, prompt: str) -> list[Word]:
    """Every word of the prompt with the positions of its tokens in the attended text stream (T5's tokens
    for FLUX.1, the Qwen3 chat template's for FLUX.2 [klein]); words cut off by `max_sequence_length`
    are left out. A word's tokens are those its end adds to the tokenization of the text before it."""
    tokenizer = getattr(pipe, spec.token_tokenizer)
    text, offset = prompt, 0
    if spec.chat_template:
        messages = [{"role": "user", "content": prompt}]
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        offset = text.index(prompt)

    def ids(part: str) -> list[int]:
        return tokenizer(part, add_special_tokens=False)["input_ids"]

    full = ids(text)
    located: dict[str, Word] = {}
    for match in WORD.finditer(prompt):
        start = _common_prefix(full, ids(text[: offset + match.start()].rstrip()))
        end = _common_prefix(full, ids(text[: offset + match.end()]))
        positions = tuple(p for p in range(start, max(end, start + 1)) if p < spec.max_sequence_length)
        key = match.group().casefold()
        if positions and key not in located:
            located[key] = Word(match.group(), positions)
    return list(located.values())


class WordMapper:
    """Computes ConceptAttention maps for `words` at every transformer call while `attached`."""

    def __init__(self, words: list[Word], layers: slice | None = None):
        self.words = words
        self.layers = layers
        self.latest = None  # (words, image tokens) maps of the last transformer call, float32 on the CPU
        self._scores = None
        self._concepts = None
        self._attention = None
        self._in_concept_pass = False

    @contextlib.contextmanager
    def attached(self, transformer):
        """Hook the double-stream blocks of `transformer` (the later half is scored, as in the paper)."""
        blocks = list(transformer.transformer_blocks)
        scored = self.layers or slice(len(blocks) // 2, None)
        scored_ids = {id(block) for block in blocks[scored]}
        handles = [transformer.register_forward_pre_hook(own_thread(self._start_call))]
        for index, block in enumerate(blocks):
            handles.append(block.attn.register_forward_hook(own_thread(self._keep_attention)))
            handles.append(
                block.register_forward_hook(
                    own_thread(self._concept_pass(index, id(block) in scored_ids)), with_kwargs=True
                )
            )
        handles.append(transformer.register_forward_hook(own_thread(self._finish_call)))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self._scores = self._concepts = self._attention = None

    def _start_call(self, _module, _args):
        self._scores, self._concepts = None, None

    def _keep_attention(self, _module, _args, output):
        self._attention = output  # (image attention output, text or concept attention output)

    def _concept_pass(self, index: int, scored: bool):
        def hook(block, _args, kwargs, _output):
            import torch

            if self._in_concept_pass:
                return
            image_output = self._attention[0]
            text = kwargs["encoder_hidden_states"]
            if index == 0:
                self._concepts = self._initial_concepts(text)
            cos, sin = kwargs["image_rotary_emb"]
            first = [word.positions[0] for word in self.words]
            rotary = tuple(torch.cat([part[first], part[text.shape[1] :]]) for part in (cos, sin))
            self._in_concept_pass = True
            try:
                self._concepts, _ = block(
                    **{**kwargs, "encoder_hidden_states": self._concepts, "image_rotary_emb": rotary}
                )
            finally:
                self._in_concept_pass = False
            if scored:
                concept_output = self._attention[1]
                score = (concept_output.float() @ image_output.float().transpose(1, 2))[0]
                self._scores = score if self._scores is None else self._scores + score

        return hook

    def _initial_concepts(self, text):
        import torch

        return torch.stack([text[:, list(word.positions)].mean(dim=1) for word in self.words], dim=1)

    def _finish_call(self, _module, _args, _output):
        if self._scores is not None:
            self.latest = self._scores.softmax(dim=0).cpu()


def as_grid(maps, spec: ModelSpec, width: int, height: int):
    """Maps (words, image tokens) as (words, rows, columns) on the token grid."""
    rows, columns = height // spec.size_multiple, width // spec.size_multiple
    return maps.view(len(maps), rows, columns)


def overlay(image, word_map, colour=(255, 40, 40)):
    """`image` with `word_map` (rows x columns, 0..1) laid over it: the stronger, the more `colour`."""
    import numpy as np
    from PIL import Image

    strength = Image.fromarray((np.asarray(word_map, dtype=np.float32) * 255).astype(np.uint8), "L")
    strength = strength.resize(image.size, Image.Resampling.BILINEAR)
    base = image.convert("RGB")
    dimmed = Image.blend(base, Image.new("RGB", base.size, (0, 0, 0)), 0.45)
    tint = Image.blend(base, Image.new("RGB", base.size, colour), 0.55)
    return Image.composite(tint, dimmed, strength)
