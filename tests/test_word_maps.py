"""Word maps (cross-attention in the single-stream blocks): where each word of the prompt lands, without
changing the picture."""

import dataclasses

import numpy as np
import pytest

from flux_demo import generation
from flux_demo.models import get_spec
from flux_demo.validation import GenerationRequest, InvalidInput, validate
from flux_demo.watching import trajectory, word_maps


def request(host, model, prompt, seed=3):
    spec = get_spec(model)
    fields = (prompt, model, 256, 256, spec.default_steps, spec.default_guidance, seed)
    return validate(GenerationRequest(*fields), (model,))


@pytest.mark.parametrize("model", ["tiny-dev", "tiny-klein"])
def test_word_maps_do_not_change_the_picture(host, model):
    valid = request(host, model, 'a red fox holding a sign that says "FLUX"')
    recorded = trajectory.run_trajectory(host, valid, words=["fox", "FLUX"])
    plain = generation.generate(host, valid)
    assert np.array_equal(np.asarray(plain.image), np.asarray(recorded.result.image))


@pytest.mark.parametrize("model", ["tiny-dev", "tiny-klein"])
def test_every_step_has_a_map_per_chosen_word_on_the_token_grid(host, model):
    prompt = "a red fox on a blue sign"
    valid = request(host, model, prompt)
    recorded = trajectory.run_trajectory(host, valid, words=["fox", "blue"])
    grid = (valid.height // valid.spec.size_multiple, valid.width // valid.spec.size_multiple)
    assert recorded.words == ["fox", "blue"]
    assert all(tuple(step.word_maps.shape) == (2, *grid) for step in recorded.steps)
    # Each map is scaled to its strongest image token: values in 0..1, and 1 at the peak.
    assert all(float(step.word_maps.min()) >= 0 for step in recorded.steps)
    assert all(np.allclose(step.word_maps.amax(dim=(1, 2)).numpy(), 1.0) for step in recorded.steps)
    # A word's map does not depend on which other words are asked for.
    everyone = trajectory.run_trajectory(host, valid, words=word_maps.prompt_words(prompt))
    fox = everyone.words.index("fox")
    assert np.allclose(everyone.steps[-1].word_maps[fox].numpy(), recorded.steps[-1].word_maps[0].numpy())
    assert set(recorded.details["word_maps"]) == {"fox", "blue"}


@pytest.mark.parametrize(("model", "word"), [("tiny-dev", "CAT"), ("nano-dev", "CAT"), ("tiny-klein", "CAT")])
def test_a_words_positions_are_its_own_tokens_in_the_attended_text(host, model, word):
    """T5's tokens for FLUX.1; for klein the Qwen3 tokens inside its chat template."""
    pipe, spec = host.get_pipeline(model), get_spec(model)
    located = {w.text: w for w in word_maps.locate_words(pipe, spec, f'a sign that says "{word}"')}
    tokenizer = getattr(pipe, spec.token_tokenizer)
    text = f'a sign that says "{word}"'
    if spec.chat_template:
        messages = [{"role": "user", "content": text}]
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    spelled = tokenizer.decode([ids[p] for p in located[word].positions]).strip(' "▁')
    assert spelled.lower() == word.lower()
    assert tokenizer.decode([ids[p] for p in located["sign"].positions]).strip() == "sign"


def test_chosen_words_must_be_words_of_the_prompt():
    assert word_maps.check_words("cat, SIGN", 'a sign that says "CAT"') == ["CAT", "sign"]
    assert word_maps.check_words("", "a red star on a blue background") == [
        "a",
        "red",
        "star",
        "on",
        "blue",
        "background",
    ]
    with pytest.raises(InvalidInput, match="words") as refused:
        word_maps.check_words("purple", "a red star on a blue background")
    assert "a, red, star, on, blue, background" in str(refused.value)
    with pytest.raises(InvalidInput, match="at most 8"):
        word_maps.check_words("a b c d e f g h i", "a b c d e f g h i")


@pytest.fixture(scope="module")
def nano_host(settings):
    from flux_demo.pipelines import ModelHost

    return ModelHost(dataclasses.replace(settings, models=("nano-schnell", "nano-dev", "nano-klein")))


def sign_box(image) -> np.ndarray:
    """A mask of the sign: the bounding box of its white pixels."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    ys, xs = np.nonzero(np.abs(pixels - 250).sum(axis=-1) < 90)
    mask = np.zeros(pixels.shape[:2])
    mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 1
    return mask


# nano-schnell and nano-dev draw the prompt from CLIP's pooled vector (CLIP alone renders every word, T5
# alone rarely: see the ablation test), so their T5 tokens' maps hardly find the word's sign.
POOLED = pytest.mark.xfail(
    strict=True,
    reason=(
        "FLUX.1 nano models draw the prompt from CLIP's pooled vector, not T5's tokens: the word's share "
        "inside its sign measured 0.47-0.56 (nano-schnell) and 0.46-0.53 (nano-dev) for an area of 0.34, "
        "and every other word of the prompt lands there as much"
    ),
)


@pytest.mark.parametrize(
    ("model", "word"),
    [
        ("nano-klein", "CAT"),
        ("nano-klein", "HELLO"),
        pytest.param("nano-schnell", "CAT", marks=POOLED),
        pytest.param("nano-dev", "CAT", marks=POOLED),
    ],
)
def test_the_map_of_a_signs_word_covers_the_sign(nano_host, model, word):
    """The word's map mass inside the sign's box is at least twice the box's share of the picture."""
    valid = request(nano_host, model, f'a sign that says "{word}"')
    recorded = trajectory.run_trajectory(nano_host, valid, words=[word])
    mask = sign_box(recorded.result.image)
    rows, columns = recorded.steps[-1].word_maps.shape[1:]
    share = mask.reshape(rows, mask.shape[0] // rows, columns, mask.shape[1] // columns).mean(axis=(1, 3))
    word_map = recorded.steps[-1].word_maps[0].numpy()
    assert (word_map * share).sum() / word_map.sum() >= 2 * share.mean()
