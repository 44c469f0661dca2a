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

A refusal is an HTTP 429 whose `detail` says why and how long to wait, in the visitor's language.
"""

from __future__ import annotations

import collections
import inspect
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flux_demo.services.limits import VisitorLimiter

UNIT_STEPS, UNIT_PIXELS = 4, 1024 * 1024  # one unit: a 4-step 1024² image
OCR_UNITS = 0.25  # scoring one uploaded image: OCR only, no GPU
SERVED_WINDOW_S = 300.0  # "served recently", for the fair order
MAX_BODY_BYTES = 1024 * 1024  # a queue/join or call body: settings and file references, never pixels
# Routes where a job asks for a queue place: the page's queue/join and the REST API's call routes.
JOIN = re.compile(r"/gradio_api/(?:queue/join|call/(?:v2/)?(?P<api>[\w\-]+))/?$")

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
    message: str
    wait_s: int


class Admission:
    """The admission rules of one app (see the module docstring)."""

    def __init__(self, limiter: VisitorLimiter | None, max_queued: int, trusted_proxies: int):
        self.limiter, self.max_queued, self.trusted_proxies = limiter, max_queued, trusted_proxies
        self._lock = threading.Lock()
        self._joining: collections.Counter[str] = collections.Counter()  # admitted, not yet in the queue
        self._served: dict[str, collections.deque] = {}  # visitor -> start times of recent jobs

    def visitor(self, request) -> str:
        return visitor_of(request, self.trusted_proxies)

    # --- admission ---------------------------------------------------------------------------------

    def admit(self, visitor: str, cost: float, waiting_or_running: int) -> Refusal | None:
        """Admit one job of `cost` units for `visitor`, who has `waiting_or_running` jobs in the queue now,
        and reserve its place until `joined(visitor)`; or say why not (nothing is counted then)."""
        with self._lock:
            jobs = waiting_or_running + self._joining[visitor]
            if jobs >= self.max_queued:
                return Refusal(
                    "busy",
                    f"busy: you already have {jobs} jobs waiting or running (at most {self.max_queued} per "
                    "visitor); wait for one to finish",
                    5,
                )
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


# --- wiring into Gradio -------------------------------------------------------------------------------


def event_visitor(admission: Admission):
    """The visitor of a queued Gradio event (None for events without a request)."""

    def of(event) -> str | None:
        request = getattr(event, "request", None)
        return None if request is None else admission.visitor(request)

    return of


def install_fair_order(demo, admission: Admission) -> None:
    """Make every event queue of `demo` (after `demo.queue()`) keep its waiting events in `FairOrder`."""
    queue = demo._queue  # Gradio's Queue: its per-concurrency-id lists are where events wait
    create = queue.create_event_queue_for_fn
    visitor = event_visitor(admission)

    def create_fair(block_fn):
        create(block_fn)
        event_queue = queue.event_queue_per_concurrency_id[block_fn.concurrency_id]
        if not isinstance(event_queue.queue, FairOrder):
            event_queue.queue = FairOrder(admission, visitor, event_queue.queue)

    queue.create_event_queue_for_fn = create_fair


class AdmissionMiddleware:
    """ASGI middleware in front of `queue/join` and `call/<api_name>` (see the module docstring); also
    caps those bodies at MAX_BODY_BYTES and marks every response `X-Content-Type-Options: nosniff`."""

    def __init__(self, app, demo):
        self.app, self.demo = app, demo

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _nosniff(send)
        match = JOIN.search(scope.get("path", "")) if scope.get("method") == "POST" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, MAX_BODY_BYTES)
        if body is None:
            await _json(send, 413, {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"})
            return
        services = self.demo.services
        admission: Admission = services.admission
        from starlette.requests import Request

        request = Request(scope)
        fn, data = self._job(match["api"], body)
        cost = declared_cost(getattr(fn, "fn", None)) if fn is not None else None
        if cost is None:  # not a GPU or OCR job: nothing to admit
            await self.app(scope, _replay(body, receive), send)
            return
        visitor = admission.visitor(request)
        values = parameter_values(fn.fn, data)
        refusal = admission.admit(visitor, float(cost(values)), self._jobs_of(visitor, admission))
        if refusal is not None:
            detail = {"detail": refusal.message, "code": refusal.code}
            await _json(send, 429, detail, {"retry-after": str(refusal.wait_s)})
            return
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            admission.joined(visitor)

    def _job(self, api_name: str | None, body: bytes):
        """The Gradio function a join asks for, and its positional data (None, [] if unreadable)."""
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return None, []
        if not isinstance(payload, dict):
            return None, []
        data = payload.get("data") if isinstance(payload.get("data"), list) else []
        fns = self.demo.fns
        if api_name is None:
            index = payload.get("fn_index")
            return (fns.get(index) if isinstance(index, int) else None), data
        for fn in fns.values():
            if fn.api_name == api_name:
                return fn, data
        return None, data

    def _jobs_of(self, visitor: str, admission: Admission) -> int:
        """The visitor's admitted jobs waiting in or running from Gradio's queue now."""
        queue = getattr(self.demo, "_queue", None)
        events = list(getattr(queue, "event_ids_to_events", {}).values())
        return sum(
            1
            for event in events
            if declared_cost(getattr(event.fn, "fn", None)) is not None
            and getattr(event, "request", None) is not None
            and admission.visitor(event.request) == visitor
        )


async def _read_body(receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = [False]

    async def replay():
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _nosniff(send):
    async def with_header(message):
        if message["type"] == "http.response.start":
            headers = [
                (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-content-type-options"
            ]
            message = {**message, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
        await send(message)

    return with_header


async def _json(send, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(payload).encode()
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
