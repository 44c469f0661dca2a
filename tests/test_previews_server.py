"""Live previews through the real server: gradio_client sees one frame per step, then the final outputs."""

import numpy as np
from PIL import Image

ARGS = dict(
    prompt="A cute robot reading a book",
    model="tiny-dev",
    width=256,
    height=256,
    steps=5,
    guidance=3.5,
    seed=11,
    randomize_seed=False,
)


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_generate_with_previews_streams_one_frame_per_step_then_the_same_final_image(client):
    job = client.submit(**ARGS, previews=True, api_name="/generate")
    final_path, seed, details = job.result()
    outputs = job.outputs()
    assert len(outputs) == ARGS["steps"] + 1
    frames = [output[0] for output in outputs[:-1]]
    assert all(max(Image.open(frame).size) <= 256 for frame in frames)  # small WebP frames
    assert len({pixels(frame).tobytes() for frame in frames}) > 1
    plain_path, plain_seed, _ = client.predict(**ARGS, previews=False, api_name="/generate")
    assert seed == plain_seed == 11
    assert np.array_equal(pixels(final_path), pixels(plain_path))
    assert Image.open(final_path).text["seed"] == "11"
    assert details["steps"] == ARGS["steps"]


def test_generate_without_previews_sends_only_the_final_outputs(client):
    job = client.submit(**ARGS, previews=False, api_name="/generate")
    job.result()
    assert len(job.outputs()) == 1


def test_previews_must_be_true_or_false(client):
    import pytest
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="previews"):
        client.predict(**ARGS, previews="yes", api_name="/generate")


def test_compare_with_previews_streams_the_running_model_then_the_same_results(client):
    args = dict(prompt="a fox", models=["tiny-schnell", "tiny-klein"], seed=4, width=256, height=256)
    job = client.submit(**args, previews=True, api_name="/compare")
    gallery, table, _pair = job.result()
    captions = [item["caption"] for output in job.outputs() for item in output[0]]
    assert [c for c in captions if "/4" in c] == [
        *(f"FLUX.1 [schnell] (offline tiny preview) · {i}/4" for i in range(1, 5)),
        *(f"FLUX.2 [klein] 4B (offline tiny preview) · {i}/4" for i in range(1, 5)),
    ]
    plain, _table, _pair = client.predict(**args, previews=False, api_name="/compare")
    assert [row[1] for row in table["data"]] == ["ok", "ok"]
    for streamed, alone in zip(gallery, plain, strict=True):
        assert np.array_equal(pixels(streamed["image"]), pixels(alone["image"]))
