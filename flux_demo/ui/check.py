""" "Check an image": upload any image and see its provenance marks (`/check_image`), and restore the
settings of a PNG made here through a link."""

from __future__ import annotations

import re

import gradio as gr

from flux_demo import provenance
from flux_demo.provenance.check import MAX_CHECK_SIDE
from flux_demo.provenance.marks import OWN_SOURCE
from flux_demo.services import AppServices
from flux_demo.ui import share
from flux_demo.ui.endpoints import endpoint, ocr_only
from flux_demo.ui.i18n import say, t
from flux_demo.ui.widgets import OCR_CONCURRENCY, OCR_QUEUE, NamedImage
from flux_demo.validation import InvalidInput

# The verdict shows only our own words: a manifest's text comes from the uploaded file, so it stays in
# the JSON view. A source type is named only when it is an IPTC code (letters after the vocabulary URI).
_IPTC_CODE = re.compile(r"http://cv\.iptc\.org/newscodes/digitalsourcetype/(?P<code>[A-Za-z]{1,60})")
_C2PA_STATES = ("Valid", "Trusted", "Invalid")


def make_check_fn(services: AppServices):
    @endpoint(services, cost=ocr_only)
    def check_image(image: str | None) -> dict:
        """Check any image for provenance marks: this app's invisible watermark (or Black Forest Labs'),
        a C2PA manifest, the IPTC digital source type, and the settings of a PNG made by this app.

        Args:
            image: An image file (PNG, JPEG, WebP...), at most 4096 pixels a side.

        Returns:
            A dict: watermark (bool), watermark_message (12 hex digits, this app's is 464c5558444d, or
            null), watermark_source ("flux-demo" or "Black Forest Labs"), watermark_bit_errors, c2pa (the
            manifest's title, signer, actions and validation, or null), digital_source_type (an IPTC URI
            or null) and settings (the PNG's generation settings by key, or null).
        """
        if not image:
            raise InvalidInput("image", "input.check_required")
        return provenance.check_image(image)

    return check_image


def verdict(report: dict | None) -> str:
    """The check's findings in a few table rows, in the visitor's language."""
    if not report:
        return ""
    errors = report.get("watermark_bit_errors")
    if not report.get("watermark"):
        watermark = say("ui.no")
    else:
        watermark = say(
            "ui.check_own" if report.get("watermark_source") == OWN_SOURCE else "ui.check_bfl", errors=errors
        )
    manifest = report.get("c2pa")
    state = (manifest or {}).get("validation_state")
    c2pa = say("ui.check_signed", state=state if state in _C2PA_STATES else "?") if manifest else say("ui.no")
    code = _IPTC_CODE.fullmatch(str(report.get("digital_source_type") or ""))
    source = code["code"] if code else ("?" if report.get("digital_source_type") else say("ui.no"))
    settings = say("ui.yes") if report.get("settings") else say("ui.no")
    return say("ui.check_rows", watermark=watermark, c2pa=c2pa, source=source, settings=settings)


def build_section(services: AppServices) -> None:
    """The upload, the verdict, the JSON report and a link that restores a PNG's settings."""
    gr.Markdown(t("check_intro"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            # A file path as uploaded (no image_mode conversion), so metadata and manifest reach the check.
            image = NamedImage(
                label=t("check_image"),
                type="filepath",
                image_mode=None,
                sources=["upload", "clipboard"],
                field="image",
                max_side=MAX_CHECK_SIDE,
                elem_id="check-image",
            )
            run = gr.Button(t("check_run"), variant="primary", elem_id="check-run")
        with gr.Column(scale=1):
            shown = gr.Markdown(elem_id="check-verdict")
            report = gr.JSON(label=t("check_report"), elem_id="check-report")
            share.add_copy_link(report, "generate", pick=lambda found: found.get("settings"))
    event = gr.on(
        [run.click, image.upload],
        make_check_fn(services),
        image,
        report,
        api_name="check_image",
        concurrency_id=OCR_QUEUE,  # CPU work, like OCR: never holds a GPU slot
        concurrency_limit=OCR_CONCURRENCY,
    )
    event.success(verdict, report, shown, queue=False, api_visibility="private")
