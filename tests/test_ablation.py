"""The encoder ablation on the trained nano models: which text encoder carries the text into the picture."""

import dataclasses

import pytest

from flux_demo.models import get_spec
from flux_demo.validation import GenerationRequest, InvalidInput, validate
from flux_demo.watching import ablation


@pytest.fixture(scope="module")
def nano_host(settings):
    from flux_demo.pipelines import ModelHost

    return ModelHost(dataclasses.replace(settings, models=("nano-schnell",)))


def test_nano_schnell_draws_the_word_from_clips_pooled_vector(nano_host):
    """Measured, against the chapter's claim for the full-size FLUX.1 (T5 carries text rendering): the nano
    model spells HELLO with CLIP alone and not with T5 alone."""
    spec = get_spec("nano-schnell")
    request = GenerationRequest('a sign that says "HELLO"', spec.key, 256, 256, 4, 0.0, 501869158)
    runs = ablation.run_ablation(nano_host, validate(request, nano_host.model_keys))
    read = {run.encoders: run.score.all_exact for run in runs}
    assert read == {
        ("text_encoder", "text_encoder_2"): True,
        ("text_encoder",): True,
        ("text_encoder_2",): False,
    }


def test_a_model_with_one_text_encoder_is_refused_naming_the_model():
    with pytest.raises(InvalidInput, match=r"model: FLUX\.2 \[klein\] 4B has one text encoder"):
        ablation.check_two_encoders(get_spec("klein"))
