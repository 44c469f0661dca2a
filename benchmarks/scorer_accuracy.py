"""How accurate is the typography scorer itself? OCR on synthetic renders whose text is known.

Renders N cases (fonts × sizes × colours × short/medium/long strings, some Korean and Japanese),
scores each against its true text and against a wrong text, and reports mean CER, exact and
normalised match rates, recall by length and script, engine load time and OCR time per image.
Korean and kana are read by Tesseract when it is installed (else they count as unreadable).

    python benchmarks/scorer_accuracy.py            # 300 cases, about 2 minutes on 2 CPU cores
    python benchmarks/scorer_accuracy.py --cases 40 # quick run

Writes benchmarks/results/scorer_accuracy.json.
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
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

from flux_demo.typography import tesseract as ocr_tesseract  # noqa: E402
from flux_demo.typography.ocr import RAPIDOCR, TESSERACT, ocr_engine, recognize  # noqa: E402
from flux_demo.typography.scoring import score_target, score_text  # noqa: E402
from tests.helpers import render_text  # noqa: E402

OUTPUT = ROOT / "benchmarks" / "results" / "scorer_accuracy.json"

# script -> length bucket -> strings.  short: <= 8 characters, long: > 20 characters.
TEXTS = {
    "latin": {
        "short": ["OPEN", "HELLO", "$19.99", "#1 DAD", "EXIT", "Coffee", "24/7", "50% OFF", "iPhone"],
        "medium": ["Maple Avenue", "Good Vibes Only", "MIDNIGHT JAZZ", "Friday 9 PM", "hello@studio.io"],
        "long": [
            "The quick brown fox jumps over the lazy dog",
            "Please ring the bell and wait",
            "Every city is a story waiting",
            "Stay hungry, stay foolish",
            "Fresh bread baked daily since 1987",
        ],
    },
    "korean": {"short": ["커피", "안녕하세요", "서울", "사랑해"], "medium": ["오늘의 메뉴 김치찌개"]},
    "japanese-kanji": {"short": ["東京", "日本", "大阪", "新宿"], "medium": ["東京大学 入口"]},
    "japanese-kana": {"short": ["ラーメン", "ありがとう", "すし"], "medium": ["いらっしゃいませ"]},
}
LATIN_FONTS = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", None]
CJK_FONTS = ["NotoSansCJK-Regular.ttc", "NotoSerifCJK-Regular.ttc"]
SIZES = [20, 28, 40, 56, 72]
COLOURS = [  # (text, background): dark on light, light on dark, low-ish contrast, saturated
    ("black", "white"),
    ("white", "#1b1b1b"),
    ("#c00000", "#fff4e0"),
    ("yellow", "#202a80"),
    ("#555555", "#cfcfcf"),
    ("#00ffcc", "#402040"),
]
# Share of cases per script; Latin dominates because most prompts are Latin.
SCRIPT_WEIGHTS = {"latin": 0.7, "korean": 0.1, "japanese-kanji": 0.1, "japanese-kana": 0.1}


def make_cases(count: int, seed: int) -> list[dict]:
    """A reproducible list of render settings; ``font`` None is Pillow's built-in font."""
    rng = random.Random(seed)
    scripts = list(SCRIPT_WEIGHTS)
    cases = []
    for index in range(count):
        script = rng.choices(scripts, weights=list(SCRIPT_WEIGHTS.values()))[0]
        bucket = rng.choice(list(TEXTS[script]))
        fonts = LATIN_FONTS if script == "latin" else CJK_FONTS
        colour, background = rng.choice(COLOURS)
        cases.append(
            {
                "index": index,
                "script": script,
                "bucket": bucket,
                "text": rng.choice(TEXTS[script][bucket]),
                "wrong": rng.choice([t for b in TEXTS[script].values() for t in b]),
                "font": rng.choice(fonts),
                "size": rng.choice(SIZES),
                "colour": colour,
                "background": background,
            }
        )
    return cases


def run_case(case: dict) -> dict:
    """Render one case, OCR it once, and score it against the true and the wrong text."""
    font_path = case["font"] or None
    if case["font"] and font_path is None:
        return {**case, "skipped": f"font {case['font']} not installed"}
    image = render_text(case["text"], font_path, case["size"], case["colour"], case["background"])
    score = score_text(image, case["text"])
    target = score.targets[0]
    wrong_text = case["wrong"] if case["wrong"] != case["text"] else case["text"][::-1] + "X"
    wrong = score_target(wrong_text, score.reading(target.engine), target.engine)
    return {
        **case,
        "image_size": list(image.size),
        "length": len(target.target),
        "recognised": target.recognised,
        "ocr_text": score.reading(target.engine),
        "cer": target.cer,
        "exact": target.exact,
        "normalised_match": target.normalised_match,
        "readable": target.readable,
        "engine": target.engine,
        "wrong_text": wrong_text,
        "wrong_cer": wrong.cer,
        "wrong_exact": wrong.exact,
        "seconds": score.seconds,
    }


def summarise(rows: list[dict]) -> dict:
    """Mean CER and match rates (0–1) over ``rows``; empty groups give None."""
    if not rows:
        return {"cases": 0, "mean_cer": None, "exact_rate": None, "normalised_rate": None}
    return {
        "cases": len(rows),
        "mean_cer": statistics.fmean(r["cer"] for r in rows),
        "exact_rate": statistics.fmean(r["exact"] for r in rows),
        "normalised_rate": statistics.fmean(r["normalised_match"] for r in rows),
        "mean_cer_on_wrong_text": statistics.fmean(r["wrong_cer"] for r in rows),
        "false_exact_rate": statistics.fmean(r["wrong_exact"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="number of synthetic renders (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    # 1. First use: model load, then one warm-up call (ONNX Runtime allocates on the first run).
    started = time.perf_counter()
    ocr_engine()
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    recognize(render_text("warm up", "DejaVuSans.ttf"))
    first_call_seconds = time.perf_counter() - started
    # Tesseract: the language check, then one Korean read (each read is a fresh tesseract process).
    started = time.perf_counter()
    languages = ocr_tesseract.installed_languages()
    if "kor" in languages:
        ocr_tesseract.read(render_text("커피", "NotoSansCJK-Regular.ttc"), "kor")
    tesseract_first_use_seconds = time.perf_counter() - started if "kor" in languages else None

    # 2. Score every case.
    rows = [run_case(case) for case in make_cases(args.cases, args.seed)]
    done = [r for r in rows if "skipped" not in r]
    readable = [r for r in done if r["readable"]]
    times = sorted(r["seconds"] for r in done)
    engine_times = {
        engine: statistics.fmean(r["seconds"] for r in readable if r["engine"] == engine)
        for engine in sorted({r["engine"] for r in readable})
    }

    # 3. Group and write.
    groups = {
        "all readable": summarise(readable),
        "short (<= 8 chars)": summarise([r for r in readable if r["length"] <= 8]),
        "medium (9-20 chars)": summarise([r for r in readable if 8 < r["length"] <= 20]),
        "long (> 20 chars)": summarise([r for r in readable if r["length"] > 20]),
        **{f"script: {s}": summarise([r for r in done if r["script"] == s]) for s in SCRIPT_WEIGHTS},
        **{
            f"engine: {e}": summarise([r for r in readable if r["engine"] == e])
            for e in (RAPIDOCR, TESSERACT)
        },
        **{f"size: {s}px": summarise([r for r in readable if r["size"] == s]) for s in SIZES},
        **{
            f"font: {f or 'Pillow default'}": summarise([r for r in readable if r["font"] == f])
            for f in LATIN_FONTS + CJK_FONTS
        },
    }
    timing = {
        "engine_load_seconds": load_seconds,
        "first_call_seconds": first_call_seconds,
        "per_image_mean_seconds": statistics.fmean(times) if times else None,
        "per_image_median_seconds": statistics.median(times) if times else None,
        "per_image_p95_seconds": times[int(0.95 * (len(times) - 1))] if times else None,
        "tesseract_first_use_seconds": tesseract_first_use_seconds,
        # A Tesseract target's image is read by both engines: RapidOCR draws the boxes.
        **{f"per_image_mean_seconds ({engine} targets)": value for engine, value in engine_times.items()},
    }
    result = {
        "benchmark": "scorer_accuracy",
        "environment": {
            "python": platform.python_version(),
            "rapidocr_onnxruntime": version("rapidocr-onnxruntime"),
            "onnxruntime": version("onnxruntime"),
            "tesseract_languages": sorted(languages),
            "tesseract": tesseract_version() if languages else None,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
        },
        "settings": {"cases": args.cases, "seed": args.seed},
        "timing": timing,
        "unreadable_cases": len(done) - len(readable),
        "skipped_cases": len(rows) - len(done),
        "groups": groups,
        "cases": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print_table(groups, timing, result)


def tesseract_version() -> str:
    import pytesseract

    return f"{pytesseract.get_tesseract_version()} (pytesseract {version('pytesseract')})"


def print_table(groups: dict, timing: dict, result: dict) -> None:
    """Print the groups as a fixed-width table, then the timings."""
    print(f"{'group':<34}{'cases':>6}{'mean CER':>10}{'exact':>8}{'normalised':>12}{'wrong CER':>11}")

    def cell(value, width):
        return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"

    for name, g in groups.items():
        if g["cases"]:
            print(
                f"{name:<34}{g['cases']:>6}{cell(g['mean_cer'], 10)}{cell(g['exact_rate'], 8)}"
                f"{cell(g['normalised_rate'], 12)}{cell(g.get('mean_cer_on_wrong_text'), 11)}"
            )
    print(f"\nunreadable by every engine (only in the per-script rows): {result['unreadable_cases']}")
    print(f"skipped (font missing): {result['skipped_cases']}")
    for key, value in timing.items():
        print(f"{key:<44}{value:.3f} s" if value is not None else f"{key:<44}-")


if __name__ == "__main__":
    main()
