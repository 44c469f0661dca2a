"""Robustness: cancellation, a full queue, and faults (out of memory, a broken model, ZeroGPU errors).

Cancellation is checked by counting the denoising steps that really ran, and the full queue by holding
the pipeline on an event, not by timing.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
import threading

import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError
from PIL import Image

from flux_demo import faults
from flux_demo.offline import tiny
from flux_demo.pipelines import ModelHost, runner

QUICK = dict(
    prompt="a red cube",
    model="tiny-dev",
    width=256,
    height=256,
    steps=2,
    guidance=3.5,
    seed=7,
    randomize_seed=False,
    previews=False,
)
# A run that the `steps_run` gate holds after its first step until it is stopped.
LONG = {**QUICK, "steps": 8, "seed": 8}


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def assert_stopped_at_the_next_step(counts) -> None:
    """The held run saw the stop at its next step: it ran its first step and the one after, no more."""
    assert counts[LONG["seed"]] == 2, f"ran {counts[LONG['seed']]} steps"


def assert_recovers_within_a_few_steps(server_url: str, stop_run, counts, **changes) -> None:
    """Start a long run (LONG with `changes`), stop it with `stop_run(job)`; the next request runs and the
    long one stopped."""
    reference = pixels(Client(server_url, verbose=False).predict(**QUICK, api_name="/generate")[0])
    counts.hold(LONG["seed"])
    long_client = Client(server_url, verbose=False)
    job = long_client.submit(**{**LONG, **changes}, api_name="/generate")
    counts.wait_until_holding(LONG["seed"])
    stop_run(job, long_client)
    # The next request gets the GPU slot only once the long run has let go of it.
    path = Client(server_url, verbose=False).predict(**QUICK, api_name="/generate")[0]
    assert_stopped_at_the_next_step(counts)
    # The interrupted pipeline is intact: same seed, same pixels as before the interruption.
    assert np.array_equal(pixels(path), reference)


def test_cancelled_run_frees_the_gpu_for_the_next_request_within_a_step(server_url, steps_run):
    assert_recovers_within_a_few_steps(server_url, lambda job, _client: job.cancel(), steps_run)


def test_cancelled_run_with_live_previews_stops_within_a_step(server_url, steps_run):
    """With previews the pipeline runs in a thread of its own; cancelling still reaches it."""
    assert_recovers_within_a_few_steps(
        server_url, lambda job, _client: job.cancel(), steps_run, previews=True
    )


def fn_index(client: Client, api_name: str) -> int:
    return next(i for i, e in client.endpoints.items() if e.api_name == api_name)


def test_client_that_disconnects_stops_its_run_within_a_step(server_url, steps_run):
    """A raw queue client that hangs up mid-run: the server interrupts the run."""
    base = server_url.rstrip("/") + "/gradio_api"
    session = "disconnecting-visitor"

    # Start the long run by hand so that this test owns the connection it drops.
    reference = pixels(Client(server_url, verbose=False).predict(**QUICK, api_name="/generate")[0])
    index = fn_index(Client(server_url, verbose=False), "/generate")
    data = [LONG[k] for k in QUICK]
    steps_run.hold(LONG["seed"])
    with httpx.Client(timeout=120) as http:
        http.post(
            f"{base}/queue/join", json={"data": data, "fn_index": index, "session_hash": session}
        ).raise_for_status()
        step = 0
        with http.stream("GET", f"{base}/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") != "progress":
                    continue
                step = max(u.get("index") or 0 for u in message["progress_data"])
                if step >= 1:
                    break
        # leaving the `with` closed the event stream: the visitor is gone
    path = Client(server_url, verbose=False).predict(**QUICK, api_name="/generate")[0]
    assert_stopped_at_the_next_step(steps_run)
    assert np.array_equal(pixels(path), reference)


def test_every_long_action_has_a_stop_button_wired_to_it_and_hidden_until_it_runs(demo):
    config = demo.get_config_file()
    for action in (
        "generate",
        "compare",
        "sweep",
        "typography",
        "suite",
        "edit",
        "trajectory",
        "distillation",
        "ablation",
    ):
        stop = next(c for c in config["components"] if c["props"].get("elem_id") == f"{action}-stop")
        clicked = [
            d for d in config["dependencies"] if [stop["id"], "click"] in [list(t) for t in d["targets"]]
        ]
        assert clicked, f"{action}: its Stop button has no click event"
        assert stop["props"]["visible"] is False, f"{action}: its Stop button shows when nothing runs"


def join_queue(url: str, index: int, seed: int) -> httpx.Response:
    """Put one /generate event in the queue by hand; the response comes once Gradio accepted or refused it."""
    data = [{**QUICK, "seed": seed}[k] for k in QUICK]
    body = {"data": data, "fn_index": index, "session_hash": f"queue-filler-{seed}"}
    return httpx.post(f"{url.rstrip('/')}/gradio_api/queue/join", json=body, timeout=60)


def test_full_queue_says_busy_and_the_app_recovers_when_it_drains(serve, settings, monkeypatch):
    """One job holds the GPU on an event and 2 wait, so the queue (max 2) is full for certain: the next
    submissions are turned away, and once the pipeline is released every accepted job runs."""
    from flux_demo.ui import create_demo

    real_call, hold, running, calls = runner.text_to_image, threading.Event(), threading.Event(), []

    def held_call(replica, loaded, request, on_step_end):
        calls.append(request.seed)
        running.set()
        assert hold.wait(timeout=120), "the test never released the pipeline"
        return real_call(replica, loaded, request, on_step_end)

    monkeypatch.setattr(runner, "text_to_image", held_call)
    # One address sends every job here: its own cap (2 waiting or running) is lifted to reach the queue's.
    # Without time-sharing, Gradio lets in one GPU job at a time, so the other two wait in its queue.
    busy = dataclasses.replace(settings, queue_size=2, max_queued_per_visitor=10, gpu_timeshare=0)
    with serve(create_demo(busy)) as url:
        try:
            client = Client(url, verbose=False)
            first = client.submit(**{**QUICK, "seed": 1}, api_name="/generate")
            assert running.wait(timeout=120), "the first job never reached the pipeline"
            index = fn_index(client, "/generate")
            assert [join_queue(url, index, seed).status_code for seed in (2, 3)] == [200, 200]
            # Full: raw callers get HTTP 503 with Gradio's detail, gradio_client a QueueError.
            refused = join_queue(url, index, 4)
            assert refused.status_code == 503 and "Queue is full" in refused.text, refused.text
            with pytest.raises(QueueError, match=r"Queue is full.*try again"):
                client.submit(**{**QUICK, "seed": 5}, api_name="/generate").result(timeout=60)
        finally:
            hold.set()
        assert Image.open(first.result(timeout=120)[0]).size == (256, 256)
        # Drained: a new request runs, after the two queued ones (one GPU slot, first come first served).
        assert Image.open(client.predict(**{**QUICK, "seed": 6}, api_name="/generate")[0]).size == (256, 256)
        assert calls == [1, 2, 3, 6]


def test_out_of_memory_becomes_a_clear_error_and_the_next_request_succeeds(client, monkeypatch):
    import torch

    real_call, cleanups = runner.text_to_image, []

    def oom_once(*args, **kwargs):
        monkeypatch.setattr(runner, "text_to_image", real_call)
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")

    def spy_cleanup():
        cleanups.append(sys.exc_info()[0])  # None: called outside any except block

    monkeypatch.setattr(runner, "text_to_image", oom_once)
    monkeypatch.setattr(runner, "free_gpu_memory", spy_cleanup)  # the runner owns the GPU call
    with pytest.raises(AppError, match="out of GPU memory: try a smaller size or fewer steps"):
        client.predict(**QUICK, api_name="/generate")
    assert cleanups == [None]
    assert Image.open(client.predict(**QUICK, api_name="/generate")[0]).size == (256, 256)


def test_corrupt_model_is_unavailable_while_others_work_and_a_retry_succeeds_once_fixed(
    serve, settings, tmp_path
):
    from flux_demo.ui import create_demo

    for variant in ("flux1-schnell", "flux1-dev"):
        tiny.ensure_tiny_model(variant, settings.tiny_dir)
    copy = tmp_path / "tiny-models"
    shutil.copytree(settings.tiny_dir, copy)
    weights = (
        copy / f"v{tiny.TINY_FORMAT}" / "flux1-dev" / "transformer" / "diffusion_pytorch_model.safetensors"
    )
    intact = weights.read_bytes()
    weights.write_bytes(intact[: len(intact) // 2])  # a truncated download
    # An app whose host loads from the folder holding the corrupt copy.
    host = ModelHost(dataclasses.replace(settings, tiny_dir=copy))
    with serve(create_demo(backend=host)) as url:
        client = Client(url, verbose=False)
        with pytest.raises(
            AppError, match=r"model: FLUX\.1 \[dev\].* is unavailable right now: .*failed to load"
        ):
            client.predict(**QUICK, api_name="/generate")
        schnell = {**QUICK, "model": "tiny-schnell", "guidance": 0.0}
        assert Image.open(client.predict(**schnell, api_name="/generate")[0]).size == (256, 256)
        assert not host.is_loaded("tiny-dev")  # the failure is not cached

        weights.write_bytes(intact)  # repaired
        assert Image.open(client.predict(**QUICK, api_name="/generate")[0]).size == (256, 256)


def zerogpu_error(title: str, message: str):
    """The exception `spaces` raises on ZeroGPU (spaces/zero/gradio.py `error`)."""
    from spaces.zero.gradio import error

    return error(title, message)


@pytest.mark.parametrize(
    ("title", "message", "expected"),
    [
        (
            "ZeroGPU quota exceeded",
            "You have exceeded your free ZeroGPU quota (60s requested vs. 12s left). Try again in 0:03:00.",
            r"GPU quota exceeded\. You have exceeded .*Try again in 0:03:00",
        ),
        ("ZeroGPU queue timeout", "No GPU was available after 60s", r"no GPU became free in time"),
        (
            "ZeroGPU illegal duration",
            "The requested GPU duration (400s) is larger",
            r"fewer steps or a smaller size",
        ),
        ("ZeroGPU worker error", "GPU task aborted", r"stopped, usually for running past its time limit"),
        ("ZeroGPU worker error", "OutOfMemoryError", r"out of GPU memory: try a smaller size or fewer steps"),
        ("ZeroGPU worker error", "OutOfGpuMemory", r"out of GPU memory"),
    ],
)
def test_zerogpu_errors_map_to_readable_faults(title, message, expected):
    fault = faults.from_zerogpu(zerogpu_error(title, message))
    assert isinstance(fault, faults.GenerationFailed)
    assert re.search(expected, str(fault))


def test_other_errors_are_not_mistaken_for_zerogpu_faults():
    assert faults.from_zerogpu(RuntimeError("boom")) is None


def test_zerogpu_quota_error_reaches_the_visitor_readably(client, monkeypatch):
    def over_quota(*_args, **_kwargs):
        raise zerogpu_error("ZeroGPU quota exceeded", "Space app has reached its GPU limit.")

    monkeypatch.setattr(runner, "run_job", over_quota)
    with pytest.raises(AppError, match=r"GPU quota exceeded\. Space app has reached its GPU limit"):
        client.predict(**QUICK, api_name="/generate")


def test_delete_cache_cleans_temporary_outputs_on_a_schedule(demo):
    frequency, age = demo.delete_cache
    assert 0 < frequency <= 3600 and 0 < age <= 24 * 3600
