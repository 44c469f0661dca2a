"""Admission to the GPU queue: one visitor cannot take the demo from everyone else.

Checked when a job asks to join the queue, before it takes a place (an ASGI middleware in front of
Gradio's `queue/join` and the REST `call/<api_name>` routes), so a refused job costs no queue place,
no decoding and no disk:

* **Jobs per visitor.** A visitor may have at most `FLUX_DEMO_MAX_QUEUED_PER_VISITOR` (default 2) GPU or
  OCR jobs waiting or running at once; the next is refused until one ends.
* **Work, not requests.** With `FLUX_DEMO_RATE_LIMIT` (e.g. `20/minute`), each visitor may use that many
  *units of work* per period. A unit is one 1024² image at 4 steps:

      units = images × steps × megapixels / 4     (megapixels = width × height / 1024²)

  so a 28-step dev image costs 7, a 24-image seed sweep 24 times one image, a three-model comparison the
  sum of its three images, and a 256² nano image 1/16. OCR-only scoring costs `OCR_UNITS`. Each
  endpoint declares its cost from the request's own values (`work_cost`); a refused request costs nothing.
* **Fair order.** Waiting jobs are ordered round robin by visitor: a new job goes behind the jobs of
  visitors who were served less recently than its own visitor (`FairOrder`), so a visitor who keeps
  submitting waits behind everyone else's next job rather than ahead of it.

A refusal is an HTTP 429 whose `detail` says why and how long to wait, in the visitor's language
(`flux_demo.ui.gatekeeper` wires these rules in front of Gradio's routes and into its queue).
"""

from __future__ import annotations

import collections
import inspect
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flux_demo.messages import Message
from flux_demo.services.limits import VisitorLimiter

UNIT_STEPS, UNIT_PIXELS = 4, 1024 * 1024  # one unit: a 4-step 1024² image
OCR_UNITS = 0.25  # scoring one uploaded image: OCR only, no GPU
SERVED_WINDOW_S = 300.0  # "served recently", for the fair order
BUSY_RETRY_S = 5  # what a refusal for too many jobs suggests waiting
# Bytes one visitor may upload per window (references, images to score, PNGs to restore): ten 20 MB
# references twice over.
UPLOAD_BUDGET_BYTES, UPLOAD_WINDOW_S = 400 * 1024 * 1024, 600.0

# A cost function: the request's values by parameter name -> units of work.
WorkCost = Callable[[Mapping[str, object]], float]


def units(images: float, steps: float, width: float, height: float) -> float:
    """Units of work for `images` images of `steps` steps at `width` × `height` (see the module doc)."""
    return images * steps * (width * height / UNIT_PIXELS) / UNIT_STEPS


def number(value, default: float, low: float, high: float) -> float:
    """A request value as a number within [low, high] for costing: anything else counts as `default`
    (the handler refuses bad values itself; admission only needs a fair price)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return min(max(float(value), low), high)


def work_cost(cost: WorkCost):
    """Declare an endpoint handler's cost (`cost(values) -> units`); admission reads it from the handler
    Gradio calls (through `functools.wraps` chains)."""

    def declare(fn):
        fn.work_cost = cost
        return fn

    return declare


def declared_cost(fn) -> WorkCost | None:
    while fn is not None:
        cost = getattr(fn, "work_cost", None)
        if cost is not None:
            return cost
        fn = getattr(fn, "__wrapped__", None)
    return None


def parameter_values(fn, data: list) -> dict[str, object]:
    """The request's positional `data` by the handler's parameter names (as Gradio maps them)."""
    names = [
        name
        for name, parameter in inspect.signature(fn).parameters.items()
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    return dict(zip(names, data, strict=False))  # fewer values than parameters: the rest default


def visitor_of(request, trusted_proxies: int) -> str:
    """The visitor behind a Starlette request: the address the nearest trusted proxy saw (see
    `limits`): the TCP peer when `trusted_proxies` is 0, else that entry of X-Forwarded-For."""
    peer = getattr(getattr(request, "client", None), "host", "") or "unknown"
    if trusted_proxies == 0:
        return peer
    chain = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",")]
    chain = [part for part in chain if part]
    # Entries appended by trusted proxies, nearest last; fewer than expected: the nearest one we have.
    return chain[-trusted_proxies] if len(chain) >= trusted_proxies else (chain or [peer])[0]


@dataclass(frozen=True)
class Refusal:
    """Why a job may not join: `code` is "busy" (too many jobs waiting or running) or "rate" (the
    visitor's units for the period are used up); `wait_s` how long until it may."""

    code: str
    message: Message
    wait_s: int


class Admission:
    """The admission rules of one app (see the module docstring)."""

    def __init__(self, limiter: VisitorLimiter | None, max_queued: int, trusted_proxies: int):
        self.limiter, self.max_queued, self.trusted_proxies = limiter, max_queued, trusted_proxies
        self._lock = threading.Lock()
        self._joining: collections.Counter[str] = collections.Counter()  # admitted, not yet in the queue
        self._served: dict[str, collections.deque] = {}  # visitor -> start times of recent jobs
        self._uploads: dict[str, collections.deque] = {}  # visitor -> (time, bytes) of recent uploads

    def visitor(self, request) -> str:
        return visitor_of(request, self.trusted_proxies)

    # --- admission ---------------------------------------------------------------------------------

    def admit(self, visitor: str, cost: float, waiting_or_running: int) -> Refusal | None:
        """Admit one job of `cost` units for `visitor`, who has `waiting_or_running` jobs in the queue now,
        and reserve its place until `joined(visitor)`; or say why not (nothing is counted then)."""
        with self._lock:
            jobs = waiting_or_running + self._joining[visitor]
            if jobs >= self.max_queued:
                return Refusal("busy", Message("limit.busy", jobs=jobs, limit=self.max_queued), BUSY_RETRY_S)
            if self.limiter is not None:
                refused = self.limiter.try_take(visitor, cost)
                if refused is not None:
                    return Refusal("rate", refused[0], refused[1])
            self._joining[visitor] += 1
        return None

    def joined(self, visitor: str) -> None:
        """The admitted job is in Gradio's queue now (or failed to join): its reservation ends."""
        with self._lock:
            self._joining[visitor] -= 1
            if self._joining[visitor] <= 0:
                del self._joining[visitor]

    def upload(self, visitor: str, size: int, now: float | None = None) -> Refusal | None:
        """Count an upload of `size` bytes for `visitor`, or refuse it (counting nothing) when the
        visitor's UPLOAD_BUDGET_BYTES for the last UPLOAD_WINDOW_S would be exceeded."""
        now = time.monotonic() if now is None else now
        with self._lock:
            window = self._uploads.setdefault(visitor, collections.deque())
            while window and now - window[0][0] > UPLOAD_WINDOW_S:
                window.popleft()
            used = sum(bytes_ for _, bytes_ in window)
            if used + size > UPLOAD_BUDGET_BYTES:
                wait = math.ceil(UPLOAD_WINDOW_S - (now - window[0][0])) if window else int(UPLOAD_WINDOW_S)
                megabytes = UPLOAD_BUDGET_BYTES // (1024 * 1024)
                message = Message("limit.uploads", megabytes=megabytes, minutes=int(UPLOAD_WINDOW_S // 60))
                return Refusal("uploads", message, max(1, wait))
            window.append((now, size))
            for stale in [v for v, w in self._uploads.items() if not w]:
                del self._uploads[stale]
        return None

    # --- fair order --------------------------------------------------------------------------------

    def started(self, visitor: str, now: float | None = None) -> None:
        """A job of `visitor` started running (it counts as served for SERVED_WINDOW_S)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._served.setdefault(visitor, collections.deque())
            times.append(now)
            self._forget_old(now)

    def served_recently(self, visitor: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._forget_old(now)
            return len(self._served.get(visitor, ()))

    def _forget_old(self, now: float) -> None:
        for visitor in list(self._served):
            times = self._served[visitor]
            while times and now - times[0] > SERVED_WINDOW_S:
                times.popleft()
            if not times:
                del self._served[visitor]


class FairOrder(list):
    """A Gradio event queue's waiting list, kept in round-robin order by visitor: a new event gets the
    round `served recently + already waiting` of its visitor and goes behind every event of an earlier
    or equal round. Gradio takes events from the front, so the visitor served least goes next."""

    def __init__(self, admission: Admission, visitor_of_event: Callable[[object], str | None], events=()):
        super().__init__(events)
        self.admission, self.visitor_of_event = admission, visitor_of_event
        self._rounds: dict[int, int] = {}

    def append(self, event) -> None:
        visitor = self.visitor_of_event(event)
        if visitor is None:  # not a visitor's job (no request): first come, first served
            super().append(event)
            return
        waiting = sum(1 for other in self if self.visitor_of_event(other) == visitor)
        position = self.admission.served_recently(visitor) + waiting
        self._rounds[id(event)] = position
        index = next(
            (i for i, other in enumerate(self) if self._rounds.get(id(other), -1) > position), len(self)
        )
        self.insert(index, event)

    def remove(self, event) -> None:
        super().remove(event)
        self._rounds.pop(id(event), None)
