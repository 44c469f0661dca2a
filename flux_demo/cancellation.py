"""Whether the Gradio job running in this thread is still wanted.

Gradio runs a sync handler in a worker thread. When a job is cancelled (a `cancels=` Stop button or the
API's /cancel) Gradio cancels the asyncio task that awaits the thread, drops the event from
`Queue.event_ids_to_events` and frees the concurrency slot, but the thread runs on; when a client
disconnects, Gradio marks its events `alive = False` and carries on. Neither reaches the thread, so
`JobWatch` polls that state between denoising steps (gradio/queueing.py, routes.py `sse_stream`,
`/cancel`; the same `event.alive` check `spaces` makes while it waits for a ZeroGPU slot).
"""

from __future__ import annotations


class JobWatch:
    """A callable that says whether the job that created it was cancelled or lost its client.

    Outside a queued Gradio job (a script, a test, a non-queued call) it never reports abandonment. It
    pickles to such a never-abandoned watch, so it can cross into the ZeroGPU worker process, where
    Gradio's queue is out of reach.
    """

    def __init__(self, queue=None, event_id: str | None = None):
        self._queue = queue
        self._event_id = event_id

    def __call__(self) -> bool:
        if self._queue is None:
            return False
        event = self._queue.event_ids_to_events.get(self._event_id)
        return event is None or not event.alive

    def __reduce__(self):
        return (JobWatch, ())


def watch_current_job() -> JobWatch:
    """A watch on the Gradio job running in this thread (a never-abandoned one when there is none)."""
    try:
        from gradio.context import LocalContext
    except ImportError:  # pragma: no cover - gradio is a dependency, but the core does not need it
        return JobWatch()
    blocks = LocalContext.blocks.get(None)
    event_id = LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    events = getattr(queue, "event_ids_to_events", None)
    if event_id is None or events is None or event_id not in events:
        return JobWatch()
    return JobWatch(queue, event_id)
