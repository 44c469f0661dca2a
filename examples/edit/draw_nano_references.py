"""Draw the Edit tab's offline examples: one edit of the nano grammar per template, for nano-klein.

``nano/examples.json`` lists each example's prompt, its reference files, the pictures they show (as the
grammar renderer `training.grammar_images` draws them), the picture the prompt asks for, and a seed at
which nano-klein makes it (tests/test_nano_klein.py checks each through the app's `/edit` endpoint).

    python examples/edit/draw_nano_references.py                   # redraw the PNGs from examples.json
    python examples/edit/draw_nano_references.py --from-benchmark  # pick the first item of each edit
                                                                   # that benchmarks/nano_quality.py
                                                                   # recorded as fully working
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
FILE = HERE / "nano" / "examples.json"
BENCHMARK = ROOT / "benchmarks" / "results" / "nano_quality.json"


def from_benchmark() -> list[dict]:
    from flux_demo.offline.nano import load_grammar

    tasks = json.loads(BENCHMARK.read_text(encoding="utf-8"))["results"]["nano-klein"]["tasks"]
    items = []
    for name in load_grammar().edits:
        if not tasks[name]["working"]:
            continue  # no fully working item of this edit: no example that would mislead
        case = tasks[name]["working"][0]
        example = case["example"]
        files = [f"{name}_{i}.png" for i in range(1, len(example["references"]) + 1)]
        items.append({"prompt": example["caption"], "files": files, "seed": case["seed"], "example": example})
    return items


def draw(items: list[dict]) -> None:
    from flux_demo.offline.nano import load_grammar
    from training import grammar_images as gi

    grammar = load_grammar()
    for item in items:
        example = gi.example_from_json(item["example"])
        for name, picture in zip(item["files"], example.references, strict=True):
            gi.render(grammar, picture).save(FILE.parent / name, optimize=True)
            print(FILE.parent / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-benchmark", action="store_true")
    args = parser.parse_args()
    FILE.parent.mkdir(parents=True, exist_ok=True)
    if args.from_benchmark:
        FILE.write_text(json.dumps(from_benchmark(), indent=2) + "\n", encoding="utf-8")
    draw(json.loads(FILE.read_text(encoding="utf-8")))


if __name__ == "__main__":
    main()
