"""Load: K concurrent gradio_client clients x R requests each, every one with its own prompt, seed and size.

Every returned PNG's metadata (prompt, seed, width, height) and pixel size must match its own request:
any difference is a mix-up. The only acceptable error is Gradio's documented queue-full refusal (HTTP
503, which gradio_client raises as QueueError). Writes benchmarks/results/load.json and prints a table.

    python benchmarks/load.py --clients 16 --requests 4
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `flux_demo` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness


@dataclass
class LoadReport:
    """What happened to every request of one load run."""

    clients: int
    requests_per_client: int
    attempted: int = 0
    latencies: list[float] = field(default_factory=list)
    mixups: list[str] = field(default_factory=list)
    queue_full: int = 0
    errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    def as_dict(self) -> dict:
        ok = len(self.latencies)
        return {
            "clients": self.clients,
            "requests_per_client": self.requests_per_client,
            "requests": self.attempted,
            "ok": ok,
            "queue_full": self.queue_full,
            "errors": self.errors,
            "mixups": len(self.mixups),
            "mixup_details": self.mixups,
            "wall_s": round(self.wall_seconds, 3),
            "throughput_rps": round(ok / self.wall_seconds, 3) if self.wall_seconds else None,
            "latency": harness.summary_ms(self.latencies) if self.latencies else None,
        }


def request_for(client: int, index: int, run_id: str, model: str, steps: int) -> dict:
    """A unique request: its prompt names it, its seed and size differ from its neighbours'."""
    return {
        **harness.generate_args(model=model, steps=steps, seed=(client * 1000 + index) * 7919 % 2**32),
        "prompt": f"load {run_id}: client {client} request {index}, a lighthouse at dusk",
        "width": 256 + 16 * (client % 3),
        "height": 256 + 16 * (index % 2),
    }


def mismatches(request: dict, result) -> list[str]:
    """How a /generate result differs from its own request (empty when it matches)."""
    from PIL import Image

    path, seed, _details = result
    image = Image.open(path)
    found = {
        "prompt": image.text.get("prompt"),
        "seed": image.text.get("seed"),
        "width": image.text.get("width"),
        "height": image.text.get("height"),
        "returned seed": str(seed),
        "pixel size": f"{image.size[0]}x{image.size[1]}",
    }
    wanted = {
        "prompt": request["prompt"],
        "seed": str(request["seed"]),
        "width": str(request["width"]),
        "height": str(request["height"]),
        "returned seed": str(request["seed"]),
        "pixel size": f"{request['width']}x{request['height']}",
    }
    return [
        f"{key}: wanted {wanted[key]!r}, got {found[key]!r}" for key in wanted if found[key] != wanted[key]
    ]


def run_load(
    url: str,
    clients: int,
    requests: int,
    model: str = "tiny-schnell",
    steps: int = 1,
    headers_for=None,
    seconds: float | None = None,
) -> LoadReport:
    """Run the load against the app at `url` and check every result against its own request.
    `headers_for(client_number)` gives each client's HTTP headers (for example its own proxy address).
    With `seconds`, a client starts no request after that long (one started before ends normally), so
    `requests` is an upper bound."""
    from gradio_client import Client
    from gradio_client.utils import QueueError

    report = LoadReport(clients, requests)
    run_id = secrets.token_hex(4)
    lock = threading.Lock()
    connected = [
        Client(url, verbose=False, headers=headers_for(n) if headers_for else None) for n in range(clients)
    ]
    start_line = threading.Barrier(clients)

    def visitor(number: int, client) -> None:
        start_line.wait()
        deadline = None if seconds is None else time.perf_counter() + seconds
        for index in range(requests):
            if deadline is not None and time.perf_counter() >= deadline:
                break
            with lock:
                report.attempted += 1
            request = request_for(number, index, run_id, model, steps)
            begin = time.perf_counter()
            try:
                result = client.predict(**request, api_name="/generate")
            except QueueError:
                with lock:
                    report.queue_full += 1
                continue
            except Exception as err:  # recorded, and the run goes on, so one failure shows all others
                with lock:
                    report.errors.append(f"client {number} request {index}: {type(err).__name__}: {err}")
                continue
            latency = time.perf_counter() - begin
            problems = mismatches(request, result)
            with lock:
                report.latencies.append(latency)
                report.mixups += [f"client {number} request {index}: {p}" for p in problems]

    threads = [threading.Thread(target=visitor, args=(n, c)) for n, c in enumerate(connected)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.wall_seconds = time.perf_counter() - began
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=4, help="requests per client")
    parser.add_argument("--model", default="tiny-schnell")
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()

    from flux_demo.config import default_tiny_dir

    workdir = Path(tempfile.mkdtemp(prefix="flux-demo-load-"))
    tiny_dir = Path(os.environ.get("FLUX_DEMO_TINY_DIR") or default_tiny_dir())
    os.environ.update(harness.offline_env(workdir, tiny_dir=tiny_dir))
    with harness.app_in_process() as url:
        from gradio_client import Client

        # Warm up: load the model before the clock starts.
        Client(url, verbose=False).predict(
            **harness.generate_args(model=args.model, steps=1), api_name="/generate"
        )
        report = run_load(url, args.clients, args.requests, args.model, args.steps)
    payload = {"model": args.model, "steps": args.steps, **report.as_dict()}
    path = harness.write_results("load", payload)
    latency = payload["latency"] or {}
    harness.print_table(
        ["clients", "requests", "ok", "queue full", "errors", "mix-ups", "req/s", "p50 ms", "p95 ms"],
        [
            [
                payload["clients"],
                payload["requests"],
                payload["ok"],
                payload["queue_full"],
                len(payload["errors"]),
                payload["mixups"],
                payload["throughput_rps"],
                latency.get("p50_ms"),
                latency.get("p95_ms"),
            ]
        ],
    )
    print(f"wrote {path}")
    if payload["mixups"] or payload["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
