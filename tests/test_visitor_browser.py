"""What a visitor sees in Chromium: Korean throughout (errors included), every tab on a phone, Stop that
keeps the last result on every long action, one progress bar, and tables that fit a laptop screen."""

import re

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.helpers import english_sentences

TYPOGRAPHY_SECTIONS = {
    "en-US": ("Generate and score", "Run the suite", "Score any image"),
    "ko-KR": ("생성하고 채점", "스위트 실행", "이미지 채점"),
}
MAIN_TABS = {
    "en-US": ("Text to image", "Compare", "Typography"),
    "ko-KR": ("텍스트 → 이미지", "모델 비교", "타이포그래피"),
}

# The visible text of the page without the example prompts (they are prompts, not interface).
VISIBLE_TEXT_JS = """() => {
    const examples = [...document.querySelectorAll('[class*="dataset"], [class*="examples"]')];
    examples.forEach(e => { e.dataset.display = e.style.display; e.style.display = 'none'; });
    const text = document.body.innerText;
    examples.forEach(e => { e.style.display = e.dataset.display; });
    return text;
}"""


def show_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_timeout(500)


def toast(page, text: str) -> str:
    """The text of the first pop-up that contains `text`."""
    message = page.locator(".toast-body").filter(has_text=text).first
    message.wait_for(timeout=120_000)
    return message.inner_text()


def test_korean_visitors_read_no_english_sentences_on_any_tab(open_page, server_url):
    page = open_page(server_url, "ko-KR")
    texts = []
    main = MAIN_TABS["ko-KR"]
    for tab in main:
        show_tab(page, tab)
        if tab == main[1]:  # the tables get their Korean headers when the page opens
            page.locator("#compare-table").get_by_text("정확히 일치").first.wait_for()
        if tab == main[2]:
            for section in TYPOGRAPHY_SECTIONS["ko-KR"]:
                show_tab(page, section)
                texts.append(page.evaluate(VISIBLE_TEXT_JS))
        else:
            texts.append(page.evaluate(VISIBLE_TEXT_JS))
    # Example prompts are prompts; the rest must read in Korean.
    leftovers = [
        s
        for text in texts
        for s in english_sentences(text)
        # Example labels may be cut short ("at nig…"): a word counts if an example word starts with it.
        if not all(any(word.startswith(part) for word in example_words()) for part in s.split())
    ]
    assert leftovers == [], leftovers


def example_words() -> set[str]:
    """The words of the example prompts (shown as typed in every language)."""
    from flux_demo.ui.text_to_image import EXAMPLE_PROMPTS

    return {word for prompt in EXAMPLE_PROMPTS for word in re.findall(r"[A-Za-z][A-Za-z_'-]*", prompt)}


def test_korean_visitors_get_errors_and_link_notices_in_korean_with_the_field_name(open_page, server_url):
    """The page answers in the visitor's language; an API caller that accepts Korean still gets English."""
    page = open_page(server_url + "?width=abc", "ko-KR")
    notice = page.locator("#link-notice")
    notice.wait_for(state="visible")
    assert "width" in notice.inner_text() and "256부터 2048까지" in notice.inner_text()
    assert english_sentences(notice.inner_text()) == []
    page.locator("#run").click()  # an empty prompt
    message = toast(page, "prompt:")
    assert "필수 항목" in message and english_sentences(message) == []
    page.wait_for_timeout(1500)
    assert page.locator(".toast-body").filter(has_text="prompt:").count() == 1  # one toast, not two
    api = Client(server_url, verbose=False, headers={"Accept-Language": "ko-KR,ko"})
    with pytest.raises(AppError, match="prompt: is required: describe the image you want"):
        api.predict("", "tiny-schnell", 256, 256, 1, 0.0, 1, False, False, api_name="/generate")


@pytest.mark.parametrize("locale", ["en-US", "ko-KR"])
def test_a_phone_shows_every_main_tab_and_every_typography_section_at_a_glance(open_page, server_url, locale):
    page = open_page(server_url, locale, width=390, height=844)
    for name in (*MAIN_TABS[locale], *TYPOGRAPHY_SECTIONS[locale]):
        if name == TYPOGRAPHY_SECTIONS[locale][0]:
            show_tab(page, MAIN_TABS[locale][2])
        tab = page.get_by_role("tab", name=name, exact=True)
        assert tab.is_visible(), f"{name} is hidden on a phone"
        box = tab.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"{name} runs off the screen"
    assert not page.locator(".overflow-menu").filter(visible=True).count()


def test_the_model_dropdown_text_stays_clear_of_its_arrow(open_page, server_url):
    page = open_page(server_url, width=390, height=844)
    field = page.locator("#model input")
    padding = field.evaluate("el => parseFloat(getComputedStyle(el).paddingRight)")
    assert padding >= 24


def test_steps_slider_starts_at_the_default_models_range(open_page, server_url):
    page = open_page(server_url)
    page.get_by_text("Advanced").click()
    steps = page.get_by_label("Steps").and_(page.locator("input[type=range]"))
    assert steps.get_attribute("max") == "16"  # FLUX.1 [schnell], not the union with dev's 50


def start_long_run(page, url: str, action: str) -> None:
    """Start `action` (the `steps_run` gate holds its runs after their first step until Stop)."""
    if action in ("generate", "typography"):
        tab = "&tab=typography" if action == "typography" else ""
        page.goto(f"{url}?model=tiny-dev&steps=8&prompt=A+sign+that+says+%22OPEN%22{tab}")
        page.locator("#run").wait_for(state="visible")
        page.wait_for_timeout(1500)  # the link fills the form
        page.locator("#run" if action == "generate" else "#typo-run").click()
    elif action in ("compare", "sweep"):
        show_tab(page, "Compare")
        if action == "sweep":
            page.get_by_text("Seed sweep").first.click()
        page.locator(f"#{action}-run").click()
    else:
        show_tab(page, "Typography")
        show_tab(page, "Run the suite")
        page.locator("#suite-run").click()


# The typography lab's Stop is wired like these (see test_robustness) but not yet driven here: the link
# that sets its model and steps does not reliably reach the lab's form before the run starts.
@pytest.mark.parametrize("action", ["generate", "compare", "sweep", "suite"])
def test_stop_ends_every_long_action_and_says_where_it_stopped(open_page, server_url, action, steps_run):
    steps_run.hold_every_run = True
    if action == "suite":
        steps_run.free_runs = 1  # one image finishes, so the stopped suite has a leaderboard to show
    page = open_page(server_url)
    start_long_run(page, server_url, action)
    assert steps_run.any_holding.wait(120), "no run reached its first step"
    page.locator(f"#{action}-stop").click()
    message = toast(page, "Stopped at")
    assert "of" in message
    if action == "suite":
        # The table may hold hidden copies of its cells (measuring rows): wait for a visible one.
        leaderboard = page.locator("#suite-leaderboard").get_by_text("FLUX.1", exact=False)
        leaderboard.filter(visible=True).first.wait_for()


def test_stop_keeps_the_last_result_on_the_page(open_page, server_url, steps_run):
    page = open_page(server_url + "?model=tiny-dev&steps=2")
    page.wait_for_timeout(1500)  # the link fills the form
    page.locator("#previews input").uncheck()  # with previews the box shows the stopped run's last step
    page.get_by_label("Prompt").first.fill("A fox in the snow")
    page.locator("#run").click()
    first = page.locator("#result img")
    first.wait_for(state="visible", timeout=120_000)
    source = first.get_attribute("src")
    page.locator("#summary").get_by_text("2 steps", exact=False).wait_for()
    steps_run.hold_every_run = True  # the next run waits after its first step until Stop
    page.locator("#run").click()
    assert steps_run.any_holding.wait(120), "the second run never reached its first step"
    page.locator("#generate-stop").click()
    assert "Stopped at step" in toast(page, "Stopped at")
    assert page.locator("#result img").get_attribute("src") == source
    assert page.locator("#result img").is_visible()


def test_one_progress_bar_during_a_run_and_no_seed_or_stop_outside_it(open_page, server_url, steps_run):
    page = open_page(server_url)
    assert not page.locator("#seed-used").is_visible()  # no "seed used: 0" before a run
    assert not page.locator("#generate-stop").is_visible()  # nothing to stop
    steps_run.hold_every_run = True  # the run waits after its first step until Stop
    page.goto(f"{server_url}?model=tiny-dev&steps=8&prompt=A+sign+that+says+%22OPEN%22")
    page.locator("#run").wait_for(state="visible")
    page.wait_for_timeout(1500)  # the link fills the form
    page.locator("#previews input").uncheck()  # a live preview takes the progress bar's place in the box
    page.locator("#run").click()
    assert steps_run.any_holding.wait(120), "the run never reached its first step"
    page.locator(".progress-text").first.wait_for(state="visible", timeout=120_000)
    assert page.locator(".progress-text").filter(visible=True).count() == 1
    page.locator("#generate-stop").click()
    toast(page, "Stopped at")
    page.locator("#generate-stop").wait_for(state="hidden")


def test_result_summary_is_one_line_and_the_json_is_folded_away(open_page, server_url):
    page = open_page(server_url)
    page.get_by_label("Prompt").first.fill("A fox in the snow")
    page.locator("#run").click()
    summary = page.locator("#summary")
    summary.get_by_text("FLUX.1 [schnell]", exact=False).wait_for(timeout=120_000)
    line = summary.inner_text().strip()
    assert " · 4 steps · 256×256 · " in line and " s · seed " in line and "cpu float32" in line
    assert not page.locator("#details").is_visible()  # in a closed accordion


def test_comparison_score_columns_fit_a_1280_screen(open_page, server_url):
    page = open_page(server_url)
    show_tab(page, "Compare")
    page.locator("#compare-models").get_by_label("FLUX.1 [dev]", exact=False).uncheck()
    page.locator("#compare-run").click()
    table = page.locator("#compare-table")
    table.get_by_text("ok", exact=True).nth(1).wait_for(timeout=120_000)
    for header in ("CER", "exact", "normalised"):
        cell = table.locator("th").filter(has_text=header).first
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280, f"{header} is pushed off-screen"


@pytest.mark.parametrize("locale", ["en-US", "ko-KR"])
def test_the_score_upload_box_is_labelled_in_words(open_page, server_url, locale):
    """Its label once resolved to one of Gradio's own translation groups and read "[object Object]"."""
    page = open_page(server_url, locale)
    show_tab(page, MAIN_TABS[locale][2])
    show_tab(page, TYPOGRAPHY_SECTIONS[locale][-1])
    label = page.locator("#score-upload").inner_text()
    assert "[object Object]" not in label
    assert {"en-US": "Image to score", "ko-KR": "채점할 이미지"}[locale] in label
