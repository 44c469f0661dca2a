"""Live previews in a Gradio handler: the pipeline runs in a thread and the handler yields each preview.

A pipeline call blocks until its last step, so a generator handler cannot yield from inside it. The
work runs in a thread that carries the handler's context (Gradio's job, progress and cancellation watch
find it there), and whatever it emits is yielded as it arrives; the work's return value is the stream's
return value (`result = yield from stream(work)`).

On ZeroGPU the pipeline runs in a separate worker process, which cannot hand previews back, so there
the run goes without them.
"""

from __future__ import annotations

import contextvars
import queue
import shutil
import threading
from collections.abc import Callable, Generator, Iterator

import PIL.Image

from flux_demo import comparison, generation
from flux_demo.comparison import ModelRun
from flux_demo.config import on_zerogpu, safety_model_setting
from flux_demo.generation import GenerationResult
from flux_demo.pipelines import Backend
from flux_demo.ui.widgets import download_folder
from flux_demo.validation import ValidRequest
from flux_demo.watching.previews import Preview, PreviewObserver

_DONE = object()


def previews_possible() -> bool:
    """Whether previews can come back from the GPU code (not from ZeroGPU's worker process) and may be
    shown: with a content filter (`FLUX_DEMO_SAFETY_MODEL`) only screened final images are."""
    return not on_zerogpu() and safety_model_setting() is None


def stream(
    work: Callable[[Callable[[object], None]], object], each: Callable[[object], object] = lambda item: item
) -> Generator[object, None, object]:
    """Run `work(emit)` in a thread; yield `each(item)` for every item it emits, in order; return what
    it returns (or raise what it raised) once it ends."""
    items: queue.SimpleQueue = queue.SimpleQueue()
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = work(items.put)
        except BaseException as err:  # handed to the handler's thread, which raises it
            outcome["error"] = err
        finally:
            items.put(_DONE)

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(run,), daemon=True, name="live-preview").start()
    while (item := items.get()) is not _DONE:
        yield each(item)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


PREVIEW_SIDE = 256  # the longest side of a preview as sent to the page (the box scales it up)


PREVIEW_KEEP_S = 60.0  # how long a run's preview frames stay on disk after it ends


class PreviewFiles:
    """The preview frames of one run as small WebP files (a few KB each, where a full-size PNG of a 2048²
    picture is about 8 MB), deleted a minute after the run ends: previews are only for watching."""

    def __init__(self):
        self.folder = download_folder("previews")
        self.count = 0

    def shown(self, preview: Preview, request: ValidRequest) -> str:
        """`preview` at the picture's aspect, its longest side PREVIEW_SIDE or the picture's own."""
        scale = min(PREVIEW_SIDE, max(request.width, request.height)) / max(request.width, request.height)
        size = (max(1, round(request.width * scale)), max(1, round(request.height * scale)))
        self.count += 1
        path = self.folder / f"preview-{self.count}.webp"
        preview.image.resize(size, PIL.Image.Resampling.BILINEAR).save(path, quality=80)
        return str(path)

    def __enter__(self) -> PreviewFiles:
        return self

    def __exit__(self, *_exc) -> None:
        # A client may still fetch the last frames it was sent (gradio_client downloads a job's outputs
        # when they are read): the folder goes a minute after the run, not at once.
        timer = threading.Timer(PREVIEW_KEEP_S, shutil.rmtree, (self.folder,), {"ignore_errors": True})
        timer.daemon = True
        timer.start()


def generate_with_previews(
    backend: Backend,
    request: ValidRequest,
    progress=None,
    frame: Callable = lambda image: image,
    stopped: Callable[[], bool] | None = None,
) -> Generator[object, None, GenerationResult]:
    """`generation.generate`, yielding `frame(image)` for the predicted clean image after every step;
    returns the result. `stopped()` true stops the run (the page's Stop)."""
    if not previews_possible():
        return generation.generate(backend, request, progress, stopped=stopped)

    def work(emit):
        observer = PreviewObserver(request.spec, request.width, request.height, emit)
        return generation.generate(backend, request, progress, observer=observer, stopped=stopped)

    with PreviewFiles() as files:
        return (yield from stream(work, lambda preview: frame(files.shown(preview, request))))


def compare_with_previews(
    backend: Backend,
    requests,
    progress=None,
    previews: bool = True,
    stopped: Callable[[], bool] | None = None,
) -> Iterator[ModelRun | tuple[ValidRequest, Preview]]:
    """`comparison.run_all`, with (request, preview) after every step of the running model in between
    the finished runs when `previews` is true. `stopped()` true stops the comparison (the page's Stop)."""
    if not (previews and previews_possible()):
        yield from comparison.run_all(backend, requests, progress, stopped=stopped)
        return

    def work(emit):
        observers = {}

        def observer_for(request):
            observers[id(request)] = PreviewObserver(
                request.spec, request.width, request.height, lambda preview: emit((request, preview))
            )
            return observers[id(request)]

        for run in comparison.run_all(backend, requests, progress, observer_for, stopped):
            emit(run)

    yield from stream(work)
