"""`create_demo` builds the whole Blocks app with its queue; `launch_options` holds the launch settings."""

from __future__ import annotations

import contextlib
import html
import socket
import threading
from pathlib import Path

import gradio as gr

from flux_demo import __version__, limits, pipelines
from flux_demo.config import Settings, on_zerogpu
from flux_demo.models import enabled_model_keys
from flux_demo.ui import comparison, share, text_to_image, typography
from flux_demo.ui.i18n import EN, I18N, t
from flux_demo.ui.widgets import offline_notice

TITLE = "FLUX demo — schnell, dev and klein"
DESCRIPTION = EN["description"]

FAVICON = Path(__file__).resolve().parent.parent / "assets" / "favicon.png"
PAGE_HEAD = f'<meta name="description" content="{html.escape(DESCRIPTION)}">'


class FluxDemoBlocks(gr.Blocks):
    """Blocks whose served page carries the description in its og:/twitter: tags, which Gradio fills from
    `simple_description` (set for Interface only), so shared links preview with more than "Gradio"."""

    def get_config_file(self):
        return {**super().get_config_file(), "simple_description": DESCRIPTION}


def create_demo(settings: Settings | None = None) -> gr.Blocks:
    """Build the app for `settings` (default: from the environment), with its queue configured."""
    settings = settings or Settings.from_env()
    pipelines.configure(settings)
    limits.configure(settings.rate_limit)
    model_keys = enabled_model_keys(settings)
    with FluxDemoBlocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}")
        gr.Markdown(t("description"))
        notice = offline_notice(model_keys)
        if notice is not None:
            gr.Markdown(notice, elem_id="offline-notice", container=True)
        link_notice = gr.Markdown(visible=False, elem_id="link-notice", container=True)
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab(t("tab_generate"), id="generate"):
                generate_tab = text_to_image.build_tab(model_keys)
            with gr.Tab(t("tab_compare"), id="compare"):
                compare_tab = comparison.build_tab(model_keys)
            with gr.Tab(t("tab_typography"), id="typography"):
                typography_form = typography.build_tab(model_keys)
        forms = (generate_tab.form, compare_tab.form, typography_form)
        share.wire_permalinks(demo, tabs, link_notice, forms, model_keys)
        gr.Markdown(f"<small>flux-demo {__version__}</small>")
    demo.flux_demo_settings = settings  # launch_options reads the same settings
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.gpu_concurrency)
    if on_zerogpu():
        # spaces packs the weights moved to CUDA when the app launches and forks its GPU worker from this
        # process, so every model must be loaded before launch, whatever FLUX_DEMO_PRELOAD says.
        pipelines.preload(model_keys)
    else:
        # In the background, so the page is served while imports (and, if asked, weights) load.
        warm = pipelines.preload if settings.preload else pipelines.warm_imports
        threading.Thread(target=warm, args=(model_keys,), daemon=True, name="warm-up").start()
    return demo


def launch_options(settings: Settings | None = None) -> dict:
    """Keyword arguments for `demo.launch`, shared by app.py and the tests."""
    settings = settings or Settings.from_env()
    return {
        "head": PAGE_HEAD,
        "favicon_path": str(FAVICON),
        "max_file_size": "20mb",
        "show_error": True,
        "i18n": I18N,
        # Tools for MCP clients, described by the endpoints' docstrings (the gradio[mcp] extra).
        "mcp_server": settings.mcp_server,
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_locally(demo: gr.Blocks):
    """Launch `demo` on 127.0.0.1 and a free port with the app's own launch options (for tests and
    benchmarks, which talk to the real server); yield its URL and close it afterwards."""
    demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=free_port(),
        quiet=True,
        **launch_options(getattr(demo, "flux_demo_settings", None)),
    )
    try:
        yield demo.local_url
    finally:
        demo.close()
