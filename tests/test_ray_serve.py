"""What only the real Ray Serve backend does, on a local Ray instance on the CPU with two replicas of each
model (the scenarios every backend shares are in tests/test_backends.py): a Stop reaches the replica,
which records that it stopped, and a replica killed mid-run gives a retry on the other one with the same
pixels. Gated like the contract's Stop test, so nothing depends on timing. Needs
`pip install -r requirements-ray.txt` (CI installs it); skipped without it."""

from __future__ import annotations

import concurrent.futures
import functools
import time
from pathlib import Path

import numpy as np
import pytest

from flux_demo import faults, generation
from tests.helpers import gated_text_to_image, open_gates_until
from tests.test_backends import text_request

# Deploying on a fresh local Ray instance takes a minute or more (minutes on a busy 2-core machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def replica_runs(backend, seed: int, timeout: float = 120) -> tuple[int, str]:
    """(steps run, outcome) of `seed`'s run as the replica that ran it recorded it; asks replicas (each
    call goes to one of them) until one answers."""
    handle = backend.handle("tiny-schnell")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # On a thread of its own: Serve's sync `result()` refuses a thread with a running event loop, and
        # the session's Playwright browser leaves one in the main thread.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            runs = pool.submit(lambda: handle.recent_runs.remote().result()).result()
        for run_seed, steps, outcome in runs:
            if run_seed == seed:
                return steps, outcome
        time.sleep(0.2)
    raise AssertionError(f"no replica reports a run with seed {seed}")


def test_stop_stops_the_run_on_the_replica(real_ray, tmp_path):
    stopped = [False]
    progress = open_gates_until(tmp_path, 2, stopped)
    call = functools.partial(gated_text_to_image, str(tmp_path))
    with pytest.raises(faults.GenerationCancelled):
        generation.generate(
            real_ray, text_request(4242, steps=16), progress, call=call, stopped=lambda: stopped[0]
        )
    steps, outcome = replica_runs(real_ray, 4242)
    assert outcome == "GenerationCancelled"
    assert steps <= 3  # the gate held the run at step 2 until the stop reached the replica


def gated_and_named(gate: str, replica, loaded, request, on_step_end):
    """`gated_text_to_image` that also leaves the name of the replica running it in the gate folder."""
    Path(gate, "replica").write_text(replica.name)
    return gated_text_to_image(gate, replica, loaded, request, on_step_end)


def test_a_killed_replica_gives_a_retry_on_the_other_one(real_ray, host, tmp_path):
    import ray
    from ray.util.state import list_actors

    killed = []

    def progress(value, desc=None, unit=None):
        if not isinstance(value, tuple):
            return
        if value[0] == 2 and not killed:
            victim = Path(tmp_path, "replica").read_text().removeprefix("ray:")
            (name,) = [
                a.name for a in list_actors(filters=[("state", "=", "ALIVE")]) if a.name.endswith(victim)
            ]
            killed.append(victim)
            ray.kill(ray.get_actor(name, namespace="serve"), no_restart=False)
            for step in range(1, 17):  # the retry runs through
                Path(tmp_path, f"step-{step}").touch()
        elif not killed:
            Path(tmp_path, f"step-{value[0]}").touch()

    call = functools.partial(gated_and_named, str(tmp_path))
    result = generation.generate(real_ray, text_request(77, steps=16), progress, call=call)
    assert killed
    assert result.details["replica"] != f"ray:{killed[0]}"  # the retry ran on another replica
    local = generation.generate(host, text_request(77, steps=16))
    assert np.array_equal(np.asarray(result.image), np.asarray(local.image))
