"""The page as a new visitor meets it on a phone (Korean, 390×844) and on a laptop (English, 1280 px):
the first screen, result tables that keep numbers and words whole, examples that fill only the prompt,
the Edit tab before a run, and notes that speak the visitor's language and stay in their tab."""

import re

import pytest

from tests.helpers import ROOT

VIEWS = {"ko-phone": ("ko-KR", 390, 844), "en-laptop": ("en-US", 1280, 900)}
COMPARE_TAB = {"ko-KR": "모델 비교", "en-US": "Compare"}
REFERENCES = [ROOT / "examples" / "edit" / "sofa.png", ROOT / "examples" / "edit" / "ball.png"]

# Every word of every visible table header and cell that wraps onto a second line or runs past its cell.
BROKEN_WORDS_JS = """(root) => {
    const broken = [];
    for (const span of root.querySelectorAll('th.header-cell .cell-wrap span, .body-cell .cell-wrap span')) {
        const cell = span.closest('th, .body-cell').getBoundingClientRect();
        if (!cell.width) continue;
        const walker = document.createTreeWalker(span, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const word of node.textContent.matchAll(/\\S+/g)) {
                const range = document.createRange();
                range.setStart(node, word.index);
                range.setEnd(node, word.index + word[0].length);
                const rects = [...range.getClientRects()].filter(r => r.width > 0);
                const cut = rects.some(r => r.right > cell.right + 0.5 || r.left < cell.left - 0.5);
                if (rects.length > 1 || cut) broken.push(word[0]);
            }
        }
    }
    return broken;
}"""

# The value of every form field in the visible tab, by position: {"3 prompt textarea": "A fox", ...}.
FORM_JS = """() => Object.fromEntries([...document.querySelectorAll('[role=tabpanel] :is(input, textarea)')]
    .filter(el => el.closest('[role=tabpanel]').style.display !== 'none')
    .map((el, i) => [`${i} ${el.closest('[id]:not([id=""])')?.id} ${el.type}`,
                     el.type === 'checkbox' || el.type === 'radio' ? String(el.checked) : el.value]))"""


@pytest.fixture
def open_view(open_page):
    """A function that opens the app's page in one of VIEWS."""
    return lambda url, view: open_page(url, *VIEWS[view])


@pytest.mark.parametrize("view", VIEWS)
def test_the_prompt_box_and_run_are_on_the_first_screen(open_view, server_url, view):
    page = open_view(server_url, view)
    _, width, height = VIEWS[view]
    page.wait_for_timeout(1000)  # the link's load event settles the layout
    for selector in ("#prompt textarea", "#run"):
        box = page.locator(selector).bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, f"{selector} is below the fold"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
    notice = page.locator("#offline-notice").bounding_box()
    assert notice["height"] < 60  # folded to one line


@pytest.mark.parametrize("view", VIEWS)
def test_no_table_cell_wraps_a_number_or_breaks_a_word(open_view, server_url, view):
    page = open_view(server_url, view)
    locale, width, _ = VIEWS[view]
    page.get_by_role("tab", name=COMPARE_TAB[locale], exact=True).click()
    models = page.locator("#compare-models")
    for model in ("FLUX.1 [dev]", "FLUX.2 [klein]"):
        models.get_by_label(model, exact=False).uncheck()
    page.locator("#compare-run").click()
    table = page.locator("#compare-table")
    table.locator(".body-cell").filter(has_text="FLUX.1 [schnell]").first.wait_for(timeout=120_000)
    numbers = table.locator(".body-cell .cell-wrap span").filter(has_text=re.compile(r"^\d+(\.\d+)?$"))
    assert numbers.count() >= 3  # seconds, steps, s/step at least
    assert table.evaluate(BROKEN_WORDS_JS) == []
    # The gallery's captions ("FLUX.1 [schnell] · CER 0.12") wrap instead of being cut.
    caption = page.locator("#compare-gallery .caption-label").first
    caption.wait_for()
    assert caption.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    # A table wider than the screen scrolls sideways: its last column can be brought into view whole.
    last = table.locator("th.header-cell").last
    last.scroll_into_view_if_needed()
    box = last.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width


def test_an_example_fills_the_prompt_and_changes_nothing_else(open_view, server_url):
    from flux_demo.ui.text_to_image import EXAMPLE_PROMPTS

    page = open_view(server_url, "en-laptop")
    page.get_by_text("Advanced").click()  # its fields count too: seed, randomize, sizes, steps
    page.locator("#seed-used").wait_for(state="hidden")
    before = page.evaluate(FORM_JS)
    assert [value for field, value in before.items() if " previews " in field] == ["true"]
    page.locator("button.gallery-item").filter(has_text=EXAMPLE_PROMPTS[1][:30]).click()
    page.wait_for_function(
        "text => document.querySelector('#prompt textarea').value === text", arg=EXAMPLE_PROMPTS[1]
    )
    page.wait_for_timeout(1000)
    after = page.evaluate(FORM_JS)
    changed = [field for field in before if before[field] != after.get(field)]
    assert len(changed) == 1 and " prompt textarea" in changed[0], changed
    assert page.locator("#result img").count() == 0  # nothing is drawn until Run


def test_the_edit_tab_shows_no_result_fields_before_a_run_and_numbers_its_references(open_view, server_url):
    page = open_view(server_url, "ko-phone")
    page.get_by_role("tab", name="편집", exact=True).click()
    page.locator("#edit-references").wait_for(state="visible")
    for before_a_run in ("#edit-seed-used", "#edit-use", "#edit-details", "#edit-stop"):
        assert not page.locator(before_a_run).is_visible(), f"{before_a_run} shows before any run"
    page.locator("#edit-references input[type=file]").set_input_files(REFERENCES)
    items = page.locator("#edit-references .gallery-item")
    items.nth(1).wait_for()
    badges = items.evaluate_all(
        "items => items.map(item => [getComputedStyle(item, '::before').content, "
        "getComputedStyle(item).counterIncrement])"
    )
    assert badges == [["counter(reference)", "reference 1"]] * 2  # "1", "2": as the prompt names them


def test_a_note_is_information_in_korean_and_closes_with_its_tab(open_view, server_url):
    """The edit size note ("size 384×288 from the first image") is an Info pop-up titled 안내, in Korean,
    and switching tabs closes it."""
    page = open_view(server_url, "ko-phone")
    page.get_by_role("tab", name="편집", exact=True).click()
    page.locator("#edit-references input[type=file]").set_input_files(REFERENCES[:1])
    page.locator("#edit-references img").first.wait_for()
    page.locator("#edit-prompt textarea").fill("The same sofa at night")
    page.locator("#edit-run-edit").click()
    note = page.locator(".toast-body.info").filter(has_text="크기")
    note.wait_for(timeout=120_000)
    page.wait_for_function("el => el.innerText.includes('안내')", arg=note.element_handle())
    assert "Info" not in note.inner_text()
    page.locator("#edit-result img").wait_for(timeout=120_000)
    assert page.locator("#edit-seed-used").is_visible() and page.locator("#edit-use").is_visible()
    page.get_by_role("tab", name="모델 비교", exact=True).click()
    note.wait_for(state="detached", timeout=5_000)


def test_the_link_box_has_a_name_for_screen_readers(open_view, server_url):
    page = open_view(server_url, "ko-phone")
    assert page.get_by_role("textbox", name="이 결과의 링크").count() >= 1
