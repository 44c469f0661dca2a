"""The Ray Serve backend on a local Ray instance on the CPU, with two replicas of tiny-schnell: the same
pixels as in-process, no mix-ups under 16 clients, Stop reaches the replica, and a killed replica's request
is retried on the other one. Needs `pip install -r requirements-ray.txt`; skipped without it."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time

import numpy as np
import pytest
from gradio_client import Client

from benchmarks.load import run_load
from flux_demo import generation
from flux_demo.validation import GenerationRequest, validate

pytestmark = pytest.mark.slow  # deploying on a fresh local Ray instance takes a minute or more

MODEL = "tiny-schnell"


def request(seed: int, steps: int = 4, size: int = 256):
    fields = GenerationRequest(f"ray test {seed}", MODEL, size, size, steps, 0.0, seed, False)
    return validate(fields, (MODEL,))


@pytest.fixture(scope="module")
def backend(settings):
    """A local Ray instance with Serve and two replicas of tiny-schnell, shut down after the module."""
    try:
        import ray
        from ray import serve
    except ImportError:
        # An optional extra that CI does not install (a local Ray instance on a busy 2-core runner made
        # the Stop test race the run); run these with `pip install -r requirements-ray.txt`.
        pytest.skip("ray[serve] is not installed: pip install -r requirements-ray.txt")
    import torch

    from flux_demo.pipelines.ray_serve import RayBackend

    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "RAY_ADDRESS", "RAY_TMPDIR")}
    # Replicas use this process's CPU thread count, so their float sums match the in-process path's.
    os.environ["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    # Ray's sockets live under its temp folder, whose path must stay under 108 bytes (AF_UNIX).
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    os.environ.pop("RAY_ADDRESS", None)  # a local instance, whatever the machine says
    backend = RayBackend(dataclasses.replace(settings, ray_replicas=(2, 2)), (MODEL,))
    backend.preload()
    yield backend
    serve.shutdown()
    ray.shutdown()
    shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_same_seed_gives_the_same_pixels_as_the_in_process_path(backend, host):
    steps = []
    remote = generation.generate(backend, request(3), lambda value, desc=None, unit=None: steps.append(value))
    local = generation.generate(host, request(3))
    assert np.array_equal(np.asarray(remote.image), np.asarray(local.image))
    assert remote.image.info["seed"] == "3"  # PNG metadata is written by the front end
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]  # progress per step crosses the boundary
    assert remote.details["backend"] == "ray"
    assert remote.details["replica"].startswith("ray:")


def replica_runs(backend, seed: int, timeout: float = 120) -> tuple[int, str]:
    """(steps run, outcome) of `seed`'s run as the replica that ran it recorded it; asks replicas (each
    call goes to one of them) until one answers."""
    handle = backend.handle(MODEL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_seed, steps, outcome in handle.recent_runs.remote().result():
            if run_seed == seed:
                return steps, outcome
        time.sleep(0.2)
    raise AssertionError(f"no replica reports a run with seed {seed}")


@pytest.fixture(scope="module")
def ray_url(serve, backend):
    from flux_demo.ui import create_demo

    with serve(create_demo(host=backend)) as url:
        yield url


def test_sixteen_clients_get_their_own_images_through_ray(ray_url):
    report = run_load(ray_url, clients=16, requests=1, model=MODEL)
    assert report.mixups == []
    assert report.errors == []
    assert len(report.latencies) == 16


def test_stop_stops_the_run_on_the_replica(ray_url, backend):
    from tests.helpers import wait_for_steps

    long = {"prompt": "a long run", "model": MODEL, "width": 1024, "height": 1024, "steps": 16}
    job = Client(ray_url, verbose=False).submit(
        **long, guidance=0.0, seed=4242, randomize_seed=False, api_name="/generate"
    )
    wait_for_steps(job, 2)
    job.cancel()
    steps, outcome = replica_runs(backend, 4242)
    assert outcome == "GenerationCancelled"
    assert steps < 16


def test_a_killed_replica_gives_a_retry_on_the_other_one(backend, host):
    import ray

    seen = []  # replica names from the step events, in order
    killed = threading.Event()

    def kill_at_second_step(value, desc=None, unit=None):
        seen.append(lease_name[0])
        if value == (2, 16) and not killed.is_set():
            killed.set()
            ray.kill(ray.get_actor(actor_name(lease_name[0]), namespace="serve"), no_restart=False)

    lease_name = ["?"]
    real_call = generation._call_pipeline

    def call(loaded, req, on_step_end):
        def on_step(pipe, step, timestep, kwargs):
            lease_name[0] = pipe.lease.name
            return on_step_end(pipe, step, timestep, kwargs)

        return real_call(loaded, req, on_step)

    mp = pytest.MonkeyPatch()
    mp.setattr(generation, "_call_pipeline", call)
    try:
        result = generation.generate(backend, request(77, steps=16, size=768), kill_at_second_step)
    finally:
        mp.undo()
    assert killed.is_set()
    first = seen[0]
    assert result.details["replica"] != first  # the retry ran on another replica
    local = generation.generate(host, request(77, 16, 768))
    assert np.array_equal(np.asarray(result.image), np.asarray(local.image))


def actor_name(replica: str) -> str:
    """The Ray actor name of the Serve replica that results call "ray:<id>"."""
    from ray.util.state import list_actors

    unique_id = replica.removeprefix("ray:")
    names = [a.name for a in list_actors(filters=[("state", "=", "ALIVE")]) if a.name.endswith(unique_id)]
    assert len(names) == 1, names
    return names[0]
