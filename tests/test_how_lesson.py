"""The "How FLUX works" lesson: drawn from the served model before any run, in English and Korean."""

import dataclasses
import re
import xml.etree.ElementTree as ET

import pytest

from flux_demo.services import AppServices
from flux_demo.ui.how_flux_works import lesson, panels
from flux_demo.ui.i18n import EN, KO

HANGUL = re.compile("[가-힣]")


def test_every_text_of_the_tab_has_a_korean_translation():
    keys = [key for key in EN if key.startswith("how_") or key == "tab_how"]
    assert len(keys) > 60
    missing = [key for key in keys if key not in KO]
    assert not missing
    same = [key for key in keys if KO[key] == EN[key] and not key.startswith(("how_h_CER", "how_schedule_y"))]
    assert not same, f"untranslated: {same}"
    # The same placeholders, so a Korean page shows the same figures.
    for key in keys:
        assert set(re.findall(r"{(\w+)", EN[key])) == set(re.findall(r"{(\w+)", KO[key])), key


@pytest.mark.parametrize("model", ["tiny-dev", "tiny-klein"])
def test_the_lesson_is_drawn_from_the_model_in_both_languages(host, model):
    services = AppServices.for_backend(host)
    english = lesson.render(services, model, 256, 256, "en")
    korean = lesson.render(services, model, 256, 256, "ko")
    for figure in (english[0], english[1], english[4], korean[0], korean[1], korean[4]):
        ET.fromstring(re.search(r"<svg.*</svg>", figure, re.S).group())  # well-formed SVG
    schedule, diagram, blocks, _encoders, _rope = korean
    assert all(HANGUL.search(part) for part in korean)
    assert "double-stream" not in diagram and "progress" not in schedule and "parameters" not in blocks
    assert "(1)" in english[1]  # the loaded tiny model's block counts beside the full-size ones


def test_the_encoder_panel_says_which_encoder_is_attended_and_which_pooled(host):
    services = AppServices.for_backend(host)
    flux1 = lesson.render(services, "tiny-dev", 256, 256, "en")[3]
    assert "**CLIP ViT-L/14**" in flux1 and "one pooled vector" in flux1 and "not attended over" in flux1
    assert "**T5-XXL v1.1**" in flux1 and "text tokens the image tokens attend over" in flux1
    klein = lesson.render(services, "tiny-klein", 256, 256, "en")[3]
    assert "Qwen3-4B" in klein and "no pooled text vector" in klein


def test_the_schedule_shows_only_sizes_the_model_can_make(settings):
    """A step's dot per σ, at the chosen size and the model's largest: only 256² for nano (the size it
    makes), never 2048²."""
    from flux_demo.pipelines import ModelHost

    nano_host = ModelHost(dataclasses.replace(settings, models=("nano-schnell", "nano-dev")))
    chart = lesson.schedule_chart(AppServices.for_backend(nano_host), "nano-dev", 256, 256, "en")
    assert set(re.findall(r"\d+×\d+", chart)) == {"256×256"}
    assert chart.count("<circle") == (4 + 1) + (28 + 1)  # schnell's and dev's steps at their one size


def test_parameter_counts_read_as_people_write_them():
    assert panels.billions(11_901_408_320, "en") == "11.9 B"
    assert panels.billions(339_831_296, "en") == "340 M"
    assert panels.billions(11_901_408_320, "ko") == "119억"
    assert panels.billions(3_446_336, "ko") == "345만"


def test_distillation_runs_the_family_at_its_own_settings_and_dev_without_guidance(host):
    from flux_demo.ui.how_flux_works.endpoints import distillation_requests

    runs = distillation_requests(host, "a fox", "tiny-schnell", 1, 256, 256)
    assert [(r.model, r.steps, r.guidance) for r in runs] == [
        ("tiny-schnell", 4, 0.0),
        ("tiny-dev", 28, 3.5),
        ("tiny-dev", 28, 1.0),
    ]
    assert [(r.model, r.steps) for r in distillation_requests(host, "a fox", "tiny-klein", 1, 256, 256)] == [
        ("tiny-klein", 4)
    ]
