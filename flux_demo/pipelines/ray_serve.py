"""The Ray Serve backend (`FLUX_DEMO_BACKEND=ray`): the GPU work of each request runs on a Ray cluster while
the Gradio app stays one light front-end process (validation, PNG metadata, the rate limit and the queue
stay in it). Needs the optional extra: `pip install -r requirements-ray.txt`.

- One Serve application per model, `flux-<key>`, holds a `ModelHost` with that model loaded in each replica
  (`ray_actor_options={"num_gpus": ...}`, an autoscaling config, one request per replica at a time).
- `RayBackend` is a `Backend` (`pipelines.backend`): it ships each `Job` (the request, the pipeline call,
  the observer without its front-end `emit`) to a replica of the job's model, where `JobServer` runs it
  through the same `runner.run_job` as in-process, and streams back one event per denoising step, each
  item the observer emits, and the outcome. Progress, live previews and trajectories work as in-process;
  Stop cancels the streaming response, which raises `CancelledError` in the replica, which then stops
  the pipeline at its next step.
- The transport is `ServeTransport` (Ray Serve deployment handles); `InProcessServe` gives the same handle
  interface in this process, with every job and event pickled across, so the front end and `JobServer`
  are tested without Ray.
- Without `RAY_ADDRESS` (Ray's own variable) `ray.init()` starts a local Ray instance, so
  `FLUX_DEMO_BACKEND=ray python app.py` works on one machine; with it, the app joins that cluster and uses
  the `flux-<key>` applications already deployed there (`serve deploy`, see docs/scaling.md), deploying
  any that are missing.
- A replica that dies mid-run: the front end retries the request once on another replica (progress starts
  again from step 1); if that fails too, the visitor gets a clear error. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import pickle
import threading
from collections.abc import Callable, Iterable, Sequence

from flux_demo import faults
from flux_demo.config import Settings, parse_replicas
from flux_demo.messages import Message
from flux_demo.pipelines import runner
from flux_demo.pipelines.backend import Job, JobOutcome, ModelLoadFailed, ProgressFn, replay
from flux_demo.pipelines.host import ModelHost, enabled_model_keys

log = logging.getLogger(__name__)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Settings a replica must share with the front end (the rest of its environment is the cluster's own).
FORWARDED_ENV: tuple[str, ...] = ("FLUX_DEMO_TINY_DIR", "FLUX_DEMO_MEMORY_MODE", "FLUX_DEMO_COMPILE")
FORWARDED_ENV += ("FLUX_DEMO_FP8",)
FORWARDED_ENV += ("FLUX_DEMO_ATTENTION", "FLUX_DEMO_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN", "HF_ENDPOINT")
FORWARDED_ENV += ("FLUX_DEMO_LORA_MAX_MB",)
# Ray runs workers with one CPU thread unless told otherwise; CPU replicas use the front end's setting.
FORWARDED_ENV += ("OMP_NUM_THREADS",)


def app_name(key: str) -> str:
    return f"flux-{key}"


# --- the replica side ----------------------------------------------------------------------------


class JobServer:
    """Runs jobs on one `ModelHost` and streams their events: ("progress", value, desc, unit) per step,
    ("emit", item) per item the observer emits, then ("done", outcome). A cancelled stream (the front
    end's Stop, or the front end going away) stops the pipeline at its next step."""

    def __init__(self, host: ModelHost):
        self.host = host
        # (seed, steps run, outcome) of the latest jobs, for operators and tests (`recent_runs`).
        self.runs: collections.deque = collections.deque(maxlen=64)

    async def run(self, job: Job):
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        stopped = threading.Event()
        steps = [0]

        def put(event) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody reads this stream any more
                loop.call_soon_threadsafe(events.put_nowait, event)

        def progress(value, desc=None, unit=None):
            steps[0] = value[0]
            put(("progress", value, desc, unit))

        def work() -> JobOutcome:
            outcome = "done"
            try:
                return runner.run_job(
                    self.host, job, progress, stopped.is_set, lambda item: put(("emit", item))
                )[0]
            except BaseException as err:
                outcome = type(err).__name__
                raise
            finally:  # when the pipeline has really stopped, with the steps it ran
                self.runs.append((job.request.seed, steps[0], outcome))

        task = loop.run_in_executor(None, work)
        getter = None
        try:
            while not task.done() or not events.empty():
                getter = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                else:
                    getter.cancel()
            outcome = await task
        finally:
            stopped.set()  # cancelled (or the front end went away): the pipeline stops at its next step
            if getter is not None:
                getter.cancel()
        yield ("done", outcome)


class FluxModelServer:
    """One Serve replica: a `JobServer` on a `ModelHost` with one model loaded."""

    def __init__(self, model_key: str):
        from ray import serve

        name = f"ray:{serve.get_replica_context().replica_id.unique_id}"
        host = ModelHost(Settings.from_env(), (model_key,), name=name, backend="ray")
        host.get(model_key)
        self.server = JobServer(host)

    async def recent_runs(self) -> list[tuple[int, int, str]]:
        return list(self.server.runs)

    async def run(self, job: Job):
        async for event in self.server.run(job):
            yield event


CPU_REPLICA_CPUS = 0.25  # Ray's CPU reservation of a replica without a GPU


def deployment(model_key: str, replicas: tuple[int, int], gpus: float):
    """The Serve application for one model (what `serve.run` and a Serve config deploy)."""
    from ray import serve

    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    env["FLUX_DEMO_MODELS"] = model_key
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    low, high = replicas
    scaling = {"num_replicas": low} if low == high else {"autoscaling_config": _autoscaling(low, high)}
    return (
        serve.deployment(FluxModelServer)  # type: ignore[attr-defined]  # Ray's decorator overloads
        .options(
            name=app_name(model_key),
            ray_actor_options={
                "num_gpus": gpus,
                # Serve reserves a whole core per replica by default: CPU replicas of a few models would
                # then wait forever for cores on a small machine. Their threads share the cores anyway.
                "num_cpus": 1 if gpus else CPU_REPLICA_CPUS,
                "runtime_env": {"env_vars": env},
            },
            max_ongoing_requests=1,  # one pipeline call per GPU at a time; the rest wait in Serve's queue
            **scaling,
        )
        .bind(model_key)
    )


def _autoscaling(low: int, high: int) -> dict:
    return {"min_replicas": low, "max_replicas": high, "target_ongoing_requests": 1}


def build_app(args: dict):
    """Entry point for a Serve config (`import_path: flux_demo.pipelines.ray_serve:build_app`) with the
    args `model` ("schnell"), `replicas` ("1-4") and `gpus` (1)."""
    replicas = parse_replicas(str(args.get("replicas", "1")))
    return deployment(args["model"], replicas, float(args.get("gpus", 1)))


# --- transports: Ray Serve, or the same interface in this process --------------------------------


class ServeTransport:
    """Deployment handles of the `flux-<key>` Serve applications, deploying each on first use."""

    def __init__(self, settings: Settings, replicas: tuple[int, int]):
        self.settings, self.replicas = settings, replicas

    def connect(self, key: str):
        import ray
        from ray import serve

        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=False)
        if app_name(key) not in serve.status().applications:
            gpus = self.settings.ray_gpus
            if gpus is None:
                gpus = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
            log.info("deploying %s on Ray Serve (%s replicas, %s GPU each)", key, self.replicas, gpus)
            serve.run(deployment(key, self.replicas, gpus), name=app_name(key), route_prefix=None)
        return serve.get_app_handle(app_name(key))

    @staticmethod
    def replica_died(err: Exception) -> bool:
        from ray import exceptions

        died = (exceptions.RayActorError, exceptions.ActorUnavailableError)
        return isinstance(err, died) or isinstance(getattr(err, "cause", None), died)


class InProcessServe:
    """Serve's handle interface (`handle.options(stream=True).run.remote(job)`, iterate, `cancel()`) over
    one `JobServer` per model in this process. Jobs and events cross by pickle, as they cross to a Ray
    replica, so whatever cannot travel fails here too."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.servers: dict[str, JobServer] = {}

    def connect(self, key: str):
        host = ModelHost(self.settings, (key,), name=f"in-process:{key}", backend="ray")
        host.get(key)
        self.servers[key] = JobServer(host)
        return _LocalHandle(self.servers[key])

    @staticmethod
    def replica_died(err: Exception) -> bool:
        return False


class _LocalHandle:
    def __init__(self, server: JobServer):
        self.server = server
        self.run = self  # handle.run.remote(...)

    def options(self, **_options):
        return self

    def remote(self, job: Job):
        return _LocalStream(self.server, pickle.loads(pickle.dumps(job)))


class _LocalStream:
    """The events of one job, produced on an event loop in a thread of their own."""

    def __init__(self, server: JobServer, job: Job):
        import queue

        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task | None = None
        ready = threading.Event()

        async def pump():
            try:
                async for event in server.run(job):
                    self._events.put(pickle.dumps(event))
            except BaseException as err:
                self._events.put(err)
            finally:
                self._events.put(None)

        def main():
            asyncio.set_event_loop(self._loop)
            self._task = self._loop.create_task(pump())
            ready.set()
            self._loop.run_until_complete(asyncio.gather(self._task, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

        threading.Thread(target=main, daemon=True, name="in-process-serve").start()
        ready.wait()

    def __iter__(self):
        while (event := self._events.get()) is not None:
            if isinstance(event, BaseException):
                raise event
            yield pickle.loads(event)

    def cancel(self) -> None:
        if self._task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)


# --- the front-end side --------------------------------------------------------------------------


@contextlib.contextmanager
def _cancel_when(abandoned: Callable[[], bool] | None, response, every_s: float = 0.05):
    """Cancel `response` as soon as `abandoned()` is true, also while no event arrives (queued in Serve,
    or a slow step); yields the event that says it was cancelled so."""
    cancelled, done = threading.Event(), threading.Event()

    def watch():
        while not done.wait(every_s):
            if abandoned():
                cancelled.set()
                response.cancel()
                return

    if abandoned is not None:
        threading.Thread(target=watch, daemon=True, name="ray-stop-watch").start()
    try:
        yield cancelled
    finally:
        done.set()


def _outside_event_loop(fn, *args):
    """`fn(*args)`, on a worker thread when this thread runs an asyncio event loop: Serve's synchronous
    handle methods refuse to run inside one (a caller's loop, such as Playwright's sync API in tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ray-stream") as pool:
        return pool.submit(fn, *args).result()


class RayBackend:
    """The front end's view of the Serve applications: a `Backend` (see the module docstring)."""

    def __init__(
        self, settings: Settings | None = None, model_keys: Sequence[str] | None = None, transport=None
    ):
        self.settings = settings or Settings.from_env()
        self.model_keys = tuple(model_keys) if model_keys else enabled_model_keys(self.settings)
        self.replica_bounds = self.settings.ray_replicas
        self.transport = transport or ServeTransport(self.settings, self.replica_bounds)
        # As many events in flight as replicas can run at most; the rest wait in Gradio's queue.
        self.concurrency = self.replica_bounds[1] * len(self.model_keys)
        self._handles: dict = {}
        self._lock = threading.Lock()

    def handle(self, key: str):
        """The handle of `key`'s replicas, deploying them on first use."""
        with self._lock:
            if key not in self._handles:
                try:
                    self._handles[key] = self.transport.connect(key)
                except Exception as err:
                    raise ModelLoadFailed(f"{key} could not be deployed on Ray Serve") from err
            return self._handles[key]

    def run(
        self, job: Job, progress: ProgressFn | None = None, abandoned: Callable[[], bool] | None = None
    ) -> JobOutcome:
        """Run `job` on a replica of its model (see `Backend.run`); a replica that dies mid-run is
        replaced once by another (progress starts again from step 1)."""
        return _outside_event_loop(self._run, job, progress, abandoned)

    def _run(self, job: Job, progress, abandoned) -> JobOutcome:
        handle, shipped = self.handle(job.key), job.detached()
        for attempt in (1, 2):
            try:
                return self._stream(handle, job, shipped, progress, abandoned)
            except faults.GenerationCancelled:
                raise
            except Exception as err:
                if not self.transport.replica_died(err) or attempt == 2:
                    raise
                log.warning("a Ray replica died mid-run; retrying on another replica", exc_info=err)
        raise AssertionError("unreachable")

    def _stream(self, handle, job: Job, shipped: Job, progress, abandoned) -> JobOutcome:
        response = handle.options(stream=True).run.remote(shipped)
        step = 0
        with _cancel_when(abandoned, response) as cancelled:
            try:
                for event in response:
                    if event[0] == "progress":
                        step = event[1][0]
                        if progress is not None:
                            progress(event[1], desc=event[2], unit=event[3])
                    elif event[0] == "emit":
                        replay(job, [event[1]])
                    else:
                        return event[1]
            except BaseException as err:
                response.cancel()
                if cancelled.is_set():  # our own cancel, for Stop: say where it stopped
                    raise faults.GenerationCancelled(step=step, steps=job.request.steps) from err
                raise
        raise faults.GenerationFailed(Message("fault.replica_no_image"))

    def is_loaded(self, key: str) -> bool:
        return key in self._handles

    def warm_imports(self, keys: Iterable[str] | None = None) -> None:
        """Connect to Ray and deploy the served models (replicas load in the background)."""
        self.preload(keys)

    def preload(self, keys: Iterable[str] | None = None) -> None:
        for key in self.model_keys if keys is None else keys:
            self.handle(key)
