"""LoRA adapters: choosing, fetching and checking, loading into the transformer, scales, unloading, two at
once, hot-swapping on a compiled transformer, and several images per run.

Hub LoRAs come from `hub_emulator`, a local server that answers the Hub routes `huggingface_hub` uses, so
the real fetch code runs (model info with file sizes and the card's `base_model`, then the download).
The LoRAs are built for the tiny models' architecture with random weights (`make_lora`).
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl

import numpy as np
import pytest
import torch

from flux_demo import generation, loras, metadata, permalink
from flux_demo.models import get_spec
from flux_demo.pipelines import ModelHost
from flux_demo.pipelines.adapters import MAX_CACHED_ADAPTERS
from flux_demo.validation import MAX_SEED, GenerationRequest, InvalidInput, validate
from tests.helpers import hub_emulator, make_lora

MODELS = ("tiny-schnell", "tiny-dev", "tiny-klein")


@pytest.fixture(scope="module")
def hub(tmp_path_factory, host):
    """Repositories on a local stand-in for the Hub, and `huggingface_hub` pointed at it (online, with
    its cache under the test's temporary folder)."""
    import huggingface_hub.constants as hub_constants

    root = tmp_path_factory.mktemp("hub")
    transformer = host.get_pipeline("tiny-schnell").transformer
    make_lora(transformer, root / "test" / "style-a", seed=1)
    make_lora(transformer, root / "test" / "style-b", seed=2, rank=8)
    make_lora(transformer, root / "test" / "style-c", seed=3)
    for seed in range(4, 4 + MAX_CACHED_ADAPTERS):
        make_lora(transformer, root / "test" / f"extra-{seed}", seed=seed)
    make_lora(
        transformer, root / "test" / "for-klein", seed=5, base_model="black-forest-labs/FLUX.2-klein-4B"
    )
    make_lora(transformer, root / "test" / "no-base", seed=6, base_model=None)
    make_lora(transformer, root / "test" / "two-files", seed=7, weight_name="one.safetensors")
    make_lora(transformer, root / "test" / "two-files", seed=8, weight_name="two.safetensors")
    pickled = root / "test" / "pickle-only"
    pickled.mkdir(parents=True)
    torch.save({"lora": torch.zeros(1)}, pickled / "pytorch_lora_weights.bin")
    (pickled / "README.md").write_text("---\nbase_model: tiny-flux1\n---\n")
    with pytest.MonkeyPatch.context() as patch, hub_emulator(root) as endpoint:
        patch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
        patch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path_factory.mktemp("hub-cache")))
        yield endpoint


@pytest.fixture(scope="module")
def lora_host(hub, settings):
    """A host of its own (adapters are per host) that fetches Hub LoRAs from the stand-in."""
    host = ModelHost(settings, MODELS)
    host.lora_files.endpoint = hub
    return host


def request(*lora_pairs, seed=3, model="tiny-schnell", num_images=1, steps=2):
    guidance = get_spec(model).default_guidance
    raw = GenerationRequest(
        "a lighthouse", model, 256, 256, steps, guidance, seed, False, lora_pairs, num_images
    )
    return validate(raw, MODELS, hub_loras=True)


def pixels(result) -> np.ndarray:
    return np.asarray(result.image.convert("RGB")).astype(np.int16)


def run(host, *lora_pairs, **kwargs) -> np.ndarray:
    return pixels(generation.generate(host, request(*lora_pairs, **kwargs)))


# --- loading, scales, unloading --------------------------------------------------------------------


def test_a_lora_changes_the_image_and_scale_zero_gives_the_base_pixels(lora_host):
    base = run(lora_host)
    styled = run(lora_host, ("test/style-a", 1.0))
    assert np.abs(styled - base).mean() > 1
    assert np.array_equal(run(lora_host, ("test/style-a", 0.0)), base)


def test_a_run_without_lora_after_one_gives_the_base_pixels(lora_host):
    base = run(lora_host, seed=11)
    run(lora_host, ("test/style-b", 1.0), seed=11)
    assert np.array_equal(run(lora_host, seed=11), base)  # adapters disabled: the base weights run untouched


def test_two_loras_apply_together_each_at_its_own_scale(lora_host):
    a = run(lora_host, ("test/style-a", 1.0))
    b = run(lora_host, ("test/style-b", 1.0))
    both = run(lora_host, ("test/style-a", 1.0), ("test/style-b", 1.0))
    assert np.abs(both - a).mean() > 1 and np.abs(both - b).mean() > 1
    assert np.array_equal(run(lora_host, ("test/style-a", 1.0), ("test/style-b", 0.0)), a)
    assert np.array_equal(run(lora_host, ("test/style-a", 0.0), ("test/style-b", 1.0)), b)


def test_the_details_and_the_png_record_the_loras(lora_host):
    result = generation.generate(lora_host, request(("test/style-a", 0.8)))
    assert result.details["loras"] == [("test/style-a", 0.8)]
    assert result.image.info["loras"] == "test/style-a:0.8"


def test_adapters_stay_loaded_for_later_runs_a_few_per_model(lora_host):
    adapters = lora_host.adapters("tiny-schnell")
    run(lora_host, ("test/style-c", 1.0))
    loaded = dict(adapters.cached)
    run(lora_host, ("test/style-c", 0.5))
    assert dict(adapters.cached) == loaded  # the same file: nothing loaded again
    for seed in range(4, 4 + MAX_CACHED_ADAPTERS):
        run(lora_host, (f"test/extra-{seed}", 1.0))
    assert len(adapters.cached) == MAX_CACHED_ADAPTERS
    assert set(lora_host.get_pipeline("tiny-schnell").transformer.peft_config) == set(adapters.cached)


# --- refusals, each naming the field ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("test/pickle-only", "test/pickle-only has no .safetensors file"),
        ("test/for-klein", "test/for-klein is a LoRA for black-forest-labs/FLUX.2-klein-4B"),
        ("test/no-base", "model card names no base_model"),
        ("test/two-files", "several .safetensors files; name one as test/two-files/FILE: one.safetensors"),
        ("test/two-files/three.safetensors", "test/two-files has no file three.safetensors"),
        ("test/missing", "could not read test/missing from the Hub"),
    ],
)
def test_a_hub_lora_that_does_not_fit_is_refused_naming_the_field(lora_host, reference, reason):
    with pytest.raises(InvalidInput, match=reason) as refused:
        generation.generate(lora_host, request((reference, 1.0)))
    assert refused.value.field == "lora" and str(refused.value).startswith("lora: ")


def test_a_named_file_of_a_repository_with_several_is_loaded(lora_host):
    assert np.abs(run(lora_host, ("test/two-files/two.safetensors", 1.0)) - run(lora_host)).mean() > 1


def test_a_lora_over_the_size_cap_is_refused_before_download(lora_host, monkeypatch):
    monkeypatch.setattr(lora_host.lora_files, "max_bytes", 1000)
    with pytest.raises(
        InvalidInput, match=r"lora: .*pytorch_lora_weights\.safetensors is 0 MB; .* at most 0 MB"
    ):
        generation.generate(lora_host, request(("test/style-a", 1.0)))


@pytest.mark.parametrize(
    ("pairs", "model", "hub", "message"),
    [
        ((("nano-inverted-sign", 1),), "tiny-schnell", True, "lora: nano inverted sign is for nano-schnell"),
        ((("no-such-lora", 1),), "tiny-schnell", True, "lora: unknown LoRA 'no-such-lora'"),
        ((("owner/name", 1),), "tiny-schnell", False, "lora: this server loads only its curated LoRAs"),
        ((("owner/name/weights.bin", 1),), "tiny-schnell", True, "lora: only .safetensors LoRA files"),
        ((("owner/../etc", 1),), "tiny-schnell", True, "lora: must be a curated LoRA"),
        ((("owner/name", 2.5),), "tiny-schnell", True, r"lora_scale: must be from 0 to 2, got 2\.5"),
        ((("owner/name", 1), ("owner/name", 1)), "tiny-schnell", True, "lora_2: owner/name is chosen twice"),
        ((("", 1), ("owner/name", "x")), "tiny-schnell", True, "lora_2_scale: must be a number"),
        ((("a" * 300, 1),), "tiny-schnell", True, "lora: must be at most 200 characters"),
    ],
)
def test_bad_lora_choices_are_refused_before_any_work(pairs, model, hub, message):
    raw = GenerationRequest("a fox", model, 256, 256, 2, 0.0, 1, False, pairs)
    with pytest.raises(InvalidInput, match=message):
        validate(raw, (*MODELS, "nano-schnell"), hub_loras=hub)


def test_a_hub_address_is_read_as_its_repository_and_file():
    raw = GenerationRequest(
        "a fox",
        "tiny-schnell",
        256,
        256,
        2,
        0.0,
        1,
        False,
        (("https://huggingface.co/owner/name/blob/main/dir/w.safetensors", 0.5),),
    )
    (choice,) = validate(raw, MODELS, hub_loras=True).loras
    assert (choice.repo_id, choice.weight_name, choice.reference) == (
        "owner/name",
        "dir/w.safetensors",
        "owner/name/dir/w.safetensors",
    )


def test_every_curated_lora_fits_registered_models_and_says_its_licence():
    for spec in loras.LORAS.values():
        assert spec.fits and all(get_spec(key) for key in spec.fits)
        assert spec.license and spec.weight_name.endswith(".safetensors")
        assert bool(spec.repo_id) != bool(spec.folder)  # on the Hub, or shipped here


# --- several images per run -------------------------------------------------------------------------


def test_several_images_are_one_run_whose_image_i_is_the_run_of_seed_plus_i(host):
    batch = generation.generate(host, request(seed=40, num_images=3))
    assert [image.info["seed"] for image in batch.images] == ["40", "41", "42"]
    assert batch.details["seeds"] == [40, 41, 42] and batch.details["num_images"] == 3
    for i, image in enumerate(batch.images):
        alone = np.asarray(generation.generate(host, request(seed=40 + i)).image).astype(np.int16)
        difference = np.abs(np.asarray(image).astype(np.int16) - alone)
        # Batched matrix products round differently from single ones: at most a level here and there.
        assert difference.max() <= 2 and difference.mean() < 0.05


def test_the_image_count_and_the_last_seed_are_checked():
    with pytest.raises(InvalidInput, match=r"num_images: must be an integer from 1 to 4, got 5"):
        request(num_images=5)
    with pytest.raises(InvalidInput, match=rf"seed: must be an integer from 0 to {MAX_SEED - 2}"):
        request(seed=MAX_SEED, num_images=3)
    assert request(seed=MAX_SEED - 2, num_images=3).seeds[-1] == MAX_SEED


def test_the_gpu_duration_and_the_rate_limit_cost_scale_with_the_image_count():
    from flux_demo.pipelines import Job
    from flux_demo.pipelines.runner import gpu_seconds
    from flux_demo.ui.endpoints import one_image

    def seconds(n):
        raw = GenerationRequest("a fox", "dev", 1024, 1024, 28, 3.5, 1, False, num_images=n)
        return gpu_seconds(None, Job(validate(raw, ("dev",))))

    assert seconds(4) > 3 * seconds(1) - 30  # the fixed part (encoding, decoding) is paid once
    values = {"model": "tiny-schnell", "steps": 4, "width": 1024, "height": 1024}
    assert (
        one_image({**values, "num_images": 4})
        == 4 * one_image(values)
        == 4 * one_image({**values, "num_images": 1})
    )


# --- links and PNGs ---------------------------------------------------------------------------------


def test_a_link_and_a_png_restore_the_loras_and_the_image_count():
    valid = request(("owner/style", 0.8), ("other/x", 1.25), seed=7, num_images=2)
    settings = valid.settings()
    query = permalink.link_query(settings)
    assert "loras=owner%2Fstyle%3A0.8%2Cother%2Fx%3A1.25" in query and "num_images=2" in query
    values, problems = permalink.parse_settings(dict(parse_qsl(query)), MODELS)
    assert problems == []
    assert values["loras"] == [("owner/style", 0.8), ("other/x", 1.25)] and values["num_images"] == 2
    text = metadata.png_text(**settings)
    assert text["loras"] == "owner/style:0.8,other/x:1.25" and text["num_images"] == "2"
    assert permalink.parse_settings(text, MODELS)[0]["loras"] == values["loras"]


def test_bad_lora_values_in_a_link_are_dropped_with_a_note():
    values, problems = permalink.parse_settings({"loras": "owner/style:9", "num_images": "7"}, MODELS)
    assert "loras" not in values and "num_images" not in values
    assert [str(p) for p in problems] == [
        "Ignored loras='owner/style:9': must be from 0 to 2, got 9",
        "Ignored num_images='7': must be an integer from 1 to 4, got 7",
    ]


def test_a_restored_lora_run_fills_the_picker():
    from flux_demo.ui.share import field_updates

    updates = field_updates({"loras": [("nano-inverted-sign", 0.5)], "num_images": 3}, MODELS)
    assert (updates["lora"], updates["lora_scale"], updates["num_images"]) == ("nano-inverted-sign", 0.5, 3)
    assert (updates["lora_2"], updates["lora_2_scale"]) == ("", 1.0)  # a second LoRA from before is cleared


# --- a compiled transformer: hot-swapping without recompiling ---------------------------------------


@pytest.mark.slow
def test_a_compiled_transformer_swaps_loras_and_scales_without_recompiling(hub, settings):
    """With FLUX_DEMO_COMPILE=regional, LoRAs live in hot-swapped slots: once each slot and the no-LoRA
    state have been compiled, a new LoRA or a new scale adds no graph (torch._dynamo's count), and the
    pixels are those of the same request before."""
    from torch._dynamo.utils import counters

    compiled = dataclasses.replace(settings, speed=dataclasses.replace(settings.speed, compile="regional"))
    host = ModelHost(compiled, ("tiny-schnell",))
    host.lora_files.endpoint = hub
    assert host.get("tiny-schnell").speed["compile"].startswith("regional")

    def graphs():
        return counters["stats"]["unique_graphs"]

    a = run(host, ("test/style-a", 1.0))
    both = run(host, ("test/style-a", 1.0), ("test/style-c", 0.7))
    base = run(host)
    warm = graphs()
    b = run(host, ("test/style-b", 1.0))  # a new LoRA of another rank, swapped into slot 0
    assert graphs() == warm
    assert np.array_equal(run(host, ("test/style-a", 1.0)), a)
    assert np.array_equal(run(host, ("test/style-a", 1.0), ("test/style-c", 0.7)), both)
    assert np.array_equal(run(host, ("test/style-a", 0.0)), base)  # scale 0: the base pixels
    assert np.array_equal(run(host), base)
    assert graphs() == warm and np.abs(b - a).mean() > 1
