"""Fixtures and hooks: offline settings, model hosts, a launched app, a gradio_client and a Chromium page.

Markers come from fixtures: a test whose fixtures include `serve` (the app launcher, used by
`server_url`) is marked `server`, one that includes `browser` (used by `page`) is marked `browser`, so
`python -m pytest -m "not server and not browser and not slow"` is the fast subset, and `LAUNCH_GUARD`
makes any launch outside those fixtures fail. Helpers shared with test modules are in `tests/helpers.py`.
"""

from __future__ import annotations

import collections
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, LAUNCH_GUARD, font_installed, missing_tool, serve_locally

# --- hooks -------------------------------------------------------------------------------------


@pytest.hookimpl(trylast=True)  # after pytest's tmpdir plugin has set up `_tmp_path_factory`
def pytest_configure(config):
    """Before any test module imports gradio (which reads GRADIO_TEMP_DIR at import) or the app: keep every
    file the tests write under pytest's own basetemp, and serve the offline tiny models."""
    files = config._tmp_path_factory.mktemp("flux-demo", numbered=False)
    # Everything that asks `tempfile` (or, in a child process such as Chromium, $TMPDIR) for a temporary
    # folder gets one here too: gradio_client downloads, Playwright profiles, torch's compiled headers.
    (files / "tmp").mkdir()
    os.environ["TMPDIR"] = tempfile.tempdir = str(files / "tmp")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(files / "gradio"))
    os.environ.setdefault("FLUX_DEMO_TINY_DIR", str(files / "tiny-models"))
    # Compiled kernels are a cache, as in torch's default /tmp/torchinductor_<user>, kept between runs (the
    # regional-compile test takes seconds with it, about a minute without) but out of /tmp.
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_home / "flux-demo" / "torchinductor"))
    os.environ["FLUX_DEMO_MODELS"] = "tiny-schnell,tiny-dev,tiny-klein"
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    """Mark each test `server` / `browser` from the fixtures it uses (`fixturenames` is the closure)."""
    for item in items:
        for marker, fixture in LAUNCH_GUARD.FIXTURES.items():
            if fixture in item.fixturenames:
                item.add_marker(marker)
            elif item.get_closest_marker(marker) is not None:
                raise pytest.UsageError(
                    f"{item.nodeid} is marked `{marker}` by hand; the mark comes from the `{fixture}` fixture"
                )


def pytest_collection_finish(session):
    """Guard `Blocks.launch` and Chromium launches for the selected tests (see `LaunchGuard`)."""
    if session.items:
        LAUNCH_GUARD.install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Tell the launch guard which test is running, fixtures' setup and teardown included."""
    LAUNCH_GUARD.item = item
    try:
        return (yield)
    finally:
        LAUNCH_GUARD.item = None


def pytest_terminal_summary(terminalreporter):
    """Say how many servers and browsers the run started (none in the fast subset)."""
    if LAUNCH_GUARD.installed:
        counts = LAUNCH_GUARD.launches
        terminalreporter.write_line(
            f"flux-demo: {counts['server']} Gradio server(s) and {counts['browser']} browser(s) launched"
        )


# --- the app -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings():
    """Settings for the offline tiny models, read from the environment set in `pytest_configure`."""
    from flux_demo.config import Settings

    return Settings.from_env()


@pytest.fixture(scope="session")
def host(settings):
    """The session's `ModelHost`: it loads each tiny model once, for the core tests and the served app."""
    from flux_demo.pipelines import ModelHost

    return ModelHost(settings)


@pytest.fixture
def fresh_host(settings):
    """A new `ModelHost` with nothing loaded, for tests that watch loading or change a host's state."""
    from flux_demo.pipelines import ModelHost

    return ModelHost(settings)


@pytest.fixture(scope="session")
def demo(host):
    """The app built by `create_demo` on the session's host (not launched by this fixture)."""
    from flux_demo.ui import create_demo

    return create_demo(backend=host)


@pytest.fixture(scope="session")
def serve():
    """The app launcher, `with serve(demo) as url:`; every test that starts a server does so through it."""
    return serve_locally


@pytest.fixture(scope="session")
def server_url(serve, demo):
    """URL of the session's app, launched once."""
    with serve(demo) as url:
        yield url


@pytest.fixture
def client(server_url):
    """A gradio_client connected to the session's app."""
    from gradio_client import Client

    return Client(server_url, verbose=False)


# --- tools the OCR tests need ------------------------------------------------------------------


@pytest.fixture(scope="session")
def dejavu():
    """DejaVu font file names by face; required, so the render tests cannot silently skip everything."""
    names = {face: f"{face}.ttf" for face in ("DejaVuSans", "DejaVuSerif", "DejaVuSans-Bold")}
    missing = [name for name in names.values() if not font_installed(name)]
    assert not missing, f"install fonts-dejavu-core: {missing} not found"
    return names


@pytest.fixture(scope="session")
def noto_cjk():
    """File name of Noto Sans CJK, for Korean and Japanese renders."""
    name = "NotoSansCJK-Regular.ttc"
    if not font_installed(name):
        missing_tool("fonts-noto-cjk is not installed")
    return name


@pytest.fixture(scope="session")
def tesseract():
    """Tesseract with Korean and Japanese data, the OCR engine for Hangul and kana."""
    from flux_demo.typography import tesseract as engine

    if not {"kor", "jpn"} <= engine.installed_languages():
        missing_tool(
            "Tesseract with Korean and Japanese data is not installed: apt-get install "
            "tesseract-ocr tesseract-ocr-kor tesseract-ocr-jpn, pip install pytesseract"
        )


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright; every browser test gets it through this fixture."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page (English locale) that is closed after the test."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


class StepGate(collections.Counter):
    """The denoising steps each seed's run really executed; runs of a `held` seed wait after their first
    step until they are stopped or cancelled, so a Stop lands at step 2 on any machine (see `steps_run`)."""

    def __init__(self):
        super().__init__()
        self.held: set[int] = set()
        self.hold_every_run = False
        self.free_runs = 0  # with hold_every_run: how many runs finish before the gate starts holding
        self.holding = collections.defaultdict(threading.Event)  # seed -> set once its run waits
        self.any_holding = threading.Event()
        self.runs_started = 0
        self.lock = threading.Lock()

    def hold(self, *seeds: int) -> None:
        self.held.update(seeds)

    def holds(self, seed: int) -> bool:
        return self.hold_every_run or seed in self.held

    def starts_run(self) -> None:
        """A run starts: one of `free_runs` if any are left (it runs through)."""
        with self.lock:
            self.runs_started += 1

    def lets_through(self) -> bool:
        return self.runs_started <= self.free_runs

    def wait_until_holding(self, seed: int, timeout: float = 120) -> None:
        assert self.holding[seed].wait(timeout), f"the run with seed {seed} never reached its first step"


@pytest.fixture
def open_page(browser):
    """A function that opens the app's page at a locale and viewport size and waits for Run; every page is
    closed afterwards."""
    contexts = []

    def open_(url, locale="en-US", width=1280, height=900):
        context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(90_000)
        page.goto(url)
        page.locator("#run").wait_for(state="visible")
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def steps_run(monkeypatch):
    """A `StepGate` over every pipeline call of the servers in this process (they run in this process)."""
    from flux_demo.pipelines import runner

    gate, real_call = StepGate(), runner.text_to_image

    def gated_call(replica, loaded, request, on_step_end):
        gate.starts_run()
        free = gate.lets_through()

        def on_step(pipeline, step, timestep, kwargs):
            gate[request.seed] += 1
            kwargs = on_step_end(pipeline, step, timestep, kwargs)  # raises once the run is abandoned
            if not free and gate.holds(request.seed):
                gate.holding[request.seed].set()
                gate.any_holding.set()
                deadline = time.monotonic() + 120
                while not on_step_end.abandoned():
                    assert time.monotonic() < deadline, f"the run with seed {request.seed} was never stopped"
                    time.sleep(0.01)
            return kwargs

        return real_call(replica, loaded, request, on_step)

    monkeypatch.setattr(runner, "text_to_image", gated_call)
    return gate


@pytest.fixture(scope="session")
def real_ray(settings):
    """The Ray Serve backend on a local Ray instance, two replicas each of tiny-schnell and tiny-klein on
    the CPU (tiny-klein's deployed on first use), shut down after the session; skips where ray[serve] is
    not installed."""
    try:
        import ray
        from ray import serve
    except ImportError:
        pytest.skip("ray[serve] is not installed: pip install -r requirements-ray.txt")
    import dataclasses
    import shutil

    import torch

    from flux_demo.pipelines.ray_serve import RayBackend

    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "RAY_ADDRESS", "RAY_TMPDIR")}
    # Replicas use this process's CPU thread count, so their float sums match the in-process path's.
    os.environ["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    # Ray's sockets live under its temp folder, whose path must stay under 108 bytes (AF_UNIX).
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    os.environ.pop("RAY_ADDRESS", None)  # a local instance, whatever the machine says
    backend = RayBackend(dataclasses.replace(settings, ray_replicas=(2, 2)), ("tiny-schnell", "tiny-klein"))
    backend.preload(("tiny-schnell",))
    yield backend
    serve.shutdown()
    ray.shutdown()
    shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
