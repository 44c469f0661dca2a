"""Typography suite runner and leaderboard: tiny-model runs, aggregation arithmetic, CSV and JSON reports."""

import csv
import json

import pytest
from PIL import Image

from flux_demo.typography import TargetScore, TextScore, suite
from flux_demo.typography.suite import CATEGORIES, SuiteEntry, load_suite
from flux_demo.typography.view import TARGET_HEADERS, score_diff, score_rows, score_summary
from flux_demo.validation import InvalidInput

MODELS = ("tiny-schnell", "tiny-dev", "tiny-klein")


def target(text: str, cer: float, exact: bool = False, normalised: bool = False, readable: bool = True):
    return TargetScore(text, text if exact else "", cer, exact, normalised, readable)


def image_score(*targets: TargetScore) -> TextScore:
    """A TextScore built by hand, with overall fields derived as `score_text` derives them."""
    return TextScore.from_targets(targets, "", seconds=0.1)


def scored(model: str, category: str, score: TextScore, entry_id: str = "x") -> suite.ScoredImage:
    entry = SuiteEntry(entry_id, category, f'A sign "{entry_id}"', tuple(t.target for t in score.targets))
    return suite.ScoredImage(model, entry, 7, Image.new("RGB", (16, 16)), score)


# --- running the suite on the tiny models ------------------------------------------------------


def test_tiny_models_render_no_text_so_the_suite_gives_high_cer_and_no_exact_match(host):
    entries = suite.select_entries(load_suite(), 2, ["single words", "signs and storefronts"])
    progress = []
    images = suite.run_suite(
        host, entries, ["tiny-schnell", "tiny-klein"], seed=3, on_image=lambda *args: progress.append(args)
    )
    assert [(image.model, image.entry.id) for image in images] == [
        ("tiny-schnell", entries[0].id),
        ("tiny-schnell", entries[1].id),
        ("tiny-klein", entries[0].id),
        ("tiny-klein", entries[1].id),
    ]
    assert [(done, total) for done, total, _ in progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(image.image.size == (256, 256) and image.seed == 3 for image in images)
    for model, agg in suite.leaderboard(images):
        assert agg.scored == 2, model
        assert agg.mean_cer > 0.8, model
        assert agg.exact_rate == 0.0 and agg.normalised_rate == 0.0, model


def test_suite_requests_use_each_models_registry_defaults():
    request = suite.default_request('A sign "OPEN"', "tiny-dev", 5, MODELS)
    assert (request.width, request.height, request.steps, request.guidance, request.seed) == (
        256,
        256,
        28,
        3.5,
        5,
    )


def test_suite_run_checks_every_model_before_generating_anything(host, monkeypatch):
    progress, generated = [], []
    monkeypatch.setattr(suite, "generate_and_score", lambda *args: generated.append(args))
    with pytest.raises(InvalidInput, match="model: must be one of"):
        suite.run_suite(host, load_suite()[:1], ["tiny-schnell", "flux-pro"], on_image=progress.append)
    assert progress == [] and generated == []


def test_select_entries_takes_categories_in_turn_and_honours_the_filter():
    entries = load_suite()
    first = suite.select_entries(entries, len(CATEGORIES))
    assert [entry.category for entry in first] == list(CATEGORIES)
    chosen = suite.select_entries(entries, 5, ["neon", "logos"])
    assert [entry.category for entry in chosen] == ["neon", "logos", "neon", "logos", "neon"]
    assert len(suite.select_entries(entries, 100, ["neon"])) == sum(e.category == "neon" for e in entries)


# --- aggregation arithmetic --------------------------------------------------------------------


def test_aggregate_averages_image_cer_and_counts_match_rates_over_scored_images():
    scores = [
        image_score(target("A", 0.0, exact=True, normalised=True)),
        image_score(target("B", 0.5, normalised=True), target("C", 0.25)),  # image CER 0.375
        image_score(target("D", 1.0)),
        image_score(target("안녕", 1.0, readable=False)),  # not scored
    ]
    agg = suite.aggregate(scores)
    assert (agg.images, agg.scored, agg.unreadable) == (4, 3, 1)
    assert agg.mean_cer == pytest.approx((0.0 + 0.375 + 1.0) / 3)
    assert agg.exact_rate == pytest.approx(1 / 3)
    assert agg.normalised_rate == pytest.approx(1 / 3)


def test_unreadable_targets_leave_the_readable_ones_scored():
    agg = suite.aggregate([image_score(target("OPEN", 0.0, True, True), target("열림", 1.0, readable=False))])
    assert (agg.scored, agg.unreadable, agg.mean_cer, agg.exact_rate) == (1, 0, 0.0, 1.0)


def test_a_group_with_nothing_readable_has_no_means():
    agg = suite.aggregate([image_score(target("안녕", 1.0, readable=False))])
    assert (agg.scored, agg.unreadable) == (0, 1)
    assert agg.mean_cer is None and agg.exact_rate is None and agg.normalised_rate is None


def test_leaderboard_ranks_lowest_cer_first_and_unscored_models_last():
    images = [
        scored("korean-only", "non-Latin scripts", image_score(target("안녕", 1.0, readable=False))),
        scored("worse", "neon", image_score(target("A", 0.8))),
        scored("better", "neon", image_score(target("A", 0.1))),
        scored("better", "logos", image_score(target("B", 0.3))),
    ]
    board = suite.leaderboard(images)
    assert [model for model, _ in board] == ["better", "worse", "korean-only"]
    assert board[0][1].mean_cer == pytest.approx(0.2)
    rows = [(model, category, agg.images) for model, category, agg in suite.by_category(images)]
    assert rows == [
        ("korean-only", "non-Latin scripts", 1),
        ("worse", "neon", 1),
        ("better", "neon", 1),
        ("better", "logos", 1),
    ]


# --- reports -----------------------------------------------------------------------------------


def test_reports_hold_one_csv_row_per_target_and_the_leaderboard_in_json(tmp_path):
    images = [
        scored(
            "m1", "posters", image_score(target("TITLE", 0.0, True, True), target("Sub", 0.5)), "poster-1"
        ),
        scored("m1", "neon", image_score(target("BAR", 1.0)), "neon-1"),
        scored("m2", "non-Latin scripts", image_score(target("커피", 1.0, readable=False)), "ko-1"),
    ]
    csv_path, json_path = suite.write_reports(images, tmp_path / "run")
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(suite.CSV_COLUMNS)
    assert [(row["model"], row["id"], row["target"], row["cer"]) for row in rows] == [
        ("m1", "poster-1", "TITLE", "0.0"),
        ("m1", "poster-1", "Sub", "0.5"),
        ("m1", "neon-1", "BAR", "1.0"),
        ("m2", "ko-1", "커피", "1.0"),
    ]
    assert rows[0]["exact"] == "True" and rows[3]["readable"] == "False"
    assert rows[0]["prompt"] == 'A sign "poster-1"'

    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["leaderboard"] == [
        {
            "model": "m1",
            "images": 2,
            "scored": 2,
            "unreadable": 0,
            "mean_cer": 0.625,
            "exact_rate": 0.0,
            "normalised_rate": 0.0,
        },
        {
            "model": "m2",
            "images": 1,
            "scored": 0,
            "unreadable": 1,
            "mean_cer": None,
            "exact_rate": None,
            "normalised_rate": None,
        },
    ]
    assert [(row["model"], row["category"]) for row in data["categories"]] == [
        ("m1", "neon"),
        ("m1", "posters"),
        ("m2", "non-Latin scripts"),
    ]
    assert [image["id"] for image in data["images"]] == ["poster-1", "neon-1", "ko-1"]
    assert data["images"][2]["targets"][0]["readable"] is False


# --- views of a score --------------------------------------------------------------------------


def test_score_views_label_unreadable_targets_not_scored_instead_of_diffing_them():
    score = image_score(
        TargetScore("OPEN", "OPEX", 0.25, False, False, True), target("열림", 1.0, readable=False)
    )
    scores = suite.score_as_dict(score)
    assert score_diff(scores) == [("OPE", "correct"), ("X", "wrong"), ("   ", None), ("열림", "not scored")]
    assert [row[-1] for row in score_rows(scores)] == ["yes", "no: OCR cannot read 열림"]
    assert score_summary(scores).startswith("**Mean CER 0.250**")
    assert "cannot read" in score_summary(
        suite.score_as_dict(image_score(target("열림", 1.0, readable=False)))
    )


def test_score_rows_name_the_engine_that_read_each_target():
    scores = suite.score_as_dict(
        image_score(
            TargetScore("OPEN", "OPEN", 0.0, True, True, True),
            TargetScore("열림", "열림", 0.0, True, True, True, engine="tesseract"),
        )
    )
    rows = score_rows(scores)
    assert all(len(row) == len(TARGET_HEADERS) for row in rows)
    engine = TARGET_HEADERS.index("engine")
    assert [row[engine] for row in rows] == ["rapidocr", "tesseract"]
    assert score_diff(scores) == [("OPEN", "correct"), ("   ", None), ("열림", "correct")]


def test_table_rows_follow_the_headers():
    images = [scored("m", "neon", image_score(target("A", 0.5, normalised=True)))]
    assert suite.leaderboard_rows(images) == [["m", 0.5, 0.0, 1.0, 1, 0]]
    assert suite.category_rows(images) == [["m", "neon", 0.5, 0.0, 1.0, 1, 0]]
    assert len(suite.leaderboard_rows(images)[0]) == len(suite.LEADERBOARD_HEADERS)
    assert len(suite.category_rows(images)[0]) == len(suite.CATEGORY_HEADERS)
