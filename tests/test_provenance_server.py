"""Marked outputs and /check_image through the real server, as an outside caller sees them: the PNGs of
/generate, /edit and /compare carry the watermark (also after a JPEG re-save at quality 85 and a resize
to half size), the XMP digital source type and a C2PA manifest that c2pa-python reads back."""

from __future__ import annotations

import io
import json

import c2pa
import gradio.media
import pytest
from gradio_client import handle_file
from PIL import Image

from flux_demo.provenance import marks
from tests.helpers import doc_examples, run_doc_example
from tests.test_edit_server import edit
from tests.test_provenance import TRAINED, bfl_marked, half, jpeg, photo
from tests.test_server import generate


def assert_marked(path: str) -> None:
    """The output PNG at `path` carries every mark, and its watermark survives JPEG 85 and half size."""
    with Image.open(path) as image:
        assert image.format == "PNG" and image.text["model"]
        assert marks.digital_source_type(image.info["xmp"]) == TRAINED
        image.load()
        for copy in (image, jpeg(image.convert("RGB")), half(image)):
            found = marks.find_watermark(copy)
            assert found is not None and found.source == "flux-demo", (path, copy.size)
    with open(path, "rb") as file, c2pa.Reader("image/png", file) as reader:
        store = json.loads(reader.json())
    active = store["manifests"][store["active_manifest"]]
    (actions,) = [a["data"]["actions"] for a in active["assertions"] if a["label"].startswith("c2pa.actions")]
    assert (actions[0]["action"], actions[0]["digitalSourceType"]) == ("c2pa.created", TRAINED)
    assert store["validation_state"] == "Valid"


def test_generate_output_is_marked(client):
    # At 512² or more a half-size copy keeps the mark (docs/provenance.md: smaller images lose it).
    path, _seed, _details = generate(client, width=512, height=512)
    assert_marked(path)


def test_edit_output_is_marked(client):
    path, _seed, _details = edit(client, width=768, height=512)
    assert_marked(path)


def test_compare_outputs_are_marked(client):
    gallery, _table, pair = client.predict(
        "a fox", ["tiny-schnell", "tiny-dev"], 3, 512, 512, api_name="/compare"
    )
    for item in gallery:
        assert_marked(item["image"])
    assert marks.find_watermark(Image.open(pair[0])) is not None  # the slider shows the same marked PNGs


def test_check_image_endpoint_reads_a_generated_png_back(client):
    path, seed, _details = generate(client, seed=31)
    report = client.predict(handle_file(path), api_name="/check_image")
    assert report["watermark"] and report["watermark_source"] == "flux-demo"
    assert report["watermark_message"] == "464c5558444d"
    assert report["digital_source_type"] == TRAINED
    assert report["c2pa"]["validation_state"] == "Valid" and report["c2pa"]["intact"]
    assert report["c2pa"]["actions"][0]["software_agent"].startswith("FLUX.1 [dev]")
    assert report["settings"]["seed"] == str(seed) and report["settings"]["model"] == "tiny-dev"


def test_check_image_endpoint_on_an_unmarked_photo(client):
    report = client.predict(handle_file(gradio.media.get_image("tower.jpg")), api_name="/check_image")
    assert report == {
        "watermark": False,
        "watermark_message": None,
        "watermark_source": None,
        "watermark_bit_errors": None,
        "c2pa": None,
        "digital_source_type": None,
        "settings": None,
    }


def test_check_image_endpoint_recognises_black_forest_labs_watermark(client, tmp_path):
    bfl_marked(photo("lion.jpg", (1024, 1024))).save(tmp_path / "bfl.png")
    report = client.predict(handle_file(str(tmp_path / "bfl.png")), api_name="/check_image")
    assert report["watermark"] and report["watermark_source"] == "Black Forest Labs"
    assert (report["c2pa"], report["settings"]) == (None, None)


def test_check_image_endpoint_refuses_a_file_that_is_no_image_and_keeps_serving(client, tmp_path):
    from gradio_client.exceptions import AppError

    (tmp_path / "notes.png").write_bytes(b"not an image" * 10)
    with pytest.raises(AppError, match=r"image: must be a PNG, JPEG or WebP image"):
        client.predict(handle_file(str(tmp_path / "notes.png")), api_name="/check_image")
    buffer = io.BytesIO()
    photo("cheetah.jpg", (300, 300)).save(buffer, "PNG")
    (tmp_path / "ok.png").write_bytes(buffer.getvalue())
    report = client.predict(handle_file(str(tmp_path / "ok.png")), api_name="/check_image")
    assert report["watermark"] is False


def test_documented_check_image_example_runs(server_url):
    (example,) = doc_examples("/check_image")
    report = run_doc_example(example, server_url)["report"]
    assert report["watermark"] and report["c2pa"]["validation_state"] == "Valid"
    assert report["settings"]["seed"] == "42"
