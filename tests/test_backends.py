"""The backend contract (`flux_demo.pipelines.backend`): one set of scenarios over every backend.

Backends: the in-process `ModelHost`, a `ReplicaPool` of two CPU replicas, the `RayBackend` over
`InProcessServe` (the Ray front end and replica code, with every job and event pickled across, without
Ray), and the `RayBackend` on a real local Ray instance (only where `requirements-ray.txt` is installed;
CI installs it). Each scenario gives the same pixels on every backend as the in-process path, and the
Stop scenario is gated: the run waits after the stop's step until the stop has reached it, so the step
it stops at does not depend on timing.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil

import numpy as np
import pytest

from benchmarks.load import run_load
from flux_demo import editing, faults, generation
from flux_demo.pipelines import Backend, ModelHost, ReplicaPool
from flux_demo.pipelines.ray_serve import InProcessServe, RayBackend
from flux_demo.validation import GenerationRequest, validate
from flux_demo.watching import trajectory
from flux_demo.watching.previews import PreviewObserver
from tests.helpers import gated_text_to_image, open_gates_until

MODELS = ("tiny-schnell", "tiny-klein", "nano-schnell")  # nano: the shipped LoRAs fit it
# Deploying replicas on a fresh local Ray instance takes minutes on a busy 2-core machine.
REAL_RAY = pytest.param("ray", marks=[pytest.mark.slow, pytest.mark.timeout(1800)])
BACKENDS = ["local", "pool", "ray-in-process", REAL_RAY]


@pytest.fixture(scope="module")
def backends(settings, host):
    """The in-process backends, built once per module (the real Ray one is `real_ray`)."""
    return {
        "local": host,
        "pool": ReplicaPool(settings, ("cpu", "cpu"), MODELS),
        "ray-in-process": RayBackend(settings, MODELS, transport=InProcessServe(settings)),
    }


@pytest.fixture(params=BACKENDS)
def backend(request, backends) -> Backend:
    if request.param == "ray":
        return request.getfixturevalue("real_ray")
    return backends[request.param]


def text_request(
    seed: int, model: str = "tiny-schnell", steps: int = 4, prompt: str = "a lighthouse", loras=(), images=1
):
    return validate(
        GenerationRequest(prompt, model, 256, 256, steps, 0.0, seed, False, loras, images), MODELS
    )


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def test_every_backend_implements_the_declared_protocol(backend):
    assert isinstance(backend, Backend)


def test_generate_gives_the_in_process_pixels_with_progress_per_step(backend, host):
    steps = []
    remote = generation.generate(
        backend, text_request(3), lambda value, desc=None, unit=None: steps.append(value)
    )
    local = generation.generate(host, text_request(3))
    assert np.array_equal(pixels(remote.image), pixels(local.image))
    assert remote.image.info["seed"] == "3"  # PNG metadata is written by the front end
    assert [s for s in steps if isinstance(s, tuple)] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert remote.details["replica"] and remote.details["backend"] in ("local", "ray")


def test_edit_with_a_reference_gives_the_in_process_pixels(backend, host, tmp_path):
    from PIL import Image

    reference = tmp_path / "reference.png"
    Image.new("RGB", (256, 256), (200, 30, 30)).save(reference)
    request = editing.EditRequest(
        "the red square from image 1",
        "tiny-klein",
        "edit",
        [str(reference)],
        None,
        None,
        2,
        None,
        5,
        False,
        0,
        0,
    )
    valid = editing.validate_edit(request, MODELS)
    remote = editing.run_edit(backend, valid)
    local = editing.run_edit(host, valid)
    assert np.array_equal(pixels(remote.image), pixels(local.image))
    assert remote.details["reference_count"] == 1


def test_a_lora_run_gives_the_in_process_pixels_and_the_next_run_the_base_ones(backend, host):
    """The LoRA choice travels in the request; the replica loads the adapter (the shipped nano LoRA)
    and, for the next request without one, runs the base weights again."""
    sign = 'a sign that says "CAT"'
    styled = text_request(5, "nano-schnell", prompt=sign, loras=(("nano-inverted-sign", 1.0),))
    plain = text_request(5, "nano-schnell", prompt=sign)
    remote, local = generation.generate(backend, styled), generation.generate(host, styled)
    assert np.array_equal(pixels(remote.image), pixels(local.image))
    assert remote.image.info["loras"] == "nano-inverted-sign:1"
    base = generation.generate(host, plain)
    assert not np.array_equal(pixels(remote.image), pixels(base.image))
    assert np.array_equal(pixels(generation.generate(backend, plain).image), pixels(base.image))


def test_several_images_come_back_from_one_run(backend, host):
    request = text_request(8, steps=2, images=3)
    remote, local = generation.generate(backend, request), generation.generate(host, request)
    assert [image.info["seed"] for image in remote.images] == ["8", "9", "10"]
    for mine, theirs in zip(remote.images, local.images, strict=True):
        assert np.array_equal(pixels(mine), pixels(theirs))


def test_trajectory_streams_every_step_and_reads_the_model_where_it_ran(backend, host):
    valid = text_request(7, model="tiny-klein", steps=3)
    recorded = trajectory.run_trajectory(backend, valid)
    assert [step.index for step in recorded.steps] == [1, 2, 3]
    assert recorded.details["architecture"]["transformer"] == "Flux2Transformer2DModel"
    assert recorded.details["text_tokens"][0]["count"] > 0
    plain = generation.generate(host, valid)
    assert np.array_equal(pixels(recorded.result.image), pixels(plain.image))


def test_previews_arrive_one_per_step_and_leave_the_image_unchanged(backend, host):
    valid = text_request(11, steps=3)
    previews = []
    observer = PreviewObserver(valid.spec, valid.width, valid.height, previews.append)
    watched = generation.generate(backend, valid, observer=observer)
    assert [p.step for p in previews] == [1, 2, 3]
    # The tiny models' previews are their VAE's decode: the last one is the final image (but its mark).
    assert valid.spec.preview_decoder == "vae"
    last = pixels(previews[-1].image.convert("RGB")).astype(float)
    assert np.abs(last - pixels(watched.image.convert("RGB")).astype(float)).mean() <= 8
    plain = generation.generate(host, valid)
    assert np.array_equal(pixels(watched.image), pixels(plain.image))


def test_stop_ends_the_run_at_the_step_after_it_and_the_backend_serves_the_next(backend, tmp_path):
    valid = text_request(21, steps=8)
    stop_after, stopped = 2, [False]
    progress = open_gates_until(tmp_path, stop_after, stopped)
    call = functools.partial(gated_text_to_image, str(tmp_path))
    with pytest.raises(faults.GenerationCancelled) as stop:
        generation.generate(backend, valid, progress, call=call, stopped=lambda: stopped[0])
    assert stop.value.step in (stop_after, stop_after + 1)  # as seen by the front end / by the replica
    assert stop.value.steps == 8
    assert generation.generate(backend, text_request(22, steps=1)).image.size == (256, 256)


def test_detached_jobs_pickle_for_another_process(host):
    """What crosses to a Ray replica or a ZeroGPU worker: the request, the call, the observer without
    its front-end `emit` (a closure)."""
    import pickle

    from flux_demo.pipelines import Job

    valid = text_request(1)
    observer = PreviewObserver(valid.spec, 256, 256, lambda preview: None)
    job = Job(valid, functools.partial(gated_text_to_image, "/tmp"), observer, trajectory.inspect_model)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(job)
    shipped = pickle.loads(pickle.dumps(job.detached()))
    assert shipped.request == valid and shipped.observer.emit is None
    assert observer.emit is not None  # the front end keeps its own


def test_a_model_that_cannot_load_is_a_clear_fault_on_every_backend(settings, tmp_path):
    from flux_demo.offline import tiny

    tiny.ensure_tiny_model("flux1-schnell", settings.tiny_dir)
    shutil.copytree(settings.tiny_dir, tmp_path / "tiny-models")
    weights = tmp_path / "tiny-models" / f"v{tiny.TINY_FORMAT}" / "flux1-schnell" / "transformer"
    weights = weights / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a truncated download: loading fails for real
    broken = dataclasses.replace(settings, tiny_dir=tmp_path / "tiny-models")
    for backend in (
        ModelHost(broken, MODELS),
        ReplicaPool(broken, ("cpu", "cpu"), MODELS),
        RayBackend(broken, MODELS, transport=InProcessServe(broken)),
    ):
        with pytest.raises(faults.ModelUnavailable, match=r"FLUX\.1 \[schnell\]"):
            generation.generate(backend, text_request(1))


@pytest.mark.parametrize("name", BACKENDS)
def test_sixteen_clients_get_their_own_images(name, serve, backends, request):
    """Sixteen concurrent clients of the real server, each with its own seed: nobody gets another's
    image, whichever backend serves them."""
    from flux_demo.ui import create_demo

    backend = request.getfixturevalue("real_ray") if name == "ray" else backends[name]
    # Sixteen visitors behind one trusted proxy (each may have two jobs queued), as on a Space.
    rules = dataclasses.replace(backend.settings, trusted_proxies=1)
    with serve(create_demo(rules, backend=backend)) as url:
        report = run_load(
            url, 16, 1, "tiny-schnell", headers_for=lambda n: {"X-Forwarded-For": f"203.0.113.{n + 1}"}
        )
    assert report.mixups == []
    assert report.errors == []
    assert len(report.latencies) == 16
