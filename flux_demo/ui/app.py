"""`create_demo` builds the whole Blocks app with its queue; `launch_options` holds the launch settings."""

from __future__ import annotations

import threading

import gradio as gr

from flux_demo import __version__, pipelines
from flux_demo.config import Settings
from flux_demo.models import enabled_model_keys
from flux_demo.ui import comparison, text_to_image
from flux_demo.ui.widgets import offline_notice

TITLE = "FLUX demo — schnell, dev and klein"
DESCRIPTION = (
    "Text-to-image with FLUX.1 [schnell], FLUX.1 [dev] and FLUX.2 [klein] on diffusers: "
    "typography tests with OCR scoring and side-by-side model comparison."
)


def create_demo(settings: Settings | None = None) -> gr.Blocks:
    """Build the app for `settings` (default: from the environment), with its queue configured."""
    settings = settings or Settings.from_env()
    pipelines.configure(settings)
    model_keys = enabled_model_keys(settings)
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
        notice = offline_notice(model_keys)
        if notice:
            gr.Markdown(notice, elem_id="offline-notice", container=True)
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Text to image", id="generate"):
                text_to_image.build_tab(model_keys)
            with gr.Tab("Compare models", id="compare"):
                comparison.build_tab(model_keys)
        gr.Markdown(f"<small>flux-demo {__version__}</small>")
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.gpu_concurrency)
    if settings.preload:
        # Load in the background so the page is served while weights load.
        threading.Thread(target=pipelines.preload, args=(model_keys,), daemon=True, name="preload").start()
    return demo


def launch_options() -> dict:
    """Keyword arguments for `demo.launch`, shared by app.py and the tests."""
    return {
        "head": f'<meta name="description" content="{DESCRIPTION}">',
        "max_file_size": "20mb",
        "show_error": True,
    }
