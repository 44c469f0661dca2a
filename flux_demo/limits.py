"""An optional per-visitor rate limit on GPU and OCR work (`FLUX_DEMO_RATE_LIMIT`, e.g. "10/minute").

A sliding window per visitor. The visitor is the address that the nearest *trusted* proxy saw: with
`FLUX_DEMO_TRUSTED_PROXIES=N`, the N-th address from the right of `X-Forwarded-For` (each proxy appends
the address it received the request from, so entries further left were written by the client and can
be anything); with 0 (the default off Spaces), the TCP peer address and no header at all. A request
that costs several images (a typography suite run) counts once per image.
"""

from __future__ import annotations

import collections
import threading
import time

from flux_demo.faults import GenerationFailed
from flux_demo.messages import Message

PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


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
    """At most `count` units of work per `seconds` for each visitor key. Visitors whose window has
    emptied are forgotten, so memory grows with the visitors of the last period, not of all time."""

    def __init__(self, count: int, seconds: float, period_name: str, trusted_proxies: int = 0):
        self.count, self.seconds, self.period_name = count, seconds, period_name
        self.trusted_proxies = trusted_proxies
        self._recent: dict[str, collections.deque] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        """Visitors currently remembered."""
        return len(self._recent)

    def check(self, key: str, now: float | None = None, cost: int = 1) -> None:
        """Count `cost` units for `key`, or raise `RateLimited` saying when to try again."""
        now = time.monotonic() if now is None else now
        if cost > self.count:
            raise RateLimited(Message("limit.too_costly", cost=cost, count=self.count, period=self._period()))
        with self._lock:
            self._sweep(now)
            times = self._recent.setdefault(key, collections.deque())
            while times and now - times[0] >= self.seconds:
                times.popleft()
            if len(times) + cost > self.count:
                wait = self.seconds - (now - times[len(times) + cost - self.count - 1])
                raise RateLimited(
                    Message(
                        "limit.rate", count=self.count, period=self._period(), seconds=max(1, round(wait))
                    )
                )
            times.extend([now] * cost)

    def _period(self) -> Message:
        return Message(f"period.{self.period_name}")

    def _sweep(self, now: float) -> None:
        """Forget visitors with nothing in their window; at most once per period, so O(1) amortised."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.seconds
        stale = [key for key, times in self._recent.items() if not times or now - times[-1] >= self.seconds]
        for key in stale:
            del self._recent[key]

    def visitor(self, request) -> str:
        """The key of the visitor behind a Starlette/Gradio request (see the module docstring)."""
        peer = getattr(request.client, "host", "") or "unknown"
        if self.trusted_proxies == 0:
            return peer
        chain = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",")]
        chain = [part for part in chain if part]
        # Entries appended by trusted proxies, nearest last; fewer than expected: the nearest one we have.
        return chain[-self.trusted_proxies] if len(chain) >= self.trusted_proxies else (chain or [peer])[0]


def limiter_for(rate: str | None, trusted_proxies: int = 0) -> VisitorLimiter | None:
    """A limiter for `rate` ("10/minute"), or None when no limit is configured (None or empty)."""
    if not rate:
        return None
    count, seconds = parse_rate(rate)
    return VisitorLimiter(count, seconds, rate.strip().lower().partition("/")[2], trusted_proxies)


def check_current_visitor(limiter: VisitorLimiter | None, cost: int = 1) -> None:
    """Count this Gradio request (`cost` units) against its visitor's limit; a no-op without a limiter."""
    if limiter is None:
        return
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    if request is None:  # not a web request (a script, a cached example)
        return
    limiter.check(limiter.visitor(request), cost=cost)
