"""nano-klein, the shipped FLUX.2 [klein] nano model: it loads through `from_pretrained` with the real
classes, its training feeds the transformer exactly what the pipeline does, and through the app's own
endpoints it carries words, shapes and colours between reference images as the prompt says (read back by
OCR, colours checked on pixels), and inpaints a masked region to the prompt."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from flux_demo.models import get_spec
from flux_demo.offline import nano
from tests.helpers import ROOT
from training import grammar_images as gi
from training import nano_klein as nk
from training.checks import check_example, reads_word
from training.loading import klein_generate, load_klein

SPEC = get_spec("nano-klein")
GRAMMAR = nano.load_grammar()

# Random items and seeds of benchmarks/nano_quality.py where every check passed, as it recorded them.
BENCHMARK = ROOT / "benchmarks" / "results" / "nano_quality.json"


def case(task: str, index: int = 0) -> tuple[int, gi.Example]:
    """(seed, item) of a passing benchmark item of ``task``."""
    tasks = json.loads(BENCHMARK.read_text(encoding="utf-8"))["results"]["nano-klein"]["tasks"]
    item = tasks[task]["working"][index]
    return item["seed"], gi.example_from_json(item["example"])


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(2)
    return load_klein()


# --- The shipped model -------------------------------------------------------------------------------


def test_shipped_model_uses_the_real_flux2_classes_and_loads_with_from_pretrained(pipe):
    from diffusers import AutoencoderKLFlux2, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import Qwen2TokenizerFast, Qwen3ForCausalLM

    assert isinstance(pipe, Flux2KleinPipeline) and pipe.config.is_distilled
    assert isinstance(pipe.transformer, Flux2Transformer2DModel)
    assert isinstance(pipe.vae, AutoencoderKLFlux2)
    assert isinstance(pipe.text_encoder, Qwen3ForCausalLM)
    assert isinstance(pipe.tokenizer, Qwen2TokenizerFast)
    assert pipe.transformer.dtype == torch.float32  # the files hold float16; loaded as the app loads it
    assert pipe.text_encoder.config.num_hidden_layers > max(nk.TEXT_OUT_LAYERS)


def test_shipped_files_are_small_float16_safetensors():
    folder = nano.weights_path("nano-klein")
    files = [f for f in folder.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) <= 40e6
    assert max(f.stat().st_size for f in files) < 10e6  # Spaces refuse plain git files over 10 MB
    assert sorted(f.parent.name for f in folder.rglob("*.safetensors")) == [
        "text_encoder",
        "transformer",
        "vae",
    ]
    everything = [f for f in nano.WEIGHTS_DIR.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in everything) <= 40e6, "all nano weights together"


def test_every_grammar_word_is_one_token_in_any_case(pipe):
    for word in GRAMMAR.words:
        for spelling in (word, word.lower(), word.capitalize()):
            quoted = pipe.tokenizer.tokenize(GRAMMAR.word_caption(spelling))
            spaced = pipe.tokenizer.tokenize(GRAMMAR.edits["new_word"].caption(word=spelling))
            assert spelling in quoted and f"Ġ{spelling}" in spaced, (quoted, spaced)


def test_every_grammar_prompt_fits_the_sequence_length_it_was_trained_at(pipe):
    assert SPEC.max_sequence_length == nk.MAX_SEQUENCE_LENGTH
    template = {"tokenize": False, "add_generation_prompt": True, "enable_thinking": False}
    longest = max(
        len(
            pipe.tokenizer(
                pipe.tokenizer.apply_chat_template([{"role": "user", "content": c}], **template)
            ).input_ids
        )
        for c in nk.all_captions(GRAMMAR)
    )
    assert longest <= SPEC.max_sequence_length


# --- Training feeds the transformer what the pipeline feeds it ---------------------------------------


def test_training_latents_and_position_ids_are_the_pipelines(pipe):
    example = gi.edit_example(GRAMMAR, "shape_from_three", random.Random(0), gi.random_jitter)
    references = [gi.render(GRAMMAR, p) for p in example.references]
    processed = [
        pipe.image_processor.preprocess(r, height=256, width=256, resize_mode="crop") for r in references
    ]
    latents, ids = pipe.prepare_image_latents(processed, 1, None, "cpu", torch.float32)
    pixels = torch.from_numpy(np.stack([np.asarray(r) for r in references])).permute(0, 3, 1, 2)
    mine = nk.normalise(pipe.vae, nk.encode_patched(pipe.vae, pixels))
    torch.testing.assert_close(latents[0], torch.cat(list(mine)), atol=5e-3, rtol=0)
    output_ids = pipe._prepare_latent_ids(torch.zeros(1, 64, 8, 8))
    assert torch.equal(nk.image_ids(3, 8, "cpu"), torch.cat([output_ids, ids], dim=1))


def test_training_text_embeddings_are_the_pipelines(pipe):
    example = gi.edit_example(GRAMMAR, "word_on_background", random.Random(0), gi.random_jitter)
    expected, expected_ids = pipe.encode_prompt(example.caption, device="cpu", max_sequence_length=32)
    embeds, txt_ids = nk.TextCache(pipe.text_encoder, pipe.tokenizer)([example.caption])
    torch.testing.assert_close(embeds, expected)
    assert torch.equal(txt_ids, expected_ids)


def test_training_sigmas_are_the_4_step_schedule_the_pipeline_walks(pipe):
    seen = []
    pipe(
        prompt="a red star on a blue background",
        height=256,
        width=256,
        num_inference_steps=4,
        max_sequence_length=32,
        callback_on_step_end=lambda p, i, t, kw: seen.append(float(t) / 1000) or {},
    )
    assert seen == pytest.approx(nk.schedule_sigmas()[:-1], abs=1e-4)


# --- What it draws ----------------------------------------------------------------------------------


def test_text_to_image_writes_the_word_of_a_sign_prompt(pipe):
    seed, example = case("word")
    image = klein_generate(pipe, GRAMMAR, example, seed)
    assert reads_word(image, example.target.word)
    assert not reads_word(image, next(w for w in GRAMMAR.words if w != example.target.word))


@pytest.mark.parametrize("task", ["shape", "sign_on_color", "shape_on_background"])
def test_pipeline_draws_what_the_prompt_asks(pipe, task):
    seed, example = case(task)
    image = klein_generate(pipe, GRAMMAR, example, seed)
    assert all(check_example(image, example, GRAMMAR).values())


def test_same_seed_gives_identical_pixels(pipe):
    seed, example = case("sign_on_color")
    first, again = (klein_generate(pipe, GRAMMAR, example, seed) for _ in range(2))
    other = klein_generate(pipe, GRAMMAR, example, seed + 1)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


# --- Through the app's endpoints --------------------------------------------------------------------

# The Edit tab's offline examples: one edit per grammar template, each with the seed nano-klein makes it at.
TAB_EXAMPLES = json.loads((ROOT / "examples" / "edit" / "nano" / "examples.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def klein_url(serve, settings):
    """The real app serving nano-klein, as it does offline by default."""
    import dataclasses

    from flux_demo.pipelines import ModelHost
    from flux_demo.ui import create_demo

    host = ModelHost(dataclasses.replace(settings, models=("nano-klein",)))
    with serve(create_demo(backend=host)) as url:
        yield url


def reference_files(example: gi.Example, folder) -> list:
    from gradio_client import handle_file

    paths = []
    for i, picture in enumerate(example.references, 1):
        path = folder / f"image{i}.png"
        gi.render(GRAMMAR, picture).save(path)
        paths.append(handle_file(str(path)))
    return paths


def result_image(path):
    from PIL import Image

    with Image.open(path["path"] if isinstance(path, dict) else path) as png:
        assert png.size == (256, 256)
        return png.convert("RGB")


def edit(url: str, prompt: str, references: list, seed: int):
    """The result of `/edit` with nano-klein at its defaults, and the details it reports."""
    from gradio_client import Client

    image, used_seed, details = Client(url, verbose=False).predict(
        prompt=prompt,
        references=references,
        model="nano-klein",
        seed=seed,
        randomize_seed=False,
        steps=SPEC.default_steps,
        width=0,
        height=0,
        api_name="/edit",
    )
    assert int(used_seed) == seed and details["reference_count"] == len(references)
    return result_image(image)


def inpaint(url: str, example: gi.Example, seed: int, folder):
    """The result of `/inpaint` over `example`'s first reference, masked where its target differs."""
    from gradio_client import Client, handle_file

    source, mask = folder / "source.png", folder / "mask.png"
    gi.render(GRAMMAR, example.references[0]).save(source)
    gi.change_mask(example.target).save(mask)
    image, _, _ = Client(url, verbose=False).predict(
        prompt=example.caption,
        image=handle_file(str(source)),
        mask=handle_file(str(mask)),
        model="nano-klein",
        strength=1.0,
        seed=seed,
        randomize_seed=False,
        steps=SPEC.default_steps,
        api_name="/inpaint",
    )
    return result_image(image)


def test_edit_tab_offers_one_grammar_edit_per_template_with_1_2_and_3_references():
    from PIL import Image

    from flux_demo.ui.edit import EXAMPLES_DIR, examples_for

    shown = examples_for(SPEC)
    assert [prompt for prompt, _ in shown] == [item["prompt"] for item in TAB_EXAMPLES]
    assert {item["example"]["task"] for item in TAB_EXAMPLES} == set(GRAMMAR.edits)
    assert {len(files) for _, files in shown} == {1, 2, 3}
    for (prompt, files), item in zip(shown, TAB_EXAMPLES, strict=True):
        example = gi.example_from_json(item["example"])
        assert prompt == example.caption and prompt in nk.all_captions(GRAMMAR)
        for name, picture in zip(files, example.references, strict=True):  # the files show the pictures
            drawn = np.asarray(gi.render(GRAMMAR, picture), dtype=float)
            assert np.abs(np.asarray(Image.open(EXAMPLES_DIR / name).convert("RGB")) - drawn).max() <= 1
    assert examples_for(get_spec("tiny-klein"))[0][1] == ("sofa.png", "ball.png")  # the real models' own


@pytest.mark.parametrize("item", TAB_EXAMPLES, ids=[item["example"]["task"] for item in TAB_EXAMPLES])
def test_edit_endpoint_makes_each_offline_example_of_the_edit_tab(klein_url, item):
    """Words read back by OCR, backgrounds and shape colours on pixels, with 1, 2 and 3 references."""
    from gradio_client import handle_file

    from flux_demo.ui.edit import EXAMPLES_DIR

    example = gi.example_from_json(item["example"])
    references = [handle_file(str(EXAMPLES_DIR / "nano" / name)) for name in item["files"]]
    image = edit(klein_url, item["prompt"], references, item["seed"])
    checks = check_example(image, example, GRAMMAR)
    assert all(checks.values()), checks


def test_the_references_decide_the_edit_endpoints_result(klein_url, tmp_path):
    """The same prompt and seed over another image 1: the word carried from image 1 follows image 1."""
    seed, example = case("word_on_background")
    word = next(w for w in GRAMMAR.words if w != example.target.word)
    swapped = gi.Example(
        example.task,
        example.caption,
        (gi.Picture("sign", example.references[0].background, word=word), example.references[1]),
        gi.Picture("sign", example.target.background, word=word),
    )
    image = edit(klein_url, swapped.caption, reference_files(swapped, tmp_path), seed)
    assert reads_word(image, word) and not reads_word(image, example.target.word)


@pytest.mark.parametrize("task", ["inpaint", "inpaint_word"])
def test_inpaint_endpoint_refills_the_masked_region_to_the_prompt(klein_url, tmp_path, task):
    seed, example = case(task)
    result = inpaint(klein_url, example, seed, tmp_path)
    checks = check_example(result, example, GRAMMAR)
    assert all(checks.values()), checks
    # Outside the mask the source is kept (up to the VAE's round trip).
    outside = np.asarray(gi.change_mask(example.target)) == 0
    source = np.asarray(gi.render(GRAMMAR, example.references[0]), dtype=float)
    assert np.median(np.abs(np.asarray(result, dtype=float) - source)[outside]) < 10


# The targets through the endpoints: SAMPLE fresh random items (placements, words, colours and
# seeds drawn here, not the benchmark's) must reach each target. Where benchmarks/nano_quality.py measured
# less than the target over its 50 items, the test is an xfail naming that rate, strict (failing as soon
# as the model reaches the target) where the rate is more than 15 points under it.
SAMPLE = 8
KLEIN = json.loads(BENCHMARK.read_text(encoding="utf-8"))["results"]["nano-klein"]["tasks"]
TARGETS = (  # (target, task, check, share); the task is the benchmark's
    ("text to image: the word read back", "word", "word", 0.9),
    ("text to image: the background", "shape", "background", 0.9),
    ("the word carried from image 1", "word_on_background", "word", 0.8),
    ("the requested background", "sign_on_color", "background", 0.85),
    ("the requested background, 3 references", "shape_from_three", "background", 0.85),
    ("the shape from image 2 in its colour", "shape_on_background", "shape_color", 0.7),
    ("inpainting: the new word read back", "inpaint_word", "word", 0.8),
    ("inpainting: the new shape's colour", "inpaint", "shape_color", 0.7),
)


def target_case(target: str, task: str, check: str, share: float):
    measured = KLEIN[task][check]
    marks = []
    if measured < share:
        reason = (
            f"{target}: benchmarks/nano_quality.py measured {measured:.0%} over 50 items, target {share:.0%}"
        )
        # Far under the target: a pass would mean the model changed, so it is strict. Near it, 8 fresh
        # items may reach the target by chance, so a pass is not an error.
        marks = [pytest.mark.xfail(strict=measured < share - 0.15, reason=reason)]
    return pytest.param(task, check, share, marks=marks, id=f"{task}-{check}")


def sample_item(task: str, rng: random.Random) -> gi.Example:
    if task in ("word", "shape"):
        return gi.text_example(GRAMMAR, rng, task, gi.random_jitter)
    if task == "inpaint":
        return gi.inpaint_example(GRAMMAR, rng, gi.random_jitter)
    return gi.edit_example(GRAMMAR, "new_word" if task == "inpaint_word" else task, rng, gi.random_jitter)


@pytest.mark.parametrize(("task", "check", "share"), [target_case(*t) for t in TARGETS])
def test_endpoints_reach_the_target_on_fresh_random_items(klein_url, tmp_path, task, check, share):
    from gradio_client import Client

    rng = random.Random(f"endpoint-sample-{task}")
    passed = []
    for i in range(SAMPLE):
        example, seed = sample_item(task, rng), rng.randrange(2**31)
        folder = tmp_path / str(i)
        folder.mkdir()
        if task in ("word", "shape"):
            path, _, _ = Client(klein_url, verbose=False).predict(
                prompt=example.caption,
                model="nano-klein",
                width=256,
                height=256,
                steps=SPEC.default_steps,
                guidance=SPEC.default_guidance,
                seed=seed,
                randomize_seed=False,
                api_name="/generate",
            )
            image = result_image(path)
        elif task.startswith("inpaint"):
            image = inpaint(klein_url, example, seed, folder)
        else:
            image = edit(klein_url, example.caption, reference_files(example, folder), seed)
        passed.append(check_example(image, example, GRAMMAR)[check])
    assert sum(passed) / SAMPLE >= share, f"{sum(passed)}/{SAMPLE}"


def test_a_random_item_of_every_edit_is_an_edit_the_model_was_trained_on():
    """The benchmark's items come from the builders training uses (only the placements are fresh)."""
    rng = random.Random(0)
    for name in GRAMMAR.edits:
        example = gi.edit_example(GRAMMAR, name, rng, gi.random_jitter)
        assert len(example.references) == len(GRAMMAR.edits[name].references)
        assert example.caption in nk.all_captions(GRAMMAR)


def test_edit_references_are_scaled_to_the_size_nano_klein_was_trained_at(tmp_path):
    """A large reference would become 4x the tokens the model ever saw: the app scales it to 256x256 first."""
    from flux_demo import editing

    big = tmp_path / "big.png"
    gi.render(GRAMMAR, gi.Picture("sign", "blue", word="CAT"), size=512).save(big)
    request = editing.EditRequest(
        "the sign from image 1 on a red background", "nano-klein", "edit", [str(big)]
    )
    valid = editing.validate_edit(request, ("nano-klein",))
    assert [image.size for image in valid.images] == [(256, 256)]
    assert (valid.width, valid.height) == (256, 256)


def test_live_previews_work_with_nano_kleins_batch_norm_latents(settings):
    import dataclasses

    from flux_demo import generation
    from flux_demo.pipelines import ModelHost
    from flux_demo.validation import GenerationRequest, validate
    from flux_demo.watching.previews import PreviewObserver

    host = ModelHost(dataclasses.replace(settings, models=("nano-klein",)))
    request = GenerationRequest('a sign that says "CAT"', "nano-klein", 256, 256, SPEC.default_steps, 1.0, 3)
    valid = validate(request, host.model_keys)
    shown = []
    result = generation.generate(host, valid, observer=PreviewObserver(valid.spec, 256, 256, shown.append))
    assert [p.step for p in shown] == [1, 2, 3, 4]
    assert {p.image.size for p in shown} == {(256, 256)}  # x₀ through nano-klein's own VAE
    last = np.asarray(shown[-1].image.convert("RGB"), dtype=np.float32)
    final = np.asarray(result.image.convert("RGB"), dtype=np.float32)
    assert np.abs(last - final).mean() <= 8  # the last preview is the final image (but its watermark)
