"""Shared pieces of the benchmarks: offline environment, app launching, percentiles, table and JSON output."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

RESULTS = Path(os.environ.get("OUT") or ROOT / "benchmarks" / "results")
TINY_MODELS = "tiny-schnell,tiny-dev"


def offline_env(workdir: Path, tiny_dir: Path | None = None) -> dict[str, str]:
    """Environment for an app process on the tiny models with every file under `workdir`."""
    return {
        **os.environ,
        "FLUX_DEMO_MODELS": TINY_MODELS,
        "FLUX_DEMO_TINY_DIR": str(tiny_dir or workdir / "tiny-models"),
        "GRADIO_TEMP_DIR": str(workdir / "gradio"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def use_offline_env(workdir: Path) -> None:
    """Point this process at the tiny models (call before importing gradio or flux_demo)."""
    os.environ.update(offline_env(workdir))


def free_port() -> int:
    from tests.helpers import free_port as helper_free_port

    return helper_free_port()


def page_is_served(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def app_process(env: dict[str, str], timeout_s: float = 300):
    """Run `python app.py` on a free port; yield (url, process, start time, seconds until the page served)."""
    port = free_port()
    env = {**env, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            while not page_is_served(url):
                if process.poll() is not None or time.perf_counter() - start > timeout_s:
                    log.seek(0)
                    output = log.read().decode(errors="replace")[-3000:]
                    raise RuntimeError(f"app did not serve {url}:\n{output}")
                time.sleep(0.05)
            yield url, process, start, time.perf_counter() - start
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def app_in_process():
    """The real app built by `create_demo` and launched in this process; a context yielding its URL."""
    from flux_demo.ui import create_demo
    from tests.helpers import serve_locally

    return serve_locally(create_demo())


def generate_args(model: str = "tiny-schnell", steps: int = 4, size: int = 256, seed: int = 0) -> dict:
    """Keyword arguments of one `/generate` call."""
    return {
        "prompt": "a lighthouse on a cliff at dusk",
        "model": model,
        "width": size,
        "height": size,
        "steps": steps,
        "guidance": 0.0 if "schnell" in model else 3.5,
        "seed": seed,
        "randomize_seed": False,
    }


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p95, mean, min and max of `seconds`, in milliseconds."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
        "min_ms": round(ordered[0] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "n": len(ordered),
    }


def machine() -> dict:
    packages = {}
    for name in ("torch", "diffusers", "transformers", "gradio", "gradio_client"):
        try:
            packages[name] = version(name)
        except Exception:  # a missing package is worth recording, not failing over
            packages[name] = None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "packages": packages,
    }


def write_results(name: str, payload: dict) -> Path:
    """Write `payload` (plus machine info and a timestamp) to RESULTS/<name>.json; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        **payload,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[str(h) for h in headers]] + [
        [f"{v:.4g}" if isinstance(v, float) else str(v) for v in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
