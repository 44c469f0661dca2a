"""`create_demo` and its `ModelHost`: each demo owns its process state, so two demos never interfere."""

import contextlib
import dataclasses
from pathlib import Path
from types import SimpleNamespace

from gradio.context import LocalContext
from PIL import Image

from flux_demo.ui import create_demo

# One cheap /generate call: prompt, model, width, height, steps, guidance, seed, randomize_seed.
CALL = ("a fox", "tiny-schnell", 256, 256, 1, 0.0, 1, False)


def handler(demo, api_name: str):
    """The Python function behind one of the demo's endpoints."""
    return next(fn.fn for fn in demo.fns.values() if fn.api_name == api_name)


def served_models(demo) -> list[str]:
    """The model keys the demo's model dropdown offers."""
    config = demo.get_config_file()
    dropdown = next(c for c in config["components"] if c["props"].get("elem_id") == "model")
    return [value for _label, value in dropdown["props"]["choices"]]


@contextlib.contextmanager
def visitor(address: str):
    """Run the block as if a web request from `address` had called the handler."""
    token = LocalContext.request.set(SimpleNamespace(headers={}, client=SimpleNamespace(host=address)))
    try:
        yield
    finally:
        LocalContext.request.reset(token)


def test_two_demos_in_one_process_keep_their_own_models_limits_and_loaded_pipelines(settings):
    limited = dataclasses.replace(settings, models=("tiny-schnell", "tiny-dev"), rate_limit="1/minute")
    unlimited = dataclasses.replace(settings, models=("tiny-schnell",), rate_limit=None)
    demo_a = create_demo(dataclasses.replace(limited, preload=False))
    demo_b = create_demo(dataclasses.replace(unlimited, preload=False))

    assert demo_a.services is not demo_b.services
    assert demo_a.services.backend is not demo_b.services.backend
    assert served_models(demo_a) == ["tiny-schnell", "tiny-dev"]
    assert served_models(demo_b) == ["tiny-schnell"]
    assert demo_a.services.limiter is not None and demo_b.services.limiter is None

    generate_a, generate_b = handler(demo_a, "generate"), handler(demo_b, "generate")
    with visitor("203.0.113.7"):
        image, seed, _details, _gallery = list(generate_a(*CALL))[-1]  # after the step previews
        assert Path(image).name == f"flux-tiny-schnell-{seed}.png"  # a download says what it is
        with Image.open(image) as png:
            assert png.size == (256, 256) and png.text["seed"] == str(seed)
        # Loading on one host leaves the other's cache empty.
        assert demo_a.services.backend.is_loaded("tiny-schnell")
        assert not demo_b.services.backend.is_loaded("tiny-schnell")
        # Admission is per demo: the same visitor is limited on one and not on the other.
        assert demo_a.services.admission.admit("203.0.113.7", 1.0, 0) is None
        demo_a.services.admission.joined("203.0.113.7")
        refused = demo_a.services.admission.admit("203.0.113.7", 1.0, 0)
        assert refused is not None and refused.code == "rate"
        for _ in range(2):
            assert demo_b.services.admission.admit("203.0.113.7", 1.0, 0) is None
            demo_b.services.admission.joined("203.0.113.7")
            list(generate_b(*CALL))
    assert demo_b.services.backend.is_loaded("tiny-schnell")
    assert demo_a.services.backend.get_pipeline("tiny-schnell") is not demo_b.services.backend.get_pipeline(
        "tiny-schnell"
    )


def test_a_demo_built_on_a_given_host_serves_from_it(demo, host):
    assert demo.services.backend is host
    assert served_models(demo) == list(host.model_keys)
