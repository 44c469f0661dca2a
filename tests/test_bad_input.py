"""Hostile input, table-driven, at two levels: the core checks, and every endpoint of the real server.

`UNIT_TABLE`: each row calls one core check (`validate`, the comparison and typography checks) with one
bad field; the error must be `InvalidInput` naming that field and what is allowed. No server.

`TABLE`: each row is (endpoint, changes to that endpoint's good call, pattern the error must match).
Rows go through gradio_client like any outside caller; values JSON cannot carry strictly (NaN,
infinities), which gradio_client refuses to send, go through Gradio's REST route as raw JSON instead.
After each rejection the server must still serve a good request.

To cover a new endpoint: add its cheap good call to GOOD_CALLS and rows built with `rows(...)` or
the field helpers below. Every endpoint in the table must be served.
"""

from __future__ import annotations

import itertools
import json
import math
import re

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from flux_demo import comparison
from flux_demo.typography import suite
from flux_demo.validation import MAX_SEED, GenerationRequest, InvalidInput, validate

NAN, INF = math.nan, math.inf
SETTINGS_HEADERS = ["model", "steps", "guidance"]


def settings_table(*rows):
    return {"headers": SETTINGS_HEADERS, "data": [list(row) for row in rows]}


# --- the core checks --------------------------------------------------------------------------

UNIT_MODELS = ("tiny-schnell", "tiny-dev")


def validating(**changes):
    """A call of `validate` on a good tiny-dev request with `changes`."""
    fields = dict(prompt="a red fox", model="tiny-dev", width=256, height=256, steps=4, guidance=3.5, seed=7)
    return lambda: validate(GenerationRequest(**{**fields, **changes}), UNIT_MODELS)


def planning(models=("tiny-schnell",), overrides=None):
    """A call of the comparison's `plan_requests` with these models and edited settings."""
    return lambda: comparison.plan_requests("a fox", models, [1], 256, 256, overrides or {}, UNIT_MODELS)


UNIT_TABLE = [
    pytest.param(call, field, pattern, id=f"{field}-{case}")
    for case, call, field, pattern in [
        ("empty", validating(prompt=""), "prompt", "required"),
        ("blank", validating(prompt="   \n "), "prompt", "required"),
        ("long", validating(prompt="x" * 2001), "prompt", "at most 2000"),
        ("nul", validating(prompt="bad\x00byte"), "prompt", "control characters"),
        ("number", validating(prompt=42), "prompt", "text"),
        ("unknown", validating(model="flux-pro"), "model", "tiny-schnell, tiny-dev"),
        ("small", validating(width=128), "width", "256 to 2048"),
        ("large", validating(height=4096), "height", "256 to 2048"),
        ("nan", validating(width=NAN), "width", "finite"),
        ("inf", validating(height=INF), "height", "finite"),
        ("zero", validating(steps=0), "steps", "1 to 50"),
        ("many", validating(steps=51), "steps", "1 to 50"),
        ("fraction", validating(steps=4.5), "steps", "integer"),
        ("schnell-range", validating(model="tiny-schnell", steps=28, guidance=0), "steps", "1 to 16"),
        ("low", validating(guidance=0.5), "guidance", "1 to 10"),
        ("nan", validating(guidance=NAN), "guidance", "finite"),
        ("negative", validating(seed=-1), "seed", "0 to 4294967295"),
        ("overflow", validating(seed=MAX_SEED + 1), "seed", "0 to 4294967295"),
        ("huge", validating(seed=10**30), "seed", "0 to 4294967295"),
        ("fraction", validating(seed=1.5), "seed", "integer"),
        ("bool", validating(seed=True), "seed", "number"),
        ("text", validating(randomize_seed="yes"), "randomize_seed", "true or false"),
        ("none", planning(models=[]), "models", "choose one or more"),
        ("twice", planning(models=["tiny-dev", "tiny-dev"]), "models", "each model may be chosen once"),
        ("unknown", planning(models=["flux-pro"]), "model", "must be one of"),
        ("string", planning(models="tiny-dev"), "models", "choose one or more"),
        (
            "edited",
            planning(overrides={"tiny-schnell": (40, 0)}),
            "steps for tiny-schnell",
            "must be an integer from 1 to 16",
        ),
        ("blank", lambda: suite.check_expected("   "), "expected", "is required"),
        ("long", lambda: suite.check_expected("x" * 501), "expected", "at most 500 characters"),
        ("nul", lambda: suite.check_expected("OPEN\x00"), "expected", "control characters"),
        ("none", lambda: suite.check_expected(None), "expected", "must be text"),
        ("none", lambda: suite.check_image(None), "image", "is required"),
        (
            "large",
            lambda: suite.check_image(Image.new("RGB", (4100, 8))),
            "image",
            "must be at most 4096×4096 pixels, got 4100×8",
        ),
        ("unquoted", lambda: suite.prompt_targets("A neon sign at night"), "prompt", "put the text"),
    ]
]


@pytest.mark.parametrize(("call", "field", "pattern"), UNIT_TABLE)
def test_core_checks_reject_bad_input_naming_the_field(call, field, pattern):
    with pytest.raises(InvalidInput) as err:
        call()
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")
    assert re.search(pattern, str(err.value)), str(err.value)


def test_the_largest_image_to_score_is_accepted():
    assert suite.check_image(Image.new("RGB", (4096, 4096))).size == (4096, 4096)


# --- every endpoint of the real server ---------------------------------------------------------

# A cheap call per endpoint that succeeds: the base every row changes one field of.
GOOD_CALLS: dict[str, dict] = {
    "/generate": dict(
        prompt="a red cube",
        model="tiny-schnell",
        width=256,
        height=256,
        steps=1,
        guidance=0.0,
        seed=1,
        randomize_seed=False,
        previews=False,
    ),
    "/compare": dict(
        prompt="a red cube",
        models=["tiny-schnell"],
        seed=1,
        width=256,
        height=256,
        settings=settings_table(["tiny-schnell", 1, 0.0]),
        previews=False,
    ),
    "/seed_sweep": dict(
        prompt="a red cube", models=["tiny-schnell"], first_seed=1, seeds=2, width=256, height=256
    ),
    "/typography": dict(
        prompt='a sign that says "OPEN"',
        model="tiny-schnell",
        seed=1,
        steps=1,
        guidance=0.0,
        width=256,
        height=256,
    ),
    "/trajectory": dict(
        prompt="a red cube", model="tiny-schnell", seed=1, steps=1, guidance=0.0, width=256, height=256
    ),
    "/score_text": dict(image="<tiny png>", expected="OPEN"),
    "/typography_suite": dict(models=["tiny-schnell"], count=1, categories=[], seed=1),
}


def rows(api: str, field: str, cases: list[tuple[object, str]]) -> list:
    """One pytest param per (bad value, error pattern) for `field` of `api`."""
    return [
        pytest.param(api, {field: value}, pattern, id=f"{api[1:]}-{field}-{label(value)}")
        for value, pattern in cases
    ]


def label(value) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}...len{len(text)}"


def prompt_cases(field: str = "prompt", max_chars: int = 2000) -> list[tuple[object, str]]:
    return [
        ("", rf"{field}: (is required|.*at least)"),
        ("   \n\t ", rf"{field}: is required"),
        ("\u200b\u200b\ufeff", rf"{field}: is required"),
        ("x" * (max_chars + 1), rf"{field}: must be at most {max_chars} characters"),
        ("a\x00b", rf"{field}: must not contain control characters"),
        ("red \x1b[31m cube", rf"{field}: must not contain control characters"),
        ("cube\x7f", rf"{field}: must not contain control characters"),
        ("half \ud800 pair", rf"{field}: must be valid Unicode"),
        (None, rf"{field}: must be text"),
    ]


def size_cases(field: str) -> list[tuple[object, str]]:
    allowed = rf"{field}: .*(256|number)"
    return [
        (100, rf"{field}: .*less than minimum value 256"),
        (9000, rf"{field}: .*greater than maximum value 2048"),
        (-256, rf"{field}: .*less than minimum value 256"),
        (10**30, rf"{field}: .*greater than maximum value 2048"),
        ("abc", allowed),
        ([256], allowed),
        (None, allowed),
        (NAN, rf"{field}: must be a finite number"),
        (INF, rf"{field}: must be a finite number"),
    ]


def seed_cases(field: str = "seed") -> list[tuple[object, str]]:
    return [
        (-1, rf"{field}: .*less than minimum value 0"),
        (2**32, rf"{field}: .*greater than maximum value 4294967295"),
        (10**40, rf"{field}: .*greater than maximum value 4294967295"),
        (1.5, rf"{field}: must be a whole number"),
        ("12", rf"{field}: must be a number"),
        (NAN, rf"{field}: must be a finite number"),
        (-INF, rf"{field}: must be a finite number"),
    ]


def model_cases(field: str = "model") -> list[tuple[object, str]]:
    served = rf"{field}: must be one of tiny-schnell, tiny-dev"
    return [
        ("flux-pro", served),
        ("", served),
        ("TINY-SCHNELL", served),
        ("../../etc/passwd", served),
        (None, served),
        (["tiny-dev"], served),
    ]


def models_cases(field: str = "models") -> list[tuple[object, str]]:
    return [
        ([], rf"{field}: choose"),
        (["tiny-schnell", "tiny-schnell"], rf"{field}: each model may be chosen once"),
        (["flux-pro"], rf"{field}: .*not in the list of choices"),
        ("tiny-schnell", rf"{field}: must be a list of values from 'tiny-schnell'"),
    ]


TABLE = [
    # /generate: every field
    *rows("/generate", "prompt", prompt_cases()),
    *rows("/generate", "model", model_cases()),
    *rows("/generate", "width", size_cases("width")),
    *rows("/generate", "height", size_cases("height")[:4] + size_cases("height")[-2:]),
    *rows(
        "/generate",
        "steps",
        [
            (0, r"steps: .*less than minimum value 1"),
            (51, r"steps: .*greater than maximum value 50"),
            (17, r"steps: must be an integer from 1 to 16"),  # within the union, above schnell's own
            (2.5, r"steps: must be a whole number|steps: must be an integer"),
            (True, r"steps: must be a number"),
            (NAN, r"steps: must be a finite number"),
        ],
    ),
    *rows(
        "/generate",
        "guidance",
        [
            ("x", r"guidance: must be a number"),
            (INF, r"guidance: must be a finite number"),
            (-5, r"guidance: .*less than minimum value"),
            (1e9, r"guidance: .*greater than maximum value"),
        ],
    ),
    *rows("/generate", "seed", seed_cases()),
    *rows("/generate", "randomize_seed", [("yes", r"randomize_seed: must be true or false")]),
    *rows("/generate", "previews", [("yes", r"previews: must be true or false")]),
    # the model's own range, not just the union the sliders accept
    pytest.param(
        "/generate",
        {"model": "tiny-dev", "guidance": 0.5},
        r"guidance: must be from 1 to 10",
        id="gen-dev-guidance",
    ),
    # /compare
    *rows("/compare", "prompt", prompt_cases()[:5]),
    *rows("/compare", "models", models_cases()),
    *rows("/compare", "seed", seed_cases()[:3]),
    *rows("/compare", "width", size_cases("width")[:2]),
    *rows(
        "/compare",
        "settings",
        [
            (
                settings_table(["tiny-schnell", 99, 0.0]),
                r"steps for tiny-schnell: must be an integer from 1 to 16",
            ),
            (settings_table(["tiny-schnell", "many", 0.0]), r"steps for tiny-schnell: must be a number"),
            (settings_table(["tiny-schnell", 1]), r"settings: rows must be \[model, steps, guidance\]"),
            (settings_table([7, 1, 0.0]), r"settings: rows must be \[model, steps, guidance\]"),
        ],
    ),
    *rows("/compare", "previews", [(1, r"previews: must be true or false")]),
    # /trajectory
    *rows("/trajectory", "prompt", prompt_cases()[:2]),
    *rows("/trajectory", "model", model_cases()[:1]),
    *rows(
        "/trajectory",
        "steps",
        [(40, r"steps: must be an integer from 1 to 16"), (NAN, r"steps: must be a finite")],
    ),
    *rows("/trajectory", "width", size_cases("width")[:2]),
    # /seed_sweep
    *rows(
        "/seed_sweep",
        "seeds",
        [
            (1, r"seeds: .*less than minimum value 2"),
            (9, r"seeds: .*greater than maximum value 8"),
            (NAN, r"seeds: must be a finite number"),
        ],
    ),
    *rows("/seed_sweep", "first_seed", [(-1, r"(first_seed|seed): .*less than minimum value 0")]),
    pytest.param(
        "/seed_sweep",
        {"first_seed": 2**32 - 1},
        r"first_seed: must be an integer from 0 to 4294967294",
        id="sweep-first-seed-overflows",
    ),
    *rows("/seed_sweep", "models", models_cases()[:2]),
    *rows("/seed_sweep", "prompt", prompt_cases()[1:2]),
    # typography endpoints
    *rows("/typography", "prompt", [("a sign with no quotes", r"prompt: put the text to render in quotes")]),
    *rows("/typography", "model", model_cases()[:1]),
    *rows("/typography", "seed", seed_cases()[:1]),
    *rows("/typography", "steps", [(40, r"steps: must be an integer from 1 to 16")]),
    *rows("/score_text", "expected", prompt_cases("expected", 500)[1:5]),
    *rows(
        "/score_text",
        "image",
        [
            (None, r"image: is required"),
            ("<huge png>", r"image: must be at most 4096×4096 pixels, got 4112×16"),
        ],
    ),
    *rows("/typography_suite", "models", [models_cases()[0], models_cases()[2]]),
    *rows(
        "/typography_suite",
        "count",
        [(0, r"count: .*less than minimum value 1"), (NAN, r"count: must be a finite")],
    ),
    *rows("/typography_suite", "seed", [(None, r"seed: must be")]),
]


@pytest.fixture(scope="module")
def api_client(server_url):
    """One gradio_client for the whole table (connecting costs a config fetch)."""
    from gradio_client import Client

    return Client(server_url, verbose=False)


@pytest.fixture(scope="module")
def served(api_client) -> dict[str, list[str]]:
    """{api_name: parameter names in order} for the endpoints the app serves."""
    api = api_client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    return {name: [p["parameter_name"] for p in info["parameters"]] for name, info in api.items()}


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> dict[str, str]:
    """PNG files for the table's "<tiny png>" and "<huge png>" values: a blank sign, one too wide to score."""
    folder = tmp_path_factory.mktemp("upload")
    sizes = {"<tiny png>": (64, 32), "<huge png>": (4112, 16)}
    for name, size in sizes.items():
        Image.new("RGB", size, "white").save(folder / f"{name[1:5]}.png")
    return {name: str(folder / f"{name[1:5]}.png") for name in sizes}


def good_call(api: str, uploads: dict[str, str], changes: dict | None = None) -> dict:
    """The endpoint's good call with `changes`, file placeholders replaced by uploads."""
    call = {**GOOD_CALLS[api], **(changes or {})}
    return {
        name: handle_file(uploads[value]) if isinstance(value, str) and value in uploads else value
        for name, value in call.items()
    }


def strict_json(kwargs: dict) -> bool:
    try:
        json.dumps(kwargs, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, TypeError):  # NaN, infinities, lone surrogates (UnicodeEncodeError)
        return False
    return True


def call_raw(server_url: str, api: str, args: list) -> str:
    """POST `args` as raw JSON (NaN and Infinity allowed) to Gradio's REST route; return the error text."""
    base = f"{server_url.rstrip('/')}/gradio_api/call/{api.lstrip('/')}"
    body = json.dumps({"data": args})  # allow_nan: writes NaN / Infinity tokens, which Python's json reads
    with httpx.Client(timeout=60) as http:
        event_id = http.post(base, content=body, headers={"content-type": "application/json"}).json()[
            "event_id"
        ]
        stream = http.get(f"{base}/{event_id}").text
    assert "event: error" in stream, stream
    return stream


@pytest.mark.parametrize(("api", "changes", "pattern"), TABLE)
def test_bad_input_is_rejected_by_name_and_the_server_still_serves(
    api_client, server_url, served, uploads, api, changes, pattern
):
    assert api in served, f"{api} is in the table but the app does not serve it"
    call = good_call(api, uploads, changes)
    if strict_json(call):
        with pytest.raises(AppError, match=f"(?is){pattern}"):
            api_client.predict(**call, api_name=api)
    else:
        # Positional, as old REST callers send: parameters added since (LoRAs, image count) are left
        # off the end and the app fills in their defaults.
        values = list(itertools.takewhile(lambda name: name in call, served[api]))
        message = call_raw(server_url, api, [call[name] for name in values])
        assert re.search(f"(?is){pattern}", message), message
    path, _seed, _details = api_client.predict(**GOOD_CALLS["/generate"], api_name="/generate")
    assert Image.open(path).size == (256, 256)


@pytest.mark.parametrize("api", list(GOOD_CALLS))
def test_each_good_call_of_the_table_succeeds(api_client, served, uploads, api):
    """The base calls are valid, so each row's error comes from the one field it changes."""
    assert api in served, f"{api} is in the table but the app does not serve it"
    api_client.predict(**good_call(api, uploads), api_name=api)
