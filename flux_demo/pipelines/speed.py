"""Apply speed options to a loaded pipeline: regional compilation, fp8, attention backend, step cache,
ZeroGPU AoT.

`apply_speed_options(pipe, options, device, spec)` applies what this machine supports of the requested
`config.SpeedOptions` to the pipeline's transformer and returns, per option, what was applied or why it
was skipped (for the details panel and the log). Nothing is skipped silently. Only the transformer is
touched, so components shared between schnell and dev are never changed twice.
"""

from __future__ import annotations

import importlib.util
import logging

from flux_demo.config import CACHE_KINDS, SpeedOptions, on_zerogpu, parse_cache

log = logging.getLogger(__name__)

# Step caches skip transformer passes between similar steps; a 4-step distilled model has none to skip.
MIN_STEPS_FOR_CACHE = 8
FP8_MIN_CAPABILITY = (8, 9)  # Ada and Hopper have fp8 tensor cores
SKIPPED = "skipped: "


def apply_speed_options(pipe, options: SpeedOptions, device: str, spec=None) -> dict[str, str]:
    """Apply `options` to `pipe.transformer` on `device` ("cuda" or "cpu"); return what happened per option.

    `spec` (a `models.ModelSpec`) supplies the default steps (step caches are skipped for few-step models)
    and the example call for ZeroGPU ahead-of-time compilation. Call it once, after the pipeline is placed
    on its device. Values read "<what was applied>" or "skipped: <why>".
    """
    # Order matters: attention and fp8 change the modules that compilation then traces; caches add hooks
    # whose data-dependent branches rule out fullgraph compilation.
    if options.compile == "aoti":
        # fp8 is applied inside the ahead-of-time build, and the compiled forward would bypass a cache.
        applied = {
            "attention": _apply_attention(pipe.transformer, options.attention, device),
            "fp8": "decided inside the aoti build",
            "cache": "off"
            if options.cache == "off"
            else f"{SKIPPED}the aoti-compiled transformer has no hooks",
        }
        fp8 = {"auto": None, "on": True, "off": False}[options.fp8]
        applied["compile"] = (
            compile_for_zerogpu(pipe, example_call(spec), fp8=fp8)
            if device == "cuda"
            else f"{SKIPPED}aoti compiles for a GPU; this is {device}"
        )
    else:
        applied = {
            "attention": _apply_attention(pipe.transformer, options.attention, device),
            "fp8": _apply_fp8(pipe.transformer, options.fp8, device),
            "cache": _apply_cache(pipe.transformer, options.cache, spec),
        }
        cache_on = _is_on(applied["cache"])
        applied["compile"] = _apply_compile(pipe, options.compile, device, spec, cache_on=cache_on)
    for name, outcome in applied.items():
        level = logging.WARNING if outcome.startswith(SKIPPED) and _requested(options, name) else logging.INFO
        log.log(level, "speed option %s: %s", name, outcome)
    return applied


def _is_on(outcome: str) -> bool:
    return not outcome.startswith(SKIPPED) and outcome != "off"


def _requested(options: SpeedOptions, name: str) -> bool:
    """True when the user asked for this option explicitly (a skip is then worth a warning)."""
    return getattr(options, name) not in ("auto", "off")


def cuda_capability(device: str) -> tuple[int, int] | None:
    if device != "cuda":
        return None
    import torch

    return torch.cuda.get_device_capability()


def torchao_available() -> bool:
    return importlib.util.find_spec("torchao") is not None


def _apply_attention(transformer, requested: str, device: str) -> str:
    backend = requested
    if requested == "auto":
        capability = cuda_capability(device) if not on_zerogpu() else None
        hopper = capability is not None and capability[0] == 9
        if not hopper or importlib.util.find_spec("flash_attn_interface") is None:
            return "native (PyTorch SDPA picks its kernel)"
        backend = "_flash_3"
    try:
        transformer.set_attention_backend(backend)
    except (ValueError, RuntimeError, ImportError) as error:
        return f"{SKIPPED}{backend}: {error}"
    return backend


def _apply_fp8(transformer, requested: str, device: str) -> str:
    if requested == "off":
        return "off"
    if on_zerogpu():
        return f"{SKIPPED}on ZeroGPU fp8 is applied by FLUX_DEMO_COMPILE=aoti inside the GPU call"
    capability = cuda_capability(device)
    if capability is None:
        return f"{SKIPPED}fp8 needs a CUDA GPU with compute capability >= 8.9; this is {device}"
    if capability < FP8_MIN_CAPABILITY:
        return f"{SKIPPED}fp8 needs compute capability >= 8.9; this GPU has {capability[0]}.{capability[1]}"
    if not torchao_available():
        return f"{SKIPPED}torchao is not installed (pip install torchao)"
    quantize_fp8(transformer)
    return "fp8 dynamic activations and weights, per row (torchao)"


def quantize_fp8(transformer) -> None:
    """Quantize the transformer's linear layers to fp8 (dynamic activation scales, per-row weights)."""
    import torch
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    def fp8_friendly(module, _name) -> bool:
        # fp8 matmuls need both dimensions divisible by 16.
        linear = isinstance(module, torch.nn.Linear)
        return linear and module.in_features % 16 == 0 and module.out_features % 16 == 0

    config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
    quantize_(transformer, config, filter_fn=fp8_friendly)


def cache_config(kind: str, value: float, num_inference_steps: int):
    """The diffusers cache configuration for `kind` ("first-block", "taylorseer", "mag") at `value`."""
    import diffusers

    if kind == "first-block":
        return diffusers.FirstBlockCacheConfig(threshold=value)
    if kind == "taylorseer":
        return diffusers.TaylorSeerCacheConfig(cache_interval=int(value))
    from diffusers.hooks.mag_cache import FLUX_MAG_RATIOS

    # MagCache's ratios are calibrated per step count; they are interpolated to the model's default steps.
    return diffusers.MagCacheConfig(
        threshold=value, mag_ratios=FLUX_MAG_RATIOS, num_inference_steps=num_inference_steps
    )


def _apply_cache(transformer, requested: str, spec) -> str:
    parsed = parse_cache(requested)
    if parsed is None:
        return "off"
    kind, value = parsed
    steps = spec.default_steps if spec is not None else 28
    if steps < MIN_STEPS_FOR_CACHE:
        return f"{SKIPPED}{kind} cache: a {steps}-step model has no similar consecutive steps to reuse"
    try:
        transformer.enable_cache(cache_config(kind, value, steps))
    except (ValueError, TypeError, KeyError) as error:
        return f"{SKIPPED}{kind} cache: {error}"
    return f"{kind} cache {CACHE_KINDS[kind][0]}={value:g} (lossy)"


def _apply_compile(pipe, requested: str, device: str, spec, cache_on: bool) -> str:
    if requested == "off":
        return "off"
    if on_zerogpu():
        return f"{SKIPPED}no torch.compile on ZeroGPU; FLUX_DEMO_COMPILE=aoti compiles ahead of time"
    if requested == "auto" and device != "cuda":
        return f"{SKIPPED}auto compiles only on CUDA (set FLUX_DEMO_COMPILE=regional to force on {device})"
    # A step cache's hooks branch on data, which fullgraph would reject.
    pipe.transformer.compile_repeated_blocks(fullgraph=not cache_on)
    return f"regional torch.compile of the repeated blocks{'' if cache_on else ', fullgraph'} (on first call)"


def example_call(spec) -> dict:
    """Keyword arguments for one representative pipeline call of `spec`'s model (used to capture shapes)."""
    if spec is None:
        return {"prompt": "an example prompt", "num_inference_steps": 1}
    return {
        "prompt": "an example prompt",
        "width": spec.default_size,
        "height": spec.default_size,
        "num_inference_steps": 1,  # capture stops at the first transformer call anyway
        "guidance_scale": spec.default_guidance,
        "max_sequence_length": spec.max_sequence_length,
    }


# Image tokens of FLUX.1 at 16 pixels per token: 256² gives 256 tokens, 2048² gives 16384.
MIN_IMAGE_TOKENS, MAX_IMAGE_TOKENS = 256, 16384


def export_transformer(transformer, captured_args: tuple, captured_kwargs: dict):
    """torch.export the transformer with the image-token count dynamic, so one build serves every size."""
    import torch

    tokens = torch.export.Dim("image_tokens", min=MIN_IMAGE_TOKENS, max=MAX_IMAGE_TOKENS)
    dynamic = {"hidden_states": {1: tokens}, "img_ids": {0: tokens}}
    # FluxPipeline passes every transformer input by keyword.
    # Every other input is static; export wants the same nesting as the input (e.g. {} for empty kwargs).
    dynamic_shapes = {
        name: dynamic.get(name, torch.utils._pytree.tree_map(lambda _: None, value))
        for name, value in captured_kwargs.items()
    }
    return torch.export.export(
        transformer, args=captured_args, kwargs=captured_kwargs, dynamic_shapes=dynamic_shapes or None
    )


def capture_and_compile(pipe, call_kwargs: dict, fp8: bool = False):
    """Run the pipeline until its first transformer call, export that call and AoT-compile it.

    Returns a `spaces` compiled model (picklable, so a ZeroGPU worker can hand it back). Call it inside a
    `@spaces.GPU` function: it needs the GPU.
    """
    import spaces

    if fp8:
        quantize_fp8(pipe.transformer)
    with spaces.aoti_capture(pipe.transformer) as call:
        pipe(**call_kwargs)
    exported = export_transformer(pipe.transformer, call.args, call.kwargs)
    return spaces.aoti_compile(exported)


def compile_for_zerogpu(pipe, call_kwargs: dict, fp8: bool | None = None, gpu_seconds: int = 1500) -> str:
    """Ahead-of-time compile the transformer for ZeroGPU and patch it in; call once at start-up.

    Compilation runs in its own `@spaces.GPU` call (ZeroGPU runs it in a GPU worker), and the compiled model
    is applied here, in the calling process, where later requests run. `fp8=None` quantizes where the GPU
    supports it. Off Spaces `spaces.GPU` is a no-op, so this also runs on a plain CUDA machine.
    """
    import spaces
    import torch

    from flux_demo.pipelines.runner import ZEROGPU_SIZE

    @spaces.GPU(duration=gpu_seconds, size=ZEROGPU_SIZE)
    def compile_on_gpu():
        use_fp8 = fp8
        if use_fp8 is None:
            use_fp8 = torchao_available() and torch.cuda.get_device_capability() >= FP8_MIN_CAPABILITY
        return capture_and_compile(pipe, call_kwargs, fp8=use_fp8), use_fp8

    compiled, used_fp8 = compile_on_gpu()
    spaces.aoti_apply(compiled, pipe.transformer)
    return f"ahead-of-time (spaces.aoti) transformer{', fp8' if used_fp8 else ''}"
