"""The Edit tab in headless Chromium: upload two references, edit, use the result as a reference, edit
again; the controls follow the chosen model."""

from __future__ import annotations

from tests.helpers import ROOT

EXAMPLES = ROOT / "examples" / "edit"


def open_edit_tab(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Edit", exact=True).click()
    page.locator("#edit-references").wait_for(state="visible")


def test_visitor_edits_with_two_references_then_reuses_the_result(page, server_url):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_edit_tab(page, server_url)
    gallery = page.locator("#edit-references")
    gallery.locator("input[type=file]").set_input_files([EXAMPLES / "sofa.png", EXAMPLES / "ball.png"])
    page.wait_for_function("() => document.querySelectorAll('#edit-references img').length === 2")
    page.locator("#edit-prompt textarea").fill("Put the ball from image 2 on the sofa from image 1")
    page.locator("#edit-run-edit").click()
    result = page.locator("#edit-result img")
    result.wait_for(state="visible", timeout=120_000)
    assert result.evaluate("img => img.complete && img.naturalWidth") == 384  # the first reference's size
    page.get_by_text("Details (JSON)").filter(visible=True).click()  # the Edit tab's, not the hidden tabs'
    details = page.locator("#edit-details")
    details.get_by_text('"edit"').wait_for()
    assert page.locator("#edit-slider img").count() == 2  # before and after
    first_src = result.get_attribute("src")

    page.locator("#edit-use").click()
    page.wait_for_function("() => document.querySelectorAll('#edit-references img').length === 3")
    page.locator("#edit-run-edit").click()
    page.wait_for_function(
        "src => { const img = document.querySelector('#edit-result img'); return img && img.src !== src; }",
        arg=first_src,
        timeout=120_000,
    )
    details.get_by_text('"reference_count": 3').wait_for()
    assert "tab=edit" in page.locator("#edit-link textarea").input_value()
    assert errors == []


def test_the_controls_follow_the_chosen_model(page, server_url):
    open_edit_tab(page, server_url)
    strength = page.get_by_label("Strength (how much to change)")
    assert not strength.is_visible()
    page.locator("#edit-model input").click()
    page.get_by_role("option", name="FLUX.1 [dev] (offline tiny preview)", exact=False).click()
    page.get_by_text("Image to image", exact=True).wait_for()
    assert page.get_by_text("Edit with references", exact=True).count() == 0
    strength.first.wait_for(state="visible")
    assert page.locator("#edit-run-img2img").is_visible() and not page.locator("#edit-run-edit").is_visible()
