"""Does each nano model draw what the prompt says? Random grammar prompts and seeds at 256x256.

For every configuration (by default nano-schnell and nano-dev at their defaults, plus two ablations:
nano-dev at 4 steps, and nano-dev at guidance 1) it generates ``--prompts`` word prompts and as many
shape prompts from ``examples/nano_vocabulary.json``, each with a random seed, and reports:

* words: RapidOCR reads the word back (the project's normalised match, `score_text`);
* background: the median of the border pixels, snapped to the nearest palette colour, is right;
* shape colour: the most common palette colour among the non-background pixels is right;
* seconds per image at the defaults (the pipeline call only, median), on this machine's CPU.

    python benchmarks/nano_quality.py [--prompts 50] [--weights DIR] [--grid docs/images/nano_samples.png]

Writes benchmarks/results/nano_quality.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared CPUs: sleep instead of spinning
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "nano_quality.json"

# (label, model folder, steps, guidance); the first two are the models at their defaults.
CONFIGS = (
    ("nano-schnell", "nano-schnell", 4, 0.0),
    ("nano-dev", "nano-dev", 28, 3.5),
    ("nano-dev @ 4 steps", "nano-dev", 4, 3.5),
    ("nano-dev @ guidance 1", "nano-dev", 28, 1.0),
)
TARGETS = {"nano-schnell": {"words": 0.5, "seconds": 1.0}, "nano-dev": {"words": 0.6, "seconds": 4.0}}
SHAPE_TARGETS = {"background": 0.9, "shape_color": 0.7}


def run_config(pipe, grammar, steps: int, guidance: float, prompts: int, seed: int, keep: int = 0):
    from flux_demo.offline import nano

    rng = random.Random(seed)
    words = [(rng.choice(grammar.words), rng.randrange(2**31)) for _ in range(prompts)]
    shapes = [(rng.choice(grammar.shape_triples()), rng.randrange(2**31)) for _ in range(prompts)]
    seconds, read, backgrounds, shape_colors = [], [], [], []
    per_word: dict[str, list[int]] = {}
    working_seeds: list[tuple[str, int]] = []
    working_shapes: list[tuple[str, int, str, str]] = []
    samples = []

    def draw(prompt: str, image_seed: int):
        start = time.perf_counter()
        image = nano.generate(
            pipe, prompt, image_seed, "dev", num_inference_steps=steps, guidance_scale=guidance
        )
        seconds.append(time.perf_counter() - start)
        return image

    for word, image_seed in words:
        prompt = grammar.word_caption(word)
        image = draw(prompt, image_seed)
        ok = nano.reads_word(image, word)
        read.append(ok)
        per_word.setdefault(word, []).append(int(ok))
        if ok:
            working_seeds.append((prompt, image_seed))
        if len(samples) < keep:
            samples.append((image, f"{word} s{image_seed % 1000}"))
    for (color, shape, background), image_seed in shapes:
        image = draw(grammar.shape_caption(color, shape, background), image_seed)
        bg_ok, color_ok = nano.colour_checks(image, grammar, background, color)
        backgrounds.append(bg_ok)
        shape_colors.append(color_ok)
        if bg_ok and color_ok:
            working_shapes.append(
                (grammar.shape_caption(color, shape, background), image_seed, background, color)
            )
        if len(samples) < 2 * keep and len(samples) >= keep:
            samples.append((image, f"{color} {shape}/{background}"))
    return {
        "steps": steps,
        "guidance": guidance,
        "word_prompts": len(read),
        "words_read": round(sum(read) / len(read), 3),
        "shape_prompts": len(backgrounds),
        "background": round(sum(backgrounds) / len(backgrounds), 3),
        "shape_color": round(sum(shape_colors) / len(shape_colors), 3),
        "seconds_per_image": round(statistics.median(seconds), 3),
        "per_word": {word: f"{sum(v)}/{len(v)}" for word, v in sorted(per_word.items())},
        "working_word_seeds": working_seeds[:20],
        "working_shape_seeds": working_shapes[:20],
    }, samples


def save_grid(rows: list[tuple[str, list]], path: Path) -> None:
    """One labelled row of samples per model."""
    from PIL import Image, ImageDraw, ImageFont

    tile, label_h, left = 128, 14, 110
    columns = max(len(samples) for _, samples in rows)
    grid = Image.new("RGB", (left + columns * tile, len(rows) * (tile + label_h)), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.truetype("DejaVuSans.ttf", 10)
    for r, (name, samples) in enumerate(rows):
        y = r * (tile + label_h)
        draw.text((4, y + tile // 2), name, fill="black", font=font)
        for c, (image, caption) in enumerate(samples):
            grid.paste(image.resize((tile, tile)), (left + c * tile, y))
            draw.text((left + c * tile + 2, y + tile), caption[:22], fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--prompts", type=int, default=50, help="word prompts, and as many shape prompts, per model"
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--weights", type=Path, default=None, help="folder holding nano-dev/ and nano-schnell/"
    )
    parser.add_argument("--grid", type=Path, default=None, help="also write a picture grid of samples here")
    parser.add_argument("--defaults-only", action="store_true", help="skip the two nano-dev ablations")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch

    from flux_demo.offline import nano

    torch.set_num_threads(2)
    grammar = nano.load_grammar()
    weights = args.weights or nano.WEIGHTS_DIR
    pipes = {f"nano-{variant}": pipe for variant, pipe in nano.load_pipelines(weights).items()}
    configs = CONFIGS[:2] if args.defaults_only else CONFIGS
    results, grid_rows = {}, []
    for label, model, steps, guidance in configs:
        keep = 6 if args.grid and label in TARGETS else 0
        result, samples = run_config(pipes[model], grammar, steps, guidance, args.prompts, args.seed, keep)
        results[label] = result
        if samples:
            grid_rows.append((f"{label}\n{steps} steps\nguidance {guidance:g}", samples))
        summary = {k: v for k, v in result.items() if not k.startswith(("per_word", "working_"))}
        print(f"{label}: {json.dumps(summary)}", flush=True)

    size_mb = sum(f.stat().st_size for f in Path(weights).rglob("*.safetensors")) / 1e6
    unique_mb = (
        sum(f.stat().st_size for f in (Path(weights) / "nano-schnell").rglob("*.safetensors")) / 1e6
        + sum(f.stat().st_size for f in (Path(weights) / "nano-dev" / "transformer").rglob("*.safetensors"))
        / 1e6
    )
    report = {
        "benchmark": "nano_quality",
        "size": "256x256",
        "prompts_per_kind": args.prompts,
        "seed": args.seed,
        "cpu": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "weights_mb_all_files": round(size_mb, 1),
        "weights_mb_distinct": round(unique_mb, 1),
        "targets": {**TARGETS, "shapes": SHAPE_TARGETS},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    header = f"{'configuration':<24}{'steps':>6}{'guid.':>6}{'words':>8}{'backgr.':>9}"
    header += f"{'shape col.':>11}{'s/image':>9}"
    print(header)
    print("-" * len(header))
    for label, r in results.items():
        print(
            f"{label:<24}{r['steps']:>6}{r['guidance']:>6g}{r['words_read']:>8.0%}{r['background']:>9.0%}"
            f"{r['shape_color']:>11.0%}{r['seconds_per_image']:>9.2f}"
        )
    print(f"weights: {size_mb:.1f} MB in all files, {unique_mb:.1f} MB distinct")
    if args.grid:
        save_grid(grid_rows, args.grid)
        print(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
