"""`ReplicaPool`: one `ModelHost` per device, so a machine with several GPUs serves several visitors at once.

`FLUX_DEMO_DEVICES` lists the devices (`cuda:0,cuda:1`; default every visible GPU; `cpu,cpu` runs two CPU
replicas for tests). Each replica is a full `ModelHost` that owns its card: its own loaded pipelines (schnell
and dev still share encoders and VAE within the card), locks, GPU slot and memory plan. The pool hands a
request to a free replica, preferring one that already has the model loaded; Gradio's queue lets in as many
GPU events as there are replicas (times `FLUX_DEMO_GPU_CONCURRENCY`).

A replica that fails to load a model (a broken card, a card too small) is skipped for that model and
reported (`failures`, the log); only when every replica has failed does the request fail, and then the
failures are forgotten, so a later request retries.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import logging
import threading
from collections.abc import Callable, Iterable, Sequence

from flux_demo.config import Settings, on_zerogpu
from flux_demo.pipelines import runner
from flux_demo.pipelines.backend import Job, JobOutcome, ModelLoadFailed, ProgressFn
from flux_demo.pipelines.host import ModelHost, enabled_model_keys, replica_name

log = logging.getLogger(__name__)


def visible_devices() -> tuple[str, ...]:
    """Every visible CUDA card (`cuda:0`, `cuda:1`, ...), or the CPU alone."""
    if not glob.glob("/dev/nvidia[0-9]*"):  # no NVIDIA card: spare the start-up a torch import (seconds)
        return ("cpu",)
    import torch

    count = torch.cuda.device_count()
    return tuple(f"cuda:{i}" for i in range(count)) if count else ("cpu",)


def served_devices(settings: Settings) -> tuple[str, ...]:
    """The devices to serve from: `FLUX_DEMO_DEVICES`, else every visible GPU (one on ZeroGPU)."""
    if on_zerogpu():
        return ("cuda",)  # ZeroGPU attaches one GPU per call and spreads calls over its own pool
    return settings.devices or visible_devices()


def serving_host(settings: Settings | None = None):
    """What the app serves from: a `ModelHost` for one device, a `ReplicaPool` for several, or the Ray
    Serve front end (`FLUX_DEMO_BACKEND=ray`)."""
    settings = settings or Settings.from_env()
    if settings.backend == "ray" and on_zerogpu():
        log.warning("FLUX_DEMO_BACKEND=ray is ignored on ZeroGPU, which spreads GPU calls over its own pool")
    elif settings.backend == "ray":
        from flux_demo.pipelines.ray_serve import RayBackend

        return RayBackend(settings)
    devices = served_devices(settings)
    if len(devices) == 1:
        return ModelHost(settings, device=None if devices == ("cuda",) else devices[0])
    return ReplicaPool(settings, devices)


class ReplicaPool:
    """Per-device `ModelHost`s behind the interface the app uses of one host (see the module docstring)."""

    def __init__(
        self, settings: Settings | None, devices: Sequence[str], model_keys: Sequence[str] | None = None
    ):
        self.settings = settings or Settings.from_env()
        self.model_keys = tuple(model_keys) if model_keys else enabled_model_keys(self.settings)
        seen: collections.Counter[str] = collections.Counter()
        hosts = []
        for device in devices:
            name = replica_name(device, seen[device])
            hosts.append(ModelHost(self.settings, self.model_keys, device, name))
            seen[device] += 1
        self.replicas: tuple[ModelHost, ...] = tuple(hosts)
        self.concurrency = len(hosts) * self.settings.gpu_concurrency
        self._busy: collections.Counter[str] = collections.Counter()  # requests per replica name
        self._free = threading.Condition()
        # (replica name, model key) -> why it failed to load; those replicas are skipped for that model.
        self.failures: dict[tuple[str, str], str] = {}

    # --- the Backend contract -------------------------------------------------------------------

    def run(
        self, job: Job, progress: ProgressFn | None = None, abandoned: Callable[[], bool] | None = None
    ) -> JobOutcome:
        """Run `job` on a free replica that can load its model (see `Backend.run`)."""
        with self.replica(job.key) as host:
            return runner.run_here(host, job, progress, abandoned)

    def is_loaded(self, key: str) -> bool:
        return any(host.is_loaded(key) for host in self.replicas)

    def get(self, key: str):
        """The loaded model on the first replica that can load it (scripts; requests use `replica`)."""
        with self.replica(key) as host:
            return host.get(key)

    def get_pipeline(self, key: str):
        return self.get(key).pipe

    def warm_imports(self, keys: Iterable[str] | None = None) -> None:
        self.replicas[0].warm_imports(keys)  # imports are process-wide

    def preload(self, keys: Iterable[str] | None = None) -> None:
        """Load the given models (default: all served ones) on every replica, in parallel."""
        threads = [
            threading.Thread(target=self._preload_one, args=(host, keys), name=f"preload-{host.name}")
            for host in self.replicas
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _preload_one(self, host: ModelHost, keys: Iterable[str] | None) -> None:
        for key in self.model_keys if keys is None else keys:
            try:
                host.get(key)
            except Exception as err:
                self._record_failure(host, key, err)

    def clear(self) -> None:
        for host in self.replicas:
            host.clear()
        with self._free:
            self.failures.clear()

    # --- dispatch ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def replica(self, key: str):
        """A free replica with `key` loaded, reserved for the block. Loads on the chosen replica if needed;
        a replica that fails to load is skipped and the next one tried. Raises the last load error when
        every replica has failed for `key`."""
        while True:
            host = self._acquire(key)
            try:
                host.get(key)
                break
            except Exception as err:
                self._release(host)
                if self._record_failure(host, key, err):
                    raise ModelLoadFailed(f"{key} could not be loaded on any replica") from err
        try:
            yield host
        finally:
            self._release(host)

    def _acquire(self, key: str) -> ModelHost:
        with self._free:
            while True:
                usable = [h for h in self.replicas if (h.name, key) not in self.failures]
                free = [h for h in usable if self._busy[h.name] < self.settings.gpu_concurrency]
                if free:
                    # Loaded first, then the least busy; ties go to the first listed device.
                    host = min(free, key=lambda h: (not h.is_loaded(key), self._busy[h.name]))
                    self._busy[host.name] += 1
                    return host
                self._free.wait()

    def _release(self, host: ModelHost) -> None:
        with self._free:
            self._busy[host.name] -= 1
            self._free.notify_all()

    def _record_failure(self, host: ModelHost, key: str, err: Exception) -> bool:
        """Skip `host` for `key` from now on; True when no replica is left for `key` (the failures for
        `key` are then forgotten, so that a later request retries)."""
        log.warning("replica %s could not load %s; skipping it for that model", host.name, key, exc_info=err)
        with self._free:
            self.failures[(host.name, key)] = f"{type(err).__name__}: {err}"[:300]
            left = [h for h in self.replicas if (h.name, key) not in self.failures]
            if not left:
                for h in self.replicas:
                    self.failures.pop((h.name, key), None)
            self._free.notify_all()
            return not left
