"""One replica per device: CPU replicas (`FLUX_DEMO_DEVICES=cpu,cpu`) run requests at the same time, never
mix them up, skip a replica that cannot load, and Stop stops the job it was pressed for."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from benchmarks.load import run_load
from flux_demo import faults, generation
from flux_demo.config import Settings, parse_devices, parse_replicas
from flux_demo.pipelines import ModelHost, ReplicaPool, serving_host
from flux_demo.validation import GenerationRequest, validate

MODEL = "tiny-schnell"
# A device that exists nowhere: loading on it fails for real, on a CPU machine or a GPU node alike.
MISSING_CARD = "cuda:99"


def request(seed: int, steps: int = 4, size: int = 256):
    return validate(
        GenerationRequest(f"replica test {seed}", MODEL, size, size, steps, 0.0, seed, False), (MODEL,)
    )


@pytest.fixture(scope="module")
def pool(settings):
    """Two CPU replicas with tiny-schnell loaded on each."""
    pool = ReplicaPool(settings, ("cpu", "cpu"), (MODEL,))
    pool.preload()
    return pool


def test_devices_setting_lists_one_replica_per_entry():
    assert parse_devices("cuda:0, cuda:1") == ("cuda:0", "cuda:1")
    assert parse_devices("cpu,cpu") == ("cpu", "cpu")
    assert parse_devices("") is None


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cpu:1"])
def test_bad_devices_setting_names_the_variable_and_the_allowed_forms(bad):
    with pytest.raises(ValueError, match=r"FLUX_DEMO_DEVICES.*cpu, cuda or cuda:N"):
        parse_devices(bad)


def test_app_serves_from_a_pool_when_several_devices_are_listed(monkeypatch):
    monkeypatch.setenv("FLUX_DEMO_DEVICES", "cpu,cpu")
    pool = serving_host(Settings.from_env())
    assert isinstance(pool, ReplicaPool)
    assert [r.name for r in pool.replicas] == ["cpu#0", "cpu#1"]
    assert pool.concurrency == 2  # Gradio's GPU queue lets in one event per replica
    monkeypatch.setenv("FLUX_DEMO_DEVICES", "cpu")
    assert isinstance(serving_host(Settings.from_env()), ModelHost)


def test_each_replica_owns_its_pipelines_and_shares_encoders_within_itself(settings):
    pool = ReplicaPool(settings, ("cpu", "cpu"), ("tiny-schnell", "tiny-dev"))
    pool.preload()
    first, second = pool.replicas
    assert first.get_pipeline("tiny-schnell") is not second.get_pipeline("tiny-schnell")
    assert first.get_pipeline("tiny-schnell").vae is first.get_pipeline("tiny-dev").vae
    assert first.get_pipeline("tiny-schnell").vae is not second.get_pipeline("tiny-schnell").vae


def test_two_replicas_run_two_requests_at_the_same_time_with_the_right_pixels(pool, host):
    """Each run waits at its first step until the other has reached its own first step: with one
    replica (or a pool that serialised them) the barrier breaks and the runs fail."""
    both_running = threading.Barrier(2, timeout=120)
    results, errors = {}, []

    def progress(value, desc=None, unit=None):
        if value == (1, 4):
            both_running.wait()

    def run(seed):
        try:
            results[seed] = generation.generate(pool, request(seed), progress)
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (11, 12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {results[s].details["replica"] for s in (11, 12)} == {"cpu#0", "cpu#1"}
    for seed, result in results.items():  # the same pixels as one in-process host for that seed
        assert result.image.info["seed"] == str(seed)
        reference = generation.generate(host, request(seed)).image
        assert np.array_equal(np.asarray(result.image), np.asarray(reference))


def test_replica_that_cannot_load_is_skipped_and_reported(settings):
    pool = ReplicaPool(settings, (MISSING_CARD, "cpu"), (MODEL,))
    result = generation.generate(pool, request(5))
    assert result.details["replica"] == "cpu#0"
    assert (MISSING_CARD, MODEL) in pool.failures
    assert generation.generate(pool, request(6)).details["replica"] == "cpu#0"  # not tried again


def test_model_that_no_replica_can_load_is_a_clear_fault_and_is_retried_later(settings):
    pool = ReplicaPool(settings, ("cuda:98", MISSING_CARD), (MODEL,))
    with pytest.raises(faults.GenerationFailed, match="unavailable"):
        generation.generate(pool, request(5))
    assert pool.failures == {}  # forgotten, so a later request tries every replica again


@pytest.fixture(scope="module")
def pool_url(serve, pool):
    from flux_demo.ui import create_demo

    # Visitors behind one trusted proxy, as on a Space: each client below is its own visitor.
    rules = dataclasses.replace(pool.settings, trusted_proxies=1)
    with serve(create_demo(rules, backend=pool)) as url:
        yield url


def test_sixteen_clients_on_two_replicas_get_their_own_images(pool_url):
    report = run_load(
        pool_url, 16, 1, MODEL, headers_for=lambda n: {"X-Forwarded-For": f"198.51.100.{n + 1}"}
    )
    assert report.mixups == []
    assert report.errors == []
    assert len(report.latencies) == 16


def test_stop_stops_the_job_it_was_pressed_for_and_the_other_replica_finishes(pool_url, steps_run):
    long = {"prompt": "a long run", "model": MODEL, "width": 512, "height": 512, "guidance": 0.0}
    long = {**long, "steps": 16, "randomize_seed": False}
    steps_run.hold(101)
    stopped_client, other_client = Client(pool_url, verbose=False), Client(pool_url, verbose=False)
    stopped = stopped_client.submit(**long, seed=101, api_name="/generate")
    steps_run.wait_until_holding(101)  # held on one replica
    other = other_client.submit(**long, seed=102, api_name="/generate")
    path, seed, details = other.result(timeout=300)  # runs through on the other replica meanwhile
    stopped.cancel()
    assert seed == 102 and Image.open(path).text["seed"] == "102"
    assert details["replica"] in ("cpu#0", "cpu#1")
    assert steps_run[102] == 16
    deadline = time.monotonic() + 60
    while steps_run[101] < 2 and time.monotonic() < deadline:  # the held run sees its stop
        time.sleep(0.05)
    assert steps_run[101] == 2


def test_ray_settings_are_checked_with_the_variable_named(monkeypatch):
    assert parse_replicas("2") == (2, 2)
    assert parse_replicas("1-4") == (1, 4)
    for bad in ("0", "4-1", "two"):
        with pytest.raises(ValueError, match="FLUX_DEMO_RAY_REPLICAS"):
            parse_replicas(bad)
    monkeypatch.setenv("FLUX_DEMO_BACKEND", "slurm")
    with pytest.raises(ValueError, match="FLUX_DEMO_BACKEND must be one of local, ray"):
        Settings.from_env()
