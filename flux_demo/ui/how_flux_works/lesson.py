"""The chapter's ideas drawn from the chosen model, before any run: the σ schedule, the MM-DiT diagram with
the loaded and the full-size figures, the two block types, the text encoders and RoPE. Rendered on the
server in the visitor's language when the page opens and when the model changes."""

from __future__ import annotations

import logging
from html import escape

from flux_demo.models import get_spec
from flux_demo.services import AppServices
from flux_demo.ui.how_flux_works.panels import Series, billions, line_chart, mmdit_diagram, rope_bar, text
from flux_demo.watching import architecture, trajectory

log = logging.getLogger(__name__)


def schedule_chart(services: AppServices, model: str, width: int, height: int, language: str) -> str:
    """t (= σ) against progress through the run for every served model at its default steps, at the chosen
    size and at the model's largest, each step a dot; a model whose scheduler cannot be read (a checkpoint
    not downloaded) is left out."""
    series = []
    for key in dict.fromkeys([model, *services.model_keys]):
        spec = get_spec(key)
        w, h = (spec.snap_side(width), spec.snap_side(height))
        for size in dict.fromkeys([(w, h), (spec.max_side, spec.max_side)]):
            try:
                sigmas = trajectory.schedule(services.settings, key, spec.default_steps, *size)
            except OSError:
                log.info("no scheduler config for %s; left out of the schedule plot", key)
                break
            name = text(f"model_name.{key}", language)
            label = text(
                "how_schedule_series", language, name=name, steps=spec.default_steps, w=size[0], h=size[1]
            )
            last = len(sigmas) - 1
            series.append(Series(label, [(i / last, sigma) for i, sigma in enumerate(sigmas)]))
    notes = ((0.03, 1.06, text("how_noise_start", language)), (0.72, 0.08, text("how_image_end", language)))
    x_label, y_label = text("how_schedule_x", language), text("how_schedule_y", language)
    return line_chart(
        series, x_label, y_label, y_range=(0.0, 1.1), notes=notes, y_ticks=(0, 0.25, 0.5, 0.75, 1)
    )


def shapes(services: AppServices, model: str) -> tuple[dict | None, dict]:
    """The chosen model's transformer shape (None when its checkpoint is not here) and the full-size one."""
    spec = get_spec(model)
    config = architecture.transformer_config(services.settings, model)
    loaded = architecture.shape(spec, config) if config else None
    return loaded, architecture.shape(spec, architecture.published(spec)["transformer"])


def encoder_names(spec) -> dict:
    """The full-size encoders: the one whose tokens are attended over, and the pooled one if any."""
    encoders = architecture.published(spec)["encoders"]
    token_encoder = spec.token_tokenizer.replace("tokenizer", "text_encoder")
    pooled = [name for name, _ in spec.prompt_arguments if name != token_encoder]
    return {
        "tokens": encoders[token_encoder]["name"],
        "pooled": encoders[pooled[0]]["name"] if pooled else None,
    }


def blocks_text(spec, loaded: dict | None, full: dict, language: str) -> str:
    counts = full["parameters"]
    return text(
        "how_blocks_md",
        language,
        name=architecture.published(spec)["name"],
        double=full["double_blocks"],
        single=full["single_blocks"],
        double_each=billions(counts["double_block"], language),
        single_each=billions(counts["single_block"], language),
        total=billions(counts["transformer"], language),
        loaded=text(f"model_name.{spec.key}", language),
        l_double=loaded["double_blocks"] if loaded else "?",
        l_single=loaded["single_blocks"] if loaded else "?",
        l_total=billions(loaded["parameters"]["transformer"], language) if loaded else "?",
    )


def encoders_text(spec, language: str) -> str:
    names = encoder_names(spec)
    sizes = architecture.encoder_parameters(spec.pipeline_class)
    token_encoder = spec.token_tokenizer.replace("tokenizer", "text_encoder")
    params = {
        "tokens": names["tokens"],
        "tokens_size": billions(sizes[token_encoder], language),
        "length": spec.max_sequence_length,
    }
    if names["pooled"]:
        pooled = next(name for name, _ in spec.prompt_arguments if name != token_encoder)
        return text(
            "how_encoders_two_md",
            language,
            pooled=names["pooled"],
            pooled_size=billions(sizes[pooled], language),
            **params,
        )
    return text("how_encoders_one_md", language, **params)


def rope_text(spec, shape: dict, language: str) -> str:
    axes = ", ".join(f"{text('how_rope_axis_' + a['axis'], language)} {a['dims']}" for a in shape["rope"])
    return f"<p>{escape(text('how_rope_md', language, head_dim=shape['head_dim'], axes=axes))}</p>"


def render(
    services: AppServices, model: str, width: int, height: int, language: str
) -> tuple[str, str, str, str, str]:
    """(schedule chart, MM-DiT diagram, blocks text, encoders text, RoPE panel) for `model`."""
    spec = get_spec(model)
    loaded, full = shapes(services, model)
    diagram = mmdit_diagram(loaded, full, encoder_names(spec), language)
    loaded_name = text(f"model_name.{model}", language)
    legend = text("how_dia_legend", language, name=architecture.published(spec)["name"], loaded=loaded_name)
    rope_shape = loaded or full
    rope = rope_bar(rope_shape, language) + rope_text(spec, rope_shape, language)
    return (
        schedule_chart(services, model, width, height, language),
        f"{diagram}<p style='font-size:13px'>{legend}</p>",
        blocks_text(spec, loaded, full, language),
        encoders_text(spec, language),
        rope,
    )
