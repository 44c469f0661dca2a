"""Provenance and safety without a server: the watermark and what removes it, the XMP packet, the C2PA
manifest and its certificate, `check_image`, the settings, and the content filter on a real (tiny,
locally built) transformers image classifier."""

from __future__ import annotations

import dataclasses
import io
import json
import zlib

import c2pa
import gradio.media
import numpy as np
import pytest
from PIL import Image

from flux_demo import metadata, provenance
from flux_demo.config import Settings
from flux_demo.provenance import c2pa_sign, marks
from flux_demo.provenance.safety import ContentWithheld, SafetyFilter
from flux_demo.validation import InvalidInput

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def photo(name: str = "groot.jpeg", size=(768, 512)) -> Image.Image:
    """A real photograph (shipped with Gradio), never marked by anyone."""
    return Image.open(gradio.media.get_image(name)).convert("RGB").resize(size, Image.Resampling.LANCZOS)


def jpeg(image: Image.Image, quality: int = 85) -> Image.Image:
    """`image` saved as a JPEG (Pillow's defaults: 4:2:0 chroma subsampling) and opened again."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)


def bfl_marked(image: Image.Image) -> Image.Image:
    """`image` marked as Black Forest Labs' FLUX code marks its outputs: their 48-bit constant (46 bits
    once bin() drops the leading zeros), the package's default dwtDct, on float BGR pixels."""
    from imwatermark import WatermarkEncoder

    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", list(marks.BFL_BITS))
    bgr = np.asarray(image.convert("RGB"), dtype=np.float32)[:, :, ::-1].copy()
    rgb = encoder.encode(bgr, "dwtDct")[:, :, ::-1]
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


@pytest.fixture
def marking(settings, tmp_path) -> provenance.Provenance:
    """Marking as the app does it, with a self-signed certificate made in `tmp_path`."""
    return provenance.Provenance(dataclasses.replace(settings, watermark=True, c2pa_dir=tmp_path / "c2pa"))


def generated_image() -> Image.Image:
    """A stand-in for a generated image: pixels plus the PNG settings `generation` attaches."""
    image = photo("tower.jpg", (512, 512))
    settings = dict(
        prompt="a tower", model="tiny-schnell", seed=7, steps=4, guidance=0.0, width=512, height=512
    )
    return metadata.attach(image, metadata.png_text(**settings))


# --- the watermark -----------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ["png", "jpeg 85", "half size", "jpeg 70"])
def test_watermark_survives_jpeg_and_a_half_size_resize(attack):
    marked = marks.embed_watermark(photo())
    attacked = {
        "png": marked,
        "jpeg 85": jpeg(marked),
        "half size": half(marked),
        "jpeg 70": jpeg(marked, 70),
    }
    found = marks.find_watermark(attacked[attack])
    assert found == marks.Watermark("flux-demo", "464c5558444d", found.bit_errors)
    assert found.bit_errors <= marks.MAX_BIT_ERRORS


def test_watermark_is_invisible_and_keeps_the_settings():
    image = generated_image()
    marked = marks.embed_watermark(image)
    change = np.asarray(marked, float) - np.asarray(image, float)
    psnr = 10 * np.log10(255**2 / np.mean(change**2))
    # About 47 dB; an edge-jagging bug in the package (see marks._swap_2x2) would bring it under 30.
    assert psnr > 42 and np.abs(change).max() <= 12
    assert marked.info == image.info


def test_the_package_alone_reads_the_mark_with_the_documented_settings():
    from imwatermark import WatermarkDecoder

    bgr = np.asarray(marks.embed_watermark(photo()))[:, :, ::-1].copy()
    bits = WatermarkDecoder("bits", 48).decode(bgr, "dwtDct", scales=[24, 0, 0], block=4)
    expected = np.unpackbits(np.frombuffer(b"FLUXDM", np.uint8))
    assert np.sum(np.asarray(bits, int) != expected) <= 6


@pytest.mark.parametrize("name", ["cheetah.jpg", "tower.jpg", "groot.jpeg"])
def test_an_unmarked_photo_has_no_watermark(name):
    assert marks.find_watermark(photo(name)) is None


def test_black_forest_labs_watermark_is_recognised():
    found = marks.find_watermark(bfl_marked(photo("lion.jpg", (1024, 1024))))
    assert (found.source, found.message) == ("Black Forest Labs", "2afe879cf52e")


def test_images_under_256_squared_are_left_as_they_are():
    small = photo(size=(200, 200))
    assert marks.embed_watermark(small) is small and marks.find_watermark(small) is None


# --- XMP and C2PA ------------------------------------------------------------------------------


def test_xmp_packet_declares_trained_algorithmic_media():
    packet = marks.xmp_packet("flux-demo 0.1.0 (FLUX.1 [schnell])")
    assert marks.digital_source_type(packet) == TRAINED
    assert marks.digital_source_type(packet.encode()) == TRAINED
    as_element = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
        "<Iptc4xmpExt:DigitalSourceType>http://x/y</Iptc4xmpExt:DigitalSourceType>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    assert marks.digital_source_type(as_element) == "http://x/y"


def test_xmp_with_entities_or_bad_xml_is_not_read():
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>'
    assert marks.digital_source_type(bomb) is None
    assert marks.digital_source_type("<x:xmpmeta") is None
    assert marks.digital_source_type(None) is None


def test_saved_png_has_settings_xmp_and_a_signed_c2pa_manifest(marking, tmp_path):
    path = tmp_path / "flux-tiny-schnell-7.png"
    marking.save_png(marking.finish(generated_image()), path)
    with Image.open(path) as image:
        assert image.text["prompt"] == "a tower" and image.text["seed"] == "7"
        assert marks.digital_source_type(image.info["xmp"]) == TRAINED
    with open(path, "rb") as file, c2pa.Reader("image/png", file) as reader:
        store = json.loads(reader.json())
    active = store["manifests"][store["active_manifest"]]
    (actions,) = [a["data"]["actions"] for a in active["assertions"] if a["label"].startswith("c2pa.actions")]
    assert actions[0]["action"] == "c2pa.created"
    assert actions[0]["digitalSourceType"] == TRAINED
    assert actions[0]["softwareAgent"]["name"].startswith("FLUX.1 [schnell]")
    assert store["validation_state"] == "Valid"
    # The self-signed chain validates but is on no trust list, which verifiers report.
    assert [status["code"] for status in store["validation_status"]] == ["signingCredential.untrusted"]


def test_png_restore_reads_the_settings_of_a_marked_png(marking, tmp_path):
    from flux_demo.ui.share import read_png_settings

    path = tmp_path / "marked.png"
    marking.save_png(marking.finish(generated_image()), path)
    values, problems = read_png_settings(str(path), ["tiny-schnell", "tiny-dev"])
    assert problems == [] and (values["prompt"], values["seed"], values["model"]) == (
        "a tower",
        7,
        "tiny-schnell",
    )


def test_configured_certificate_signs_and_no_self_signed_one_is_made(settings, tmp_path):
    c2pa_sign.load_credentials(None, tmp_path / "own")  # a chain and key, as an owner would configure
    files = (tmp_path / "own" / c2pa_sign.CHAIN_FILE, tmp_path / "own" / c2pa_sign.KEY_FILE)
    configured = dataclasses.replace(settings, c2pa_credentials=files, c2pa_dir=tmp_path / "unused")
    marking = provenance.Provenance(configured)
    marking.save_png(marking.finish(generated_image()), tmp_path / "signed.png")
    assert c2pa_sign.read_manifest(tmp_path / "signed.png", "image/png")["validation_state"] == "Valid"
    assert not marking.signer.credentials.self_signed and not (tmp_path / "unused").exists()


def test_self_signed_key_is_private_to_its_owner(tmp_path):
    c2pa_sign.load_credentials(None, tmp_path)
    assert (tmp_path / c2pa_sign.KEY_FILE).stat().st_mode & 0o077 == 0


def test_marking_off_writes_the_plain_png(settings, tmp_path):
    plain = provenance.Provenance(dataclasses.replace(settings, watermark=False, c2pa_dir=tmp_path / "c2pa"))
    image = generated_image()
    assert plain.finish(image) is image
    plain.save_png(image, tmp_path / "plain.png")
    report = provenance.check_image(tmp_path / "plain.png")
    assert (report["watermark"], report["c2pa"], report["digital_source_type"]) == (False, None, None)
    assert report["settings"]["prompt"] == "a tower"
    assert not (tmp_path / "c2pa").exists()


# --- check_image -------------------------------------------------------------------------------


def test_check_image_reports_every_mark_of_an_output_png(marking, tmp_path):
    path = tmp_path / "out.png"
    marking.save_png(marking.finish(generated_image()), path)
    report = provenance.check_image(path)
    assert report["watermark"] and report["watermark_message"] == "464c5558444d"
    assert report["watermark_source"] == "flux-demo"
    assert report["digital_source_type"] == TRAINED
    assert report["c2pa"]["actions"][0]["action"] == "c2pa.created" and report["c2pa"]["intact"]
    assert report["c2pa"]["signer"]["common_name"] == "flux-demo signer"
    assert report["settings"]["model"] == "tiny-schnell"
    json.dumps(report)  # what the API returns


def test_check_image_of_an_unmarked_photo_finds_nothing():
    assert provenance.check_image(gradio.media.get_image("cheetah.jpg")) == {
        "watermark": False,
        "watermark_message": None,
        "watermark_source": None,
        "watermark_bit_errors": None,
        "c2pa": None,
        "digital_source_type": None,
        "settings": None,
    }


def test_check_image_finds_the_watermark_in_a_jpeg_copy_without_metadata(marking, tmp_path):
    jpeg(marking.finish(generated_image())).save(tmp_path / "copy.jpg", quality=85)
    report = provenance.check_image(tmp_path / "copy.jpg")
    assert report["watermark"] and report["c2pa"] is None and report["settings"] is None


def test_check_image_finds_black_forest_labs_watermark(tmp_path):
    bfl_marked(photo("lion.jpg", (1024, 1024))).save(tmp_path / "bfl.png")
    report = provenance.check_image(tmp_path / "bfl.png")
    assert report["watermark"] and report["watermark_source"] == "Black Forest Labs"
    assert report["watermark_message"] == f"{marks.BFL_MESSAGE:012x}"


def test_a_damaged_manifest_is_reported_not_trusted(marking, tmp_path):
    path = tmp_path / "out.png"
    marking.save_png(marking.finish(generated_image()), path)
    # Someone edits the prompt in the PNG (a valid chunk with its CRC): the manifest's hash covers it.
    data = path.read_bytes()
    start = data.index(b"tEXtprompt\x00") - 4
    length = int.from_bytes(data[start : start + 4], "big")
    chunk = data[start + 4 : start + 8 + length].replace(b"a tower", b"a tawer")
    edited = chunk + zlib.crc32(chunk).to_bytes(4, "big")
    path.write_bytes(data[: start + 4] + edited + data[start + 12 + length :])
    assert provenance.check_image(path)["settings"]["prompt"] == "a tawer"
    manifest = provenance.check_image(path)["c2pa"]
    assert manifest["validation_state"] == "Invalid" and not manifest["intact"]


def test_check_image_refuses_what_is_not_an_image_and_huge_images_before_decoding(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InvalidInput, match=r"^image: could not be read"):
        provenance.check_image(tmp_path / "notes.png")
    Image.new("L", (4100, 8)).save(tmp_path / "wide.png")
    with pytest.raises(InvalidInput, match=r"^image: must be at most 4096×4096 pixels, got 4100×8"):
        provenance.check_image(tmp_path / "wide.png")


# --- settings ----------------------------------------------------------------------------------


def test_marking_is_on_by_default_and_settings_are_checked(monkeypatch):
    for name in (
        "FLUX_DEMO_WATERMARK",
        "FLUX_DEMO_SAFETY_MODEL",
        "FLUX_DEMO_C2PA_CERT",
        "FLUX_DEMO_C2PA_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings.from_env()
    assert defaults.watermark and defaults.safety_model is None and defaults.safety_threshold == 0.85
    monkeypatch.setenv("FLUX_DEMO_WATERMARK", "0")
    assert not Settings.from_env().watermark
    monkeypatch.setenv("FLUX_DEMO_C2PA_CERT", "/etc/chain.pem")
    with pytest.raises(ValueError, match="FLUX_DEMO_C2PA_CERT and FLUX_DEMO_C2PA_KEY must be set together"):
        Settings.from_env()
    monkeypatch.delenv("FLUX_DEMO_C2PA_CERT")
    monkeypatch.setenv("FLUX_DEMO_SAFETY_THRESHOLD", "1.5")
    with pytest.raises(ValueError, match="FLUX_DEMO_SAFETY_THRESHOLD must be a number > 0 and <= 1"):
        Settings.from_env()


# --- the content filter ------------------------------------------------------------------------


def save_classifier(folder, nsfw_probability: float) -> str:
    """A tiny ViT image classifier with the labels "normal" and "nsfw", saved like a hub model; its head
    gives every image the same "nsfw" probability."""
    import math

    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    labels = {0: "normal", 1: "nsfw"}
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label=labels,
        label2id={label: index for index, label in labels.items()},
    )
    model = ViTForImageClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        logit = math.log(nsfw_probability / (1 - nsfw_probability))
        model.classifier.bias.copy_(torch.tensor([0.0, logit]))
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> str:
    """A saved classifier that scores every image 0.9 "nsfw"."""
    return save_classifier(tmp_path_factory.mktemp("nsfw-classifier"), 0.9)


def test_content_filter_scores_with_the_transformers_pipeline(classifier):
    safety = SafetyFilter(classifier, threshold=0.85)
    assert safety.score(photo()) == pytest.approx(0.9, abs=1e-4)
    with pytest.raises(
        ContentWithheld, match=r"content filter: the image was withheld \(score 0.90, limit 0.85\)"
    ):
        safety.screen(photo())
    SafetyFilter(classifier, threshold=0.95).screen(photo())  # under its threshold: shown
    assert (safety.screened, safety.withheld) == (1, 1)


def test_a_classifier_without_an_nsfw_label_is_refused(tmp_path, classifier):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(classifier)
    config.id2label = {0: "cat", 1: "dog"}
    config.label2id = {"cat": 0, "dog": 1}
    folder = tmp_path / "pets"
    import shutil

    shutil.copytree(classifier, folder)
    config.save_pretrained(folder)
    with pytest.raises(ValueError, match="has no 'nsfw' label"):
        SafetyFilter(str(folder)).score(photo())


def test_content_filter_withholds_a_generated_image_with_a_clear_message(settings, classifier):
    from flux_demo import generation
    from flux_demo.pipelines import ModelHost
    from flux_demo.validation import GenerationRequest, validate

    host = ModelHost(dataclasses.replace(settings, safety_model=classifier), ("tiny-schnell",))
    request = validate(GenerationRequest("a fox", "tiny-schnell", 256, 256, 2, 0.0, 1), host.model_keys)
    with pytest.raises(ContentWithheld) as withheld:
        generation.generate(host, request)
    assert withheld.value.title == "title.content_filtered" and "try another prompt or seed" in str(
        withheld.value
    )
    assert provenance.for_settings(host.settings).safety.withheld == 1
    shown = ModelHost(
        dataclasses.replace(settings, safety_model=classifier, safety_threshold=0.95), ("tiny-schnell",)
    )
    assert marks.find_watermark(generation.generate(shown, request).image) is not None


def test_check_verdict_shows_no_text_from_the_file():
    from flux_demo.ui.check import verdict

    hostile = "[click](http://evil.example) <img src=x>"
    report = {
        "watermark": False,
        "c2pa": {"validation_state": hostile, "signer": {"common_name": hostile}},
        "digital_source_type": hostile,
        "settings": {"prompt": hostile},
    }
    shown = verdict(report)
    assert "evil" not in shown and "<img" not in shown
    assert "| Content Credentials (C2PA) | yes: signature ? |" in shown
    assert "| Digital source type (IPTC) | ? |" in shown
