"""The Ray Serve backend (`FLUX_DEMO_BACKEND=ray`): the GPU work of each request runs on a Ray cluster while
the Gradio app stays one light front-end process (validation, PNG metadata, the rate limit and the queue
stay in it). Needs the optional extra: `pip install -r requirements-ray.txt`.

- One Serve application per model, `flux-<key>`, holds a `ModelHost` with that model loaded in each replica
  (`ray_actor_options={"num_gpus": ...}`, an autoscaling config, one request per replica at a time).
- `RayBackend` is what the app serves from instead of a `ModelHost`: `RayBackend.replica(key)` lends
  `generation.generate` a `RemoteReplica` whose pipeline is a Serve deployment handle. Its call streams one
  event per denoising step back to the front end, which runs the usual step callback on each, so progress
  and Stop work as in-process: Stop cancels the streaming response, which raises `CancelledError` in the
  replica, which then stops the pipeline at its next step.
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
import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar

from flux_demo import faults, limits
from flux_demo.config import Settings, parse_replicas
from flux_demo.messages import Message
from flux_demo.pipelines.host import LoadedModel, ModelHost, enabled_model_keys
from flux_demo.pipelines.placement import Placement

log = logging.getLogger(__name__)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Settings a replica must share with the front end (the rest of its environment is the cluster's own).
FORWARDED_ENV = ("FLUX_DEMO_TINY_DIR", "FLUX_DEMO_MEMORY_MODE", "FLUX_DEMO_COMPILE", "FLUX_DEMO_FP8")
FORWARDED_ENV += ("FLUX_DEMO_ATTENTION", "FLUX_DEMO_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN")
# Ray runs workers with one CPU thread unless told otherwise; CPU replicas use the front end's setting.
FORWARDED_ENV += ("OMP_NUM_THREADS",)


def app_name(key: str) -> str:
    return f"flux-{key}"


# --- the replica side ----------------------------------------------------------------------------


class FluxModelServer:
    """One Serve replica: a `ModelHost` on this replica's device with one model loaded."""

    def __init__(self, model_key: str):
        from ray import serve

        self.key = model_key
        self.host = ModelHost(Settings.from_env(), (model_key,))
        self.host.get(model_key)
        context = serve.get_replica_context()
        self.name = f"ray:{context.replica_id.unique_id}"
        # (seed, steps run, outcome) of the latest requests, for operators and tests (`recent_runs`).
        self._runs: collections.deque = collections.deque(maxlen=64)

    async def recent_runs(self) -> list[tuple[int, int, str]]:
        return list(self._runs)

    async def generate(self, fields: dict):
        """Stream ("step", n, replica name) per denoising step, then ("image", pixels, replica name), for
        the request whose settings (`ValidRequest.settings()`) are `fields`. It runs the same `_denoise`
        as the in-process path. A cancelled request (the front end's Stop) stops the pipeline at its next
        step."""
        from flux_demo import generation
        from flux_demo.models import get_spec
        from flux_demo.validation import ValidRequest

        request = ValidRequest(**fields, spec=get_spec(fields["model"]))
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        stopped = threading.Event()
        steps = [0]

        def progress(value, desc=None, unit=None):
            steps[0] = value[0]
            loop.call_soon_threadsafe(events.put_nowait, ("step", value[0], self.name))

        def run():
            outcome = "done"
            try:
                return generation._denoise(self.host, request, progress, stopped.is_set)
            except BaseException as err:
                outcome = type(err).__name__
                raise
            finally:  # when the pipeline has really stopped, with the steps it ran
                self._runs.append((request.seed, steps[0], outcome))

        task = loop.run_in_executor(None, run)
        try:
            while not task.done() or not events.empty():
                getter = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                else:
                    getter.cancel()
            image, _peak = await task
        finally:
            stopped.set()  # cancelled (or the front end went away): the pipeline stops at its next step
        import numpy as np

        yield ("image", np.asarray(image), self.name)


def deployment(model_key: str, replicas: tuple[int, int], gpus: float):
    """The Serve application for one model (what `serve.run` and a Serve config deploy)."""
    from ray import serve

    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    env["FLUX_DEMO_MODELS"] = model_key
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    low, high = replicas
    scaling = {"num_replicas": low} if low == high else {"autoscaling_config": _autoscaling(low, high)}
    return (
        serve.deployment(FluxModelServer)
        .options(
            name=app_name(model_key),
            ray_actor_options={"num_gpus": gpus, "runtime_env": {"env_vars": env}},
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


# --- the front-end side --------------------------------------------------------------------------


class RemotePipeline:
    """Stands in for a diffusers pipeline in `generation._denoise`: the call runs on a Serve replica, and
    the step callback runs here on each streamed step, so progress and Stop work as in-process."""

    def __init__(self, handle, key: str, lease: RemoteReplica):
        self.handle, self.key, self.lease = handle, key, lease
        self._interrupt = False

    def __call__(self, *, callback_on_step_end, generator, **kwargs):
        """The keyword arguments `generation._call_pipeline` passes, turned back into the request's
        settings for the replica (the seed is the CPU generator's)."""
        fields = {
            "prompt": kwargs["prompt"],
            "model": self.key,
            "width": kwargs["width"],
            "height": kwargs["height"],
            "steps": kwargs["num_inference_steps"],
            "guidance": kwargs["guidance_scale"],
            "seed": generator.initial_seed(),
        }
        for attempt in (1, 2):
            try:
                return self._stream(fields, callback_on_step_end)
            except faults.GenerationCancelled:
                raise
            except Exception as err:
                if not _replica_died(err) or attempt == 2:
                    raise
                log.warning("a Ray replica died mid-run; retrying on another replica", exc_info=err)
        raise AssertionError("unreachable")

    def _stream(self, fields: dict, on_step_end):
        from PIL import Image

        response = self.handle.options(stream=True).generate.remote(fields)
        try:
            for event in response:
                if event[0] == "step":
                    self.lease.name = event[2]
                    on_step_end(self, event[1] - 1, None, {})
                else:
                    _, pixels, self.lease.name = event
                    return SimpleNamespace(images=[Image.fromarray(pixels)])
        except BaseException:
            response.cancel()
            raise
        raise faults.GenerationFailed(Message("fault.replica_no_image"))

    def maybe_free_model_hooks(self) -> None:
        """Nothing to free here: the replica cleans up its own pipeline."""


def _replica_died(err: Exception) -> bool:
    from ray import exceptions

    died = (exceptions.RayActorError, exceptions.ActorUnavailableError)
    return isinstance(err, died) or isinstance(getattr(err, "cause", None), died)


@dataclass
class RemoteReplica:
    """What `generation.generate` runs one request on with the Ray backend: its `name` becomes the Serve
    replica's once the call has run."""

    owner: RayBackend
    key: str
    name: str = "ray"
    backend: ClassVar[str] = "ray"  # named in the details

    def __post_init__(self):
        pipe = RemotePipeline(self.owner.handle(self.key), self.key, self)
        spec = self.owner.spec(self.key)
        self._loaded = LoadedModel(pipe, spec, Placement("ray", "", "ray"), {})

    def get(self, key: str) -> LoadedModel:
        return self._loaded

    @contextlib.contextmanager
    def gpu_slot(self, key: str):
        yield  # Serve's queue and `max_ongoing_requests=1` hold one call per replica

    @contextlib.contextmanager
    def in_use(self, key: str):
        yield self._loaded


class RayBackend:
    """The front end's view of the Serve applications, with the interface the app uses of a `ModelHost`."""

    def __init__(self, settings: Settings | None = None, model_keys: Sequence[str] | None = None):
        self.settings = settings or Settings.from_env()
        self.model_keys = tuple(model_keys) if model_keys else enabled_model_keys(self.settings)
        self.limiter = limits.limiter_for(self.settings.rate_limit, self.settings.trusted_proxies)
        self.replica_bounds = self.settings.ray_replicas
        # As many events in flight as replicas can run at most; the rest wait in Gradio's queue.
        self.concurrency = self.replica_bounds[1] * len(self.model_keys)
        self._handles: dict = {}
        self._lock = threading.Lock()

    def spec(self, key: str):
        from flux_demo.models import get_spec

        return get_spec(key)

    def handle(self, key: str):
        """The deployment handle of `key`'s Serve application, deploying it on first use."""
        with self._lock:
            if key not in self._handles:
                self._handles[key] = self._connect(key)
            return self._handles[key]

    def _connect(self, key: str):
        import ray
        from ray import serve

        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=False)
        if app_name(key) not in serve.status().applications:
            gpus = self.settings.ray_gpus
            if gpus is None:
                gpus = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
            log.info("deploying %s on Ray Serve (%s replicas, %s GPU each)", key, self.replica_bounds, gpus)
            serve.run(deployment(key, self.replica_bounds, gpus), name=app_name(key), route_prefix=None)
        return serve.get_app_handle(app_name(key))

    # --- the parts of ModelHost's interface the app uses -----------------------------------------

    @property
    def replicas(self) -> tuple:
        return ()

    def is_loaded(self, key: str) -> bool:
        return key in self._handles

    def warm_imports(self, keys: Iterable[str] | None = None) -> None:
        """Connect to Ray and deploy the served models (replicas load in the background)."""
        self.preload(keys)

    def preload(self, keys: Iterable[str] | None = None) -> None:
        for key in self.model_keys if keys is None else keys:
            self.handle(key)

    @contextlib.contextmanager
    def replica(self, key: str):
        self.handle(key)
        yield RemoteReplica(self, key)
