"""Live previews and the "How FLUX works" tab in headless Chromium."""

from urllib.parse import urlencode

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


def test_how_flux_works_tab_records_a_run_and_scrubs_through_its_steps(page, server_url):
    page.goto(server_url)
    page.locator("#run").wait_for(state="visible")
    page.get_by_role("tab", name="How FLUX works").click()
    page.locator("#how-run").click()
    strip = page.locator("#how-strip img")
    strip.nth(3).wait_for(timeout=120_000)  # tiny-schnell: 4 steps, 4 predicted clean images
    page.locator("#how-caption textarea").wait_for()
    page.wait_for_function("document.querySelector('#how-caption textarea').value.startsWith('4/4')")
    page.locator("#how-step input[type=number]").fill("2")
    page.locator("#how-step input[type=number]").press("Enter")
    page.wait_for_function("document.querySelector('#how-caption textarea').value.startsWith('2/4')")
    assert "σ=" in page.locator("#how-caption textarea").input_value()
    page.locator("#how-architecture").get_by_text("double_blocks", exact=True).wait_for()
    page.locator("#how-counts").get_by_text("CLIPTextModel", exact=True).wait_for()
