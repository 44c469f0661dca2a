"""The optional per-visitor rate limit on GPU work in units of work (off by default); the server side is in
tests/test_fairness.py."""

import pytest

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
    with pytest.raises(limits.RateLimited, match=r"at most 2 units of work per minute.*try again in 59 s"):
        limiter.check("a", now=1)
    limiter.check("a", now=60.5)  # the first request has left the window


def test_limit_is_off_by_default(monkeypatch):
    monkeypatch.delenv("FLUX_DEMO_RATE_LIMIT", raising=False)
    assert limits.limiter_for(Settings.from_env().rate_limit) is None
    monkeypatch.setenv("FLUX_DEMO_RATE_LIMIT", "5/hour")
    limiter = limits.limiter_for(Settings.from_env().rate_limit)
    assert (limiter.count, limiter.seconds) == (5, 3600.0)
