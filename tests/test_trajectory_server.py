"""The "How FLUX works" endpoints through the real server: /trajectory, /word_maps, /encoder_ablation, links
to the tab, and the documented examples."""

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from flux_demo import permalink
from flux_demo.models import get_spec
from tests.helpers import doc_examples, run_doc_example

ARGS = dict(
    prompt='A sign that says "OPEN"', model="tiny-dev", seed=3, steps=5, guidance=3.5, width=256, height=256
)


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_trajectory_returns_one_image_per_step_and_the_same_final_image_as_generate(client, host):
    image_path, steps, details = client.predict(**ARGS, api_name="/trajectory")
    assert len(steps) == 5 and all(Image.open(step["image"]).size == (256, 256) for step in steps)
    assert steps[0]["caption"].startswith("1/5 · t 1.000 → ")  # the chapter's t (= σ), not 1000·σ
    assert len(details["sigmas"]) == 6 and details["sigmas"][0] == 1.0 and details["sigmas"][-1] == 0.0
    assert details["timesteps"][0] == pytest.approx(1000.0)
    assert details["image_tokens"] == 16 * 16
    transformer = host.get_pipeline("tiny-dev").transformer
    assert details["architecture"]["double_blocks"] == len(transformer.transformer_blocks)
    assert details["architecture"]["single_blocks"] == len(transformer.single_transformer_blocks)
    views = details["text_tokens"]
    assert [view["limit"] for view in views] == [77, get_spec("tiny-dev").max_sequence_length]
    assert [view["attended"] for view in views] == [False, True]  # CLIP pooled, T5 attended
    generated, _, _ = client.predict(
        **{**ARGS, "randomize_seed": False, "previews": False}, api_name="/generate"
    )
    assert np.array_equal(pixels(image_path), pixels(generated))


def test_trajectory_rejects_bad_steps_naming_the_field(client):
    with pytest.raises(AppError, match="steps"):
        client.predict("a fox", "tiny-schnell", 1, 40, 0.0, 256, 256, api_name="/trajectory")


def test_word_maps_returns_one_map_per_chosen_word(client):
    image_path, overlays, details = client.predict(**ARGS, words="sign, OPEN", api_name="/word_maps")
    assert [item["caption"] for item in overlays] == ["sign", "OPEN"]
    assert all(Image.open(item["image"]).size == (256, 256) for item in overlays)
    assert details["grid"] == [16, 16]
    grid = np.asarray(details["word_maps"]["OPEN"])
    assert grid.shape == (16, 16) and grid.min() >= 0 and grid.max() <= 1
    generated, _, _ = client.predict(
        **{**ARGS, "randomize_seed": False, "previews": False}, api_name="/generate"
    )
    assert np.array_equal(pixels(image_path), pixels(generated))


def test_word_maps_refuses_words_the_prompt_does_not_have(client):
    with pytest.raises(AppError, match="words: 'CLOSED' is not a word of the prompt"):
        client.predict(**ARGS, words="CLOSED", api_name="/word_maps")


def test_encoder_ablation_runs_both_encoders_then_each_alone_and_scores_the_text(client):
    gallery, table, details = client.predict(**ARGS, api_name="/encoder_ablation")
    assert len(gallery) == 3
    assert [row[0] for row in table["data"]] == [
        "CLIPTextModel + T5EncoderModel",
        "CLIPTextModel",
        "T5EncoderModel",
    ]
    assert all(run["CER"] is None or 0 <= run["CER"] <= 1 for run in details["runs"])


def test_encoder_ablation_needs_two_encoders_and_quoted_text(client):
    with pytest.raises(AppError, match=r"model: .* has one text encoder"):
        client.predict(
            **{**ARGS, "model": "tiny-klein", "steps": 4, "guidance": 1.0}, api_name="/encoder_ablation"
        )
    with pytest.raises(AppError, match="prompt: put the text to render in quotes"):
        client.predict(**{**ARGS, "prompt": "a fox"}, api_name="/encoder_ablation")


def test_every_tab_can_be_linked(demo):
    """`?tab=NAME` is accepted for every tab the app has, `how` included."""
    import gradio as gr

    (tabs,) = [
        block for block in demo.blocks.values() if isinstance(block, gr.Tabs) and block.elem_id == "tabs"
    ]
    tab_ids = [tab.id for tab in tabs.children]
    assert "how" in tab_ids
    assert set(tab_ids) == set(permalink.TABS)
    values, problems = permalink.parse_settings({"tab": "how", "model": "tiny-dev"}, ("tiny-dev",))
    assert values["tab"] == "how" and not problems


def test_docs_preview_and_trajectory_examples_run_against_the_app(server_url):
    examples = doc_examples("/trajectory") + [
        code for code in doc_examples("/generate") if "previews=True" in code
    ]
    assert len(examples) == 2
    for code in examples:
        namespace = run_doc_example(code, server_url)
        if "frames" in namespace:
            assert len(namespace["frames"]) == 28
        else:
            assert len(namespace["steps"]) == 4 and namespace["details"]["sigmas"][-1] == 0.0


def test_docs_word_map_and_ablation_examples_run_against_the_app(server_url):
    (word_example,) = doc_examples("/word_maps")
    namespace = run_doc_example(word_example, server_url)
    assert [item["caption"] for item in namespace["overlays"]] == ["fox", "FLUX"]
    (ablation_example,) = doc_examples("/encoder_ablation")
    namespace = run_doc_example(ablation_example, server_url)
    assert len(namespace["table"]["data"]) == 3
