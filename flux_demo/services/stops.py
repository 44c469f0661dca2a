"""Whether the Gradio job running in this thread is still wanted.

Gradio runs a sync handler in a worker thread. When a job is cancelled (a `cancels=` Stop button or the
API's /cancel) Gradio cancels the asyncio task that awaits the thread, drops the event from
`Queue.event_ids_to_events` and frees the concurrency slot, but the thread runs on; when a client
disconnects, Gradio marks its events `alive = False` and carries on. Neither reaches the thread, so
`JobWatch` polls that state, and the /cancel requests seen on their way in (`API_CANCELS`), between
denoising steps (gradio/queueing.py, routes.py `sse_stream`,
`/cancel`; the same `event.alive` check `spaces` makes while it waits for a ZeroGPU slot).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable


class CancelledEvents:
    """The events that the API's /cancel named, as (session hash, event id), the latest `keep` of them.

    Gradio answers a /cancel only once the job's task has ended, and a task that waits for its worker
    thread (a generator handler between two yields: a live-preview run waiting for its next step) ends
    only when the thread hands back; until then the event is still queued and alive. The admission
    middleware records each /cancel here as it arrives, so the running job sees it at its next step."""

    def __init__(self, keep: int = 4096):
        self._lock = threading.Lock()
        self._events: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._keep = keep

    def add(self, session_hash: str, event_id: str) -> None:
        with self._lock:
            self._events[(session_hash, event_id)] = None
            while len(self._events) > self._keep:
                self._events.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._events


API_CANCELS = CancelledEvents()


class JobWatch:
    """A callable that says whether the job that created it was cancelled or lost its client.

    Outside a queued Gradio job (a script, a test, a non-queued call) it never reports abandonment. It
    pickles to such a never-abandoned watch, so it can cross into the ZeroGPU worker process, where
    Gradio's queue is out of reach.
    """

    def __init__(self, queue=None, event_id: str | None = None, stopped: Callable[[], bool] | None = None):
        self._queue = queue
        self._event_id = event_id
        self._stopped = stopped

    def __call__(self) -> bool:
        if self._stopped is not None and self._stopped():
            return True
        if self._queue is None:
            return False
        event = self._queue.event_ids_to_events.get(self._event_id)
        return event is None or not event.alive or (event.session_hash, self._event_id) in API_CANCELS

    def __reduce__(self):
        return (JobWatch, ())


def watch_current_job(stopped: Callable[[], bool] | None = None) -> JobWatch:
    """A watch on the Gradio job running in this thread (a never-abandoned one when there is none),
    which also reports abandonment once `stopped()` is true (a page's Stop button, see `StopRequests`)."""
    try:
        from gradio.context import LocalContext
    except ImportError:  # pragma: no cover - gradio is a dependency, but the core does not need it
        return JobWatch(stopped=stopped)
    blocks = LocalContext.blocks.get(None)
    event_id = LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    events = getattr(queue, "event_ids_to_events", None)
    if event_id is None or events is None or event_id not in events:
        return JobWatch(stopped=stopped)
    return JobWatch(queue, event_id, stopped)


class StopRequests:
    """The page's Stop buttons, by (browser session, action). Cancelling the Gradio job would drop its
    outputs, so Stop instead sets a flag that the running job sees at its next denoising step; the job
    then ends normally, keeps what it finished and says where it stopped. Starting the action again
    clears the flag first, so a Stop pressed while the job waited in the queue still counts."""

    def __init__(self):
        self._lock = threading.Lock()
        self._stopped: set[tuple[str, str]] = set()

    def stop(self, session: str, action: str) -> None:
        with self._lock:
            self._stopped.add((session, action))

    def clear(self, session: str, action: str) -> None:
        with self._lock:
            self._stopped.discard((session, action))

    def watch(self, session: str | None, action: str) -> Callable[[], bool]:
        """A callable that is true once Stop was pressed for `action` in `session`."""
        key = (session or "", action)
        return lambda: key in self._stopped
