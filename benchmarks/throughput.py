"""Throughput under concurrency: images/s and latency with 1, 4 and 16 concurrent gradio_client clients.

The app runs as `python app.py` (tiny models) in its own process; each client is a thread with its own
`gradio_client.Client` that sends `/generate` requests back to back. With the default GPU concurrency of
1 the queue serialises the pipeline calls, so images/s should stay flat while latency grows with clients.

    python benchmarks/throughput.py                       # about 1 minute on 2 CPU cores
    python benchmarks/throughput.py --clients 1,4,16 --requests 48

Writes benchmarks/results/throughput.json.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness

WARM_UP_REQUESTS = 16


def run_level(url: str, clients: int, requests: int) -> dict:
    """`requests` /generate calls spread over `clients` concurrent clients; images/s and latency."""
    from gradio_client import Client

    connected = [Client(url, verbose=False) for _ in range(clients)]
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, requests // clients)

    def work(index: int) -> None:
        for i in range(per_client):
            args = harness.generate_args(seed=index * 1000 + i)
            start = time.perf_counter()
            connected[index].predict(**args, api_name="/generate")
            with lock:
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(work, range(clients)))
    wall = time.perf_counter() - start
    return {
        "clients": clients,
        "images": len(latencies),
        "wall_s": round(wall, 3),
        "images_per_s": round(len(latencies) / wall, 3),
        "latency": harness.summary_ms(latencies),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,16", help="comma list of concurrency levels")
    parser.add_argument("--requests", type=int, default=48, help="requests per level (split over clients)")
    options = parser.parse_args(argv)
    env = harness.offline_env(Path(tempfile.mkdtemp(prefix="flux-tput-")))
    with harness.app_process(env) as (url, _process, _start, _page_s):
        run_level(url, 2, WARM_UP_REQUESTS)  # load the model; the first dozen requests run slower
        levels = [run_level(url, int(n), options.requests) for n in options.clients.split(",")]
    result = {"request": harness.generate_args(), "levels": levels}
    harness.print_table(
        ["clients", "images", "images/s", "p50 latency ms", "p95 latency ms"],
        [
            [
                lv["clients"],
                lv["images"],
                lv["images_per_s"],
                lv["latency"]["p50_ms"],
                lv["latency"]["p95_ms"],
            ]
            for lv in levels
        ],
    )
    print(f"wrote {harness.write_results('throughput', result)}")
    return result


if __name__ == "__main__":
    main()
