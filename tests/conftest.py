"""Shared fixtures: offline settings, a launched app, a gradio_client, and a Chromium page."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

# Before anything imports gradio or the app: keep every file the tests write in one temporary tree.
_TMP = Path(tempfile.mkdtemp(prefix="flux-demo-tests-"))
os.environ.setdefault("GRADIO_TEMP_DIR", str(_TMP / "gradio"))
os.environ.setdefault("FLUX_DEMO_TINY_DIR", str(_TMP / "tiny-models"))
os.environ["FLUX_DEMO_MODELS"] = "tiny-schnell,tiny-dev,tiny-klein"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

README = Path(__file__).resolve().parents[1] / "README.md"
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


@pytest.fixture(scope="session")
def settings():
    """Settings for the offline tiny models, read from the environment set above."""
    from flux_demo.config import Settings

    return Settings.from_env()


def launched(demo):
    """Launch `demo` on a free local port with the app's own launch options; yield its URL."""
    from flux_demo.ui.app import serve_locally

    return serve_locally(demo)


@pytest.fixture(scope="session")
def server_url(settings):
    """URL of the real app, built by `create_demo` and launched once for the session."""
    from flux_demo.ui import create_demo

    with launched(create_demo(settings)) as url:
        yield url


@pytest.fixture
def client(server_url):
    """A gradio_client connected to the session's app."""
    from gradio_client import Client

    return Client(server_url, verbose=False)


def missing_tool(message: str) -> None:
    """Fail on CI, which installs every tool (.ci/run), so nothing skips there; elsewhere skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI installs it in .ci/run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def noto_cjk():
    """Path of Noto Sans CJK, for Korean and Japanese renders."""
    from flux_demo.typography_view import find_font

    path = find_font("NotoSansCJK-Regular.ttc")
    if path is None:
        missing_tool("fonts-noto-cjk is not installed")
    return path


@pytest.fixture(scope="session")
def tesseract():
    """Tesseract with Korean and Japanese data, the OCR engine for Hangul and kana."""
    from flux_demo import ocr_tesseract

    if not {"kor", "jpn"} <= ocr_tesseract.installed_languages():
        missing_tool(
            "Tesseract with Korean and Japanese data is not installed: apt-get install "
            "tesseract-ocr tesseract-ocr-kor tesseract-ocr-jpn, pip install pytesseract"
        )


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright."""
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


def readme_examples(*api_names: str) -> list[str]:
    """README's gradio_client examples that call any of `api_names`, pointed at the offline tiny models."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    examples = [b for b in blocks if "gradio_client" in b and any(f'"{n}"' in b for n in api_names)]
    assert examples, f"README must show gradio_client calls of {api_names}"
    return [re.sub(r'"(schnell|dev|klein)"', r'"tiny-\1"', code) for code in examples]


def run_readme_example(code: str, server_url: str) -> dict:
    """Run a README example against `server_url` at 256x256 (tiny models); returns its variables."""
    namespace: dict = {}
    code = code.replace("http://127.0.0.1:7860/", server_url).replace("1024", "256")
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace
