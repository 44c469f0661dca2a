"""What live previews cost: preview time as a share of step time, on the offline tiny models.

For each model and size, one run records every step's time (transformer and scheduler) and the time the
preview decode took inside the step callback (the linear latent→RGB map); the handler thread's share
(enlarging the preview and writing it as PNG, as Gradio does) is timed on the same previews. Whole runs
with and without previews are timed too (median of `--repeats`).

    python benchmarks/preview_overhead.py [--repeats 5] [--sizes 256,1024] [--models tiny-schnell,tiny-klein]

Writes benchmarks/results/preview_overhead.json. On a GPU the same command with real models
(`--models schnell,dev,klein --sizes 1024`) measures the figures that matter there.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import harness


def timed_run(generation, host, valid, observer=None) -> float:
    start = time.perf_counter()
    generation.generate(host, valid, observer=observer)
    return time.perf_counter() - start


def timing(base, steps: list, spec, size: int, emit):
    """A preview observer that also records each step's seconds in `steps`."""

    class Timing(base):
        def on_step(self, step):
            steps.append(step.seconds)
            super().on_step(step)

    return Timing(spec, size, size, emit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--models", default="tiny-schnell,tiny-dev,tiny-klein")
    args = parser.parse_args()
    harness.use_offline_env(Path(tempfile.mkdtemp(prefix="preview-overhead-")))

    import PIL.Image

    from flux_demo import generation
    from flux_demo.models import get_spec
    from flux_demo.pipelines import ModelHost
    from flux_demo.validation import GenerationRequest, validate
    from flux_demo.watching.previews import PreviewObserver

    models = args.models.split(",")
    host = ModelHost(model_keys=models)
    rows, results = [], []
    for model in models:
        spec = get_spec(model)
        for size in (int(s) for s in args.sizes.split(",")):
            request = GenerationRequest(
                "a lighthouse", model, size, size, spec.default_steps, spec.default_guidance, 1
            )
            valid = validate(request, models)
            previews, steps = [], []

            timed_run(generation, host, valid, timing(PreviewObserver, steps, spec, size, previews.append))
            decode = [p.seconds for p in previews]
            shown = []
            for preview in previews:
                start = time.perf_counter()
                image = preview.image.resize((size, size), PIL.Image.Resampling.BILINEAR)
                image.save(io.BytesIO(), format="png")
                shown.append(time.perf_counter() - start)
            plain = [timed_run(generation, host, valid) for _ in range(args.repeats)]
            watched = [
                timed_run(generation, host, valid, PreviewObserver(spec, size, size, lambda _p: None))
                for _ in range(args.repeats)
            ]
            step_ms = statistics.fmean(steps) * 1000
            decode_ms = statistics.fmean(decode) * 1000
            entry = {
                "model": model,
                "size": size,
                "steps": valid.steps,
                "step_ms": round(step_ms, 2),
                "preview_decode_ms": round(decode_ms, 3),
                "preview_share_of_step": round(decode_ms / step_ms, 4),
                "handler_png_ms": round(statistics.fmean(shown) * 1000, 2),
                "run_without_previews_s": round(statistics.median(plain), 3),
                "run_with_previews_s": round(statistics.median(watched), 3),
            }
            results.append(entry)
            rows.append(
                [
                    model,
                    size,
                    entry["step_ms"],
                    entry["preview_decode_ms"],
                    f"{100 * entry['preview_share_of_step']:.1f}%",
                    entry["handler_png_ms"],
                    entry["run_without_previews_s"],
                    entry["run_with_previews_s"],
                ]
            )
    harness.print_table(
        ["model", "size", "step ms", "preview ms", "share", "PNG ms", "run s (off)", "run s (on)"], rows
    )
    print(f"wrote {harness.write_results('preview_overhead', {'repeats': args.repeats, 'runs': results})}")


if __name__ == "__main__":
    main()
