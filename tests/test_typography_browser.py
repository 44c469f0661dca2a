"""The Typography lab in headless Chromium: prompt helper, generate and score, upload and score, suite."""

from tests.helpers import render_text


def open_lab(page, url, section: str | None = None):
    page.goto(url)
    page.get_by_role("tab", name="Typography", exact=True).click()
    if section:
        page.get_by_role("tab", name=section, exact=True).click()
    else:
        page.locator("#typo-text textarea").wait_for(state="visible")


def test_visitor_writes_a_prompt_with_the_helper_then_generates_and_sees_the_diff(page, server_url):
    open_lab(page, server_url)
    page.locator("#typo-text textarea").fill("OPEN")
    page.locator("#typo-scene textarea").fill("A neon sign above a bar at night")
    page.locator("#typo-write").click()
    prompt = page.locator("#typo-prompt textarea")
    page.wait_for_function("el => el.value.includes('\"OPEN\"')", arg=prompt.element_handle(), timeout=30_000)
    assert prompt.input_value() == 'A neon sign above a bar at night, with the text "OPEN"'
    page.locator("#typo-run").click()
    page.locator("#typo-boxes img").wait_for(state="visible", timeout=60_000)
    assert page.locator("#typo-image img").evaluate("img => img.complete && img.naturalWidth") == 256
    summary = page.locator("#typo-summary")
    summary.get_by_text("Mean CER").wait_for()
    assert "Mean CER 1.000" in summary.inner_text()
    assert "OPEN" in page.locator("#typo-targets").inner_text()
    assert "OPEN" in page.locator("#typo-diff").inner_text()
    assert "missing" in page.locator("#typo-diff").inner_text()  # the legend names what the colours mean


def test_visitor_uploads_an_image_and_sees_an_exact_match(page, server_url, tmp_path, dejavu):
    path = tmp_path / "sign.png"
    render_text("HELLO FLUX", dejavu["DejaVuSans"], 48).save(path)
    open_lab(page, server_url, "Score any image")
    page.locator("#score-upload input[type=file]").set_input_files(path)
    page.locator("#score-upload img").wait_for(state="visible")
    page.locator("#score-expected textarea").fill("HELLO FLUX")
    page.locator("#score-run").click()
    summary = page.locator("#score-summary")
    summary.get_by_text("Mean CER").wait_for(timeout=30_000)
    assert "Mean CER 0.000" in summary.inner_text()
    assert "exact match: yes" in summary.inner_text()
    page.locator("#score-boxes img").wait_for(state="visible")
    assert "HELLO FLUX" in page.locator("#score-diff").inner_text()


def test_empty_expected_text_shows_an_error_naming_the_field(page, server_url, tmp_path):
    path = tmp_path / "blank.png"
    render_text("", None, 24).save(path)
    open_lab(page, server_url, "Score any image")
    page.locator("#score-upload input[type=file]").set_input_files(path)
    page.locator("#score-upload img").wait_for(state="visible")
    page.locator("#score-run").click()
    page.get_by_text("expected: is required").first.wait_for(timeout=30_000)


def test_visitor_runs_a_tiny_suite_and_sees_the_leaderboard(page, server_url):
    open_lab(page, server_url, "Run the suite")
    models = page.locator("#suite-models")
    for name in ("FLUX.1 [dev]", "FLUX.2 [klein]"):
        models.get_by_label(name).uncheck()
    count = page.locator("#suite-count input[type=number]")
    count.fill("2")
    count.press("Enter")
    page.locator("#suite-run").click()
    page.locator("#suite-csv").wait_for(state="visible", timeout=60_000)  # shown once the run succeeded
    board = page.locator("#suite-leaderboard")
    board.get_by_text("FLUX.1 [schnell] (offline tiny preview)", exact=True).filter(
        visible=True
    ).first.wait_for()
    assert "FLUX.1 [dev]" not in board.inner_text()  # models by name, as in the comparison
    assert page.locator("#suite-gallery img").count() == 2
    assert "single words" in page.locator("#suite-categories").inner_text()
    assert page.locator("#suite-json").is_visible()
