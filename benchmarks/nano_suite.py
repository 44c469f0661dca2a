"""The typography suite on the offline nano models: its nano section (a sign with each word of the nano
grammar) against the data file's prompts, scored as the Typography tab scores them (RapidOCR).

    python benchmarks/nano_suite.py [--seed 0] [--file-prompts 12]

Writes benchmarks/results/nano_suite.json and prints the leaderboard of each part.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared CPUs: sleep instead of spinning
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).resolve().parent / "results" / "nano_suite.json"
MODELS = ("nano-schnell", "nano-dev", "nano-klein")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--file-prompts", type=int, default=12, help="data-file prompts per model")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from flux_demo.config import Settings
    from flux_demo.pipelines import ModelHost
    from flux_demo.typography import suite
    from flux_demo.ui.typography import suite_entries

    torch.set_num_threads(args.threads)
    host = ModelHost(dataclasses.replace(Settings.from_env(), models=MODELS))
    entries = suite_entries(host.model_keys)
    parts = {
        "nano signs": [entry for entry in entries if entry.category == suite.NANO_CATEGORY],
        "data file": suite.select_entries(suite.load_suite(), args.file_prompts),
    }
    results: dict = {"machine": platform.processor() or platform.machine(), "seed": args.seed, "parts": {}}
    print(f"{'part':<12} {'model':<14} {'prompts':>7} {'mean CER':>9} {'exact':>6} {'s/image':>8}")
    for part, chosen in parts.items():
        rows = []
        for model in MODELS:
            start = time.perf_counter()
            images = suite.run_suite(host, chosen, [model], args.seed)
            seconds = (time.perf_counter() - start) / len(images)
            [(_, agg)] = suite.leaderboard(images)
            row = {"model": model, "prompts": len(images), **suite.aggregate_dict(agg)}
            row["s_per_image"] = seconds
            rows.append(row)
            print(
                f"{part:<12} {model:<14} {len(images):>7} {row['mean_cer']:>9.3f} "
                f"{row['exact_rate']:>6.0%} {seconds:>8.2f}"
            )
        results["parts"][part] = rows
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
