"""One message catalog: every code in English and Korean, the real checks' messages rendered in Korean
without English left over, and the rule that decides the language of a reply (the page gets the
visitor's, the API and MCP get English)."""

import pickle

import pytest

from flux_demo import comparison, editing, faults, permalink
from flux_demo.messages import CATALOG, LANGUAGES, Message, placeholders
from flux_demo.services import limits
from flux_demo.typography import quote_prompt, suite
from flux_demo.ui.i18n import visitor_language
from flux_demo.ui.widgets import NamedCheckboxGroup, NamedNumber, NamedSlider
from flux_demo.validation import GenerationRequest, InvalidInput, check_prompt, validate
from tests.helpers import english_sentences

MODELS = ("tiny-schnell", "tiny-dev", "tiny-klein")


# --- the catalog ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_every_code_has_both_languages_with_the_same_placeholders(code):
    entries = CATALOG[code]
    assert set(entries) == set(LANGUAGES), code
    assert all(entries[language].strip() for language in LANGUAGES), code
    assert placeholders(entries["ko"]) == placeholders(entries["en"]), code


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_no_korean_template_leaves_an_english_sentence(code):
    assert english_sentences(CATALOG[code]["ko"]) == [], CATALOG[code]["ko"]


def test_a_message_is_english_as_text_and_renders_its_parts_in_the_same_language():
    allowed = Message("allowed.integer_range", low=1, high=16)
    message = Message("input.must_be", allowed=allowed, value=17)
    assert str(message) == "must be an integer from 1 to 16, got 17"
    assert message.render("ko") == "1부터 16까지의 정수여야 합니다. 받은 값: 17"
    assert message.render("fr") == str(message)  # a language the catalog lacks: English


def test_an_unknown_code_fails_where_the_message_is_built():
    with pytest.raises(KeyError, match=r"input\.nonsense"):
        Message("input.nonsense")


def test_errors_and_faults_pickle_with_their_messages():
    """ZeroGPU and Ray send exceptions between processes: the code and parameters must survive."""
    err = pickle.loads(pickle.dumps(InvalidInput("steps", "input.flag")))
    assert (err.field, err.reason, str(err)) == (
        "steps",
        Message("input.flag"),
        "steps: must be true or false",
    )
    stop = pickle.loads(pickle.dumps(faults.GenerationCancelled(step=3, steps=8)))
    assert (stop.message, stop.step, stop.steps) == (Message("fault.cancelled"), 3, 8)


# --- what the real checks say ----------------------------------------------------------------


def refusals() -> list[InvalidInput]:
    """Errors of the real checks for typical bad input (not hand-typed copies)."""
    bad = [
        GenerationRequest("", "tiny-schnell"),
        GenerationRequest("x" * 2001, "tiny-schnell"),
        GenerationRequest("a\x00b", "tiny-schnell"),
        GenerationRequest("half \ud800 pair", "tiny-schnell"),
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
    calls = [lambda request=request: validate(request, MODELS) for request in bad]
    edit = editing.EditRequest("a fox", "tiny-klein", "edit", images=[])
    calls += [
        lambda: comparison.check_models([], MODELS),
        lambda: comparison.check_models(["tiny-dev", "tiny-dev"], MODELS),
        lambda: comparison.plan_requests(
            "a fox", ["tiny-schnell"], [1], 256, 256, {"tiny-schnell": (40, 0)}, MODELS
        ),
        lambda: suite.check_expected(""),
        lambda: suite.check_image(None),
        lambda: suite.prompt_targets("no quotes here"),
        lambda: suite.check_score_dict({"targets": [1], "boxes": []}),
        lambda: quote_prompt("  ", ""),
        lambda: check_prompt(12),
        lambda: editing.validate_edit(edit, MODELS),
        lambda: editing.validate_edit(editing.EditRequest("a fox", "tiny-klein", "warp"), MODELS),
        lambda: editing.check_image_size("image", 10, 4000),
    ]
    errors = []
    for call in calls:
        with pytest.raises(InvalidInput) as err:
            call()
        errors.append(err.value)
    return errors


def notices() -> list[Message]:
    """Notes, link notices, faults, rate limits and progress as the package builds them."""
    valid = validate(GenerationRequest("a fox", "tiny-schnell", 300, 300, 4, 2.0, 1), MODELS)
    _, problems = permalink.parse_settings(
        {"width": "abc", "seed": "-3", "model": "nope", "strength": "x", "tab": "nope"}, MODELS
    )
    limiter = limits.VisitorLimiter(1, 60, "minute")
    limiter.check("visitor", now=0)
    rate_limits = []
    for cost in (1, 5):
        with pytest.raises(limits.RateLimited) as err:
            limiter.check("visitor", now=1, cost=cost)
        rate_limits.append(err.value.message)
    zerogpu = type("ZeroGpuError", (Exception,), {"title": "ZeroGPU queue timeout", "message": ""})()
    shown = []  # what a comparison's progress bar is told: model k of n, then its steps
    run_progress = comparison.RunProgress(lambda _value, desc: shown.append(desc), 1, 2, "FLUX.1 [dev]", 0, 8)
    run_progress(0.0, desc=Message("progress.loading", model="FLUX.1 [dev] (offline tiny preview)"))
    run_progress((1, 4))
    return [
        *valid.notes,
        *problems,
        *rate_limits,
        faults.OutOfGpuMemory().message,
        faults.GenerationCancelled().message,
        faults.model_unavailable("FLUX.1 [dev]", OSError("401 gated repo")).message,
        faults.model_unavailable("FLUX.1 [dev]", OSError("boom")).message,
        faults.from_zerogpu(zerogpu).message,
        Message("fault.generation_failed", error="RuntimeError"),
        *shown,
    ]


@pytest.mark.parametrize("err", refusals(), ids=lambda err: err.reason.code)
def test_every_refusal_reads_in_korean_and_keeps_its_english_field_name(err):
    korean = err.message.render("ko")
    assert english_sentences(korean) == [], korean
    assert korean.startswith(f"{err.field}: "), korean
    assert str(err) == err.message.render("en")


@pytest.mark.parametrize("message", notices(), ids=lambda message: message.code)
def test_notes_link_notices_faults_and_progress_read_in_korean(message):
    korean = message.render("ko")
    assert english_sentences(korean) == [], korean
    assert korean != str(message)


def test_link_notice_names_the_field_and_its_range():
    _, problems = permalink.parse_settings({"width": "abc"}, MODELS)
    assert [str(problem) for problem in problems] == [
        "Ignored width='abc': must be a number from 256 to 2048, got 'abc'"
    ]
    assert (
        problems[0].render("ko") == "width='abc' 무시됨: 256부터 2048까지의 숫자여야 합니다. 받은 값: 'abc'"
    )


def test_offline_model_names_read_in_korean():
    note = Message("progress.loading", model="FLUX.1 [schnell] (offline tiny preview)")
    assert note.render("ko") == "FLUX.1 [schnell] (오프라인 소형 미리보기) 불러오는 중 (처음 한 번)"


def test_the_widgets_check_bounds_and_choices_themselves_with_catalog_messages():
    """Gradio's own bound and choice errors are English only and omit the field: ours come first."""
    steps = NamedSlider(1, 16, step=1, label="steps")
    seed = NamedNumber(0, precision=0, minimum=0, maximum=2**32 - 1, label="seed")
    models = NamedCheckboxGroup(["tiny-schnell", "tiny-dev"], label="models")
    refused = {
        "low": steps.preprocess(0),
        "high": seed.preprocess(2**32),
        "choice": models.preprocess(["flux-pro"]),
        "string": models.preprocess("tiny-dev"),
    }
    assert str(refused["low"].message) == "steps: Value 0 is less than minimum value 1."
    assert refused["low"].message.render("ko") == "steps: 값 0은(는) 최솟값 1보다 작습니다."
    assert str(refused["high"].message) == "seed: Value 4294967296 is greater than maximum value 4294967295."
    assert str(refused["choice"].message) == (
        "models: Value: 'flux-pro' is not in the list of choices: 'tiny-schnell', 'tiny-dev'"
    )
    assert str(refused["string"].message).startswith("models: must be a list of values from")
    for refusal in refused.values():
        assert english_sentences(refusal.message.render("ko")) == [], refusal.message.render("ko")
    assert steps.preprocess(4) == 4 and models.preprocess(["tiny-dev"]) == ["tiny-dev"]


def test_summary_lines_exist_in_both_languages():
    params = dict(model="FLUX.1 [schnell]", steps=4, width=1024, height=1024, seconds=0.41, seed=42)
    assert str(Message("ui.summary", **params)) == "FLUX.1 [schnell] · 4 steps · 1024×1024 · 0.41 s · seed 42"
    assert (
        Message("ui.summary", **params).render("ko")
        == "FLUX.1 [schnell] · 4스텝 · 1024×1024 · 0.41초 · 시드 42"
    )


# --- the language of a reply ----------------------------------------------------------------------


class Request:
    def __init__(self, accept_language: str, client: str | None = "app"):
        self.headers = {"accept-language": accept_language}
        if client is not None:
            self.headers["x-gradio-user"] = client


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
def test_the_page_gets_the_first_served_language_by_quality(header, language):
    assert visitor_language(Request(header)) == language


@pytest.mark.parametrize("client", ["api", "mcp", None])
def test_api_and_mcp_callers_get_english_whatever_they_accept(client):
    """gradio_client and the JS client send x-gradio-user: api, Gradio's MCP server mcp, curl nothing."""
    assert visitor_language(Request("ko-KR,ko", client)) == "en"


def test_outside_a_request_messages_are_english():
    assert visitor_language() == "en"
