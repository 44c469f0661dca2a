"""Server-built text in the visitor's language: errors, notes and link notices from the real checks."""

import pytest

from flux_demo import comparison, faults, permalink
from flux_demo.typography import suite
from flux_demo.ui.server_text import localize, say, visitor_language
from flux_demo.validation import GenerationRequest, InvalidInput, check_prompt, validate
from tests.helpers import english_sentences

MODELS = ("tiny-schnell", "tiny-dev", "tiny-klein")


class Request:
    def __init__(self, accept_language: str):
        self.headers = {"accept-language": accept_language}


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("ko-KR,ko;q=0.9,en-US;q=0.8", "ko"),
        ("en-US,en;q=0.9,ko;q=0.8", "en"),
        ("ko", "ko"),
        ("fr-FR,ko;q=0.5", "ko"),
        ("en;q=0.2,ko;q=0.9", "ko"),
        ("", "en"),
        ("de-DE", "en"),
    ],
)
def test_visitor_language_is_the_first_served_one_by_quality(header, language):
    assert visitor_language(Request(header)) == language


def refusals() -> list[str]:
    """Messages of the real checks for typical bad input (not hand-typed copies)."""
    bad = [
        GenerationRequest("", "tiny-schnell"),
        GenerationRequest("x" * 2001, "tiny-schnell"),
        GenerationRequest("a\x00b", "tiny-schnell"),
        GenerationRequest("a fox", "nope"),
        GenerationRequest("a fox", "tiny-schnell", width="wide"),
        GenerationRequest("a fox", "tiny-schnell", width=float("nan")),
        GenerationRequest("a fox", "tiny-schnell", width=4096),
        GenerationRequest("a fox", "tiny-schnell", steps=30),
        GenerationRequest("a fox", "tiny-schnell", steps=2.5),
        GenerationRequest("a fox", "tiny-dev", steps=28, guidance=20),
        GenerationRequest("a fox", "tiny-schnell", seed=-1),
        GenerationRequest("a fox", "tiny-schnell", randomize_seed="yes"),
    ]
    messages = []
    for request in bad:
        with pytest.raises(InvalidInput) as err:
            validate(request, MODELS)
        messages.append(str(err.value))
    for call in (
        lambda: comparison.check_models([], MODELS),
        lambda: comparison.check_models(["tiny-dev", "tiny-dev"], MODELS),
        lambda: suite.check_expected(""),
        lambda: suite.check_image(None),
        lambda: suite.prompt_targets("no quotes here"),
        lambda: check_prompt(12),
    ):
        with pytest.raises(InvalidInput) as err:
            call()
        messages.append(str(err.value))
    return messages


def notes_and_faults() -> list[str]:
    valid = validate(GenerationRequest("a fox", "tiny-schnell", 300, 300, 4, 2.0, 1), MODELS)
    _, problems = permalink.parse_settings({"width": "abc", "seed": "-3", "model": "nope"}, MODELS)
    return [
        *valid.notes,
        *problems,
        faults.OUT_OF_MEMORY,
        str(faults.GenerationCancelled()),
        str(faults.model_unavailable("FLUX.1 [dev]", OSError("401 gated repo"))),
        str(faults.model_unavailable("FLUX.1 [dev]", OSError("boom"))),
        "generation failed (RuntimeError); see the server log",
    ]


@pytest.mark.parametrize("message", refusals())
def test_every_refusal_reads_in_korean_and_keeps_its_english_field_name(message):
    korean = localize(message, "ko")
    assert english_sentences(korean) == [], korean
    field = message.split(": ", 1)[0]
    assert korean.startswith(f"{field}: "), korean


@pytest.mark.parametrize("message", notes_and_faults())
def test_notes_link_notices_and_faults_read_in_korean(message):
    korean = localize(message, "ko")
    assert english_sentences(korean) == [], korean
    assert korean != message


def test_link_notice_names_the_field_and_its_range():
    _, problems = permalink.parse_settings({"width": "abc"}, MODELS)
    assert problems == ["Ignored width='abc': must be a number from 256 to 2048, got 'abc'"]
    assert (
        localize(problems[0], "ko")
        == "width='abc' 무시됨: 256부터 2048까지의 숫자여야 합니다. 받은 값: 'abc'"
    )


def test_english_visitors_get_the_message_unchanged():
    message = refusals()[0]
    assert localize(message, "en") == message


def test_summary_phrases_exist_in_both_languages():
    for language in ("en", "ko"):
        line = say(
            "summary",
            language,
            name="FLUX.1 [schnell]",
            steps=4,
            width=1024,
            height=1024,
            seconds=0.41,
            seed=42,
        )
        assert "FLUX.1 [schnell]" in line and "1024×1024" in line and "42" in line
    assert say(
        "summary", "en", name="FLUX.1 [schnell]", steps=4, width=1024, height=1024, seconds=0.41, seed=42
    ) == ("FLUX.1 [schnell] · 4 steps · 1024×1024 · 0.41 s · seed 42")
