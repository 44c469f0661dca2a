"""The visitor's recent results, kept in their own browser: settings and a small thumbnail per run.

The history lives in a `gr.BrowserState` (the browser's localStorage), never on the server: each run adds
an entry (the run's settings, as a link carries them, and a ~2 KB WEBP thumbnail of its first image as a
data URL, never the image itself), newest first, at most `MAX_ENTRIES`. It survives a reload of the
page. Picking an entry offers "Reuse settings" (fills the form, as a link or a dropped PNG does) and
"Copy link"; "Clear history" empties it.
What comes back from the browser is checked like any input: malformed entries are dropped, thumbnails are
size-checked before they are decoded, and settings go through `permalink.parse_settings`.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence
from urllib.parse import parse_qsl

import gradio as gr
from gradio.context import Context
from PIL import Image

from flux_demo import permalink
from flux_demo.messages import Message
from flux_demo.models import get_spec
from flux_demo.ui import share
from flux_demo.ui.i18n import say, t
from flux_demo.ui.widgets import as_text, event_handler

MAX_ENTRIES = 12
THUMB_SIDE = 96
MAX_THUMB_CHARS = 16_000  # base64 characters of one thumbnail
MAX_VALUE_CHARS = 2_100  # a setting's text (the prompt is the longest: 2,000 characters)
THUMB_PREFIX = "data:image/webp;base64,"
KEPT_KEYS = (*permalink.SETTING_KEYS, *permalink.RUN_KEYS)
STORAGE_KEY = "flux-demo-history"
# Not a secret: the browser's copy is checked on every use like any visitor input. A fixed value keeps
# the history readable after the server restarts (Gradio's default is a new random key per start).
STORAGE_SECRET = "flux-demo-history-v1"
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def thumbnail(image: Image.Image) -> str:
    """A `THUMB_SIDE` px WEBP of `image`, as a data URL (about 2 KB)."""
    image = image.convert("RGB")
    image.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=60)
    return THUMB_PREFIX + base64.b64encode(buffer.getvalue()).decode()


def entry(image: Image.Image, details: dict, model_keys: Sequence[str]) -> dict | None:
    """A history entry for a run: its checked settings as link text, and a thumbnail of `image`."""
    query = permalink.link_query({key: details.get(key) for key in KEPT_KEYS})
    values, _problems = permalink.parse_settings(dict(parse_qsl(query)), model_keys)
    if "prompt" not in values or "seed" not in values:
        return None
    return {"settings": dict(parse_qsl(permalink.link_query(values))), "thumb": thumbnail(image)}


def checked(history) -> list[dict]:
    """The well-formed entries of a history that came back from the browser (at most `MAX_ENTRIES`)."""
    if not isinstance(history, list):
        return []
    return [item for item in history[:MAX_ENTRIES] if _well_formed(item)]


def _well_formed(item) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("settings"), dict):
        return False
    thumb = item.get("thumb")
    if not isinstance(thumb, str) or not thumb.startswith(THUMB_PREFIX) or len(thumb) > MAX_THUMB_CHARS:
        return False
    if not _BASE64.match(thumb[len(THUMB_PREFIX) :]):
        return False
    settings = item["settings"]
    return all(
        key in KEPT_KEYS and isinstance(value, str) and len(value) <= MAX_VALUE_CHARS
        for key, value in settings.items()
    )


def added(history, image, details, model_keys: Sequence[str]) -> list[dict]:
    """`history` with the run (its first `image` and its `details`) in front."""
    entries = checked(history)
    new = entry(image, details, model_keys) if image is not None and isinstance(details, dict) else None
    return [new, *entries][:MAX_ENTRIES] if new else entries


def gallery_items(history: Sequence[dict]) -> list[tuple]:
    """(thumbnail, caption) for each entry; a thumbnail that does not decode is shown blank."""
    items = []
    for item in history:
        try:
            image = Image.open(io.BytesIO(base64.b64decode(item["thumb"][len(THUMB_PREFIX) :])))
            if max(image.size) > THUMB_SIDE:
                raise ValueError("thumbnail too large")
            image = image.convert("RGB")
        except Exception:
            image = Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), "white")
        items.append((image, caption(item["settings"])))
    return items


def caption(settings: dict) -> str:
    model = settings.get("model", "")
    try:
        name = get_spec(model).name
    except KeyError:
        name = model
    return as_text(say(Message("ui.history_entry", model=name, seed=settings.get("seed", "?"))), 80)


def build(form: dict, model_keys: Sequence[str]) -> tuple[gr.BrowserState, gr.Gallery]:
    """The history panel under a tab's results; returns the state (for adding runs) and its gallery."""
    history = gr.BrowserState([], storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
    with gr.Accordion(t("history"), open=False, elem_id="history"):
        gr.Markdown(t("history_info"))
        gallery = gr.Gallery(
            show_label=False, columns=6, height="auto", allow_preview=False, elem_id="history-gallery"
        )
        picked = gr.JSON(visible=False)  # the chosen entry's checked settings
        with gr.Row():
            reuse = gr.Button(t("history_reuse"), size="sm", elem_id="history-reuse")
            clear = gr.Button(t("history_clear"), size="sm", variant="stop", elem_id="history-clear")
        share.add_copy_link(picked, "generate", elem_prefix="history")

    @event_handler()
    def show(stored):
        return gallery_items(checked(stored))

    @event_handler()
    def pick(stored, event: gr.SelectData):
        entries = checked(stored)
        if not isinstance(event.index, int) or not 0 <= event.index < len(entries):
            return None
        values, _problems = permalink.parse_settings(entries[event.index]["settings"], model_keys)
        return values

    @event_handler()
    def apply(values):
        if not isinstance(values, dict):
            return [gr.skip() for _ in form]
        values, _problems = permalink.parse_settings(_as_text(values), model_keys)
        return share.form_updates(form, values, model_keys)

    def empty():
        gr.Info(say("ui.history_cleared"))
        return [], [], None

    Context.root_block.load(show, history, gallery, queue=False, api_visibility="private")
    gallery.select(pick, history, picked, queue=False, api_visibility="private")
    reuse.click(apply, picked, list(form.values()), queue=False, api_visibility="private")
    clear.click(empty, None, [history, gallery, picked], queue=False, api_visibility="private")
    return history, gallery


def _as_text(values: dict) -> dict[str, str]:
    """Checked values back as link text, so they are checked again on the way into the form."""
    return dict(parse_qsl(permalink.link_query(values)))
