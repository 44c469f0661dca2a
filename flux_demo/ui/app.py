"""`create_demo` builds the whole Blocks app with its queue; `launch_options` holds the launch settings."""

from __future__ import annotations

import html
import json
import os
import threading
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from flux_demo import __version__
from flux_demo.config import Settings, on_zerogpu
from flux_demo.messages import LANGUAGES
from flux_demo.pipelines import Backend, serving_host
from flux_demo.pipelines.host import execution_device
from flux_demo.services import AppServices
from flux_demo.ui import (
    comparison,
    edit,
    embed,
    endpoints,
    gatekeeper,
    how_flux_works,
    share,
    tables,
    text_to_image,
    typography,
)
from flux_demo.ui.i18n import EN, I18N, say, t
from flux_demo.ui.widgets import offline_notice

TITLE = "FLUX demo — schnell, dev and klein"
DESCRIPTION = EN["description"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
FAVICON = ASSETS / "favicon.png"
# The page's layout beyond Gradio's theme (phones, tables, the embed view) and its small behaviours.
PAGE_CSS = (ASSETS / "page.css").read_text()
TOAST_TITLES = {
    language: {kind: say(f"title.{kind}", language) for kind in ("info", "warning", "error", "success")}
    for language in LANGUAGES
    if language != "en"  # Gradio's own headings are English
}
PAGE_HEAD = "".join(
    [
        f'<meta name="description" content="{html.escape(DESCRIPTION)}">',
        f"<script>window.fluxDemoToastTitles = {json.dumps(TOAST_TITLES)};</script>",
        f"<script>{(ASSETS / 'page.js').read_text()}</script>",
        embed.head(),
    ]
)


class FluxDemoBlocks(gr.Blocks):
    """Blocks whose served page carries the description in its og:/twitter: tags, which Gradio fills from
    `simple_description` (set for Interface only), so shared links preview with more than "Gradio".
    `services` holds the backend the app serves from and its per-visitor services (set by `create_demo`)."""

    services: AppServices

    def get_config_file(self):
        return {**super().get_config_file(), "simple_description": DESCRIPTION}


def create_demo(settings: Settings | None = None, backend: Backend | None = None) -> FluxDemoBlocks:
    """Build the app with its queue. `backend` runs the GPU work (see `pipelines.backend`); by default a
    new one is built from `settings` (default: from the environment), so two demos in one process are
    independent: a `ModelHost`, a `ReplicaPool` of one host per device when `FLUX_DEMO_DEVICES` lists
    several, or the Ray Serve backend. The app's per-visitor services are built beside it, with the
    admission rules of `settings` when both are given."""
    services = AppServices.for_backend(backend, settings) if backend else None
    backend = backend or serving_host(settings)
    services = services or AppServices.for_backend(backend)
    settings = services.settings
    model_keys = services.model_keys
    with FluxDemoBlocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        with gr.Column(elem_id="page-header"):  # hidden in the embed view (ui/embed.py)
            gr.Markdown(f"# {TITLE}", elem_id="title")
            gr.Markdown(t("description"), elem_id="description")
            offline_notice(model_keys, execution_device())
        link_notice = gr.HTML(visible=False, elem_id="link-notice", container=True)
        # Short labels that wrap rather than hide behind a "..." menu, so a phone shows every tab.
        with gr.Tabs(elem_id="tabs", overflow_behavior="wrap") as tabs:
            with gr.Tab(t("tab_generate_short"), id="generate"):
                generate_tab = text_to_image.build_tab(services)
            with gr.Tab(t("tab_compare_short"), id="compare"):
                compare_tab = comparison.build_tab(services)
            with gr.Tab(t("tab_typography_short"), id="typography"):
                typography_form, typography_tables = typography.build_tab(services)
            with gr.Tab(t("tab_edit"), id="edit"):
                edit_tab = edit.build_tab(services)
            with gr.Tab(t("tab_how"), id="how"):
                how_tab = how_flux_works.build_tab(services, demo)
        forms = (generate_tab.form, compare_tab.form, typography_form, edit_tab.form, how_tab.form)
        share.wire_permalinks(demo, tabs, link_notice, forms, model_keys)
        tables.translate_headers_on_load(demo, [*compare_tab.tables, *typography_tables])
        gr.Markdown(f"<small>flux-demo {__version__}</small>", elem_id="version")
    demo.services = services
    # GPU events Gradio runs at once: replicas x GPU slots x (1 + FLUX_DEMO_GPU_TIMESHARE); see `turns`.
    demo.queue(max_size=services.queue_size, default_concurrency_limit=services.concurrency)
    gatekeeper.install_fair_order(demo, services.admission)
    endpoints.finish_on_final()  # a run without previews sends its outputs once
    if on_zerogpu():
        # spaces packs the weights moved to CUDA when the app launches and forks its GPU worker from this
        # process, so every model must be loaded before launch, whatever FLUX_DEMO_PRELOAD says.
        backend.preload()
    else:
        # In the background, so the page is served while imports (and, if asked, weights) load.
        warm = backend.preload if settings.preload else backend.warm_imports
        threading.Thread(target=warm, daemon=True, name="warm-up").start()
    return demo


def launch_options(demo: FluxDemoBlocks) -> dict:
    """Keyword arguments for `demo.launch`, shared by app.py and the tests."""
    settings = demo.services.settings
    # Which X-Forwarded-For entries to believe is the rate limit's decision (FLUX_DEMO_TRUSTED_PROXIES):
    # uvicorn, which Gradio runs, would otherwise replace the client address with the header's value for
    # any request from a local address, forged headers included.
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    return {
        "head": PAGE_HEAD,
        "css": PAGE_CSS,
        "favicon_path": str(FAVICON),
        "max_file_size": "20mb",
        # Gradio keeps a copy of every component's config per browser session (about 0.3 MB here), up to
        # this many sessions, least recently used first out: 10,000 (its default) would be about 3 GB.
        "state_session_capacity": settings.session_capacity,
        "show_error": True,
        "i18n": I18N,
        # Tools for MCP clients, described by the endpoints' docstrings (the gradio[mcp] extra).
        "mcp_server": settings.mcp_server,
        # Admission to the GPU queue, before a job takes a place (see ui/gatekeeper.py); /gradio.js for
        # documentation pages that embed the app as a web component (see ui/embed.py).
        "app_kwargs": {
            "middleware": [Middleware(gatekeeper.AdmissionMiddleware, demo=demo)],
            "routes": embed.routes(),
        },
    }
