"""Where each word of the prompt lands: per-word maps from the transformer's own cross-attention.

In every single-stream block, hooks read the queries and keys the block's attention computes (after its
RMS norms `norm_q` and `norm_k`, which FLUX.1 and FLUX.2 share) and apply the rotary embedding as the
block does; a word's score at an image token is the attention probability from that token to the word's
tokens (softmax over all the keys, as in the block), averaged over the heads and blocks. Each map is scaled
so its strongest image token is 1. Nothing the model computes changes, so the picture does not either; the
cost is one more query-key product per single-stream block, paid only when maps are asked for.

On the nano models this finds a sign's word on nano-klein (its map's share inside the sign 0.73-0.90 for an
area of 0.34), which reads the prompt from its tokens; it replaced a ConceptAttention pass (Helbling et al.
2025: the words sent through the double-stream blocks and scored in attention-output space), which did not
(0.10-0.53). The FLUX.1 nano models draw the prompt from CLIP's pooled vector, so neither method finds the
word there (docs/how-flux-works.md, "Where each word lands").
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
    """Cross-attention maps for `words` at every transformer call while `attached`: where the image tokens
    look for each word in the single-stream blocks."""

    CHUNK = 1 << 26  # attention scores computed at once (image queries x keys x heads), 256 MB in float32

    def __init__(self, words: list[Word], layers: slice | None = None):
        self.words = words
        self.layers = layers  # the single-stream blocks read (all of them by default)
        self.latest = None  # (words, image tokens) maps of the last transformer call, float32 on the CPU
        self._sums = None
        self._count = 0
        self._text_length = 0
        self._rotary = None
        self._query = None

    @contextlib.contextmanager
    def attached(self, transformer):
        """Hook the single-stream blocks of `transformer`: each block's queries and keys are read as its
        attention computes them (after the RMS norms `norm_q` and `norm_k`, the same in FLUX.1 and
        FLUX.2), so nothing the model computes changes."""
        blocks = list(transformer.single_transformer_blocks)[self.layers or slice(None)]
        # Only this call's forwards are read (`own_thread`): another job may run between its steps.
        handles = [transformer.register_forward_pre_hook(own_thread(self._start_call), with_kwargs=True)]
        for block in blocks:
            handles.append(block.register_forward_pre_hook(own_thread(self._keep_rotary), with_kwargs=True))
            handles.append(block.attn.norm_q.register_forward_hook(own_thread(self._keep_query)))
            handles.append(block.attn.norm_k.register_forward_hook(own_thread(self._score)))
        handles.append(transformer.register_forward_hook(own_thread(self._finish_call)))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self._sums = self._rotary = self._query = None

    def _start_call(self, _module, _args, kwargs):
        self._sums, self._count = None, 0
        self._text_length = kwargs["encoder_hidden_states"].shape[1]

    def _keep_rotary(self, _block, _args, kwargs):
        self._rotary = kwargs.get("image_rotary_emb")

    def _keep_query(self, _module, _args, query):
        self._query = query  # (batch, text + image tokens, heads, head size)

    def _score(self, _module, _args, key):
        """The attention probability from each image token to each word's tokens (summed over them), over
        all keys as the block's attention has it, averaged over the heads."""
        import torch
        from diffusers.models.embeddings import apply_rotary_emb

        query, self._query = self._query, None
        if query is None:
            return
        if self._rotary is not None:
            query = apply_rotary_emb(query, self._rotary, sequence_dim=1)
            key = apply_rotary_emb(key, self._rotary, sequence_dim=1)
        queries = query[0, self._text_length :].transpose(0, 1).float()  # heads, image tokens, head size
        keys = key[0].transpose(0, 1).float()  # heads, all tokens, head size
        scale = queries.shape[-1] ** -0.5
        rows = max(1, self.CHUNK // (keys.shape[0] * keys.shape[1]))
        parts = []
        for chunk in queries.split(rows, dim=1):
            logits = chunk @ keys.transpose(1, 2) * scale
            probability = (logits - logits.logsumexp(dim=-1, keepdim=True)).exp()
            parts.append(
                torch.stack([probability[..., list(word.positions)].sum(-1) for word in self.words]).mean(1)
            )
        maps = torch.cat(parts, dim=1)
        self._sums = maps if self._sums is None else self._sums + maps
        self._count += 1

    def _finish_call(self, _module, _args, _output):
        if self._sums is not None:
            maps = self._sums / self._count
            self.latest = (maps / maps.amax(dim=1, keepdim=True).clamp_min(1e-12)).cpu()


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
