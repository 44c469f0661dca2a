"""The shipped nano FLUX.1 models: they load through `from_pretrained`, share their encoders and VAE, draw
what the prompt says (read back by OCR, colours checked on pixels), and the training command still runs
(both families). nano-klein has its own tests in test_nano_klein.py."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from flux_demo import generation
from flux_demo.models import get_spec
from flux_demo.offline import nano
from flux_demo.validation import GenerationRequest, validate
from training.checks import colour_checks, reads_word
from training.loading import generate, load_klein, load_pipelines

# Prompts and seeds from benchmarks/nano_quality.py (benchmarks/results/nano_quality.json), where OCR read
# the word back and the colour checks passed, for both models.
WORD_CASES = [("schnell", "HELLO", 501869158), ("schnell", "FLUX", 389311301), ("dev", "JAZZ", 360511942)]
APP_WORD_CASES = [("nano-schnell", "BUS", 150006740), ("nano-dev", "FISH", 74852898)]
# (prompt, seed, background, shape colour)
SHAPE_CASES = [
    ("a yellow square on a blue background", 1156765092, "blue", "yellow"),
    ("a black circle on a green background", 1618428294, "green", "black"),
]
SHARED = ("text_encoder", "text_encoder_2", "vae")


@pytest.fixture(scope="module")
def pipes():
    import torch

    torch.set_num_threads(2)
    return load_pipelines()


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_grammar_file_has_exactly_the_published_keys():
    data = json.loads(nano.VOCABULARY_FILE.read_text(encoding="utf-8"))
    assert set(data) == {"words", "colors", "shapes", "templates", "edits"}
    assert "{word}" in data["templates"]["word"]
    assert all(key in data["templates"]["shape"] for key in ("{color}", "{shape}", "{background}"))
    assert all(len(rgb) == 3 for rgb in data["colors"].values())


def test_every_edit_template_names_its_references_and_fills_from_the_grammar():
    grammar = nano.load_grammar()
    assert {len(edit.references) for edit in grammar.edits.values()} == {1, 2, 3}
    values = {"color": "red", "word": "CAT", "shape": "star"}
    for edit in grammar.edits.values():
        assert set(edit.fields) <= set(values), edit
        caption = edit.caption(**{name: values[name] for name in edit.fields})
        assert "{" not in caption and f"image {len(edit.references)}" in caption


def test_a_grammar_file_with_unknown_keys_is_refused(tmp_path):
    data = json.loads(nano.VOCABULARY_FILE.read_text(encoding="utf-8"))
    (tmp_path / "grammar.json").write_text(json.dumps({**data, "extra": 1}), encoding="utf-8")
    with pytest.raises(ValueError, match="expected exactly the keys"):
        nano.load_grammar(tmp_path / "grammar.json")


def test_every_grammar_word_is_one_t5_token_in_any_case(pipes):
    tokenizer = pipes["schnell"].tokenizer_2
    for word in nano.load_grammar().words:
        for spelling in (word, word.lower(), word.capitalize()):
            ids = tokenizer(f'a sign that says "{spelling}"', add_special_tokens=False).input_ids
            assert len(ids) == 7, (spelling, tokenizer.convert_ids_to_tokens(ids))
            assert tokenizer.unk_token_id not in ids


def test_shipped_weights_are_safetensors_with_shared_encoders_and_vae():
    schnell, dev = nano.weights_path("nano-schnell"), nano.weights_path("nano-dev")
    for name in SHARED:
        files = sorted((schnell / name).glob("*.safetensors"))
        assert files, name
        for file in files:
            assert _digest(file) == _digest(dev / name / file.name), f"{name} differs between schnell and dev"
    files = [f for f in nano.WEIGHTS_DIR.rglob("*") if f.is_file()]
    total = sum(f.stat().st_size for f in files)
    assert total <= 40e6, f"nano weights take {total / 1e6:.1f} MB"
    # Hugging Face Spaces refuse plain git files over 10 MB (larger ones would need Git LFS).
    assert max(f.stat().st_size for f in files) < 10e6
    assert json.loads((dev / "transformer" / "config.json").read_text())["guidance_embeds"] is True
    assert json.loads((schnell / "transformer" / "config.json").read_text())["guidance_embeds"] is False


@pytest.mark.parametrize(("variant", "word", "seed"), WORD_CASES)
def test_ocr_reads_the_word_of_a_sign_prompt(pipes, variant, word, seed):
    image = generate(pipes[variant], f'a sign that says "{word}"', seed, variant)
    assert reads_word(image, word)


def test_other_words_are_not_read_from_that_sign(pipes):
    """The check can fail: the sign drawn for one word does not read as another."""
    image = generate(pipes["schnell"], 'a sign that says "HELLO"', 501869158, "schnell")
    assert not reads_word(image, "JAZZ")


def test_same_seed_gives_identical_pixels(pipes):
    first = generate(pipes["schnell"], "a red star on a blue background", 7, "schnell")
    again = generate(pipes["schnell"], "a red star on a blue background", 7, "schnell")
    other = generate(pipes["schnell"], "a red star on a blue background", 8, "schnell")
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


@pytest.mark.parametrize("variant", ["schnell", "dev"])
@pytest.mark.parametrize(("prompt", "seed", "background", "color"), SHAPE_CASES)
def test_shape_prompt_draws_its_colours(pipes, variant, prompt, seed, background, color):
    image = generate(pipes[variant], prompt, seed, variant)
    assert colour_checks(image, nano.load_grammar(), background, color) == (True, True)


@pytest.fixture(scope="module")
def nano_host(settings):
    """A host serving what the app serves without a GPU: the nano models, loaded by the app's own code."""
    from flux_demo.pipelines import ModelHost

    return ModelHost(dataclasses.replace(settings, models=("nano-schnell", "nano-dev")))


def nano_request(host, prompt: str, model: str, seed: int):
    spec = get_spec(model)
    fields = (prompt, model, 256, 256, spec.default_steps, spec.default_guidance, seed)
    return validate(GenerationRequest(*fields), host.model_keys)


def test_the_app_loads_both_nano_models_sharing_encoders_and_vae(nano_host):
    schnell, dev = nano_host.get_pipeline("nano-schnell"), nano_host.get_pipeline("nano-dev")
    for name in (*SHARED, "tokenizer", "tokenizer_2"):
        assert getattr(schnell, name) is getattr(dev, name), name
    assert schnell.transformer is not dev.transformer


@pytest.mark.parametrize(("model", "word", "seed"), APP_WORD_CASES)
def test_the_app_writes_the_word_of_a_sign_prompt(nano_host, model, word, seed):
    """Through the app's generation path (validation, the host, the pipeline call, PNG metadata)."""
    valid = nano_request(nano_host, f'a sign that says "{word}"', model, seed)
    result = generation.generate(nano_host, valid)
    assert result.image.size == (256, 256)
    assert reads_word(result.image, word)


def test_the_served_app_draws_a_sign_over_http(serve, nano_host):
    """The real Gradio server, called through gradio_client as an API user would, on nano-dev's defaults."""
    from gradio_client import Client
    from PIL import Image

    from flux_demo.ui import create_demo

    model, word, seed = APP_WORD_CASES[-1]
    spec = get_spec(model)
    with serve(create_demo(backend=nano_host)) as url:
        image, used_seed, _details = Client(url, verbose=False).predict(
            prompt=f'a sign that says "{word}"',
            model=model,
            width=256,
            height=256,
            steps=spec.default_steps,
            guidance=spec.default_guidance,
            seed=seed,
            randomize_seed=False,
            api_name="/generate",
        )
    with Image.open(image["path"] if isinstance(image, dict) else image) as png:
        assert png.size == (256, 256) and int(used_seed) == seed
        assert reads_word(png.convert("RGB"), word)


def test_live_previews_work_with_the_x16_nano_vae(nano_host):
    from flux_demo.watching.previews import PreviewObserver

    valid = nano_request(nano_host, "a red star on a blue background", "nano-schnell", 3)
    shown = []
    observer = PreviewObserver(valid.spec, valid.width, valid.height, shown.append)
    generation.generate(nano_host, valid, observer=observer)
    assert [p.step for p in shown] == [1, 2, 3, 4]
    assert {p.image.size for p in shown} == {(256, 256)}  # decoded by the nano VAE itself


def test_training_smoke_run_writes_loadable_pipelines_of_both_families(tmp_path):
    """`python -m training.nano_train --smoke`: every stage of both families runs and the pipelines load."""
    from training import nano_train

    metrics = nano_train.main(["--out", str(tmp_path), "--smoke"])
    assert set(metrics["stages"]) == {
        "tokenizers",
        "vae",
        "base",
        "dev",
        "schnell",
        "decoder",
        "klein_latents",
        "klein_base",
    }
    assert (tmp_path / "nano_loss.png").exists()
    assert json.loads((tmp_path / "metrics.json").read_text())["seed"] == 0
    pipe = load_pipelines(tmp_path)["schnell"]
    assert generate(pipe, 'a sign that says "CAT"', 0, "schnell", size=64).size == (64, 64)
    klein = load_klein(tmp_path)
    assert klein(prompt="a red star on a blue background", height=64, width=64, num_inference_steps=1).images[
        0
    ].size == (64, 64)
    # A re-run resumes: every stage is restored from its checkpoint, nothing is trained again.
    again = nano_train.main(["--out", str(tmp_path), "--smoke"])
    assert again["stages"] == metrics["stages"]


def test_write_the_prompt_gives_a_nano_model_the_sign_it_was_trained_on():
    from flux_demo.ui.typography import write_prompt

    assert write_prompt("hello", "", "nano-dev") == 'a sign that says "HELLO"'
    assert write_prompt("hello", "A bar at night", "nano-schnell") == 'a sign that says "HELLO"'  # no scene
    scene = "A neon sign above a bar"
    assert write_prompt("OPEN 24/7", scene, "tiny-dev") == f'{scene}, with the text "OPEN 24/7"'
    assert write_prompt("OPEN 24/7", scene, ["not", "a", "model"]) == f'{scene}, with the text "OPEN 24/7"'


def test_the_typography_suite_has_a_nano_section_the_nano_models_write(nano_host):
    """Offline, the suite leads with signs of the nano grammar (the data file's scenes are beyond the nano
    models), so its leaderboard measures what they can do: every word read back exactly on seed 0."""
    from flux_demo.typography import suite
    from flux_demo.ui.typography import suite_entries

    entries = suite_entries(nano_host.model_keys)
    section = [entry for entry in entries if entry.category == suite.NANO_CATEGORY]
    assert [entry.targets for entry in section] == [(word,) for word in nano.load_grammar().words]
    assert entries[len(section) :] == suite.load_suite()
    assert suite_entries(("tiny-schnell", "tiny-dev")) == suite.load_suite()  # no nano model, no section
    images = suite.run_suite(nano_host, section[::4], ["nano-schnell"], seed=0)
    assert suite.leaderboard_rows(images) == [["nano-schnell", 0.0, 1.0, 1.0, 6, 0]]
