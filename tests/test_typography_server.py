"""The Typography lab's endpoints through gradio_client: /score_text, /typography, /typography_suite."""

import csv
import json
import re
from pathlib import Path

import pytest
from gradio_client import handle_file
from PIL import Image

from flux_demo.models import get_spec
from tests.helpers import doc_examples, render_text, run_doc_example


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, dejavu):
    """A PNG of the text "HELLO FLUX" in DejaVu Sans, OCR ground truth."""
    path = tmp_path_factory.mktemp("typography") / "hello.png"
    render_text("HELLO FLUX", dejavu["DejaVuSans"], 48).save(path)
    return path


TYPOGRAPHY_ARGS = dict(
    prompt='A wooden sign that says "HELLO"',
    model="tiny-schnell",
    seed=1,
    steps=4,
    guidance=0.0,
    width=256,
    height=256,
)


def typography(client, **changes):
    return client.predict(**{**TYPOGRAPHY_ARGS, **changes}, api_name="/typography")


def test_score_text_on_a_rendered_known_text_is_an_exact_match(client, rendered):
    scores = client.predict(image=handle_file(rendered), expected="HELLO FLUX", api_name="/score_text")
    assert scores["mean_cer"] < 0.05, scores["recognised_text"]
    assert scores["exact_match"] and scores["normalised_match"]
    assert scores["targets"][0]["recognised"] == "HELLO FLUX"
    assert scores["boxes"] and scores["boxes"][0]["text"]


def test_score_text_against_the_wrong_text_gives_high_cer(client, rendered):
    scores = client.predict(image=handle_file(rendered), expected="GOODBYE", api_name="/score_text")
    assert scores["mean_cer"] > 0.6
    assert not scores["exact_match"] and not scores["normalised_match"]


def test_score_text_reads_korean_with_tesseract_and_says_so(client, tmp_path, noto_cjk, tesseract):
    render_text("안녕하세요", noto_cjk, 64).save(tmp_path / "ko.png")
    scores = client.predict(
        image=handle_file(tmp_path / "ko.png"), expected="안녕하세요", api_name="/score_text"
    )
    assert scores["tesseract_text"] == "안녕하세요"
    assert scores["mean_cer"] == 0.0 and scores["exact_match"]
    assert scores["targets"][0] == {
        "target": "안녕하세요",
        "recognised": "안녕하세요",
        "cer": 0.0,
        "exact": True,
        "normalised_match": True,
        "readable": True,
        "engine": "tesseract",
        "unreadable_chars": "",
    }


def test_typography_on_a_tiny_model_returns_the_image_and_a_high_cer(client):
    path, scores = typography(client, prompt='A poster titled "MIDNIGHT" with the subtitle "Jazz Bar"')
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (256, 256)
    assert image.text["prompt"] == 'A poster titled "MIDNIGHT" with the subtitle "Jazz Bar"'
    assert [target["target"] for target in scores["targets"]] == ["MIDNIGHT", "Jazz Bar"]
    assert scores["mean_cer"] > 0.8 and not scores["exact_match"] and not scores["normalised_match"]
    assert scores["details"]["model"] == "tiny-schnell" and scores["details"]["seed"] == 1


def test_typography_suite_returns_a_leaderboard_gallery_and_reports(client):
    board, per_category, gallery, csv_path, json_path = client.predict(
        models=["tiny-schnell", "tiny-klein"],
        count=2,
        categories=["neon"],
        seed=0,
        api_name="/typography_suite",
    )
    assert board["headers"][:3] == ["model", "mean CER", "exact rate"]
    # The page's tables name the models; the CSV and JSON reports keep the keys.
    assert sorted(row[0] for row in board["data"]) == sorted(
        [get_spec("tiny-klein").name, get_spec("tiny-schnell").name]
    )
    for _model, mean_cer, exact_rate, normalised_rate, n_scored, n_unscored in board["data"]:
        assert mean_cer > 0.8 and exact_rate == 0 and normalised_rate == 0
        assert (n_scored, n_unscored) == (2, 0)
    assert [row[1] for row in per_category["data"]] == ["neon", "neon"]
    captions = [item["caption"] for item in gallery]
    assert len(captions) == 4
    names = r"FLUX\.1 \[schnell\] \(offline tiny preview\)|FLUX\.2 \[klein\] 4B \(offline tiny preview\)"
    assert all(re.fullmatch(rf"({names}) · neon-[\w-]+ · CER \d\.\d\d", c) for c in captions), captions
    with open(csv_path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 4 and {row["category"] for row in rows} == {"neon"}
    report = json.loads(Path(json_path).read_text(encoding="utf-8"))
    # The tables name models as the comparison does; the reports keep the keys.
    assert [get_spec(row["model"]).name for row in report["leaderboard"]] == [row[0] for row in board["data"]]


def test_docs_typography_examples_run_against_the_app(server_url):
    examples = doc_examples("/typography", "/score_text")
    assert any('api_name="/score_text"' in code for code in examples), "docs/api.md must call /score_text"
    for code in examples:
        namespace = run_doc_example(code, server_url)
        if "scores" in namespace:
            assert namespace["scores"]["mean_cer"] > 0.8  # the tiny models draw noise, not letters
        if "leaderboard" in namespace:
            assert len(namespace["leaderboard"]["data"]) == 2
