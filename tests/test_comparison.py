"""Model comparison on the three offline tiny models: core, server and page."""

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from flux_demo import comparison, generation
from flux_demo.validation import GenerationRequest, validate

MODELS = ("tiny-schnell", "tiny-dev", "tiny-klein")
# Edited settings that keep each model's guidance but run few steps: what is checked here does not
# depend on the step count, and tiny-dev's recommended 28 steps cost seconds on a CPU.
FEW_STEPS = {"tiny-schnell": (1, 0.0), "tiny-dev": (2, 3.5), "tiny-klein": (1, 1.0)}


def test_each_model_is_planned_with_its_recommended_settings():
    requests = comparison.plan_requests("a red fox", MODELS, [7], 320, 256, {}, MODELS)
    assert [(r.model, r.steps, r.guidance) for r in requests] == [
        ("tiny-schnell", 4, 0.0),
        ("tiny-dev", 28, 3.5),
        ("tiny-klein", 4, 1.0),
    ]


def test_three_way_comparison_returns_three_images_of_the_requested_size_with_timings(host):
    requests = comparison.plan_requests("a red fox", MODELS, [7], 320, 256, FEW_STEPS, MODELS)
    runs = list(comparison.run_all(host, requests))
    assert [run.model for run in runs] == list(MODELS)
    for run in runs:
        assert run.ok, run.error
        assert run.result.image.size == (320, 256)
        assert run.result.details["seconds"] > 0
        assert run.result.details["seconds_per_step"] > 0
    assert [run.request.steps for run in runs] == [1, 2, 1]


def test_comparison_image_equals_generate_with_the_same_settings(host):
    (run,) = comparison.run_all(
        host, comparison.plan_requests("a lighthouse", ["tiny-dev"], [5], 256, 256, FEW_STEPS, MODELS)
    )
    direct = generation.generate(
        host, validate(GenerationRequest("a lighthouse", "tiny-dev", 256, 256, 2, 3.5, 5), MODELS)
    )
    assert np.array_equal(np.asarray(run.result.image), np.asarray(direct.image))


def test_edited_settings_replace_the_recommended_ones():
    requests = comparison.plan_requests("a fox", ["tiny-dev"], [1], 256, 256, {"tiny-dev": (6, 2.5)}, MODELS)
    assert (requests[0].steps, requests[0].guidance) == (6, 2.5)


def test_a_model_that_fails_to_load_is_reported_while_the_others_run(fresh_host, monkeypatch):
    real_get = fresh_host.get

    def get(key):
        if key == "tiny-dev":
            raise OSError("You are trying to access a gated repo. Make sure to have access to it.")
        return real_get(key)

    monkeypatch.setattr(fresh_host, "get", get)
    requests = comparison.plan_requests("a fox", MODELS, [1], 256, 256, FEW_STEPS, MODELS)
    runs = list(comparison.run_all(fresh_host, requests))
    assert [run.ok for run in runs] == [True, False, True]
    assert "FLUX.1 [dev]" in str(runs[1].error) and "gated" in str(runs[1].error)


def test_one_progress_bar_covers_every_step_of_every_model(host):
    seen = []
    overrides = {"tiny-schnell": (1, 0.0), "tiny-dev": (3, 3.5), "tiny-klein": (2, 1.0)}
    requests = comparison.plan_requests("a fox", MODELS, [1], 256, 256, overrides, MODELS)
    list(comparison.run_all(host, requests, progress=lambda value, desc="": seen.append((value, str(desc)))))
    steps = [value for value, _ in seen if isinstance(value, tuple)]
    assert steps[-1] == (6, 6)
    assert [done for done, _ in steps] == sorted(done for done, _ in steps)
    assert any(desc.startswith("Model 2 of 3") and "step 3 of 3" in desc for _, desc in seen)


def test_quoted_text_is_scored_by_the_typography_scorer_and_random_weights_score_badly(host):
    requests = comparison.plan_requests(
        'A sign that says "OPEN"', ["tiny-schnell"], [1], 256, 256, FEW_STEPS, MODELS
    )
    (run,) = comparison.run_all(host, requests)
    assert run.score is not None
    assert run.score.targets[0].target == "OPEN"
    assert not run.score.all_exact


def test_compare_endpoint_runs_three_models(client):
    gallery, table, pair = client.predict(
        'A shop sign that says "BAKERY"', list(MODELS), 11, 256, 256, api_name="/compare"
    )
    assert len(gallery) == 3
    assert all(Image.open(item["image"]).size == (256, 256) for item in gallery)
    assert [row[1] for row in table["data"]] == ["ok", "ok", "ok"]
    assert len(pair) == 2


def test_compare_endpoint_rejects_an_unknown_model_and_keeps_serving(client):
    with pytest.raises(AppError, match=r"models: .*not in the list of choices"):
        client.predict("a fox", ["tiny-schnell", "nope"], 1, 256, 256, api_name="/compare")
    gallery, _table, _pair = client.predict("a fox", ["tiny-schnell"], 1, 256, 256, api_name="/compare")
    assert len(gallery) == 1


def test_seed_sweep_gives_a_seeds_by_models_grid(client):
    gallery, table = client.predict(
        "a fox", ["tiny-schnell", "tiny-klein"], 100, 3, 256, 256, api_name="/seed_sweep"
    )
    assert len(gallery) == 6
    assert [row[0] for row in table["data"]] == [100, 100, 101, 101, 102, 102]
    first_row = {np.asarray(Image.open(gallery[i]["image"])).tobytes() for i in (0, 2, 4)}
    assert len(first_row) == 3  # different seeds, different images


def test_visitor_compares_models_and_sees_images_and_the_slider(page, server_url):
    page.goto(server_url)
    page.get_by_role("tab", name="Compare", exact=True).click()
    page.locator("#compare-run").click()
    page.locator("#compare-gallery img").nth(2).wait_for(state="visible", timeout=90_000)
    assert page.locator("#compare-gallery img").count() >= 3
    page.locator("#compare-slider img").first.wait_for(state="visible", timeout=30_000)
    assert page.locator("#compare-slider img").count() >= 2


def test_gpu_call_arguments_can_cross_into_a_zerogpu_worker(host, monkeypatch):
    """ZeroGPU pickles the GPU function's arguments into its worker; closures would fail there."""
    from multiprocessing.reduction import ForkingPickler

    from flux_demo.pipelines import runner

    real_run_job = runner.run_job
    pickled = []

    def pickling_run_job(*args):
        pickled.append(len(ForkingPickler.dumps(args)))
        return real_run_job(*args)

    monkeypatch.setattr(runner, "run_job", pickling_run_job)
    requests = comparison.plan_requests(
        "a fox", ["tiny-schnell", "tiny-klein"], [1], 256, 256, FEW_STEPS, MODELS
    )
    import gradio as gr

    runs = list(comparison.run_all(host, requests, progress=gr.Progress()))  # what the UI passes
    assert all(run.ok for run in runs), [run.error for run in runs]
    assert len(pickled) == 2
