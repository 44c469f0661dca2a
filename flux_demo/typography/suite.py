"""Typography suite: the prompt data, generate-and-score, the suite runner and its leaderboard.

No Gradio here: the tab (`flux_demo.ui.typography`) turns `InvalidInput` into a `gr.Error` and these
results into tables, galleries and downloads. Images are generated through `flux_demo.generation`
with each model's registry defaults, never by calling diffusers directly.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from flux_demo import generation
from flux_demo.generation import GenerationResult, ProgressFn
from flux_demo.pipelines import Backend
from flux_demo.typography.ocr import unreadable_chars
from flux_demo.typography.scoring import TargetScore, TextScore, score_text
from flux_demo.typography.targets import extract_targets
from flux_demo.validation import (
    GenerationRequest,
    InvalidInput,
    ValidRequest,
    check_model,
    check_prompt,
    validate,
)

# The one place the suite data lives: a data file beside the other examples, editable without code.
SUITE_PATH = Path(__file__).resolve().parents[2] / "examples" / "typography_suite.json"
CATEGORIES = (
    "single words",
    "signs and storefronts",
    "neon",
    "posters",
    "numbers and symbols",
    "long sentences",
    "multi-line text",
    "mixed case",
    "handwriting and chalk",
    "logos",
    "non-Latin scripts",
)
NANO_CATEGORY = "nano signs"  # the offline nano models' own section (`nano_entries`), not in the data file
ORDER = (NANO_CATEGORY, *CATEGORIES)  # how categories are listed and taken in turn
MAX_EXPECTED_CHARS = 500
MAX_SCENE_CHARS = 500  # the prompt helper's scene description
MAX_SCORE_SIDE = 4096  # uploads larger than this in either side are refused, not resized
MAX_SUITE_IMAGES = 48  # images one suite run may make (prompts × models)
# Bounds on a score dict sent back by the browser for display (`check_score_dict`).
MAX_SCORE_TARGETS, MAX_SCORE_BOXES, MAX_SCORE_TEXT = 64, 256, 5000
# Called after each suite image: (images done, images in all, the image just scored).
OnImage = Callable[[int, int, "ScoredImage"], object]


# --- the suite data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteEntry:
    """One typography test prompt; ``targets`` are the texts extracted from its quotes."""

    id: str
    category: str
    prompt: str
    targets: tuple[str, ...]


def load_suite(path: Path = SUITE_PATH) -> list[SuiteEntry]:
    """Read and validate the typography suite (unique ids, known categories, matching targets)."""
    entries = [
        SuiteEntry(row["id"], row["category"], row["prompt"], tuple(row["targets"]))
        for row in json.loads(Path(path).read_text(encoding="utf-8"))
    ]
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise ValueError(f"{path}: duplicate id {entry.id!r}")
        seen.add(entry.id)
        if entry.category not in CATEGORIES:
            raise ValueError(f"{path}: {entry.id}: unknown category {entry.category!r}")
        if list(entry.targets) != extract_targets(entry.prompt):
            raise ValueError(f"{path}: {entry.id}: targets do not match the quotes in the prompt")
    return entries


def nano_entries(grammar) -> list[SuiteEntry]:
    """The suite's nano section: a sign with each word of the nano grammar (`flux_demo.offline.nano`), in
    the one sign template the offline nano models were trained on, so an offline leaderboard measures
    what they can do; the data file's prompts (scenes, long text, other scripts) are beyond them."""
    return [
        SuiteEntry(f"nano-{word.lower()}", NANO_CATEGORY, grammar.word_caption(word), (word,))
        for word in grammar.words
    ]


def suite_categories(entries: list[SuiteEntry] | None = None) -> list[str]:
    """Categories that have at least one entry, in the canonical order."""
    present = {entry.category for entry in (load_suite() if entries is None else entries)}
    return [category for category in ORDER if category in present]


# --- checks ------------------------------------------------------------------------------------


def check_expected(expected) -> str:
    """The text an image should show: required, at most 500 characters, no control characters."""
    if isinstance(expected, str) and not expected.strip():
        raise InvalidInput("expected", "input.expected_required")
    return check_prompt(expected, "expected", MAX_EXPECTED_CHARS)


def check_scene(scene) -> str:
    """The prompt helper's scene: optional text of at most 500 characters."""
    if scene is None or (isinstance(scene, str) and not scene.strip()):
        return ""
    return check_prompt(scene, "scene", MAX_SCENE_CHARS)


def _check_text(value, name: str, limit: int = MAX_SCORE_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput("scores", "input.score_text", name=name, limit=limit)
    return value


def _check_figure(value, name: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) > 1e6:
        raise InvalidInput("scores", "input.score_number", name=name)
    return float(value)


def _check_flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("scores", "input.score_flag", name=name)
    return value


def check_score_dict(scores) -> dict:
    """A score dict as `score_as_dict` makes it, coming back from the browser to be displayed: every
    field is checked and bounded, since a caller can send anything."""
    if not isinstance(scores, dict):
        raise InvalidInput("scores", "input.score_object", kind=type(scores).__name__)
    targets, boxes = scores.get("targets"), scores.get("boxes")
    if not isinstance(targets, list) or len(targets) > MAX_SCORE_TARGETS:
        raise InvalidInput("scores", "input.score_list", name="targets", limit=MAX_SCORE_TARGETS)
    if not isinstance(boxes, list) or len(boxes) > MAX_SCORE_BOXES:
        raise InvalidInput("scores", "input.score_list", name="boxes", limit=MAX_SCORE_BOXES)
    checked_targets = []
    for target in targets:
        if not isinstance(target, dict):
            raise InvalidInput("scores", "input.score_target")
        checked_targets.append(
            {
                "target": _check_text(target.get("target"), "target", MAX_EXPECTED_CHARS),
                "recognised": _check_text(target.get("recognised"), "recognised"),
                "cer": _check_figure(target.get("cer"), "cer"),
                "exact": _check_flag(target.get("exact"), "exact"),
                "normalised_match": _check_flag(target.get("normalised_match"), "normalised_match"),
                "readable": _check_flag(target.get("readable"), "readable"),
                "engine": _check_text(target.get("engine"), "engine", 20),
                "unreadable_chars": _check_text(target.get("unreadable_chars", ""), "unreadable_chars"),
            }
        )
    checked_boxes = []
    for box in boxes:
        points = box.get("points") if isinstance(box, dict) else None
        if not isinstance(points, list) or len(points) != 4:
            raise InvalidInput("scores", "input.score_box")
        for point in points:
            if not isinstance(point, (list, tuple)) or len(point) != 2:
                raise InvalidInput("scores", "input.score_point")
        checked_boxes.append(
            {
                "points": [[_check_figure(x, "x"), _check_figure(y, "y")] for x, y in points],
                "text": _check_text(box.get("text"), "box text", MAX_EXPECTED_CHARS),
                "confidence": _check_figure(box.get("confidence"), "confidence"),
            }
        )
    return {
        "mean_cer": _check_figure(scores.get("mean_cer"), "mean_cer", optional=True),
        "exact_match": _check_flag(scores.get("exact_match"), "exact_match"),
        "normalised_match": _check_flag(scores.get("normalised_match"), "normalised_match"),
        "ocr_seconds": _check_figure(scores.get("ocr_seconds"), "ocr_seconds"),
        "targets": checked_targets,
        "boxes": checked_boxes,
    }


def check_image(image) -> Image.Image:
    """An uploaded image to score: required and at most 4096×4096 pixels."""
    if image is None:
        raise InvalidInput("image", "input.image_required")
    if not isinstance(image, Image.Image):
        raise InvalidInput("image", "input.not_an_image", kind=type(image).__name__)
    width, height = image.size
    if width > MAX_SCORE_SIDE or height > MAX_SCORE_SIDE:
        raise InvalidInput("image", "input.image_too_large", limit=MAX_SCORE_SIDE, width=width, height=height)
    return image


def prompt_targets(prompt: str) -> list[str]:
    """The quoted texts of a prompt; a prompt without any is refused, naming the field."""
    targets = extract_targets(prompt)
    if not targets:
        raise InvalidInput("prompt", "input.quote_text")
    return targets


def default_request(prompt: str, model: str, seed: int, available: Sequence[str]) -> GenerationRequest:
    """A request at the model's registry defaults: its steps, guidance and native square size."""
    spec = check_model(model, available)
    return GenerationRequest(
        prompt, model, spec.default_size, spec.default_size, spec.default_steps, spec.default_guidance, seed
    )


# --- one image ---------------------------------------------------------------------------------


def score_as_dict(score: TextScore) -> dict:
    """A JSON-ready view of a score (CER in 0–1, lower is better; None when nothing is readable)."""
    return {
        "recognised_text": score.recognised_text,
        "tesseract_text": score.tesseract_text,
        "mean_cer": None if score.mean_cer is None else round(score.mean_cer, 4),
        "exact_match": score.all_exact,
        "normalised_match": score.all_normalised,
        "targets": [
            {**asdict(target), "cer": round(target.cer, 4), "unreadable_chars": unreadable(target)}
            for target in score.targets
        ],
        "boxes": [asdict(box) for box in score.boxes],
        "ocr_seconds": round(score.seconds, 3),
    }


def unreadable(target: TargetScore) -> str:
    """Characters of the target that RapidOCR cannot output ("" when an installed engine reads them all)."""
    return "" if target.readable else unreadable_chars(target.target)


def generate_and_score(
    backend: Backend,
    valid: ValidRequest,
    targets: Sequence[str],
    progress: ProgressFn | None = None,
    stopped: Callable[[], bool] | None = None,
) -> tuple[GenerationResult, TextScore]:
    """Generate one validated request on `backend` and OCR-score the image against ``targets``."""
    result = generation.generate(backend, valid, progress, stopped=stopped)
    return result, score_text(result.image, list(targets))


# --- the suite ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredImage:
    """One suite image: which prompt and model made it, and its OCR score."""

    model: str
    entry: SuiteEntry
    seed: int
    image: Image.Image
    score: TextScore


def select_entries(
    entries: Sequence[SuiteEntry], count: int, categories: Sequence[str] = ()
) -> list[SuiteEntry]:
    """Up to ``count`` entries from ``categories`` (all when empty), taken round-robin by category so
    that a short run still covers many kinds of text."""
    queues: dict[str, list] = {category: [] for category in ORDER}
    for entry in entries:
        if not categories or entry.category in categories:
            queues[entry.category].append(entry)
    chosen: list[SuiteEntry] = []
    while len(chosen) < count and any(queues.values()):
        for queue in queues.values():
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen


def run_suite(
    backend: Backend,
    entries: Sequence[SuiteEntry],
    models: Sequence[str],
    seed: int = 0,
    on_image: OnImage | None = None,
    stopped: Callable[[], bool] | None = None,
) -> list[ScoredImage]:
    """Generate every entry with every model (registry defaults, one seed) on `backend` and OCR-score each.
    A stop raises `GenerationCancelled`; `on_image` has seen every image finished before it."""
    available = backend.model_keys
    # 1. Check everything before the first image, so a bad model fails fast
    requests = [
        (model, entry, validate(default_request(entry.prompt, model, seed, available), available))
        for model in models
        for entry in entries
    ]
    # 2. Generate and score, reporting after each image
    scored: list[ScoredImage] = []
    for model, entry, valid in requests:
        result, score = generate_and_score(backend, valid, entry.targets, stopped=stopped)
        scored.append(ScoredImage(model, entry, valid.seed, result.image, score))
        if on_image is not None:
            on_image(len(scored), len(requests), scored[-1])
    return scored


# --- aggregation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aggregate:
    """Scores over a group of images. Rates and the mean CER cover scored images only: an image
    with no readable target (e.g. Korean) is counted in ``unreadable`` instead."""

    images: int
    scored: int
    unreadable: int
    mean_cer: float | None  # mean of the images' mean CER, 0–1; None when none was scored
    exact_rate: float | None  # share of scored images whose every readable target matched exactly
    normalised_rate: float | None  # the same, ignoring case, punctuation and spaces


def aggregate(scores: Sequence[TextScore]) -> Aggregate:
    """Aggregate image scores (see `Aggregate` for what each figure covers)."""
    scored = [score for score in scores if score.mean_cer is not None]
    n = len(scored)
    return Aggregate(
        images=len(scores),
        scored=n,
        unreadable=len(scores) - n,
        mean_cer=sum(score.mean_cer or 0.0 for score in scored) / n if n else None,
        exact_rate=sum(bool(score.all_exact) for score in scored) / n if n else None,
        normalised_rate=sum(bool(score.all_normalised) for score in scored) / n if n else None,
    )


def _grouped(images: Sequence[ScoredImage], key: Callable[[ScoredImage], tuple]) -> dict[tuple, Aggregate]:
    groups: dict[tuple, list[TextScore]] = {}
    for image in images:
        groups.setdefault(key(image), []).append(image.score)
    return {group: aggregate(scores) for group, scores in groups.items()}


def leaderboard(images: Sequence[ScoredImage]) -> list[tuple[str, Aggregate]]:
    """(model, aggregate) per model, best (lowest) mean CER first; models with nothing scored last."""
    rows = [(model, agg) for (model,), agg in _grouped(images, lambda image: (image.model,)).items()]
    return sorted(rows, key=lambda row: (row[1].mean_cer is None, row[1].mean_cer or 0.0))


def by_category(images: Sequence[ScoredImage]) -> list[tuple[str, str, Aggregate]]:
    """(model, category, aggregate) in model order, then the suite's category order."""
    order = {category: i for i, category in enumerate(ORDER)}
    groups = _grouped(images, lambda image: (image.model, image.entry.category))
    models = list(dict.fromkeys(image.model for image in images))
    rows = [(model, category, agg) for (model, category), agg in groups.items()]
    return sorted(rows, key=lambda row: (models.index(row[0]), order[row[1]]))


# --- reports -----------------------------------------------------------------------------------

CSV_COLUMNS = (
    "model",
    "id",
    "category",
    "seed",
    "target",
    "recognised",
    "cer",
    "exact",
    "normalised_match",
    "readable",
    "engine",
    "prompt",
)


LEADERBOARD_HEADERS = ["model", "mean CER", "exact rate", "normalised rate", "scored", "not scored"]
CATEGORY_HEADERS = ["model", "category", *LEADERBOARD_HEADERS[1:]]


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _figures(agg: Aggregate) -> list:
    """The table figures of an aggregate, in LEADERBOARD_HEADERS order after the model."""
    rates = (agg.mean_cer, agg.exact_rate, agg.normalised_rate)
    return [*(_rounded(value, 3) for value in rates), agg.scored, agg.unreadable]


def leaderboard_rows(images: Sequence[ScoredImage]) -> list[list]:
    """The leaderboard as table rows (LEADERBOARD_HEADERS), best model first."""
    return [[model, *_figures(agg)] for model, agg in leaderboard(images)]


def category_rows(images: Sequence[ScoredImage]) -> list[list]:
    """Per-model, per-category results as table rows (CATEGORY_HEADERS)."""
    return [[model, category, *_figures(agg)] for model, category, agg in by_category(images)]


def aggregate_dict(agg: Aggregate) -> dict:
    return {
        **asdict(agg),
        "mean_cer": _rounded(agg.mean_cer),
        "exact_rate": _rounded(agg.exact_rate),
        "normalised_rate": _rounded(agg.normalised_rate),
    }


def report(images: Sequence[ScoredImage]) -> dict:
    """The whole run as JSON-ready data: leaderboard, per-category results and every image's scores."""
    return {
        "leaderboard": [{"model": model, **aggregate_dict(agg)} for model, agg in leaderboard(images)],
        "categories": [
            {"model": model, "category": category, **aggregate_dict(agg)}
            for model, category, agg in by_category(images)
        ],
        "images": [
            {
                "model": image.model,
                "id": image.entry.id,
                "category": image.entry.category,
                "prompt": image.entry.prompt,
                "seed": image.seed,
                **{k: v for k, v in score_as_dict(image.score).items() if k != "boxes"},
            }
            for image in images
        ],
    }


def write_reports(images: Sequence[ScoredImage], folder: Path) -> tuple[Path, Path]:
    """Write ``typography_suite.csv`` (one row per image and target) and ``typography_suite.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = folder / "typography_suite.csv", folder / "typography_suite.json"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for image in images:
            for target in image.score.targets:
                writer.writerow(
                    [
                        image.model,
                        image.entry.id,
                        image.entry.category,
                        image.seed,
                        target.target,
                        target.recognised,
                        round(target.cer, 4),
                        target.exact,
                        target.normalised_match,
                        target.readable,
                        target.engine,
                        image.entry.prompt,
                    ]
                )
    json_path.write_text(json.dumps(report(images), ensure_ascii=False, indent=2), encoding="utf-8")
    return csv_path, json_path
