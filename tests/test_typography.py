"""Typography lab: target extraction, the suite file, metrics, and OCR scores on known renders."""

import statistics
import threading

import numpy as np
import pytest
from PIL import Image

from flux_demo.typography import tesseract as ocr_tesseract
from flux_demo.typography.ocr import (
    RAPIDOCR,
    TESSERACT,
    ocr_engine,
    reading_engine,
    recognize,
    unreadable_chars,
)
from flux_demo.typography.scoring import character_error_rate, normalise, score_target, score_text
from flux_demo.typography.suite import CATEGORIES, load_suite, suite_categories
from flux_demo.typography.targets import extract_targets, quote_prompt
from flux_demo.typography.view import char_diff, draw_boxes
from tests.helpers import render_text

# --- target extraction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "targets"),
    [
        ('A sign that says "OPEN 24/7"', ["OPEN 24/7"]),
        ('A poster titled "TITLE" with the subtitle "Sub title"', ["TITLE", "Sub title"]),
        ("A mug that says 'Coffee'", ["Coffee"]),
        ('A sign that says "Don\'t Panic"', ["Don't Panic"]),
        ("A sign that says 'Don't Panic'", ["Don't Panic"]),
        ("The World's best 'Pizza' at Joe's", ["Pizza"]),
        ("the kids' playground sign reads 'SLOW'", ["SLOW"]),
        ("Don't forget the World's Fair", []),
        ("A card reading “Happy Birthday” and ‘Love, Anna’", ["Happy Birthday", "Love, Anna"]),
        ("A note saying ‘Don’t stop’", ["Don’t stop"]),
        ("A sign with 「ラーメン」 and 『東京』", ["ラーメン", "東京"]),
        ("He said \"it's 'fine'\" twice", ["it's 'fine'"]),
        ('An empty sign "" and "  spaced   out  "', ["spaced out"]),
        ('A note that says "Line one\nLine two"', ["Line one Line two"]),
        ("No quotes at all", []),
        ('An unclosed "quote', []),
    ],
)
def test_extract_targets_finds_quoted_text_and_ignores_apostrophes(prompt, targets):
    assert extract_targets(prompt) == targets


@pytest.mark.parametrize(
    ("text", "scene", "expected"),
    [
        ("OPEN 24/7", "A neon sign", 'A neon sign, with the text "OPEN 24/7"'),
        ("OPEN 24/7", "A neon sign that says {text} at night", 'A neon sign that says "OPEN 24/7" at night'),
        ('Say "hi"', "A poster", 'A poster, with the text “Say "hi"”'),
        ("HELLO", "  ", 'A sign that says "HELLO"'),
    ],
)
def test_quote_prompt_quotes_the_text_into_the_scene(text, scene, expected):
    assert quote_prompt(text, scene) == expected


@pytest.mark.parametrize("text", ["Don't Panic", 'He said "no"', "“Quoted” and 'single'", "커피 24/7"])
def test_quote_prompt_round_trips_through_extract_targets(text):
    assert extract_targets(quote_prompt(text, "A wall")) == [text]


def test_quote_prompt_rejects_empty_text_naming_the_field():
    with pytest.raises(ValueError, match="text"):
        quote_prompt("   ", "A sign")


# --- the suite file ----------------------------------------------------------------------------


def test_suite_has_every_category_with_at_least_four_prompts():
    entries = load_suite()
    assert len(entries) >= 44
    for category in CATEGORIES:
        assert sum(entry.category == category for entry in entries) >= 4, category
    assert suite_categories(entries) == list(CATEGORIES)


def test_suite_targets_equal_the_quotes_in_each_prompt():
    for entry in load_suite():
        assert entry.targets, entry.id
        assert list(entry.targets) == extract_targets(entry.prompt), entry.id


def test_suite_ids_are_unique():
    ids = [entry.id for entry in load_suite()]
    assert len(ids) == len(set(ids))


def test_suite_loader_rejects_targets_that_disagree_with_the_prompt(tmp_path):
    bad = tmp_path / "suite.json"
    bad.write_text('[{"id": "a", "category": "neon", "prompt": "A \\"B\\"", "targets": ["C"]}]')
    with pytest.raises(ValueError, match="targets"):
        load_suite(bad)


# --- metrics -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "recognised", "cer"),
    [("kitten", "sitting", 0.5), ("flaw", "lawn", 0.5), ("abc", "", 1.0), ("東京", "東京", 0.0)],
)
def test_character_error_rate_counts_levenshtein_edits(target, recognised, cer):
    assert character_error_rate(target, recognised) == cer


def test_character_error_rate_is_edits_over_target_length_capped_at_one():
    assert character_error_rate("abcd", "abXd") == 0.25
    assert character_error_rate("abcd", "abd") == 0.25
    assert character_error_rate("ab", "abcdefgh") == 1.0  # 6 insertions / 2 chars, capped
    assert character_error_rate("abc", "") == 1.0
    assert character_error_rate("Stay hungry", "Stayhungry") == 0.0  # spaces are not scored
    assert character_error_rate("東京 大学", "東京大字") == 0.25
    with pytest.raises(ValueError, match="target"):
        character_error_rate("", "abc")


def test_normalise_drops_case_spaces_and_punctuation_but_keeps_all_scripts():
    assert normalise("Don't  STOP!") == normalise("dont stop") == "dontstop"
    assert normalise("안녕 하세요!") == "안녕하세요"
    assert normalise("「ラーメン」") == "ラーメン"
    assert normalise("$19.99") == "$1999"  # currency symbols are part of the text


def test_target_is_matched_to_the_best_window_of_the_ocr_text():
    score = score_target("OPEN", "WELCOME OPEN 24/7")
    assert (score.recognised, score.cer, score.exact) == ("OPEN", 0.0, True)


def test_window_widens_to_whole_words_so_a_longer_word_is_not_a_match():
    score = score_target("CAT", "CATALOG")
    assert score.recognised == "CATALOG"
    assert score.cer == 1.0
    assert not score.exact


def test_case_errors_count_in_cer_but_not_in_the_normalised_match():
    score = score_target("Open", "WELCOME OPEN")
    assert score.recognised == "OPEN"
    assert score.cer == 0.75
    assert not score.exact
    assert score.normalised_match


# --- views -------------------------------------------------------------------------------------


def test_char_diff_labels_reassemble_target_and_recognised_text():
    pieces = char_diff("Hello World", "Helo Wor1d!")
    assert "".join(text for text, label in pieces if label != "missing") == "Helo Wor1d!"
    assert {label for _, label in pieces} == {"correct", "missing", "wrong", "extra"}
    assert char_diff("OK", "OK") == [("OK", "correct")]
    assert char_diff("OK", None) == [("OK", "missing")]


def test_draw_boxes_marks_a_copy_and_leaves_the_input_untouched(dejavu):
    image = render_text("HELLO", dejavu["DejaVuSans"], 48)
    before = np.asarray(image).copy()
    marked = draw_boxes(image, recognize(image))
    assert marked.size == image.size
    assert np.array_equal(np.asarray(image), before)
    assert not np.array_equal(np.asarray(marked), before)


# --- OCR on renders with known text -----------------------------------------------------------


# (text, font key, size px, colour, background); font None is Pillow's built-in font.
CORRECT_RENDERS = [
    ("HELLO", "DejaVuSans", 48, "black", "white"),
    ("OPEN 24/7", "DejaVuSans-Bold", 40, "white", "#123a7a"),
    ("Second Chapter Books", "DejaVuSerif", 40, "#7a1010", "#f5ecd7"),
    ("$19.99", "DejaVuSans-Bold", 64, "#c00000", "#ffeeee"),
    ("The quick brown fox jumps over the lazy dog", "DejaVuSerif", 30, "black", "#dddddd"),
    ("Good Vibes Only", "DejaVuSans", 36, "yellow", "black"),
    ("#1 DAD", "DejaVuSans", 28, "#333333", "#ffd700"),
    ("LIBRARY", "DejaVuSerif", 72, "white", "#2e7d32"),
    ("hello@studio.io", "DejaVuSans", 32, "#0b3d91", "white"),
    ("Coffee", None, 48, "black", "white"),
    ("iPhone Case", None, 36, "navy", "#eeeeff"),
    ("Please ring the bell", None, 32, "white", "#444444"),
]


@pytest.mark.parametrize(("text", "font", "size", "colour", "background"), CORRECT_RENDERS)
def test_correctly_rendered_text_scores_near_zero_cer(dejavu, text, font, size, colour, background):
    image = render_text(text, dejavu[font] if font else None, size, colour, background)
    score = score_text(image, text)
    assert score.targets[0].readable
    assert score.mean_cer < 0.34, score.recognised_text
    assert score.all_normalised, score.recognised_text


def test_correct_renders_score_a_mean_cer_below_one_tenth(dejavu):
    cers = [
        score_text(render_text(text, dejavu[font] if font else None, size, colour, background), text).mean_cer
        for text, font, size, colour, background in CORRECT_RENDERS[::2]
    ]
    assert sum(cers) / len(cers) < 0.1, cers


def test_title_and_subtitle_are_scored_separately(dejavu):
    image = render_text("MIDNIGHT JAZZ\nFriday 9 PM", dejavu["DejaVuSans-Bold"], 44, "gold", "navy")
    score = score_text(image, ["MIDNIGHT JAZZ", "Friday 9 PM"])
    assert [target.recognised for target in score.targets] == ["MIDNIGHT JAZZ", "Friday 9 PM"]
    assert score.all_exact


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [("HELLO", "GOODBYE"), ("OPEN 24/7", "CLOSED"), ("Coffee", "Library"), ("$19.99", "FREE")],
)
def test_wrong_text_scores_high_cer(dejavu, rendered, expected):
    score = score_text(render_text(rendered, dejavu["DejaVuSans"], 48), expected)
    assert score.mean_cer > 0.6, score.targets
    assert not score.all_exact
    assert not score.all_normalised


def test_blank_and_noise_images_give_no_match():
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
    for image in (Image.new("RGB", (512, 512), "white"), noise):
        score = score_text(image, "HELLO")
        assert not score.all_exact
        assert score.mean_cer > 0.6


@pytest.mark.parametrize("text", ["東京", "日本"])
def test_japanese_kanji_render_is_read(noto_cjk, text):
    score = score_text(render_text(text, noto_cjk, 64), text)
    assert score.targets[0].readable
    assert score.all_exact, score.recognised_text


# --- Korean and kana: read by Tesseract -----------------------------------------------------------

# (text, size px, colour, background), all in Noto Sans CJK.  On 324 such renders (sizes 20-72 px,
# six colour pairs, sans and serif) Tesseract's mean CER was 0.007, and no render above 20 px missed
# a character, so the per-render bound below only tolerates one misread character in three.
CJK_RENDERS = [
    ("안녕하세요", 64, "black", "white"),
    ("커피", 40, "white", "#1b1b1b"),
    ("오늘의 메뉴 김치찌개", 28, "#c00000", "#fff4e0"),
    ("사랑해", 56, "yellow", "#202a80"),
    ("ありがとう", 64, "black", "white"),
    ("ラーメン", 40, "#555555", "#cfcfcf"),
    ("いらっしゃいませ", 28, "#00ffcc", "#402040"),
    ("すし", 72, "white", "#7a1010"),
]


@pytest.mark.parametrize(("text", "size", "colour", "background"), CJK_RENDERS)
def test_korean_and_kana_renders_are_read_by_tesseract(noto_cjk, tesseract, text, size, colour, background):
    # The shipped PP-OCRv4 recogniser has no Hangul and only five kana, so Tesseract reads these.
    assert unreadable_chars(text)
    score = score_text(render_text(text, noto_cjk, size, colour, background), text)
    target = score.targets[0]
    assert (target.engine, target.readable) == (TESSERACT, True)
    assert target.cer < 0.34, score.tesseract_text
    assert score.all_normalised, score.tesseract_text


def test_korean_and_kana_renders_score_a_mean_cer_below_one_tenth(noto_cjk, tesseract):
    cers = [
        score_text(render_text(text, noto_cjk, size, colour, background), text).mean_cer
        for text, size, colour, background in CJK_RENDERS[::2]
    ]
    assert statistics.fmean(cers) < 0.1, cers


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [("안녕하세요", "사랑해"), ("커피", "서울"), ("ありがとう", "ラーメン"), ("すし", "いらっしゃいませ")],
)
def test_wrong_korean_or_kana_text_scores_high_cer(noto_cjk, tesseract, rendered, expected):
    score = score_text(render_text(rendered, noto_cjk, 56), expected)
    assert score.targets[0].engine == TESSERACT
    assert score.mean_cer > 0.6, score.tesseract_text
    assert not score.all_exact
    assert not score.all_normalised


def test_each_target_is_read_by_the_engine_that_can_spell_it(noto_cjk, tesseract):
    score = score_text(
        render_text("東京 OPEN\n커피 ラーメン", noto_cjk, 48), ["東京", "OPEN", "커피", "ラーメン"]
    )
    assert [target.engine for target in score.targets] == [RAPIDOCR, RAPIDOCR, TESSERACT, TESSERACT]
    assert score.all_exact, (score.recognised_text, score.tesseract_text)


def test_tesseract_languages_follow_the_scripts_of_the_characters(monkeypatch):
    monkeypatch.setattr(ocr_tesseract, "installed_languages", lambda: frozenset({"kor", "jpn", "eng"}))
    assert ocr_tesseract.languages_for("커피") == "kor"
    assert ocr_tesseract.languages_for("ラーメン") == "jpn"
    assert ocr_tesseract.languages_for("ラ커") == "kor+jpn"
    assert ocr_tesseract.languages_for("สวัสดี") is None  # Thai: no engine here reads it
    monkeypatch.setattr(ocr_tesseract, "installed_languages", lambda: frozenset({"eng"}))
    assert ocr_tesseract.languages_for("커피") is None


@pytest.mark.parametrize("text", ["안녕하세요", "ありがとう"])
def test_without_tesseract_korean_and_kana_are_flagged_not_scored(noto_cjk, monkeypatch, text):
    monkeypatch.setattr(ocr_tesseract, "installed_languages", lambda: frozenset())
    assert reading_engine(text) is None
    score = score_text(render_text(text, noto_cjk, 64), text)
    assert (score.targets[0].readable, score.targets[0].engine) == (False, RAPIDOCR)
    assert score.mean_cer is None
    assert score.tesseract_text is None
    assert not score.all_exact


def test_a_tesseract_failure_leaves_the_target_not_scored(noto_cjk, tesseract, monkeypatch):
    monkeypatch.setattr(ocr_tesseract, "read", lambda image, languages: None)
    score = score_text(render_text("커피\nOPEN", noto_cjk, 48), ["커피", "OPEN"])
    assert [target.readable for target in score.targets] == [False, True]
    assert score.mean_cer == score.targets[1].cer  # the Latin target is still scored


def test_a_script_no_engine_reads_is_flagged_not_scored():
    score = score_text(Image.new("RGB", (64, 64), "white"), "สวัสดี")
    assert not score.targets[0].readable
    assert score.mean_cer is None


def test_score_text_rejects_no_targets_naming_the_field():
    with pytest.raises(ValueError, match="expected"):
        score_text(Image.new("RGB", (64, 64)), [])
    with pytest.raises(ValueError, match="expected"):
        score_text(Image.new("RGB", (64, 64)), "   ")


def test_ocr_engine_is_one_shared_instance_across_threads():
    engines = []
    threads = [threading.Thread(target=lambda: engines.append(ocr_engine())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(engines) == 8
    assert all(engine is engines[0] for engine in engines)
