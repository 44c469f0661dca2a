"""Helpers shared by the tests and the benchmarks: serving the app, known-text renders, the docs' code
examples, and the guard that keeps servers and browsers out of the fast subset.

Fixtures and hooks live in `conftest.py`; everything they share with test modules lives here and is
imported as `from tests.helpers import ...`.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import socket
import threading
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


@contextlib.contextmanager
def serve_pages(page_for):
    """Serve `page_for(path)`, a (content type, text) pair or None for "not found", on 127.0.0.1 and a
    port of its own, as a documentation site would; yield its URL and stop afterwards."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            page = page_for(self.path.split("?")[0])
            if page is None:
                self.send_error(404)
                return
            kind, text = page
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()


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


# --- LoRA files and a stand-in for the Hub ------------------------------------------------------


def make_lora(transformer, folder: Path, seed: int, rank: int = 4, base_model="tiny-flux1", weight_name=None):
    """A LoRA for `transformer`'s architecture with random (non-zero) weights, saved with diffusers'
    `save_lora_weights` into `folder` (weight file `weight_name`, default diffusers' own name), with a
    model card whose front matter names `base_model` (None: no base_model)."""
    import copy

    import torch
    from diffusers import FluxPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    model = copy.deepcopy(getattr(transformer, "_orig_mod", transformer))
    model.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    )
    generator = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data = torch.randn(param.shape, generator=generator) * 0.5
    folder.mkdir(parents=True, exist_ok=True)
    weight_name = weight_name or "pytorch_lora_weights.safetensors"
    layers = get_peft_model_state_dict(model)
    FluxPipeline.save_lora_weights(folder, transformer_lora_layers=layers, weight_name=weight_name)
    card = (
        "---\nlicense: apache-2.0\n" + (f"base_model: {base_model}\n" if base_model else "") + "---\n# test\n"
    )
    (folder / "README.md").write_text(card)
    return folder / weight_name


@contextlib.contextmanager
def hub_emulator(root: Path):
    """A local HTTP server that answers the two Hub routes `huggingface_hub` uses to fetch a LoRA: a
    model's info (`/api/models/<id>`, its files with sizes and the card's front matter) and a file
    (`/<id>/resolve/<revision>/<path>`). `root/<owner>/<name>/` holds each repository's files. Yields its
    address (the `endpoint`)."""
    import hashlib
    import json

    from huggingface_hub import ModelCard

    def repo_info(repo: str) -> dict | None:
        folder = root / repo
        if not folder.is_dir():
            return None
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        card = folder / "README.md"
        card_data = ModelCard.load(card).data.to_dict() if card.exists() else {}
        sha = hashlib.sha1("".join(f"{p}:{p.stat().st_size}" for p in files).encode()).hexdigest()
        siblings = [{"rfilename": str(p.relative_to(folder)), "size": p.stat().st_size} for p in files]
        return {"id": repo, "modelId": repo, "sha": sha, "siblings": siblings, "cardData": card_data}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, body: bytes, content_type: str, extra: dict | None = None, status: int = 200):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?")[0]
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                info = repo_info("/".join(parts[2:4]))
                if info is None:
                    return self._answer(b'{"error":"Repository not found"}', "application/json", status=404)
                return self._answer(json.dumps(info).encode(), "application/json")
            if len(parts) >= 5 and parts[2] == "resolve":
                repo, name = "/".join(parts[:2]), "/".join(parts[4:])
                info, file = repo_info(repo), root / repo / name
                if info is None or not file.is_file():
                    return self._answer(b"not found", "text/plain", status=404)
                body = file.read_bytes()
                etag = f'"{hashlib.sha256(body).hexdigest()}"'
                return self._answer(
                    body, "application/octet-stream", {"X-Repo-Commit": info["sha"], "ETag": etag}
                )
            return self._answer(b"not found", "text/plain", status=404)

        do_HEAD = do_GET

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
