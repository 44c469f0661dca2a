"""The app on documentation pages: the embed view and the web component's script (docs/embed.md).

`?view=embed&tab=NAME` shows one tab (any tab of the app: the names are the `gr.Tab` ids) without the
page header, the offline notice, the tab bar and the footer; `?view=embed` alone keeps the tab bar. The
view is chosen in the browser (`assets/embed.js`), from the page's own address or from a `<gradio-app>`
element's `src`, because a web component's requests carry the host page's address, not its own. In an
iframe the embed view posts its height to the host page, `{type: "flux-demo:height", height}`, so the
frame can fit it (docs/embed.md).

`/gradio.js` serves the `<gradio-app>` web component from the app itself, the build of the installed
Gradio, so a documentation page needs no CDN and always gets the frontend that matches the server.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

ASSETS = Path(__file__).resolve().parent.parent / "assets"
# Gradio's own loader for the web component; it imports the hashed entry point from ./assets/, which
# the app serves (Gradio's /assets/ route).
GRADIO_JS = Path(gr.__file__).resolve().parent / "templates" / "frontend" / "gradio.js"


def head() -> str:
    """The embed view's script, for the page's `head`."""
    return f"<script>{(ASSETS / 'embed.js').read_text()}</script>"


def tab_ids(demo: gr.Blocks, elem_id: str = "tabs") -> list[str]:
    """The names `tab=` accepts: the ids of the app's main tabs (the `gr.Tabs` with `elem_id`)."""
    tabs = next(b for b in demo.blocks.values() if isinstance(b, gr.Tabs) and b.elem_id == elem_id)
    return [str(child.id) for child in tabs.children if isinstance(child, gr.Tab)]


async def _gradio_js(_request: Request) -> FileResponse:
    # Public, versioned with the server: any page may load it (module scripts are fetched with CORS).
    headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=3600"}
    return FileResponse(GRADIO_JS, media_type="text/javascript", headers=headers)


def routes() -> list[Route]:
    """Routes the app adds to Gradio's: `/gradio.js`."""
    return [Route("/gradio.js", _gradio_js, methods=["GET", "HEAD"])]
