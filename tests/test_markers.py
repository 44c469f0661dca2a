"""The fast subset (`-m "not server and not browser"`) cannot start a server or a browser: a test that
does so without the `serve` or `browser` fixture, which mark it, fails (see `LaunchGuard`)."""

import gradio as gr
import pytest
from playwright.sync_api._generated import BrowserType

from tests.helpers import UnmarkedLaunch


def test_a_test_without_the_serve_fixture_cannot_launch_a_server(request):
    assert request.node.get_closest_marker("server") is None
    with gr.Blocks() as blocks:
        gr.Markdown("never served")
    with pytest.raises(UnmarkedLaunch, match="without the `serve` fixture"):
        blocks.launch(prevent_thread_lock=True, quiet=True)


def test_a_test_without_the_browser_fixture_cannot_launch_chromium(request):
    assert request.node.get_closest_marker("browser") is None
    with pytest.raises(UnmarkedLaunch, match="without the `browser` fixture"):
        BrowserType.launch(None)  # refused before Playwright is reached
