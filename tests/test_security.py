"""Files: uploads are capped, and Gradio's file routes never serve files outside its own caches."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]
PASSWD = "root:x:0:0"


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


def source_marker(path: Path) -> str:
    """A line of `path` long and distinctive enough that finding it in a body means the file leaked."""
    return max(path.read_text(encoding="utf-8").splitlines(), key=len)


SOURCES = [ROOT / "app.py", ROOT / "flux_demo" / "generation.py", ROOT / "flux_demo" / "config.py"]
ATTEMPTS = [
    "/gradio_api/file=/etc/passwd",
    "/file=/etc/passwd",
    "/gradio_api/file=../../../../../../etc/passwd",
    "/gradio_api/file=..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/gradio_api/file=%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "/gradio_api/file=" + quote("/etc/passwd", safe=""),
    "/gradio_api/file=/proc/self/environ",
    "/gradio_api/../../../../etc/passwd",
    "/static/../../../../../etc/passwd",
    "/assets/..%2f..%2f..%2f..%2fetc%2fpasswd",
]


@pytest.mark.parametrize("path", ATTEMPTS)
def test_file_route_never_serves_system_files(server_url, path):
    status, body = raw_get(server_url, path)
    assert PASSWD not in body and "HOME=" not in body, (status, body[:200])


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
@pytest.mark.parametrize("form", ["absolute", "relative", "traversal", "encoded"])
def test_file_route_never_serves_the_apps_own_source(server_url, source, form):
    relative = source.relative_to(ROOT).as_posix()
    path = {
        "absolute": f"/gradio_api/file={source}",
        "relative": f"/gradio_api/file={relative}",
        "traversal": f"/gradio_api/file=../../../../../..{source}",
        "encoded": "/gradio_api/file=" + quote(str(source), safe=""),
    }[form]
    status, body = raw_get(server_url, path)
    assert source_marker(source) not in body, (status, body[:200])


def test_upload_larger_than_max_file_size_is_refused(server_url):
    import httpx

    from flux_demo.ui import launch_options

    assert launch_options()["max_file_size"] == "20mb"
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


def test_no_extra_paths_are_exposed():
    from flux_demo.ui import launch_options

    options = launch_options()
    assert not options.get("allowed_paths")
    assert "share" not in options or options["share"] is False
