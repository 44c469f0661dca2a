"""/trajectory through the real server, and the documented examples of it and of live previews."""

import numpy as np
from PIL import Image

from flux_demo.models import get_spec
from tests.helpers import doc_examples, run_doc_example


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_trajectory_returns_one_image_per_step_and_the_same_final_image_as_generate(client, host):
    args = dict(
        prompt='A sign that says "OPEN"',
        model="tiny-dev",
        seed=3,
        steps=5,
        guidance=3.5,
        width=256,
        height=256,
    )
    image_path, steps, details = client.predict(**args, api_name="/trajectory")
    assert len(steps) == 5 and all(Image.open(step["image"]).size == (32, 32) for step in steps)
    assert "σ=" in steps[0]["caption"]
    assert len(details["sigmas"]) == 6 and details["sigmas"][0] == 1.0 and details["sigmas"][-1] == 0.0
    assert details["image_tokens"] == 16 * 16
    transformer = host.get_pipeline("tiny-dev").transformer
    assert details["architecture"]["double_blocks"] == len(transformer.transformer_blocks)
    assert details["architecture"]["single_blocks"] == len(transformer.single_transformer_blocks)
    assert [view["limit"] for view in details["text_tokens"]] == [
        77,
        get_spec("tiny-dev").max_sequence_length,
    ]
    generated, _, _ = client.predict(**args, randomize_seed=False, previews=False, api_name="/generate")
    assert np.array_equal(pixels(image_path), pixels(generated))


def test_trajectory_rejects_bad_steps_naming_the_field(client):
    import pytest
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="steps"):
        client.predict("a fox", "tiny-schnell", 1, 40, 0.0, 256, 256, api_name="/trajectory")


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
