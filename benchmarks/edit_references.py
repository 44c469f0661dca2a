"""Seconds per denoising step of FLUX.2 [klein] with 0, 1, 2 and 4 reference images, as a ratio to none.

Each reference joins every step as extra image tokens, so a step costs more with each one. The runs go
through the app's own code (`editing.validate_edit` and `editing.call_pipeline` for references,
`runner.text_to_image` for none) at one output size, with references of that same size. A step's
time is the gap between two step-end callbacks (the first step, which follows text and reference
encoding, is left out); the figure is the median over `--repeats` runs, taken in turn for each count.

    python benchmarks/edit_references.py                          # offline tiny-klein, 256², CPU
    python benchmarks/edit_references.py --model klein --size 1024  # real checkpoint, GPU

Writes benchmarks/results/edit_references.json.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import harness

COUNTS = (0, 1, 2, 4)


def step_seconds(run) -> list[float]:
    """Gaps between step-end callbacks of one run (`run(callback)` calls the pipeline)."""
    marks: list[float] = []

    def on_step_end(_pipe, _step, _timestep, callback_kwargs):
        marks.append(time.perf_counter())
        return callback_kwargs

    run(on_step_end)
    return [later - earlier for earlier, later in itertools.pairwise(marks)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-klein")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    harness.use_offline_env(Path(tempfile.mkdtemp(prefix="edit-references-")))

    from PIL import Image

    from flux_demo import editing
    from flux_demo.pipelines import ModelHost, runner
    from flux_demo.validation import GenerationRequest, validate

    host = ModelHost(model_keys=(args.model,))
    loaded = host.get(args.model)
    prompt = "Put the red ball from image 2 on the blue sofa from image 1"
    colours = ("#2f5fa8", "#d0312d", "#0f9d58", "#f4b400")
    runs = {}
    for count in COUNTS:
        if count:
            images = [Image.new("RGB", (args.size, args.size), colours[i]) for i in range(count)]
            request = editing.EditRequest(
                prompt,
                args.model,
                "edit",
                images,
                steps=args.steps,
                seed=1,
                width=args.size,
                height=args.size,
            )
            valid = editing.validate_edit(request, (args.model,))

            def run(callback, valid=valid):
                return editing.call_pipeline(host, loaded, valid, callback)
        else:
            valid = validate(
                GenerationRequest(prompt, args.model, args.size, args.size, args.steps, 1.0, 1), (args.model,)
            )

            def run(callback, valid=valid):
                return runner.text_to_image(host, loaded, valid, callback)

        run(lambda _p, _s, _t, kwargs: kwargs)  # warm-up
        runs[count] = run
    # Round robin, so a change in the machine's load touches every count alike.
    gaps: dict[int, list[float]] = {count: [] for count in COUNTS}
    for _ in range(args.repeats):
        for count in COUNTS:
            gaps[count] += step_seconds(runs[count])
    per_step = {count: statistics.median(gaps[count]) for count in COUNTS}
    rows = [[n, round(per_step[n], 4), round(per_step[n] / per_step[0], 2)] for n in COUNTS]
    harness.print_table(["references", "s/step (median)", "ratio to none"], rows)
    result = {
        "model": args.model,
        "size": args.size,
        "steps": args.steps,
        "repeats": args.repeats,
        "seconds_per_step": {str(n): round(per_step[n], 5) for n in COUNTS},
        "ratio_to_none": {str(n): round(per_step[n] / per_step[0], 3) for n in COUNTS},
    }
    print(f"wrote {harness.write_results('edit_references', result)}")


if __name__ == "__main__":
    main()
