"""How long the fast test subset takes: `python -m pytest -m "not server and not browser and not slow" -q`.

Runs the subset in a fresh subprocess (imports, tiny-model builds and all) `--runs` times and reports the
median wall time, with the pass/fail counts and how many servers and browsers the run started (the
conftest's launch guard reports them; the subset must start none). The compiled-kernel cache
(TORCHINDUCTOR_CACHE_DIR, ~/.cache/flux-demo/torchinductor by default) makes runs after the first
faster; `--cold` gives every run an empty one. Writes benchmarks/results/fast_tests.json.

    python benchmarks/fast_tests.py                # median of 3 runs
    python benchmarks/fast_tests.py --runs 1 --cold
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import harness

FAST = "not server and not browser and not slow"


def run_subset(marks: str, env: dict[str, str]) -> dict:
    """One `pytest -m marks -q` run: wall and CPU seconds, exit code, counts and launches. CPU seconds
    (user + system, the run and its children) do not depend on what else the machine is doing."""
    command = [sys.executable, "-m", "pytest", "-m", marks, "-q", "-p", "no:cacheprovider"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=harness.ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    output = done.stdout + done.stderr
    counts = {
        kind: int(number)
        for number, kind in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected)", output)
    }
    launches = re.search(r"flux-demo: (\d+) Gradio server\(s\) and (\d+) browser\(s\) launched", output)
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "exit_code": done.returncode,
        "counts": counts,
        "servers": int(launches[1]) if launches else None,
        "browsers": int(launches[2]) if launches else None,
        "tail": output.strip().splitlines()[-3:],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs to take the median of (default 3)")
    parser.add_argument("--marks", default=FAST, help=f'marker expression (default "{FAST}")')
    parser.add_argument("--cold", action="store_true", help="an empty compiled-kernel cache for each run")
    args = parser.parse_args(argv)

    runs = []
    for index in range(args.runs):
        env = dict(os.environ)
        with tempfile.TemporaryDirectory(prefix="fast-tests-inductor-") as cache:
            if args.cold:
                env["TORCHINDUCTOR_CACHE_DIR"] = cache
            run = run_subset(args.marks, env)
        runs.append(run)
        print(f"run {index + 1}: {run['seconds']} s, exit {run['exit_code']}, {run['counts']}", flush=True)
    median = statistics.median(run["seconds"] for run in runs)
    payload = {
        "command": f'python -m pytest -m "{args.marks}" -q',
        "runs": runs,
        "median_s": median,
        "cold_compile_cache": args.cold,
        "load_average": os.getloadavg(),
    }
    path = harness.write_results("fast_tests", payload)
    harness.print_table(
        ["run", "seconds", "cpu s", "exit", "passed", "failed", "deselected", "servers", "browsers"],
        [
            [
                index + 1,
                run["seconds"],
                run["cpu_seconds"],
                run["exit_code"],
                run["counts"].get("passed", 0),
                run["counts"].get("failed", 0),
                run["counts"].get("deselected", 0),
                run["servers"],
                run["browsers"],
            ]
            for index, run in enumerate(runs)
        ],
    )
    print(f"median {median} s over {len(runs)} run(s) on {os.cpu_count()} CPUs; wrote {path}")
    return payload


if __name__ == "__main__":
    main()
