"""The admission rules (`flux_demo.services.admission`) wired into Gradio: an ASGI middleware in front of
the routes where a job asks for a queue place, and the fair order of Gradio's waiting lists.

The middleware sees `POST .../queue/join` (the page, gradio_client) and `POST .../call/<api_name>` (the
REST API, including `call/v2`). It reads the small JSON body (at most MAX_BODY_BYTES: settings and file
references, never pixels), finds the endpoint, prices the job with the endpoint's declared cost, and
either passes the request on or answers HTTP 429 with the reason and a Retry-After, before Gradio
queues, decodes or stores anything. Un-queued events (`run/...`) get the same body cap, and uploads
count against a per-visitor upload budget (`Admission.upload`), and each API `/cancel` is recorded for
the job it names (`flux_demo.services.stops.API_CANCELS`). Every response also gets
`X-Content-Type-Options: nosniff`, so a served file is never sniffed into another type.

Callers written for an endpoint's earlier, shorter parameter list (8 values for `/generate` before
`previews`) keep working: missing trailing values are filled with the parameters' API defaults (the
components' initial values), as `gradio_client` fills them for keyword callers.
"""

from __future__ import annotations

import json
import re

from flux_demo.services.admission import Admission, FairOrder, declared_cost, parameter_values
from flux_demo.services.stops import API_CANCELS

# Event bodies carry settings and file references, never pixels: Gradio keeps each input value in the
# session's state, so this also bounds the memory one session can take.
MAX_BODY_BYTES = 64 * 1024
# Routes where a job asks for a queue place: the page's queue/join and the REST API's call routes.
JOIN = re.compile(r"/gradio_api/(?:queue/join|call/(?P<v2>v2/)?(?P<api>[\w\-]+))/?$")
# Every other event route (un-queued events run at once): capped bodies too.
EVENT = re.compile(r"/gradio_api/(?:run|api)/[\w\-]+/?$")
UPLOAD = re.compile(r"/gradio_api/upload/?$")
CANCEL = re.compile(r"/gradio_api/cancel/?$")


def event_visitor(admission: Admission):
    """The visitor of a queued, priced Gradio event (None for events without a request or a price, which
    keep Gradio's first-come order and count as no one's service)."""

    def of(event) -> str | None:
        request = getattr(event, "request", None)
        if request is None or declared_cost(getattr(getattr(event, "fn", None), "fn", None)) is None:
            return None
        return admission.visitor(request)

    return of


def install_fair_order(demo, admission: Admission) -> None:
    """Make every event queue of `demo` (after `demo.queue()`) keep its waiting events in `FairOrder`,
    and count a visitor as served the moment Gradio takes their event from the waiting list.

    Gradio takes the first event of a concurrency group's list (`Queue.get_events`, on the event loop,
    as `Queue.push` appends) and only then prepares its inputs and runs it; counting it as served when it
    is taken leaves no moment in which the job is neither waiting nor served, so a second job sent while
    the first is starting still goes behind the other visitors' next jobs. The lists are created per
    concurrency id on first use, so each is replaced by a `FairOrder` as it is created.
    tests/test_fairness.py fails if a Gradio release changes this."""
    queue = demo._queue
    create, take = queue.create_event_queue_for_fn, queue.get_events
    visitor = event_visitor(admission)

    def create_fair(block_fn):
        create(block_fn)
        event_queue = queue.event_queue_per_concurrency_id[block_fn.concurrency_id]
        if not isinstance(event_queue.queue, FairOrder):
            event_queue.queue = FairOrder(admission, visitor, event_queue.queue)

    def take_served():
        taken = take()
        for event in taken[0] if taken else ():
            served = visitor(event)
            if served is not None:
                admission.started(served)
        return taken

    queue.create_event_queue_for_fn = create_fair
    queue.get_events = take_served


class AdmissionMiddleware:
    """ASGI middleware: admission in front of Gradio's join routes (see the module docstring)."""

    def __init__(self, app, demo):
        self.app, self.demo = app, demo

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _nosniff(send)
        path = scope.get("path", "") if scope.get("method") == "POST" else ""
        match = JOIN.search(path)
        if UPLOAD.search(path):
            await self._upload(scope, receive, send)
            return
        if CANCEL.search(path):
            await self._cancel(scope, receive, send)
            return
        if match is None and not EVENT.search(path):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, MAX_BODY_BYTES)
        if body is None:
            await _json(send, 413, {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"})
            return
        if match is None:  # an un-queued event: its body was only capped
            await self.app(scope, _replay(body, receive), send)
            return
        fn, payload = self._job(match["api"], body)
        data = payload.get("data", [])
        if fn is not None and not match["v2"] and len(data) < len(fn.inputs):
            payload["data"] = [*data, *(block.value for block in fn.inputs[len(data) :])]
            body = json.dumps(payload).encode()
        cost = declared_cost(getattr(fn, "fn", None)) if fn is not None else None
        if cost is None:  # not a GPU or OCR job: nothing to admit
            await self.app(scope, _replay(body, receive), send)
            return
        from starlette.requests import Request

        from flux_demo.ui.i18n import visitor_language

        request = Request(scope)
        admission: Admission = self.demo.services.admission
        visitor = admission.visitor(request)
        price = float(cost(_values(fn, payload, by_name=bool(match["v2"]))))
        refusal = admission.admit(visitor, price, self._jobs_of(visitor, admission))
        if refusal is not None:
            detail = refusal.message.render(visitor_language(request))
            await _json(
                send, 429, {"detail": detail, "code": refusal.code}, {"retry-after": str(refusal.wait_s)}
            )
            return
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            admission.joined(visitor)

    async def _cancel(self, scope, receive, send):
        """An API /cancel is recorded as it arrives (`API_CANCELS`), so the running job stops at its next
        step even while Gradio waits for the handler's thread, then passed on to Gradio."""
        body = await _read_body(receive, MAX_BODY_BYTES)
        if body is None:
            await _json(send, 413, {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"})
            return
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            session, event_id = payload.get("session_hash"), payload.get("event_id")
            if isinstance(session, str) and isinstance(event_id, str):
                API_CANCELS.add(session, event_id)
        await self.app(scope, _replay(body, receive), send)

    async def _upload(self, scope, receive, send):
        """Uploads count against their visitor's upload budget, by their declared length."""
        from starlette.requests import Request

        from flux_demo.ui.i18n import visitor_language

        request = Request(scope)
        length = request.headers.get("content-length", "")
        if not length.isdigit():
            await _json(send, 411, {"detail": "uploads must say their length (Content-Length)"})
            return
        admission: Admission = self.demo.services.admission
        refusal = admission.upload(admission.visitor(request), int(length))
        if refusal is not None:
            detail = refusal.message.render(visitor_language(request))
            await _json(
                send, 429, {"detail": detail, "code": refusal.code}, {"retry-after": str(refusal.wait_s)}
            )
            return
        await self.app(scope, receive, send)

    def _job(self, api_name: str | None, body: bytes):
        """The Gradio function a join asks for, and the body's JSON (None, {} if unreadable)."""
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return None, {}
        if not isinstance(payload, dict) or not isinstance(payload.get("data", []), list):
            return None, {}
        fns = self.demo.fns
        if api_name is None:
            index = _event_index(payload)
            return (fns.get(index) if index is not None else None), payload
        return next((fn for fn in fns.values() if fn.api_name == api_name), None), payload

    def _jobs_of(self, visitor: str, admission: Admission) -> int:
        """The visitor's priced jobs waiting in or running from Gradio's queue now."""
        events = list(getattr(self.demo._queue, "event_ids_to_events", {}).values())
        return sum(
            1
            for event in events
            if declared_cost(getattr(event.fn, "fn", None)) is not None
            and getattr(event, "request", None) is not None
            and admission.visitor(event.request) == visitor
        )


def _values(fn, payload: dict, by_name: bool) -> dict[str, object]:
    """A job's values by parameter name: a `call/v2` body names them (Gradio gives the others their API
    defaults, and so does this); every other join lists them in `data`."""
    if by_name:
        return {**parameter_values(fn.fn, [block.value for block in fn.inputs]), **payload}
    return parameter_values(fn.fn, payload.get("data", []))


def _event_index(payload: dict) -> int | None:
    """The event a `queue/join` body asks for, read by Gradio's own `PredictBody`, whose lax integers
    take "3" and 3.0 for 3 (so a join written that way is priced like any other); None when Gradio
    refuses the body itself."""
    from gradio.data_classes import PredictBody
    from pydantic import ValidationError

    try:
        return PredictBody.model_validate(payload).fn_index
    except ValidationError:
        return None


async def _read_body(receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
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
    """A `receive` that hands the app the body already read, then the connection's own messages."""
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
    body = json.dumps(payload, ensure_ascii=False).encode()
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*start, *extra]})
    await send({"type": "http.response.body", "body": body})
