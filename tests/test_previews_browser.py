"""Live previews and the "How FLUX works" tab in headless Chromium, in English and Korean."""

from urllib.parse import urlencode

import pytest

WATCH_RESULT = """
() => {
  window.seen = [];
  const record = () => {
    const img = document.querySelector('#result img');
    if (img && img.src && !window.seen.includes(img.src)) window.seen.push(img.src);
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, attributes: true});
}
"""


def test_result_image_changes_step_by_step_during_a_run(page, server_url):
    query = urlencode({"prompt": "A fox", "model": "tiny-dev", "steps": 10, "guidance": 3.5, "seed": 3})
    page.goto(f"{server_url}?{query}")
    page.locator("#run").wait_for(state="visible")
    page.evaluate(WATCH_RESULT)
    page.locator("#run").click()
    page.locator("#summary").get_by_text("FLUX.1 [dev]", exact=False).first.wait_for(timeout=120_000)
    seen = page.evaluate("window.seen")
    # Previews (several distinct frames) came before the final image, which is what stays.
    assert len(seen) >= 4, seen
    assert page.locator("#result img").get_attribute("src") == seen[-1]


def test_a_link_opens_the_how_tab_with_the_lesson_drawn_before_any_run(page, server_url):
    page.goto(f"{server_url}?{urlencode({'tab': 'how', 'model': 'tiny-dev', 'seed': 9})}")
    page.locator("#how-run").wait_for(state="visible")  # the tab is open: its Run button shows
    diagram = page.locator("#how-diagram svg[role=img]")
    diagram.wait_for()
    assert "19 (1) double-stream blocks" in diagram.text_content()  # full-size FLUX.1, the tiny one
    assert page.locator("#how-schedule svg[role=img] circle").count() >= 4 + 28  # a dot per step
    assert "11.9 B parameters" in page.locator("#how-blocks").inner_text()
    assert page.locator("#how-rope svg[role=img]").count() == 1
    assert page.locator("#how-prompt textarea").input_value()  # the form is there, ready to run


def test_how_flux_works_tab_records_a_run_and_scrubs_through_its_steps(page, server_url):
    page.goto(f"{server_url}?tab=how")
    page.locator("#how-run").click()
    strip = page.locator("#how-strip img")
    strip.nth(3).wait_for(timeout=120_000)  # tiny-schnell: 4 steps, 4 predicted clean images
    page.wait_for_function("document.querySelector('#how-caption textarea').value.startsWith('4/4 · t')")
    page.locator("#how-step input[type=number]").fill("2")
    page.locator("#how-step input[type=number]").press("Enter")
    page.wait_for_function(
        "document.querySelector('#how-caption textarea').value.startsWith('2/4 · t 0.750')"
    )
    page.locator("#how-counts").get_by_text("CLIPTextModel", exact=True).wait_for()
    page.locator("#how-counts").get_by_text("pooled vector", exact=True).wait_for()


@pytest.fixture
def korean_page(browser):
    """A page whose browser asks for Korean."""
    context = browser.new_context(
        locale="ko-KR",
        viewport={"width": 390, "height": 900},
        extra_http_headers={"Accept-Language": "ko-KR"},
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def test_the_how_tab_speaks_korean_on_a_phone(korean_page, server_url):
    page = korean_page
    page.goto(f"{server_url}?tab=how")
    page.locator("#how-run").get_by_text("실행하고 모든 스텝 기록").wait_for()
    diagram = page.locator("#how-diagram svg[role=img]")
    diagram.wait_for()
    assert "이중 스트림 블록" in diagram.text_content() and "double-stream" not in diagram.text_content()
    schedule = page.locator("#how-schedule")
    assert "실행 진행도" in schedule.text_content() and "progress" not in schedule.text_content()
    assert "파라미터" in page.locator("#how-blocks").inner_text()
    # Every figure fits the phone's width.
    for element in ("#how-diagram svg[role=img]", "#how-schedule svg[role=img]", "#how-rope svg[role=img]"):
        assert page.locator(element).bounding_box()["width"] <= 390
    page.locator("#how-run").click()
    page.locator("#how-counts").get_by_text("풀링 벡터", exact=True).wait_for(timeout=120_000)
    assert "인코더" in page.locator("#how-counts").inner_text()  # table headers in Korean


def test_the_distillation_panel_runs_the_family_and_charts_how_far_x0_still_is(page, server_url):
    page.goto(f"{server_url}?tab=how&model=tiny-schnell")
    page.locator("#how-distill").click()
    table = page.locator("#how-distill-table")
    table.get_by_text("guidance 1", exact=False).first.wait_for(timeout=240_000)  # dev without guidance
    rows = table.inner_text()
    assert "4 steps · guidance 0" in rows and "28 steps · guidance 3.5" in rows
    assert page.locator("#how-distill-chart svg[role=img] polyline").count() == 3
    page.locator("#how-distill-tiles img").nth(11).wait_for()  # four x₀ tiles per run
