"""Throughput with one and with two CPU replicas (`FLUX_DEMO_DEVICES=cpu` vs `cpu,cpu`).

The app runs as `python app.py` (tiny-schnell) in its own process for each setting, and 4 concurrent
gradio_client clients send `/generate` requests back to back (see throughput.py). On a GPU node the same
script with `--devices cuda:0 cuda:0,cuda:1` measures real cards. On CPU, both replicas share the same cores
and one Python interpreter, so the figure shows what dispatch costs and gains there, not GPU scaling.

    python benchmarks/replicas.py                        # a few minutes on 2 CPU cores
    python benchmarks/replicas.py --devices cpu cpu,cpu --clients 4 --requests 32

Writes benchmarks/results/replicas.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import harness
from throughput import WARM_UP_REQUESTS, run_level


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cpu,cpu"], help="FLUX_DEMO_DEVICES values")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=32, help="requests per setting")
    options = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="flux-replicas-"))
    settings = []
    for devices in options.devices:
        env = {**harness.offline_env(workdir), "FLUX_DEMO_MODELS": "tiny-schnell"}
        env["FLUX_DEMO_DEVICES"] = devices
        with harness.app_process(env) as (url, _process, _start, _page_s):
            run_level(url, options.clients, WARM_UP_REQUESTS)  # loads the model on every replica
            level = run_level(url, options.clients, options.requests)
        settings.append({"devices": devices, "replicas": len(devices.split(",")), **level})
    base = settings[0]["images_per_s"]
    for setting in settings:
        setting["speedup"] = round(setting["images_per_s"] / base, 3) if base else None
    result = {"request": harness.generate_args(), "settings": settings}
    harness.print_table(
        ["FLUX_DEMO_DEVICES", "replicas", "images/s", "speed-up", "p50 latency ms"],
        [
            [s["devices"], s["replicas"], s["images_per_s"], s["speedup"], s["latency"]["p50_ms"]]
            for s in settings
        ],
    )
    print(f"wrote {harness.write_results('replicas', result)}")
    return result


if __name__ == "__main__":
    main()
