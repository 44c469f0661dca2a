"""The optional per-visitor rate limit on GPU work (off by default)."""

import dataclasses

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from flux_demo.config import Settings
from flux_demo.services import limits


def test_rates_parse_per_second_minute_and_hour():
    assert limits.parse_rate("10/minute") == (10, 60.0)
    assert limits.parse_rate(" 3/Hour ") == (3, 3600.0)
    for bad in ("ten/minute", "0/minute", "5/day", "5"):
        with pytest.raises(ValueError, match="FLUX_DEMO_RATE_LIMIT"):
            limits.parse_rate(bad)


def test_each_visitor_gets_their_own_sliding_window():
    limiter = limits.VisitorLimiter(2, 60.0, "minute")
    limiter.check("a", now=0)
    limiter.check("a", now=1)
    limiter.check("b", now=1)  # another visitor is not affected
    with pytest.raises(limits.RateLimited, match="try again in 59 s"):
        limiter.check("a", now=1)
    limiter.check("a", now=60.5)  # the first request has left the window


def test_limit_is_off_by_default(monkeypatch):
    monkeypatch.delenv("FLUX_DEMO_RATE_LIMIT", raising=False)
    assert limits.limiter_for(Settings.from_env().rate_limit) is None
    monkeypatch.setenv("FLUX_DEMO_RATE_LIMIT", "5/hour")
    limiter = limits.limiter_for(Settings.from_env().rate_limit)
    assert (limiter.count, limiter.seconds) == (5, 3600.0)


def test_a_visitor_over_the_limit_gets_a_clear_error_and_scoring_counts_too(serve, settings, tmp_path):
    from flux_demo.ui import create_demo

    generate = {"prompt": "a fox", "model": "tiny-schnell", "width": 256, "height": 256, "steps": 1}
    generate |= {"guidance": 0.0, "seed": 1, "randomize_seed": False, "api_name": "/generate"}
    Image.new("RGB", (64, 64), "white").save(tmp_path / "blank.png")
    score = {"image": handle_file(tmp_path / "blank.png"), "expected": "OPEN", "api_name": "/score_text"}
    # Its own host and limiter: the session's app, served from another host, stays unlimited.
    with serve(create_demo(dataclasses.replace(settings, rate_limit="2/minute"))) as url:
        client = Client(url, verbose=False)
        client.predict(**generate)
        assert client.predict(**score)["exact_match"] is False  # OCR work: the second unit
        for call in (generate, score):
            with pytest.raises(AppError, match="rate limit: at most 2 GPU requests per minute"):
                client.predict(**call)
