"""The model's shape, beside the full-size one it stands for.

`shape` reads a transformer configuration (the served model's, from the loaded module or, before any run,
from its checkpoint's transformer/config.json) and counts parameters by building the model on PyTorch's
meta device, which allocates nothing. `published.json` holds the full-size configurations (FLUX.1, FLUX.2
[klein] 4B) with their sources, so an offline visitor sees the real model's figures next to the nano ones.
`loaded` reads a loaded pipeline: parameters per part and which components another model shares.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flux_demo.config import Settings
from flux_demo.models import ModelSpec, get_spec
from flux_demo.pipelines import Replica

PUBLISHED_FILE = Path(__file__).with_name("published.json")


@lru_cache(maxsize=1)
def _published() -> dict:
    return json.loads(PUBLISHED_FILE.read_text(encoding="utf-8"))


def published(spec: ModelSpec) -> dict:
    """The full-size architecture served by `spec`'s pipeline class (name, sources, configs)."""
    return _published()[spec.pipeline_class]


def checkpoint_source(settings: Settings, key: str) -> str:
    """Where `key`'s checkpoint lives: its offline folder (built on first use) or its Hub repo id."""
    spec = get_spec(key)
    if spec.is_offline:
        from flux_demo.offline import local_source

        return local_source(spec.offline_variant, settings.tiny_dir)
    return spec.repo_id


def transformer_config(settings: Settings, key: str) -> dict | None:
    """The served model's transformer configuration, read from its checkpoint's config file (no weights
    read, whichever backend serves it); None where the checkpoint is not on this machine."""
    import diffusers

    spec = get_spec(key)
    model_class = getattr(diffusers, published(spec)["transformer_class"])
    try:
        config = model_class.load_config(checkpoint_source(settings, key), subfolder="transformer")
    except OSError:  # a Hub checkpoint that is not downloaded: the page shows the published figures
        return None
    return {k: v for k, v in config.items() if not k.startswith("_")}


@lru_cache(maxsize=16)
def _counts(class_name: str, config_json: str) -> dict[str, int]:
    import diffusers
    import torch

    with torch.device("meta"):
        model = getattr(diffusers, class_name).from_config(json.loads(config_json))
    double, single = model.transformer_blocks, model.single_transformer_blocks
    total = parameters(model)
    return {
        "transformer": total,
        "double_block": parameters(double[0]) if len(double) else 0,
        "single_block": parameters(single[0]) if len(single) else 0,
        "double_blocks": sum(parameters(b) for b in double),
        "single_blocks": sum(parameters(b) for b in single),
        "embedders_and_output": total - sum(parameters(b) for b in (*double, *single)),
    }


def shape(spec: ModelSpec, config: dict) -> dict:
    """Blocks, width, heads, RoPE axes and parameter counts of a transformer configuration."""
    class_name = published(spec)["transformer_class"]
    full = config
    heads, head_dim = full["num_attention_heads"], full["attention_head_dim"]
    axes = published(spec)["rope_axes"]
    return {
        "double_blocks": full["num_layers"],
        "single_blocks": full["num_single_layers"],
        "hidden_size": heads * head_dim,
        "heads": heads,
        "head_dim": head_dim,
        "text_width": full["joint_attention_dim"],
        "pooled_width": full.get("pooled_projection_dim"),
        "guidance_embeds": bool(full.get("guidance_embeds", False)),
        "rope": [
            {"axis": axis, "dims": dims} for axis, dims in zip(axes, full["axes_dims_rope"], strict=True)
        ],
        "parameters": _counts(class_name, json.dumps(config, sort_keys=True)),
    }


@lru_cache(maxsize=4)
def encoder_parameters(pipeline_class: str) -> dict[str, int]:
    """Parameters of the full-size text encoders, counted from their published configurations."""
    import torch
    import transformers

    counts = {}
    for name, encoder in _published()[pipeline_class]["encoders"].items():
        model_class = getattr(transformers, encoder["class"])
        config = model_class.config_class(**encoder["config"])
        with torch.device("meta"):
            counts[name] = parameters(model_class(config))
    return counts


def parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def loaded(host: Replica, key: str) -> dict:
    """The loaded model's shape: transformer blocks, width, heads, parameters per part, the text encoders
    and the VAE, and which components are the same objects as in another loaded model."""
    pipe = host.get_pipeline(key)
    transformer = pipe.transformer
    config = transformer.config
    double, single = transformer.transformer_blocks, transformer.single_transformer_blocks
    double_params = sum(parameters(b) for b in double)
    single_params = sum(parameters(b) for b in single)
    total = parameters(transformer)
    encoders = [name for name in ("text_encoder", "text_encoder_2") if getattr(pipe, name, None) is not None]
    return {
        "transformer": type(transformer).__name__,
        "double_blocks": len(double),
        "single_blocks": len(single),
        "heads": config.num_attention_heads,
        "head_dim": config.attention_head_dim,
        "hidden_size": config.num_attention_heads * config.attention_head_dim,
        "guidance_embeds": bool(config.get("guidance_embeds", False)),
        "parameters": {
            "transformer": total,
            "double_blocks": double_params,
            "single_blocks": single_params,
            "embedders_and_output": total - double_params - single_params,
            **{name: parameters(getattr(pipe, name)) for name in encoders},
            "vae": parameters(pipe.vae),
        },
        "text_encoders": {name: type(getattr(pipe, name)).__name__ for name in encoders},
        "vae": {"class": type(pipe.vae).__name__, "latent_channels": pipe.vae.config.latent_channels},
        "shared_with": shared_components(host, key),
    }


def shared_components(host: Replica, key: str) -> dict[str, list[str]]:
    """{component: [other loaded models holding the very same object]}."""
    pipe = host.get_pipeline(key)
    shared: dict[str, list[str]] = {}
    for other in host.model_keys:
        if other == key or not host.is_loaded(other):
            continue
        other_pipe = host.get_pipeline(other)
        for name, component in pipe.components.items():
            if component is not None and getattr(other_pipe, name, None) is component:
                shared.setdefault(name, []).append(other)
    return shared
