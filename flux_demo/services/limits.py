"""An optional per-visitor rate limit on GPU and OCR work (`FLUX_DEMO_RATE_LIMIT`, e.g. "20/minute"), in
units of work (see `flux_demo.services.admission`: one unit is a 4-step 1024² image), checked when a job
asks to join the queue.

A sliding window per visitor. The visitor is the address that the nearest *trusted* proxy saw: with
`FLUX_DEMO_TRUSTED_PROXIES=N`, the N-th address from the right of `X-Forwarded-For` (each proxy appends
the address it received the request from, so entries further left were written by the client and can
be anything); with 0 (the default off Spaces), the TCP peer address and no header at all.
"""

from __future__ import annotations

import collections
import math
import threading
import time

from flux_demo.faults import GenerationFailed
from flux_demo.messages import Message

PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


def _units(cost: float) -> str:
    """Units of work as people read them: 7, 0.25, 0.0625."""
    return f"{cost:.3g}"


class RateLimited(GenerationFailed):
    title = "title.too_many_requests"


def parse_rate(text: str) -> tuple[int, float]:
    """(requests, seconds) from "N/second", "N/minute" or "N/hour"."""
    count, _, period = text.strip().lower().partition("/")
    if not count.isdigit() or int(count) < 1 or period not in PERIODS:
        raise ValueError(
            f"FLUX_DEMO_RATE_LIMIT must look like 10/minute (per {', '.join(PERIODS)}), got {text!r}"
        )
    return int(count), PERIODS[period]


class VisitorLimiter:
    """At most `count` units of work per `seconds` for each visitor key (a sliding window; see
    `admission` for what a unit is). Visitors whose window has emptied are forgotten, so memory grows
    with the visitors of the last period, not of all time."""

    def __init__(self, count: int, seconds: float, period_name: str, trusted_proxies: int = 0):
        self.count, self.seconds, self.period_name = count, seconds, period_name
        self.trusted_proxies = trusted_proxies
        self._recent: dict[str, collections.deque] = {}  # key -> (time, units) of admitted work
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        """Visitors currently remembered."""
        return len(self._recent)

    def try_take(self, key: str, cost: float, now: float | None = None) -> tuple[Message, int] | None:
        """Count `cost` units for `key` and return None, or count nothing and return (why, seconds to
        wait) when the visitor's units for the period would be exceeded."""
        now = time.monotonic() if now is None else now
        if cost > self.count:
            return Message("limit.too_costly", cost=_units(cost), count=self.count, period=self._period()), 0
        with self._lock:
            self._sweep(now)
            window = self._recent.setdefault(key, collections.deque())
            while window and now - window[0][0] >= self.seconds:
                window.popleft()
            used = sum(units for _, units in window)
            if used + cost <= self.count:
                window.append((now, cost))
                return None
            # Wait until enough of the oldest work leaves the window.
            freed, wait = used, self.seconds
            for started, units in window:
                freed -= units
                if freed + cost <= self.count:
                    wait = self.seconds - (now - started)
                    break
        wait_s = max(1, math.ceil(wait))
        message = Message(
            "limit.rate", count=self.count, period=self._period(), cost=_units(cost), seconds=wait_s
        )
        return message, wait_s

    def check(self, key: str, now: float | None = None, cost: float = 1) -> None:
        """Count `cost` units for `key`, or raise `RateLimited` saying when to try again."""
        refused = self.try_take(key, cost, now)
        if refused is not None:
            raise RateLimited(refused[0])

    def _period(self) -> Message:
        return Message(f"period.{self.period_name}")

    def _sweep(self, now: float) -> None:
        """Forget visitors with nothing in their window; at most once per period, so O(1) amortised."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.seconds
        stale = [key for key, w in self._recent.items() if not w or now - w[-1][0] >= self.seconds]
        for key in stale:
            del self._recent[key]

    def visitor(self, request) -> str:
        """The key of the visitor behind a Starlette/Gradio request (see the module docstring)."""
        from flux_demo.services.admission import visitor_of

        return visitor_of(request, self.trusted_proxies)


def limiter_for(rate: str | None, trusted_proxies: int = 0) -> VisitorLimiter | None:
    """A limiter for `rate` ("10/minute"), or None when no limit is configured (None or empty)."""
    if not rate:
        return None
    count, seconds = parse_rate(rate)
    return VisitorLimiter(count, seconds, rate.strip().lower().partition("/")[2], trusted_proxies)
