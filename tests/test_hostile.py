"""Hostile visitors: bounded work per request, a rate limit that cannot be spoofed, no injected HTML."""

from __future__ import annotations

import dataclasses
import io
import random
import re
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest
from PIL import Image

from flux_demo.services import limits
from flux_demo.typography import extract_targets, ocr, suite
from flux_demo.ui.widgets import NamedImage, Refused, as_text

# --- the rate limit ----------------------------------------------------------------------------


def request_from(peer: str, forwarded: str | None = None):
    headers = {} if forwarded is None else {"x-forwarded-for": forwarded}
    return SimpleNamespace(client=SimpleNamespace(host=peer), headers=headers)


def test_without_trusted_proxies_the_forwarded_header_is_ignored():
    limiter = limits.VisitorLimiter(3, 60.0, "minute", trusted_proxies=0)
    assert limiter.visitor(request_from("203.0.113.7", "1.2.3.4")) == "203.0.113.7"


def test_behind_one_proxy_only_the_entry_it_appended_counts():
    limiter = limits.VisitorLimiter(3, 60.0, "minute", trusted_proxies=1)
    # The client wrote "6.6.6.6"; the Space's proxy appended the address it saw.
    assert limiter.visitor(request_from("10.0.0.2", "6.6.6.6, 198.51.100.9")) == "198.51.100.9"
    assert limiter.visitor(request_from("10.0.0.2", "198.51.100.9")) == "198.51.100.9"


def test_forged_forwarded_for_headers_do_not_escape_the_limit():
    limiter = limits.VisitorLimiter(3, 60.0, "minute", trusted_proxies=1)
    rng = random.Random(0)
    refused = 0
    for _ in range(8):
        forged = f"{rng.randrange(256)}.{rng.randrange(256)}.0.1, 198.51.100.9"
        try:
            limiter.check(limiter.visitor(request_from("10.0.0.2", forged)), now=0.0)
        except limits.RateLimited:
            refused += 1
    assert refused == 5


def test_a_request_costing_several_units_counts_each():
    limiter = limits.VisitorLimiter(10, 60.0, "minute")
    limiter.check("v", now=0.0, cost=8)
    with pytest.raises(limits.RateLimited, match="try again"):
        limiter.check("v", now=1.0, cost=3)
    with pytest.raises(limits.RateLimited, match="needs 11 units of work"):
        limiter.check("w", now=1.0, cost=11)


def test_the_limiter_forgets_visitors_whose_window_has_passed():
    limiter = limits.VisitorLimiter(5, 60.0, "minute")
    for number in range(1000):
        limiter.check(f"visitor-{number}", now=0.0)
    limiter.check("late", now=61.0)
    assert len(limiter) == 1


def test_trusted_proxies_default_to_one_on_a_space(monkeypatch):
    from flux_demo.config import Settings

    monkeypatch.setenv("SPACE_ID", "someone/flux-demo")
    assert Settings.from_env().trusted_proxies == 1
    monkeypatch.delenv("SPACE_ID")
    assert Settings.from_env().trusted_proxies == 0
    monkeypatch.setenv("FLUX_DEMO_TRUSTED_PROXIES", "2")
    assert Settings.from_env().trusted_proxies == 2


# --- target extraction is linear and keeps its meaning -------------------------------------------

# The specification: leftmost, non-overlapping quoted spans; single quotes open after a non-word
# character and close before one, on one line, around text that starts and ends visibly.
REFERENCE = re.compile(
    r'"(?P<double>[^"]*)"'
    r"|“(?P<curly>[^”]*)”"
    r"|「(?P<corner>[^」]*)」"
    r"|『(?P<white_corner>[^』]*)』"
    r"|(?<!\w)'(?P<single>\S(?:[^\n]*?\S)??)'(?!\w)"
    r"|(?<!\w)‘(?P<curly_single>\S(?:[^\n]*?\S)??)’(?!\w)"
)


def reference_targets(prompt: str) -> list[str]:
    texts = (
        " ".join(next(g for g in m.groups() if g is not None).split()) for m in REFERENCE.finditer(prompt)
    )
    return [text for text in texts if text]


def test_target_extraction_matches_its_specification_on_random_prompts():
    rng = random.Random(1)
    alphabet = ['"', "'", "‘", "’", "“", "”", "「", "」", "『", "』", " ", "\n", "a", "b", "_", "1", "é", "."]
    for _ in range(20_000):
        prompt = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        assert extract_targets(prompt) == reference_targets(prompt), repr(prompt)


def test_two_single_quoted_words_are_two_targets():
    assert extract_targets("a sign with 'OPEN' and 'CLOSED' on it") == ["OPEN", "CLOSED"]


class CountingText(str):
    """A prompt that counts how often the scanner reads one of its characters."""

    reads = 0

    def __getitem__(self, index):
        CountingText.reads += 1
        return str.__getitem__(self, index)


@pytest.mark.parametrize("size", [1000, 8000])
def test_target_extraction_reads_each_character_a_bounded_number_of_times(size):
    """Counted, not timed: the old pattern backtracked quadratically on exactly this input."""
    prompt = CountingText("\" 'x" * size)
    CountingText.reads = 0
    extract_targets(prompt)
    assert CountingText.reads <= 16 * len(prompt)


def test_the_prompt_helper_refuses_an_oversized_scene():
    from flux_demo.ui.typography import write_prompt

    with pytest.raises(gr.Error, match=r"scene: must be at most 500 characters"):
        write_prompt("HELLO", "\" 'x" * 15_000)


# --- the score views check what comes back from the browser ----------------------------------------


def real_score() -> dict:
    image = Image.new("RGB", (640, 320), "white")
    return suite.score_as_dict(suite.score_text(image, "HELLO")) | {"details": {}}


def test_a_real_score_passes_the_check():
    checked = suite.check_score_dict(real_score())
    assert checked["targets"][0]["target"] == "HELLO"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"targets": [{"target": "x" * 24_000, "recognised": "y"}]}, "target must be text of at most 500"),
        ({"targets": "nope"}, "targets must be a list"),
        ({"boxes": [{"points": [[0, 0]], "text": "a", "confidence": 1}]}, "4 points"),
        ({"mean_cer": float("nan")}, "mean_cer must be a finite number"),
        ({"boxes": [{}] * 1000}, "at most 256"),
    ],
)
def test_a_forged_score_is_refused_naming_the_field(change, message):
    with pytest.raises(suite.InvalidInput, match=f"scores: .*{message}"):
        suite.check_score_dict(real_score() | change)


def png_bytes(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_oversized_image_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(5000))
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size))
    component = NamedImage(label="image", type="pil", max_side=4096)
    payload = gr.FileData(path=str(path), orig_name="bomb.png")
    # Refused, not raised: `event_handler` raises it in the visitor's language before the handler runs.
    refused = component.preprocess(payload)
    assert isinstance(refused, Refused)
    assert str(refused.message) == "image: must be at most 4096×4096 pixels, got 5000×5000"
    assert decoded == []


def test_a_file_that_is_not_an_image_is_refused_naming_the_field(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    component = NamedImage(label="image", type="pil", max_side=4096)
    refused = component.preprocess(gr.FileData(path=str(path), orig_name="notes.png"))
    assert isinstance(refused, Refused) and str(refused.message) == "image: must be a PNG, JPEG or WebP image"


# --- OCR work is bounded per image -------------------------------------------------------------


def test_ocr_reads_at_most_the_line_limit(monkeypatch, dejavu):
    from tests.helpers import render_text

    monkeypatch.setattr(ocr, "MAX_OCR_LINES", 3)
    image = render_text("\n".join(f"LINE {n}" for n in range(8)), dejavu["DejaVuSans"], 40, width=640)
    boxes = ocr.recognize(image)
    assert 0 < len(boxes) <= 3


def test_ocr_scales_big_images_down_and_reports_points_in_the_image(dejavu):
    from tests.helpers import render_text

    image = render_text("HELLO", dejavu["DejaVuSans-Bold"], 200, width=2600)
    assert max(image.size) > ocr.MAX_OCR_SIDE
    boxes = ocr.recognize(image)
    assert any("HELLO" in box.text for box in boxes)
    xs = [x for box in boxes for x, _ in box.points]
    assert max(xs) > ocr.MAX_OCR_SIDE * 0.6  # in the original pixels, not the scaled-down ones
    assert max(xs) <= image.width + 5


# --- the suite's work is capped and counted ----------------------------------------------------


@pytest.fixture
def suite_fn(host):
    from flux_demo.services import AppServices
    from flux_demo.ui.typography import make_suite_fn

    return make_suite_fn(AppServices.for_backend(host), suite.load_suite())


def run_generator(fn, *args):
    result = fn(*args)  # the endpoint runner hands the handler its Run (progress, Stop)
    return list(result) if hasattr(result, "__next__") else result


@pytest.mark.parametrize(
    ("models", "count", "message"),
    [
        (["tiny-schnell"] * 1000, 48, "models: each model may be chosen once"),
        (["tiny-schnell"], 1.5, "count: must be an integer from 1 to 48, got 1.5"),
        (["tiny-schnell", "tiny-dev"], 48, "count: a run makes at most 48 images"),
        ([], 2, "models: choose one or more of"),
    ],
)
def test_a_suite_request_beyond_the_caps_is_refused_before_any_image(suite_fn, models, count, message):
    with pytest.raises(gr.Error, match=re.escape(message)):
        run_generator(suite_fn, models, count, [], 0)


# --- visitor text is shown as text --------------------------------------------------------------


def test_visitor_text_is_escaped_and_shortened():
    attack = "<img src=x onerror=alert(1)> <a href=https://evil.example>x</a>"
    assert "<" not in as_text(attack) and "&lt;img" in as_text(attack)
    assert as_text("x" * 1000).endswith("…") and len(as_text("x" * 1000)) <= 300


# --- over HTTP ---------------------------------------------------------------------------------


def test_forged_headers_do_not_escape_the_rate_limit_of_a_served_app(serve, settings):
    from flux_demo.ui import create_demo

    limited = dataclasses.replace(settings, rate_limit="3/minute", trusted_proxies=0)  # not on a Space
    with serve(create_demo(limited)) as url:
        base = url.rstrip("/") + "/gradio_api"
        # A 4-step 1024² image is one unit of work: three pass, then the limit holds whatever the header.
        body = {"data": ["a lighthouse", "tiny-schnell", 1024, 1024, 4, 0, 1, False, False]}
        outcomes = []
        for number in range(6):
            headers = {"X-Forwarded-For": f"10.0.{number}.1"}
            joined = httpx.post(f"{base}/call/generate", json=body, headers=headers, timeout=60)
            if joined.status_code == 429:  # refused at the queue's door
                outcomes.append(False)
                refusal = joined.json()["detail"]
                continue
            stream = httpx.get(f"{base}/call/generate/{joined.json()['event_id']}", timeout=120).text
            outcomes.append("event: complete" in stream)
        assert outcomes == [True, True, True, False, False, False]
        assert "rate limit" in refusal


def test_link_parameters_in_the_notice_show_as_text(server_url, page):
    page.goto(server_url + "?seed=%3Cimg%20src%3Dx%3E%23%20Big&steps=%5Bx%5D(https://evil.example)")
    notice = page.locator("#link-notice")
    notice.wait_for(state="visible")
    assert notice.locator("img").count() == 0
    assert notice.locator("a").count() == 0
    assert notice.locator("h1").count() == 0
    assert "<img src=x>" in notice.inner_text()
    assert "[x](https://evil.example)" in notice.inner_text()
