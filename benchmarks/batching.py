"""Would Gradio batch mode pay? N prompts in one FluxPipeline call vs N sequential calls.

Gradio's `batch=True` hands a handler several queued requests at once; that only helps if one batched
pipeline call is cheaper than the same images made one by one. This measures exactly that on the tiny
models (same prompts, seeds, size and steps), interleaved and repeated.

    python benchmarks/batching.py                 # about 30 seconds on 2 CPU cores
    python benchmarks/batching.py --sizes 1,2,4,8 --repeats 5

Writes benchmarks/results/batching.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import harness


def make_calls(pipe, spec, size: int, steps: int):
    """Two callables producing the same n images: one batched pipeline call, and n single calls."""
    import torch

    common = {
        "width": size,
        "height": size,
        "num_inference_steps": steps,
        "guidance_scale": spec.default_guidance,
        "max_sequence_length": spec.max_sequence_length,
    }

    def prompts(n: int) -> list[str]:
        return [f"a lighthouse on a cliff at dusk, variation {i}" for i in range(n)]

    def batched(n: int) -> None:
        generators = [torch.Generator("cpu").manual_seed(i) for i in range(n)]
        pipe(prompt=prompts(n), generator=generators, **common)

    def sequential(n: int) -> None:
        for i, prompt in enumerate(prompts(n)):
            pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(i), **common)

    return batched, sequential


def timed(fn, n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-schnell")
    parser.add_argument("--sizes", default="1,2,4,8", help="batch sizes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=4)
    options = parser.parse_args(argv)
    harness.use_offline_env(Path(tempfile.mkdtemp(prefix="flux-batch-")))
    from flux_demo import pipelines
    from flux_demo.models import get_spec

    spec = get_spec(options.model)
    batched, sequential = make_calls(pipelines.get_pipeline(options.model), spec, options.size, options.steps)
    batched(2), sequential(2)  # warm up both paths
    rows = []
    for n in (int(value) for value in options.sizes.split(",")):
        batch_s, seq_s = [], []
        for _ in range(options.repeats):
            batch_s.append(timed(batched, n))
            seq_s.append(timed(sequential, n))
        batch, seq = statistics.median(batch_s), statistics.median(seq_s)
        rows.append(
            {
                "batch_size": n,
                "batched_images_per_s": round(n / batch, 3),
                "sequential_images_per_s": round(n / seq, 3),
                "speedup": round(seq / batch, 3),
            }
        )
    result = {"model": options.model, "size": options.size, "steps": options.steps, "rows": rows}
    harness.print_table(
        ["batch", "batched img/s", "sequential img/s", "speed-up"],
        [
            [r["batch_size"], r["batched_images_per_s"], r["sequential_images_per_s"], r["speedup"]]
            for r in rows
        ],
    )
    print(f"wrote {harness.write_results('batching', result)}")
    return result


if __name__ == "__main__":
    main()
