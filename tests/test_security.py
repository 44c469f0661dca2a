"""Files: uploads are capped, and Gradio's file routes never serve files outside its own caches."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
PASSWD = "root:x:0:0"
APP_SOURCE = ROOT / "flux_demo" / "config.py"

# Canaries only: Gradio's file route is Gradio's to secure and test. These catch a launch option (such
# as allowed_paths) or a Gradio upgrade that would open it to system files or the app's source.
ATTEMPTS = [
    "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=../../../../../../etc/passwd",
    "/gradio_api/file=..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    f"/gradio_api/file={APP_SOURCE}",
    "/gradio_api/file=" + quote(str(APP_SOURCE), safe=""),
]


def raw_get(server_url: str, path: str) -> tuple[int, str]:
    """GET `path` exactly as written (no client-side normalisation of `..` or percent escapes)."""
    url = urlsplit(server_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        connection.close()


def test_file_route_serves_neither_system_files_nor_the_apps_source(server_url):
    # A line of the source long and distinctive enough that finding it in a body means the file leaked.
    marker = max(APP_SOURCE.read_text(encoding="utf-8").splitlines(), key=len)
    for path in ATTEMPTS:
        status, body = raw_get(server_url, path)
        assert PASSWD not in body and marker not in body, (path, status, body[:200])


def test_upload_larger_than_max_file_size_is_refused(server_url, demo):
    import httpx

    from flux_demo.ui import launch_options

    assert launch_options(demo)["max_file_size"] == "20mb"
    too_big = b"\0" * (20 * 1024 * 1024 + 1024)
    response = httpx.post(
        server_url.rstrip("/") + "/gradio_api/upload",
        files={"files": ("big.png", too_big, "image/png")},
        timeout=60,
    )
    assert response.status_code == 413, response.text[:200]
    assert "20" in response.text or "too large" in response.text.lower()
    small = httpx.post(
        server_url.rstrip("/") + "/gradio_api/upload",
        files={"files": ("small.png", b"\x89PNG\r\n\x1a\n", "image/png")},
        timeout=60,
    )
    assert small.status_code == 200  # the limit, not the route, refused the big one


def test_no_extra_paths_are_exposed(demo):
    from flux_demo.ui import launch_options

    options = launch_options(demo)
    assert not options.get("allowed_paths")
    assert "share" not in options or options["share"] is False
