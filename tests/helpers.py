"""Helpers shared by the tests and the benchmarks: serving the app, known-text renders, the docs' code
examples, and the guard that keeps servers and browsers out of the fast subset.

Fixtures and hooks live in `conftest.py`; everything they share with test modules lives here and is
imported as `from tests.helpers import ...`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import time
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS_API = ROOT / "docs" / "api.md"

CHROMIUM = os.environ.get("FLUX_DEMO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# --- serving the app ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_locally(demo):
    """Launch `demo` (built by `create_demo`) on 127.0.0.1 and a free port with the app's own launch
    options; yield its URL and close it afterwards. Tests reach this through the `serve` fixture."""
    from flux_demo.ui import launch_options

    demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=free_port(),
        quiet=True,
        **launch_options(demo),
    )
    try:
        yield demo.local_url
    finally:
        demo.close()


# --- tools that CI installs --------------------------------------------------------------------


def missing_tool(message: str) -> None:
    """Fail on CI, which installs every tool (.ci/run), so nothing skips there; elsewhere skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI installs it in .ci/run)")
    pytest.skip(message)


@functools.cache
def font_installed(name: str) -> bool:
    """Whether Pillow finds the font file `name` (such as "DejaVuSans.ttf") in the system font folders."""
    from PIL import ImageFont

    try:
        ImageFont.truetype(name, 12)
    except OSError:
        return False
    return True


# --- known-text renders: OCR ground truth ------------------------------------------------------


def render_text(
    text: str,
    font: str | None = None,
    size: int = 48,
    colour: str = "black",
    background: str = "white",
    width: int = 640,
):
    """Known text drawn centred on a plain background: OCR ground truth. ``size`` in pixels.

    ``font`` is a font file name such as "DejaVuSans.ttf" or "NotoSansCJK-Regular.ttc", which Pillow
    looks up in the system font folders; None uses Pillow's built-in font. Newlines start new lines;
    the image is ``width`` pixels wide (wider if the text needs it), at least half as tall, with a
    margin of one text size around. Banner-shaped images are avoided on purpose: RapidOCR scales the
    short side up to 736 px before detection, so a 768×100 strip would be searched at 5,600×736 (slow).
    """
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(font, size) if font else ImageFont.load_default(size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = probe.multiline_textbbox((0, 0), text, font=face, spacing=size // 2)
    canvas_width = max(width, right - left + 2 * size)
    canvas = Image.new("RGB", (canvas_width, max(canvas_width // 2, bottom - top + 2 * size)), background)
    top -= (canvas.height - (bottom - top + 2 * size)) // 2  # centre vertically
    x = (canvas.width - (right - left)) // 2 - left
    ImageDraw.Draw(canvas).multiline_text((x, size - top), text, font=face, fill=colour, spacing=size // 2)
    return canvas


# --- the documented code examples --------------------------------------------------------------


def doc_examples(*api_names: str) -> list[str]:
    """docs/api.md's gradio_client examples that call any of `api_names`, pointed at the offline tiny
    models."""
    assert DOCS_API.exists(), f"{DOCS_API.relative_to(ROOT)} must exist: it documents the API with examples"
    blocks = re.findall(r"```python\n(.*?)```", DOCS_API.read_text(encoding="utf-8"), flags=re.S)
    examples = [b for b in blocks if "gradio_client" in b and any(f'"{n}"' in b for n in api_names)]
    assert examples, f"docs/api.md must show gradio_client calls of {api_names}"
    return [re.sub(r'"(schnell|dev|klein)"', r'"tiny-\1"', code) for code in examples]


def run_doc_example(code: str, server_url: str) -> dict:
    """Run a docs example against `server_url` at 256x256 (tiny models); returns its variables."""
    namespace: dict = {}
    code = code.replace("http://127.0.0.1:7860/", server_url).replace("1024", "256")
    exec(compile(code, str(DOCS_API.relative_to(ROOT)), "exec"), namespace)
    return namespace


# --- the fast subset starts no server and no browser -------------------------------------------


class UnmarkedLaunch(RuntimeError):
    """A test started a Gradio server or a browser without the fixture that marks it."""


class LaunchGuard:
    """Refuses to launch a Gradio server or Chromium outside a test that uses the `serve` or `browser`
    fixture, from which `conftest.py` marks tests `server` and `browser`.

    So `-m "not server and not browser"` cannot start either: a test that does so by hand fails with
    `UnmarkedLaunch` instead of quietly slowing the fast subset. `conftest.py` sets `item` while each
    test runs (setup, call and teardown, so session fixtures count for the test that first needs them).
    """

    # Fixture that must be in a test's closure for each kind of launch.
    FIXTURES: ClassVar[dict[str, str]] = {"server": "serve", "browser": "browser"}

    def __init__(self):
        self.item: pytest.Item | None = None
        self.launches = {"server": 0, "browser": 0}
        self.installed = False

    def check(self, kind: str) -> None:
        fixture = self.FIXTURES[kind]
        if self.item is None or fixture not in self.item.fixturenames:
            where = self.item.nodeid if self.item is not None else "code outside any test"
            raise UnmarkedLaunch(
                f"{where} launches a {kind} without the `{fixture}` fixture, so it is not marked "
                f"`{kind}` and would run in the fast subset; use the fixture"
            )
        self.launches[kind] += 1

    def install(self) -> None:
        """Wrap `gradio.Blocks.launch` and Playwright's `BrowserType.launch` (once per process)."""
        if self.installed:
            return
        import gradio
        from playwright.sync_api._generated import BrowserType

        self._wrap(gradio.Blocks, "launch", "server")
        self._wrap(BrowserType, "launch", "browser")
        self._wrap(BrowserType, "launch_persistent_context", "browser")
        self.installed = True

    def _wrap(self, cls, name: str, kind: str) -> None:
        original = getattr(cls, name)

        @functools.wraps(original)
        def guarded(*args, **kwargs):
            self.check(kind)
            return original(*args, **kwargs)

        setattr(cls, name, guarded)


LAUNCH_GUARD = LaunchGuard()


def step_of(job) -> int:
    """The denoising step a running job last reported (0 before the first)."""
    units = job.status().progress_data or []
    return max((u.index or 0 for u in units if u.unit == "steps"), default=0)


def wait_for_steps(job, steps: int, timeout: float = 120) -> float:
    """Wait until `job` reports `steps` steps; return the seconds per step so far (an over-estimate:
    it includes the queue and text encoding, so the tests' bound is lenient, never flaky)."""
    start = time.perf_counter()
    while (step := step_of(job)) < steps:
        assert not job.done(), f"the long run ended early: {job.status()}"
        assert time.perf_counter() - start < timeout, "the long run made no progress"
        time.sleep(0.02)
    return (time.perf_counter() - start) / step


# --- Korean coverage -----------------------------------------------------------------------------

# Words that stay English in Korean text: names, field names, units and technical terms.
_KEEP_ENGLISH = """
    FLUX schnell dev klein Apache Non Commercial offline tiny preview diffusers OCR CER RapidOCR
    Tesseract engine PNG JPEG WebP GPU CUDA ZeroGPU Space MCP API VRAM HF_TOKEN Hub JSON CSV
    prompt model models width height steps guidance seed seeds first_seed randomize_seed count
    categories expected image scores settings text png tab true false cpu float bfloat
    Gradio gradio_client Settings Black Forest Labs C2PA IPTC XMP
"""
KEEP_ENGLISH = set(_KEEP_ENGLISH.split())


def english_sentences(text: str) -> list[str]:
    """Runs of three or more English words in `text` that are not names, field names or technical
    terms: what a Korean reader would still have to read in English. Quoted values ('abc', "OPEN")
    are what the visitor typed and are skipped."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`|\{[^}]*\}", " ", text)
    words = re.findall(r"[A-Za-z][A-Za-z_'-]*|[^\sA-Za-z]+", text)
    runs, current = [], []
    for word in words:
        if re.fullmatch(r"[A-Za-z][A-Za-z_'-]*", word) and word not in KEEP_ENGLISH and len(word) > 1:
            current.append(word)
            continue
        if len(current) >= 3:
            runs.append(" ".join(current))
        current = []
    if len(current) >= 3:
        runs.append(" ".join(current))
    return runs


# --- gating a run at a step ----------------------------------------------------------------------


def gated_text_to_image(gate: str, replica, loaded, request, on_step_end):
    """Text to image that, after each step, waits until the test opens that step's gate (a file named
    `step-N` in the folder `gate`) or the run is abandoned, so a Stop lands at a known step whatever the
    timing. Module-level and bound with `functools.partial`, so it pickles to a Ray replica."""
    from flux_demo.pipelines import runner

    def gated(pipeline, step, timestep, kwargs):
        kwargs = on_step_end(pipeline, step, timestep, kwargs)
        deadline = time.monotonic() + 120
        while not Path(gate, f"step-{step + 1}").exists() and not on_step_end.abandoned():
            assert time.monotonic() < deadline, "the test never opened the gate nor stopped the run"
            time.sleep(0.01)
        return kwargs

    return runner.text_to_image(replica, loaded, request, gated)


def open_gates_until(gate: Path, stop_at: int, stopped: list[bool]):
    """A progress callback that opens each step's gate until step `stop_at`, where it presses Stop
    (`stopped[0] = True`) and leaves the gate shut: the run must see the stop to go on."""

    def progress(value, desc=None, unit=None):
        if not isinstance(value, tuple):
            return  # the "loading" message
        if value[0] >= stop_at:
            stopped[0] = True
        else:
            Path(gate, f"step-{value[0]}").touch()

    return progress
