"""An optional per-visitor rate limit on GPU work (`FLUX_DEMO_RATE_LIMIT`, e.g. "10/minute"; off by default).

A sliding window per visitor: the client address, or the first address in `X-Forwarded-For` behind a
proxy such as the Hugging Face Spaces front end.
"""

from __future__ import annotations

import collections
import threading
import time

from flux_demo.faults import GenerationFailed

PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


class RateLimited(GenerationFailed):
    title = "Too many requests"


def parse_rate(text: str) -> tuple[int, float]:
    """(requests, seconds) from "N/second", "N/minute" or "N/hour"."""
    count, _, period = text.strip().lower().partition("/")
    if not count.isdigit() or int(count) < 1 or period not in PERIODS:
        raise ValueError(
            f"FLUX_DEMO_RATE_LIMIT must look like 10/minute (per {', '.join(PERIODS)}), got {text!r}"
        )
    return int(count), PERIODS[period]


class VisitorLimiter:
    """At most `count` requests per `seconds` for each visitor key."""

    def __init__(self, count: int, seconds: float, period_name: str):
        self.count, self.seconds, self.period_name = count, seconds, period_name
        self._recent: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def check(self, key: str, now: float | None = None) -> None:
        """Count one request for `key`, or raise `RateLimited` saying when to try again."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent[key]
            while times and now - times[0] >= self.seconds:
                times.popleft()
            if len(times) >= self.count:
                wait = self.seconds - (now - times[0])
                raise RateLimited(
                    f"rate limit: at most {self.count} GPU requests per {self.period_name} per visitor; "
                    f"try again in {max(1, round(wait))} s"
                )
            times.append(now)


_limiter: VisitorLimiter | None = None


def configure(rate: str | None) -> None:
    """Turn the limit on ("10/minute") or off (None or empty)."""
    global _limiter
    if not rate:
        _limiter = None
        return
    count, seconds = parse_rate(rate)
    _limiter = VisitorLimiter(count, seconds, rate.strip().lower().partition("/")[2])


def check_current_visitor() -> None:
    """Count this Gradio request against its visitor's limit (a no-op when no limit is configured)."""
    if _limiter is None:
        return
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    if request is None:  # not a web request (a script, a cached example)
        return
    forwarded = request.headers.get("x-forwarded-for", "")
    key = forwarded.split(",")[0].strip() or getattr(request.client, "host", "") or "unknown"
    _limiter.check(key)
