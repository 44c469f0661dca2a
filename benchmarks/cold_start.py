"""Cold start: process start -> page served -> first image, on the tiny models, and what start-up spends.

Runs `python app.py` as a subprocess twice: with an empty tiny-model folder (the first run builds the
models) and again with the folder built. Then `python -X importtime -c "import app"` shows which imports
dominate, grouped by top-level package.

    python benchmarks/cold_start.py          # about 1 minute on 2 CPU cores

Writes benchmarks/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def first_image_seconds(url: str, start: float) -> float:
    """Seconds from process start until /generate returned an image (connect and request included)."""
    from gradio_client import Client

    Client(url, verbose=False).predict(**harness.generate_args(), api_name="/generate")
    return time.perf_counter() - start


def start_once(env: dict[str, str]) -> dict[str, float]:
    with harness.app_process(env) as (url, _process, start, page_s):
        image_s = first_image_seconds(url, start)
    return {"page_served_s": round(page_s, 3), "first_image_s": round(image_s, 3)}


def import_times(env: dict[str, str], top: int = 12) -> dict:
    """Import time of `import app` (which also builds the UI), summed by top-level package."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=harness.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    by_package: collections.Counter[str] = collections.Counter()
    for line in result.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"; self times add up without overlap.
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, _cumulative_us, name = line[len("import time:") :].split("|")
        by_package[name.strip().split(".")[0]] += int(self_us)
    total = sum(by_package.values()) / 1e6
    return {
        "import_app_wall_s": round(wall, 3),
        "all_imports_s": round(total, 3),
        "by_package_s": {name: round(us / 1e6, 3) for name, us in by_package.most_common(top)},
    }


FIRST_REQUEST_STAGES = """
import time, json
marks = [("start", time.perf_counter())]
import torch
marks.append(("import torch", time.perf_counter()))
from diffusers import FluxPipeline
marks.append(("import diffusers.FluxPipeline", time.perf_counter()))
from flux_demo import pipelines
pipe = pipelines.get_pipeline("tiny-schnell")
marks.append(("load tiny-schnell (built)", time.perf_counter()))
pipe(prompt="a lighthouse", width=256, height=256, num_inference_steps=4, max_sequence_length=256)
marks.append(("first pipeline call", time.perf_counter()))
pipe(prompt="a lighthouse", width=256, height=256, num_inference_steps=4, max_sequence_length=256)
marks.append(("second pipeline call", time.perf_counter()))
print(json.dumps({b[0]: round(b[1] - a[1], 3) for a, b in zip(marks, marks[1:])}))
"""


def first_request_stages(env: dict[str, str]) -> dict[str, float]:
    """Seconds of each lazy step the first /generate pays for, in a fresh process (models already built)."""
    result = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST_STAGES],
        cwd=harness.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-runs", type=int, default=2, help="starts with the tiny models already built")
    options = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="flux-cold-"))
    env = harness.offline_env(workdir)
    cold = start_once(env)  # empty tiny folder: the first image includes building the models
    warm = [start_once(env) for _ in range(options.warm_runs)]
    imports = import_times(env)
    stages = first_request_stages(env)
    result = {
        "empty_tiny_dir": cold,
        "built_tiny_dir": warm,
        "imports": imports,
        "first_request_stages_s": stages,
    }
    rows = [["empty tiny-model folder", cold["page_served_s"], cold["first_image_s"]]]
    for i, run in enumerate(warm):
        rows.append([f"models built (run {i + 1})", run["page_served_s"], run["first_image_s"]])
    harness.print_table(["start", "page served s", "first image s"], rows)
    print()
    harness.print_table(["package", "import s"], list(imports["by_package_s"].items()))
    print()
    harness.print_table(["first request, lazily", "s"], list(stages.items()))
    print(f"`import app` wall time {imports['import_app_wall_s']} s, imports {imports['all_imports_s']} s")
    print(f"wrote {harness.write_results('cold_start', result)}")
    return result


if __name__ == "__main__":
    main()
