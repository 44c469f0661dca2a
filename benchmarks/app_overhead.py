"""What does the app add per request? `/generate` through gradio_client vs a direct pipeline call.

Both paths run the same cached tiny pipeline with the same arguments in this process, interleaved so
that machine noise hits both alike. For scale, a trivial Gradio function (text echo) is timed the same
way: that is Gradio's own floor on this machine (about 66 ms on the maintainers' localhost).

    python benchmarks/app_overhead.py              # 30 pairs, about 1 minute on 2 CPU cores
    python benchmarks/app_overhead.py --pairs 100

Writes benchmarks/results/app_overhead.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import harness

TARGET_ADDED_P50_MS = 50
# Let the server finish its after-response work so it does not slow the direct call that follows.
SETTLE_S = 0.05


def direct_call(args: dict):
    """The pipeline call `generation._denoise` makes, without the app around it."""
    import torch

    from flux_demo import pipelines
    from flux_demo.models import get_spec

    spec = get_spec(args["model"])
    return pipelines.get_pipeline(args["model"])(
        prompt=args["prompt"],
        width=args["width"],
        height=args["height"],
        num_inference_steps=args["steps"],
        guidance_scale=spec.default_guidance,
        max_sequence_length=spec.max_sequence_length,
        generator=torch.Generator("cpu").manual_seed(args["seed"]),
    ).images[0]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def gradio_floor_ms(n: int) -> dict[str, dict]:
    """gradio_client round trips to trivial functions: Gradio's own per-request cost on this machine.

    "echo" returns its text; "png" returns a fixed 256x256 PNG through `gr.Image(format="png")`, as
    /generate does, so the difference between the two is Gradio's image handling and download.
    """
    import gradio as gr
    import numpy as np
    from gradio_client import Client

    pixels = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    with gr.Blocks() as demo:
        text, image = gr.Textbox(), gr.Image(format="png")
        gr.Button().click(lambda t: t, text, text, api_name="echo")
        gr.Button().click(lambda t: pixels, text, image, api_name="png")
    port = harness.free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        floors = {}
        for name in ("echo", "png"):
            for _ in range(3):
                client.predict("hi", api_name=f"/{name}")
            samples = [timed(lambda n=name: client.predict("hi", api_name=f"/{n}")) for _ in range(n)]
            floors[name] = harness.summary_ms(samples)
        return floors
    finally:
        demo.close()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30, help="timed request pairs (after 3 warm-ups)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    options = parser.parse_args(argv)
    harness.use_offline_env(Path(tempfile.mkdtemp(prefix="flux-bench-")))
    from gradio_client import Client

    args = harness.generate_args("tiny-schnell", options.steps, options.size)
    with harness.app_in_process() as url:
        client = Client(url, verbose=False)
        for _ in range(3):  # loads the model, warms both paths
            client.predict(**args, api_name="/generate")
            direct_call(args)
        app_s, direct_s = [], []
        for _ in range(options.pairs):
            app_s.append(timed(lambda: client.predict(**args, api_name="/generate")))
            time.sleep(SETTLE_S)
            direct_s.append(timed(lambda: direct_call(args)))
            time.sleep(SETTLE_S)
    added = [a - d for a, d in zip(app_s, direct_s, strict=True)]
    app, direct, added_ms = harness.summary_ms(app_s), harness.summary_ms(direct_s), harness.summary_ms(added)
    floors = gradio_floor_ms(options.pairs)
    result = {
        "request": args,
        "app_ms": app,
        "direct_ms": direct,
        "added_ms_paired": added_ms,
        "added_p50_ms": round(app["p50_ms"] - direct["p50_ms"], 2),
        "added_p95_ms": round(app["p95_ms"] - direct["p95_ms"], 2),
        "ratio_p50": round(statistics.median(app_s) / statistics.median(direct_s), 3),
        "gradio_floor_ms": floors,
        "target_added_p50_ms": TARGET_ADDED_P50_MS,
    }
    result["meets_target"] = result["added_p50_ms"] <= TARGET_ADDED_P50_MS
    harness.print_table(
        ["path", "p50 ms", "p95 ms", "mean ms"],
        [
            ["/generate via gradio_client", app["p50_ms"], app["p95_ms"], app["mean_ms"]],
            ["direct pipeline call", direct["p50_ms"], direct["p95_ms"], direct["mean_ms"]],
            ["added (paired differences)", added_ms["p50_ms"], added_ms["p95_ms"], added_ms["mean_ms"]],
            *[
                [f"trivial Gradio fn ({name})", floor["p50_ms"], floor["p95_ms"], floor["mean_ms"]]
                for name, floor in floors.items()
            ],
        ],
    )
    print(f"ratio app/direct at p50: {result['ratio_p50']}; added p50 {result['added_p50_ms']} ms", end=" ")
    print(f"(target <= {TARGET_ADDED_P50_MS} ms: {'met' if result['meets_target'] else 'NOT met'})")
    print(f"wrote {harness.write_results('app_overhead', result)}")
    return result


if __name__ == "__main__":
    main()
