"""The real page in headless Chromium: what a visitor does first."""


def test_visitor_types_a_prompt_clicks_run_and_sees_an_image(page, server_url):
    page.goto(server_url)
    page.get_by_label("Prompt").fill("A cute robot reading a book in a cozy library")
    page.locator("#run").click()
    # Step previews fill the result first; the details come with the final image.
    page.locator("#summary").get_by_text("FLUX.1 [schnell]", exact=False).first.wait_for(timeout=60_000)
    image = page.locator("#result img")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 256


def test_offline_notice_is_one_line_that_opens_on_how_to_switch(page, server_url):
    page.goto(server_url)
    notice = page.locator("#offline-notice")
    notice.wait_for(state="visible")
    assert notice.inner_text().strip().startswith("Offline")
    assert "FLUX_DEMO_MODELS" not in notice.inner_text()  # folded
    notice.get_by_text("more").click()
    notice.get_by_text("FLUX_DEMO_MODELS=schnell,dev", exact=False).wait_for()


def test_enter_in_the_prompt_box_submits(page, server_url):
    page.goto(server_url)
    box = page.get_by_label("Prompt")
    box.fill("A neon sign that reads 'HELLO FLUX'")
    box.press("Enter")
    page.locator("#result img").wait_for(state="visible", timeout=60_000)


def test_page_loads_without_javascript_errors(page, server_url):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server_url)
    page.locator("#run").wait_for(state="visible")
    for tab in ("Compare", "Typography"):
        page.get_by_role("tab", name=tab).click()
    assert errors == []
