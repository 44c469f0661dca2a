"""The Typography lab's endpoints through gradio_client: /score_text, /typography, /typography_suite."""

import csv
import json
import re
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from flux_demo.typography_view import find_font, render_text
from tests.conftest import readme_examples, run_readme_example

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(name="typography_url")
def typography_url_fixture(server_url):
    """URL of the real app, which has the Typography tab."""
    return server_url


@pytest.fixture
def typo_client(typography_url):
    """A gradio_client connected to the app with the Typography tab."""
    return Client(typography_url, verbose=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A PNG of the text "HELLO FLUX" in DejaVu Sans, OCR ground truth."""
    font = find_font("DejaVuSans.ttf")
    assert font, "install fonts-dejavu-core"
    path = tmp_path_factory.mktemp("typography") / "hello.png"
    render_text("HELLO FLUX", font, 48).save(path)
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


def test_score_text_on_a_rendered_known_text_is_an_exact_match(typo_client, rendered):
    scores = typo_client.predict(image=handle_file(rendered), expected="HELLO FLUX", api_name="/score_text")
    assert scores["mean_cer"] < 0.05, scores["recognised_text"]
    assert scores["exact_match"] and scores["normalised_match"]
    assert scores["targets"][0]["recognised"] == "HELLO FLUX"
    assert scores["boxes"] and scores["boxes"][0]["text"]


def test_score_text_against_the_wrong_text_gives_high_cer(typo_client, rendered):
    scores = typo_client.predict(image=handle_file(rendered), expected="GOODBYE", api_name="/score_text")
    assert scores["mean_cer"] > 0.6
    assert not scores["exact_match"] and not scores["normalised_match"]


def test_score_text_reads_korean_with_tesseract_and_says_so(typo_client, tmp_path, noto_cjk, tesseract):
    render_text("안녕하세요", noto_cjk, 64).save(tmp_path / "ko.png")
    scores = typo_client.predict(
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


def test_typography_on_a_tiny_model_returns_the_image_and_a_high_cer(typo_client):
    path, scores = typography(typo_client, prompt='A poster titled "MIDNIGHT" with the subtitle "Jazz Bar"')
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (256, 256)
    assert image.text["prompt"] == 'A poster titled "MIDNIGHT" with the subtitle "Jazz Bar"'
    assert [target["target"] for target in scores["targets"]] == ["MIDNIGHT", "Jazz Bar"]
    assert scores["mean_cer"] > 0.8 and not scores["exact_match"] and not scores["normalised_match"]
    assert scores["details"]["model"] == "tiny-schnell" and scores["details"]["seed"] == 1


def test_typography_suite_returns_a_leaderboard_gallery_and_reports(typo_client):
    board, per_category, gallery, csv_path, json_path = typo_client.predict(
        models=["tiny-schnell", "tiny-klein"],
        count=2,
        categories=["neon"],
        seed=0,
        api_name="/typography_suite",
    )
    assert board["headers"][:3] == ["model", "mean CER", "exact rate"]
    assert sorted(row[0] for row in board["data"]) == ["tiny-klein", "tiny-schnell"]
    for _model, mean_cer, exact_rate, normalised_rate, n_scored, n_unscored in board["data"]:
        assert mean_cer > 0.8 and exact_rate == 0 and normalised_rate == 0
        assert (n_scored, n_unscored) == (2, 0)
    assert [row[1] for row in per_category["data"]] == ["neon", "neon"]
    captions = [item["caption"] for item in gallery]
    assert len(captions) == 4
    assert all(re.fullmatch(r"tiny-(schnell|klein) · neon-[\w-]+ · CER \d\.\d\d", c) for c in captions), (
        captions
    )
    with open(csv_path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 4 and {row["category"] for row in rows} == {"neon"}
    report = json.loads(Path(json_path).read_text(encoding="utf-8"))
    assert [row["model"] for row in report["leaderboard"]] == [row[0] for row in board["data"]]


@pytest.mark.parametrize(
    ("api_name", "args", "message"),
    [
        ("/score_text", {"expected": "  "}, r"expected: is required"),
        ("/score_text", {"expected": "x" * 501}, r"expected: must be at most 500 characters"),
        ("/score_text", {"expected": "OPEN\x07"}, r"expected: must not contain control characters"),
        ("/score_text", {"image": None}, r"image: is required"),
        ("/score_text", {"image": "huge"}, r"image: must be at most 4096×4096 pixels, got 4112×16"),
        ("/typography", {"prompt": "A sign at night"}, r"prompt: put the text to render in quotes"),
        ("/typography", {"model": "flux-pro"}, r"model: must be one of tiny-schnell, tiny-dev"),
        ("/typography", {"steps": 40}, r"steps: must be an integer from 1 to 16"),
        ("/typography_suite", {"models": []}, r"models: choose at least one"),
        ("/typography_suite", {"models": ["flux-pro"]}, r"models: .*'flux-pro'.*not in the list of choices"),
        ("/typography_suite", {"count": 0}, r"count: .*1"),
        ("/typography_suite", {"seed": None}, r"seed: must be"),
    ],
)
def test_bad_input_gets_an_error_naming_the_field_and_the_server_stays_up(
    typo_client, rendered, tmp_path, api_name, args, message
):
    if args.get("image") == "huge":
        Image.new("RGB", (4112, 16), "white").save(tmp_path / "huge.png")
        args = {**args, "image": handle_file(tmp_path / "huge.png")}
    defaults = {
        "/score_text": {"image": handle_file(rendered), "expected": "HELLO FLUX"},
        "/typography": TYPOGRAPHY_ARGS,
        "/typography_suite": {"models": ["tiny-schnell"], "count": 1, "categories": [], "seed": 0},
    }[api_name]
    with pytest.raises(AppError, match=message):
        typo_client.predict(**{**defaults, **args}, api_name=api_name)
    scores = typo_client.predict(image=handle_file(rendered), expected="HELLO FLUX", api_name="/score_text")
    assert scores["exact_match"]


def test_readme_typography_examples_run_against_the_app(typography_url):
    examples = readme_examples("/typography", "/score_text")
    assert any('api_name="/score_text"' in code for code in examples), "README must call /score_text"
    for code in examples:
        namespace = run_readme_example(code, typography_url)
        if "scores" in namespace:
            assert namespace["scores"]["mean_cer"] > 0.8  # the tiny models draw noise, not letters
        if "leaderboard" in namespace:
            assert len(namespace["leaderboard"]["data"]) == 2
