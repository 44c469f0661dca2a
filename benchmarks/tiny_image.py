"""One 256x256, 4-step image on each offline tiny model, through `generation.generate` (what the app runs).

The first call includes importing torch and diffusers, building the tiny models if needed and loading
them; the warm figures are the median and p95 of `--repeats` further calls.

    python benchmarks/tiny_image.py [--repeats 20]

Writes benchmarks/results/tiny_image.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import harness

MODELS = (("tiny-schnell", 0.0), ("tiny-dev", 3.5), ("tiny-klein", 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    harness.use_offline_env(Path(tempfile.mkdtemp(prefix="tiny-image-")))

    from flux_demo import generation
    from flux_demo.pipelines import ModelHost
    from flux_demo.validation import GenerationRequest, validate

    host = ModelHost()
    rows, results = [], {}
    for model, guidance in MODELS:
        request = GenerationRequest("A cute robot reading a book", model, 256, 256, 4, guidance, 1)
        valid = validate(request, (model,))
        start = time.perf_counter()
        generation.generate(host, valid)
        first = time.perf_counter() - start
        warm = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            generation.generate(host, valid)
            warm.append(time.perf_counter() - start)
        summary = harness.summary_ms(warm)
        results[model] = {"first_call_s": round(first, 3), "warm": summary}
        rows.append([model, round(first, 3), summary["p50_ms"], summary["p95_ms"]])
    harness.print_table(["model", "first call s", "warm p50 ms", "warm p95 ms"], rows)
    print(f"wrote {harness.write_results('tiny_image', {'repeats': args.repeats, 'models': results})}")


if __name__ == "__main__":
    main()
