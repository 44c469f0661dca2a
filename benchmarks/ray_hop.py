"""What the Ray Serve hop costs per request: `generation.generate` on the Ray backend vs in-process.

A local Ray instance on the CPU with one replica of tiny-schnell; each round runs the same request (256²,
4 steps) through the Ray backend and through an in-process `ModelHost`, interleaved. Both run torch with one
CPU thread, so the difference is the hop: the handle call, one streamed event per step, the pixels coming
back. Needs `pip install -r requirements-ray.txt`.

    python benchmarks/ray_hop.py               # a few minutes, most of it starting Ray
    python benchmarks/ray_hop.py --rounds 50

Writes benchmarks/results/ray_hop.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import harness


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    options = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="flux-ray-"))
    harness.use_offline_env(workdir)
    os.environ.update(OMP_NUM_THREADS="1", FLUX_DEMO_MODELS="tiny-schnell")
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # AF_UNIX paths stay short
    import ray
    from ray import serve

    from flux_demo import generation
    from flux_demo.config import Settings
    from flux_demo.pipelines import ModelHost
    from flux_demo.pipelines.ray_serve import RayBackend
    from flux_demo.validation import GenerationRequest, validate

    settings = Settings.from_env()
    args = harness.generate_args("tiny-schnell", 4, 256)
    request = validate(GenerationRequest(**args), ("tiny-schnell",))
    backends = {"ray": RayBackend(settings), "in_process": ModelHost(settings)}
    try:
        samples = {name: [] for name in backends}
        for round_index in range(3 + options.rounds):
            for name, backend in backends.items():
                start = time.perf_counter()
                generation.generate(backend, request)
                if round_index >= 3:
                    samples[name].append(time.perf_counter() - start)
    finally:
        if not os.environ.get("RAY_ADDRESS"):  # a local instance this script started; a cluster stays up
            serve.shutdown()
        ray.shutdown()
    hop = [r - i for r, i in zip(samples["ray"], samples["in_process"], strict=True)]
    result = {
        "request": args,
        **{f"{name}_ms": harness.summary_ms(values) for name, values in samples.items()},
        "hop_ms_paired": harness.summary_ms(hop),
        "hop_ms_at_medians": round(
            (statistics.median(samples["ray"]) - statistics.median(samples["in_process"])) * 1000, 2
        ),
    }
    harness.print_table(
        ["path", "p50 ms", "p95 ms"],
        [
            ["generate() on the Ray backend", result["ray_ms"]["p50_ms"], result["ray_ms"]["p95_ms"]],
            ["generate() in process", result["in_process_ms"]["p50_ms"], result["in_process_ms"]["p95_ms"]],
            ["the Ray hop (paired)", result["hop_ms_paired"]["p50_ms"], result["hop_ms_paired"]["p95_ms"]],
        ],
    )
    print(f"wrote {harness.write_results('ray_hop', result)}")
    return result


if __name__ == "__main__":
    main()
