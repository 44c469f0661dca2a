"""Does each nano model draw what the prompt says? Random grammar prompts, pictures and seeds at 256x256.

FLUX.1 (``--family flux1``): nano-schnell and nano-dev at their defaults, plus two ablations (nano-dev at
4 steps, and at guidance 1), on ``--prompts`` word prompts and as many shape prompts.

FLUX.2 (``--family klein``): nano-klein at its defaults (4 steps) on ``--prompts`` items of each task:
text to image (signs, shapes), every edit of the grammar with its 1-3 reference images (rendered at fresh
random placements, never the training pool's), and inpainting (the picture's changing part masked, the
prompt asking for other content there).

Each image is checked for what its prompt asks (`training.checks`):

* words: RapidOCR reads the word back (the project's normalised match, `score_text`);
* background: the median of the border pixels, snapped to the nearest palette colour, is right;
* shape colour: the most common palette colour among the non-background pixels is right;
* seconds per image (the pipeline call only, median), on this machine's CPU with 2 threads.

    python benchmarks/nano_quality.py [--family all|flux1|klein] [--prompts 50] [--weights DIR] [--grid]

Writes benchmarks/results/nano_quality.json (the families not run keep their earlier results), prints a
table, and with --grid writes docs/images/nano_samples.png and docs/images/nano_klein_edits.png.
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
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).resolve().parent / "results" / "nano_quality.json"
FLUX1_GRID = ROOT / "docs" / "images" / "nano_samples.png"
KLEIN_GRID = ROOT / "docs" / "images" / "nano_klein_edits.png"

# (label, model folder, steps, guidance); the first two are the models at their defaults.
CONFIGS = (
    ("nano-schnell", "nano-schnell", 4, 0.0),
    ("nano-dev", "nano-dev", 28, 3.5),
    ("nano-dev @ 4 steps", "nano-dev", 4, 3.5),
    ("nano-dev @ guidance 1", "nano-dev", 28, 1.0),
)
TARGETS = {
    "nano-schnell": {"words": 0.5, "shape_color": 0.7, "seconds": 1.0},
    "nano-dev": {"words": 0.6, "shape_color": 0.7, "seconds": 4.0},
    "nano-klein": {
        "word": {"word": 0.9},
        "shape": {"background": 0.9},
        "word carried from image 1": {"word": 0.8},
        "requested background": {"background": 0.85},
        "shape from image 2 in its colour": {"shape_color": 0.7},
        "seconds (text to image)": 1.0,
    },
}
SHAPE_TARGETS = {"background": 0.9}
# Which tasks each klein target is measured on.
KLEIN_TARGET_TASKS = {
    "word carried from image 1": ("sign_on_color", "word_on_background"),
    "requested background": (
        "sign_on_color",
        "word_on_background",
        "shape_on_background",
        "shape_from_three",
    ),
    "shape from image 2 in its colour": ("shape_on_background",),
}
KLEIN_STRENGTH = 1.0  # inpainting: the masked area is drawn afresh


# --- FLUX.1 ------------------------------------------------------------------------------------------


def run_config(pipe, grammar, steps: int, guidance: float, prompts: int, seed: int, keep: int = 0):
    from training.checks import colour_checks, reads_word
    from training.loading import generate

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
        image = generate(pipe, prompt, image_seed, "dev", num_inference_steps=steps, guidance_scale=guidance)
        seconds.append(time.perf_counter() - start)
        return image

    for word, image_seed in words:
        prompt = grammar.word_caption(word)
        image = draw(prompt, image_seed)
        ok = reads_word(image, word)
        read.append(ok)
        per_word.setdefault(word, []).append(int(ok))
        if ok:
            working_seeds.append((prompt, image_seed))
        if len(samples) < keep:
            samples.append((image, f"{word} s{image_seed % 1000}"))
    for (color, shape, background), image_seed in shapes:
        image = draw(grammar.shape_caption(color, shape, background), image_seed)
        bg_ok, color_ok = colour_checks(image, grammar, background, color)
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


def vae_round_trip(vae, grammar, prompts: int, seed: int) -> dict:
    """``prompts`` random signs and as many random shapes, encoded and decoded by the VAE alone: the
    ceiling the transformers work under."""
    import numpy as np
    import torch
    from PIL import Image

    from training import grammar_images as gi
    from training.checks import check_picture

    rng = random.Random(f"{seed}-vae")
    passed: dict[str, list[bool]] = {}
    for kind in ("word", "shape"):
        for _ in range(prompts):
            picture = gi.text_example(grammar, rng, kind, gi.random_jitter).target
            x = torch.from_numpy(np.array(gi.render(grammar, picture))).permute(2, 0, 1)[None].float()
            with torch.no_grad():
                latents = vae.encode(x / 127.5 - 1).latent_dist.mode()
                decoded = vae.decode(latents).sample.clamp(-1, 1)
            array = ((decoded[0] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
            for name, ok in check_picture(Image.fromarray(array), picture, grammar).items():
                passed.setdefault(f"{kind}_{name}", []).append(ok)
    return {name: round(sum(v) / len(v), 3) for name, v in passed.items()}


def run_flux1(grammar, weights: Path, args) -> tuple[dict, list]:
    from training.loading import load_pipelines

    pipes = {f"nano-{variant}": pipe for variant, pipe in load_pipelines(weights).items()}
    vae_only = vae_round_trip(pipes["nano-schnell"].vae, grammar, args.prompts, args.seed)
    print(f"VAE alone: {json.dumps(vae_only)}", flush=True)
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
    return {"VAE alone": vae_only, **results}, grid_rows


# --- FLUX.2 [klein] ----------------------------------------------------------------------------------


# Inpainting: a shape prompt over a mask round a shape, and the new_word edit over a mask on a sign's face.
INPAINT_TASKS = ("inpaint", "inpaint_word")


def klein_tasks(grammar) -> list[str]:
    return ["word", "shape", *grammar.edits, *INPAINT_TASKS]


def klein_example(grammar, task: str, rng: random.Random):
    from training import grammar_images as gi

    if task in ("word", "shape"):
        return gi.text_example(grammar, rng, task, gi.random_jitter)
    if task == "inpaint":
        return gi.inpaint_example(grammar, rng, gi.random_jitter)
    return gi.edit_example(grammar, "new_word" if task == "inpaint_word" else task, rng, gi.random_jitter)


def run_klein_task(pipes, grammar, task: str, prompts: int, seed: int, keep: int):
    """``prompts`` random items of ``task``: the share passing each check, the time, and working cases."""
    from training import grammar_images as gi
    from training.checks import check_example
    from training.loading import klein_generate, klein_inpaint

    rng = random.Random(f"{seed}-{task}")
    passed: dict[str, list[bool]] = {}
    seconds, working, samples = [], [], []
    for _ in range(prompts):
        example, image_seed = klein_example(grammar, task, rng), rng.randrange(2**31)
        start = time.perf_counter()
        if task in INPAINT_TASKS:
            image = klein_inpaint(pipes["inpaint"], grammar, example, image_seed, KLEIN_STRENGTH)
        else:
            image = klein_generate(pipes["edit"], grammar, example, image_seed)
        seconds.append(time.perf_counter() - start)
        checks = check_example(image, example, grammar)
        for name, ok in checks.items():
            passed.setdefault(name, []).append(ok)
        if all(checks.values()):
            working.append({"seed": image_seed, "example": gi.example_to_json(example)})
        if len(samples) < keep:
            samples.append((example, image))
    return {
        "items": prompts,
        **{name: round(sum(v) / len(v), 3) for name, v in passed.items()},
        "all_checks": round(len(working) / prompts, 3),
        "seconds_per_image": round(statistics.median(seconds), 3),
        "working": working[:12],
    }, samples


def klein_summary(results: dict) -> dict:
    """The issue's targets from the per-task results: each target's share over the tasks it covers."""
    summary = {}
    for target, tasks in KLEIN_TARGET_TASKS.items():
        check = next(iter(TARGETS["nano-klein"][target]))
        values = [(results[t][check], results[t]["items"]) for t in tasks if check in results[t]]
        summary[target] = round(sum(v * n for v, n in values) / sum(n for _, n in values), 3)
    return summary


def run_klein(grammar, weights: Path, args, earlier: dict) -> tuple[dict, list]:
    """Every task, or only ``args.tasks`` (the others keep their ``earlier`` results)."""
    from training.loading import load_klein

    pipes = {"edit": load_klein(weights), "inpaint": load_klein(weights, mode="inpaint")}
    results, grid = dict(earlier.get("tasks", {})) if args.tasks else {}, []
    for task in args.tasks or klein_tasks(grammar):
        result, samples = run_klein_task(pipes, grammar, task, args.prompts, args.seed, 3 if args.grid else 0)
        results[task] = result
        grid += samples
        summary = {k: v for k, v in result.items() if k != "working"}
        print(f"nano-klein {task}: {json.dumps(summary)}", flush=True)
    return {"tasks": results, "targets": klein_summary(results)}, grid


# --- Output ------------------------------------------------------------------------------------------


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


def save_edit_grid(grammar, items: list, path: Path) -> None:
    """One row per item: references 1-3, then the result, under its prompt."""
    from PIL import Image, ImageDraw, ImageFont

    from training import grammar_images as gi

    tile, label_h = 128, 16
    grid = Image.new("RGB", (4 * tile + 12, len(items) * (tile + label_h)), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.truetype("DejaVuSans.ttf", 11)
    for r, (example, image) in enumerate(items):
        y = r * (tile + label_h)
        draw.text((2, y + 1), example.caption, fill="black", font=font)
        for c, picture in enumerate(example.references):
            grid.paste(gi.render(grammar, picture).resize((tile, tile)), (c * tile, y + label_h))
        grid.paste(image.resize((tile, tile)), (3 * tile + 12, y + label_h))
        draw.line([(3 * tile + 5, y + label_h), (3 * tile + 5, y + label_h + tile)], fill="black", width=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def print_flux1(results: dict) -> None:
    header = f"{'configuration':<24}{'steps':>6}{'guid.':>6}{'words':>8}{'backgr.':>9}"
    header += f"{'shape col.':>11}{'s/image':>9}"
    print(header)
    print("-" * len(header))
    for label, r in results.items():
        if label == "VAE alone":
            print(
                f"{label:<24}{'':>12}{r['word_word']:>8.0%}{r['shape_background']:>9.0%}{r['shape_shape_color']:>11.0%}"
            )
            continue
        print(
            f"{label:<24}{r['steps']:>6}{r['guidance']:>6g}{r['words_read']:>8.0%}{r['background']:>9.0%}"
            f"{r['shape_color']:>11.0%}{r['seconds_per_image']:>9.2f}"
        )


def print_klein(results: dict) -> None:
    header = f"{'nano-klein task':<22}{'words':>8}{'backgr.':>9}{'shape col.':>11}{'all':>7}{'s/image':>9}"
    print(header)
    print("-" * len(header))
    for task, r in results["tasks"].items():
        cells = [f"{r[k]:>{w}.0%}" if k in r else f"{'–':>{w}}" for k, w in (("word", 8), ("background", 9))]
        cells.append(f"{r['shape_color']:>11.0%}" if "shape_color" in r else f"{'–':>11}")
        print(f"{task:<22}{''.join(cells)}{r['all_checks']:>7.0%}{r['seconds_per_image']:>9.2f}")
    for target, value in results["targets"].items():
        print(f"target: {target}: {value:.0%}")


def weights_mb(weights: Path) -> dict:
    def size(*parts) -> float:
        return sum(f.stat().st_size for f in Path(weights, *parts).rglob("*.safetensors")) / 1e6

    return {
        "all_files": round(size(), 1),
        "flux1_distinct": round(size("nano-schnell") + size("nano-dev", "transformer"), 1),
        "klein": round(size("nano-klein"), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("all", "flux1", "klein"), default="all")
    parser.add_argument("--prompts", type=int, default=50, help="prompts per kind (FLUX.1) or task (klein)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--weights", type=Path, default=None, help="folder holding the nano-* folders")
    parser.add_argument("--grid", action="store_true", help="also write the sample grids under docs/images")
    parser.add_argument("--defaults-only", action="store_true", help="skip the two nano-dev ablations")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--tasks",
        type=lambda text: text.split(","),
        default=None,
        help="klein: only these tasks (comma list); the others keep their recorded results",
    )
    args = parser.parse_args()

    import torch

    from flux_demo.offline.nano import WEIGHTS_DIR, load_grammar

    torch.set_num_threads(2)
    grammar = load_grammar()
    weights = args.weights or WEIGHTS_DIR
    report = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    for stale in ("weights_mb_all_files", "weights_mb_distinct"):  # now under "weights_mb"
        report.pop(stale, None)
    report.update(
        {
            "benchmark": "nano_quality",
            "size": "256x256",
            "prompts_per_kind": args.prompts,
            "seed": args.seed,
            "cpu": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
            "torch": torch.__version__,
            "weights_mb": weights_mb(weights),
            "targets": {**TARGETS, "shapes": SHAPE_TARGETS},
        }
    )
    report.setdefault("results", {})
    if args.family in ("all", "flux1"):
        flux1, grid_rows = run_flux1(grammar, weights, args)
        report["results"].update(flux1)
        if args.grid:
            save_grid(grid_rows, FLUX1_GRID)
    if args.family in ("all", "klein"):
        klein, items = run_klein(grammar, weights, args, report["results"].get("nano-klein", {}))
        report["results"]["nano-klein"] = klein
        if args.grid:
            save_edit_grid(grammar, items, KLEIN_GRID)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    flux1_results = {k: v for k, v in report["results"].items() if k != "nano-klein"}
    if flux1_results:
        print_flux1(flux1_results)
    if "nano-klein" in report["results"]:
        print_klein(report["results"]["nano-klein"])
    print(f"weights: {json.dumps(report['weights_mb'])} MB")


if __name__ == "__main__":
    main()
