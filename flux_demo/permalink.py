"""Shareable settings: a result's link, and reading settings back from a link or a PNG's metadata.

A link carries only parameters (never a server-side file, which disappears when the cache is cleared):
`?prompt=...&model=...&seed=...&steps=...&guidance=...&width=...&height=...&tab=...`. A PNG made by
this app carries the same keys as text chunks, so one parser serves both. Bad values are dropped with
a note instead of breaking the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flux_demo import loras, validation
from flux_demo.messages import Message
from flux_demo.models import MIN_SIDE, get_spec
from flux_demo.validation import MAX_SEED, InvalidInput

TABS = ("generate", "compare", "typography", "edit", "how")  # every tab id in ui/app.py
SETTING_KEYS = ("prompt", "model", "seed", "steps", "guidance", "width", "height")
COMPARE_KEYS = ("models", "settings")  # the comparison's model list and per-model (steps, guidance)
# Edits: the mode, the strength, and the input images' SHA-256 (a link carries 12-digit prefixes; images
# cannot travel in a link, so the form asks for them again).
EDIT_KEYS = ("mode", "strength", "references")
RUN_KEYS = ("loras", "num_images")  # a run's LoRAs ("reference:scale,...") and its image count
LINK_HASH_DIGITS = 12


def link_query(settings: Mapping[str, object], tab: str = "generate") -> str:
    """The query string (without '?') that reproduces `settings` (SETTING_KEYS and COMPARE_KEYS)."""
    keys = (*SETTING_KEYS, *COMPARE_KEYS, *EDIT_KEYS, *RUN_KEYS)
    params: dict[str, Any] = {key: settings[key] for key in keys if settings.get(key) not in (None, [], ())}
    if "loras" in params:
        params["loras"] = loras.settings_text(params["loras"])
    if isinstance(params.get("references"), (list, tuple)):
        params["references"] = ",".join(h[:LINK_HASH_DIGITS] for h in params["references"])
    if isinstance(params.get("models"), (list, tuple)):
        params["models"] = ",".join(params["models"])
    if isinstance(params.get("settings"), Mapping):  # per-model steps and guidance: "dev:28:3.5,klein:4:1"
        params["settings"] = ",".join(f"{m}:{st:g}:{g:g}" for m, (st, g) in params["settings"].items())
    if isinstance(params.get("guidance"), float):
        params["guidance"] = f"{params['guidance']:g}"
    if tab != "generate":
        params["tab"] = tab
    return urlencode(params)


def _number(text: str, name: str, allowed: Message) -> float:
    """`text` as a number (an int when whole); raises InvalidInput naming `name` and `allowed`."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(name, "input.must_be", allowed=allowed, value=repr(text[:40])) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(name, "input.must_be", allowed=allowed, value=repr(text[:40]))
    return int(value) if value.is_integer() else value


def parse_settings(params: Mapping[str, str], model_keys: Sequence[str]) -> tuple[dict, list[Message]]:
    """Checked form values from link or PNG parameters, and a note for each value that was ignored.

    Every value is checked on its own, so one bad parameter never discards the good ones.
    """
    values: dict[str, Any] = {}
    problems: list[Message] = []

    def attempt(key: str, convert) -> None:
        raw = params.get(key)
        if raw is None or str(raw).strip() == "":
            return
        try:
            values[key] = convert(str(raw))
        except (InvalidInput, ValueError, OverflowError) as err:
            # The reason without the field name, which the notice already shows ("Ignored seed='-3': ...").
            reason = err.reason if isinstance(err, InvalidInput) else Message("link.bad_value")
            problems.append(Message("link.ignored", key=key, value=repr(str(raw)[:40]), reason=reason))

    attempt("prompt", validation.check_prompt)
    attempt("model", lambda raw: validation.check_model(raw, model_keys).key)
    spec = get_spec(values.get("model", model_keys[0]))
    attempt(
        "seed", lambda raw: validation.check_integer("seed", _integer("seed", raw, 0, MAX_SEED), 0, MAX_SEED)
    )
    attempt(
        "steps",
        lambda raw: validation.check_integer(
            "steps", _integer("steps", raw, spec.min_steps, spec.max_steps), spec.min_steps, spec.max_steps
        ),
    )
    attempt("guidance", lambda raw: _guidance(spec, _number(raw, "guidance", _guidance_range(spec))))
    for side in ("width", "height"):
        attempt(side, lambda raw, s=side: _side(s, raw, spec))
    attempt("models", lambda raw: _models(raw, model_keys))
    attempt("settings", lambda raw: _model_settings(raw, model_keys))
    attempt("mode", _mode)
    attempt("strength", _strength)
    attempt("references", _references)
    attempt("loras", loras.parse_settings_text)
    attempt(
        "num_images",
        lambda raw: validation.check_integer(
            "num_images", _integer("num_images", raw, 1, validation.MAX_IMAGES), 1, validation.MAX_IMAGES
        ),
    )
    attempt("tab", _tab)
    return values, problems


def _integer(name: str, raw: str, low: int, high: int) -> float:
    return _number(raw, name, Message("allowed.integer_range", low=low, high=high))


def _guidance_range(spec) -> Message:
    low, high = spec.guidance_range or (spec.default_guidance, spec.default_guidance)
    return Message("allowed.number_range", low=low, high=high)


def _guidance(spec, value: float) -> float:
    validation.check_number("guidance", value, Message("allowed.finite"))
    low, high = spec.guidance_range or (spec.default_guidance, spec.default_guidance)
    if not low <= value <= high:
        allowed = Message("allowed.range", low=low, high=high)
        raise InvalidInput(
            "guidance", "input.must_be_for", allowed=allowed, model=spec.name, value=f"{value:g}"
        )
    return value


def _side(name: str, raw: str, spec) -> int:
    """A width or height within the link's model's own sizes, snapped as `validation.validate` snaps."""
    value = validation.check_integer(
        name,
        round(_number(raw, name, Message("allowed.number_range", low=MIN_SIDE, high=spec.max_side))),
        MIN_SIDE,
        spec.max_side,
    )
    return spec.snap_side(value)


def _models(raw: str, model_keys: Sequence[str]) -> list[str]:
    chosen = [key.strip() for key in raw.split(",") if key.strip()]
    for key in chosen:
        validation.check_model(key, model_keys)
    if not chosen:
        raise InvalidInput("models", "input.name_models")
    return list(dict.fromkeys(chosen))


def _model_settings(raw: str, model_keys: Sequence[str]) -> dict[str, tuple[int, float]]:
    """{model: (steps, guidance)} from "model:steps:guidance,...", each within that model's range."""
    chosen = {}
    for item in raw.split(","):
        model, _, rest = item.strip().partition(":")
        steps_text, _, guidance_text = rest.partition(":")
        spec = validation.check_model(model, model_keys)
        steps = validation.check_integer(
            "steps",
            _integer("steps", steps_text, spec.min_steps, spec.max_steps),
            spec.min_steps,
            spec.max_steps,
        )
        chosen[spec.key] = (steps, _guidance(spec, _number(guidance_text, "guidance", _guidance_range(spec))))
    return chosen


def _tab(raw: str) -> str:
    if raw not in TABS:
        raise InvalidInput("tab", "input.one_of", choices=", ".join(TABS))
    return raw


def _mode(raw: str) -> str:
    from flux_demo.editing import MODES

    if raw not in MODES:
        raise InvalidInput("mode", "input.one_of", choices=", ".join(MODES))
    return raw


def _strength(raw: str) -> float:
    from flux_demo.editing import STRENGTH_RANGE

    low, high = STRENGTH_RANGE
    allowed = Message("allowed.range", low=low, high=high)
    value = _number(raw, "strength", allowed)
    if not low <= value <= high:
        raise InvalidInput("strength", "input.must_be", allowed=allowed, value=f"{value:g}")
    return value


def _references(raw: str) -> list[str]:
    """Hex SHA-256 digests (or their prefixes), 1 to 10 of them."""
    hashes = [part.strip().lower() for part in raw.split(",")]
    if not 1 <= len(hashes) <= 10 or not all(
        8 <= len(h) <= 64 and all(c in "0123456789abcdef" for c in h) for h in hashes
    ):
        raise InvalidInput("references", "input.references_hashes")
    return hashes
