"""Memory of the tiny schnell + dev pair loaded together vs one alone, and how many tensors they share.

Each scenario runs in a fresh process: resident set size (RSS) after the imports and after loading, plus
parameter bytes counted once per distinct storage (`data_ptr`). The tiny weights are a few MB, so RSS
deltas are mostly allocator and import noise; the parameter bytes show the sharing exactly. The same
measurement at full size on a GPU is in benchmarks/gpu_flux.py.

    python benchmarks/memory.py          # about 30 seconds on 2 CPU cores

Writes benchmarks/results/memory.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import harness

SCENARIOS = {
    "schnell alone": ["tiny-schnell"],
    "dev alone": ["tiny-dev"],
    "both": ["tiny-schnell", "tiny-dev"],
}

MEASURE = """
import json, sys, psutil, torch
from diffusers import FluxPipeline  # import everything before the baseline
from flux_demo import pipelines
keys = sys.argv[1:]
rss_before = psutil.Process().memory_info().rss
pipes = [pipelines.get_pipeline(key) for key in keys]
rss_after = psutil.Process().memory_info().rss
storages = {}
tensors = 0
for pipe in pipes:
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            for tensor in list(module.parameters()) + list(module.buffers()):
                tensors += 1
                storages[tensor.data_ptr()] = tensor.numel() * tensor.element_size()
print(json.dumps({
    "rss_delta_bytes": rss_after - rss_before,
    "tensors": tensors,
    "distinct_tensors": len(storages),
    "distinct_bytes": sum(storages.values()),
}))
"""


def measure(keys: list[str], env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *keys], cwd=harness.ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    env = harness.offline_env(Path(tempfile.mkdtemp(prefix="flux-mem-")))
    measure(["tiny-schnell"], env)  # build the tiny models once, outside the measurements
    scenarios = {name: measure(keys, env) for name, keys in SCENARIOS.items()}
    both = scenarios["both"]
    alone = scenarios["schnell alone"]["distinct_bytes"] + scenarios["dev alone"]["distinct_bytes"]
    result = {
        "scenarios": scenarios,
        "shared_tensors": both["tensors"] - both["distinct_tensors"],
        "separate_bytes": alone,
        "together_bytes": both["distinct_bytes"],
        "saved_fraction": round(1 - both["distinct_bytes"] / alone, 3),
    }
    harness.print_table(
        ["loaded", "RSS delta MB", "tensors", "distinct tensors", "distinct param MB"],
        [
            [name, s["rss_delta_bytes"] / 1e6, s["tensors"], s["distinct_tensors"], s["distinct_bytes"] / 1e6]
            for name, s in scenarios.items()
        ],
    )
    print(
        f"{result['shared_tensors']} tensors shared; together {result['together_bytes'] / 1e6:.3f} MB vs "
        f"{alone / 1e6:.3f} MB loaded separately ({result['saved_fraction']:.0%} saved)"
    )
    print(f"wrote {harness.write_results('memory', result)}")
    return result


if __name__ == "__main__":
    main()
