"""FLUX.1 speed and memory at full size on one GPU, with random weights (compute does not depend on values).

Builds the published FLUX.1 architectures in bf16 directly on the GPU (transformer 19 double + 38 single
blocks, T5-XXL, CLIP-L, the FLUX VAE) with the offline tokenizers, then times warm 1024² images:
schnell 4 steps, dev 28 steps, for each variant through `flux_demo.pipelines.speed.apply_speed_options` (the
app's own code). Each variant gets a fresh transformer; warm-up runs (which include compilation) are
timed separately and excluded. Results go to $OUT/gpu_flux.json after every variant, so a timeout keeps
what finished.

    python benchmarks/gpu_flux.py                       # GPU: every default variant (fp8 warm-up: minutes)
    python benchmarks/gpu_flux.py --variants eager,compile,compile+fp8 --models dev
    python benchmarks/gpu_flux.py --smoke               # CPU: tiny configs, exercises every code path

Caveat: step caches decide from the data. MagCache and TaylorSeer skip on a schedule, so their timings
transfer to real weights; FirstBlockCache compares activations, so its skip count on random weights (in
the JSON as `full_steps`) need not match real checkpoints.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import time

import harness

from flux_demo.config import SpeedOptions
from flux_demo.models import DEV, SCHNELL
from flux_demo.pipelines import speed

NATIVE = {"attention": "native"}
VARIANTS = {
    "eager": SpeedOptions(compile="off", fp8="off", cache="off", **NATIVE),
    "cudnn": SpeedOptions(compile="off", fp8="off", cache="off", attention="_native_cudnn"),
    "flash3": SpeedOptions(compile="off", fp8="off", cache="off", attention="_flash_3"),
    "compile": SpeedOptions(compile="regional", fp8="off", cache="off", **NATIVE),
    "compile+fp8": SpeedOptions(compile="regional", fp8="on", cache="off", **NATIVE),
    "compile+fp8+cudnn": SpeedOptions(compile="regional", fp8="on", cache="off", attention="_native_cudnn"),
    "first-block": SpeedOptions(compile="off", fp8="off", cache="first-block:0.08", **NATIVE),
    "mag": SpeedOptions(compile="off", fp8="off", cache="mag:0.06", **NATIVE),
    "taylorseer": SpeedOptions(compile="off", fp8="off", cache="taylorseer:5", **NATIVE),
    "compile+fp8+first-block": SpeedOptions(compile="regional", fp8="on", cache="first-block:0.08", **NATIVE),
    "compile+fp8+mag": SpeedOptions(compile="regional", fp8="on", cache="mag:0.06", **NATIVE),
}
# Ordered by what we most need to know, so a time limit cuts the least useful ones.
DEFAULT_VARIANTS = (
    "eager,compile,compile+fp8,cudnn,compile+fp8+cudnn,mag,first-block,taylorseer,compile+fp8+mag"
)
CACHE_ONLY = ("first-block", "mag", "taylorseer")  # step caches do nothing for 4-step schnell
SMOKE_VARIANTS = "eager,compile,cudnn,compile+fp8,first-block,mag"


# ----- 1. Configurations: published full-size ones, and tiny ones for the CPU smoke run -----
def transformer_config(guidance_embeds: bool, smoke: bool) -> dict:
    if smoke:
        return {
            "patch_size": 1,
            "in_channels": 64,
            "num_layers": 1,
            "num_single_layers": 2,
            "attention_head_dim": 16,
            "num_attention_heads": 2,
            "joint_attention_dim": 32,
            "pooled_projection_dim": 32,
            "guidance_embeds": guidance_embeds,
            "axes_dims_rope": (4, 6, 6),
        }
    return {  # black-forest-labs/FLUX.1-dev transformer/config.json
        "patch_size": 1,
        "in_channels": 64,
        "num_layers": 19,
        "num_single_layers": 38,
        "attention_head_dim": 128,
        "num_attention_heads": 24,
        "joint_attention_dim": 4096,
        "pooled_projection_dim": 768,
        "guidance_embeds": guidance_embeds,
        "axes_dims_rope": (16, 56, 56),
    }


def text_configs(smoke: bool):
    from transformers import CLIPTextConfig, T5Config

    clip = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=32 if smoke else 768,
        intermediate_size=37 if smoke else 3072,
        num_hidden_layers=2 if smoke else 12,
        num_attention_heads=4 if smoke else 12,
        max_position_embeddings=77,
        projection_dim=32 if smoke else 768,
        hidden_act="quick_gelu",
        bos_token_id=0,  # the offline tokenizer's ids
        eos_token_id=1,
        pad_token_id=1,
    )
    t5 = T5Config(  # google/t5-v1_1-xxl
        vocab_size=32128,
        d_model=32 if smoke else 4096,
        d_kv=8 if smoke else 64,
        d_ff=37 if smoke else 10240,
        num_layers=2 if smoke else 24,
        num_heads=4 if smoke else 64,
        feed_forward_proj="gated-gelu",
        relative_attention_num_buckets=32,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return clip, t5


def vae_config(smoke: bool) -> dict:
    return {  # FLUX.1 vae/config.json
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (8, 16, 16, 16) if smoke else (128, 256, 512, 512),
        "layers_per_block": 1 if smoke else 2,
        "latent_channels": 16,
        "norm_num_groups": 4 if smoke else 32,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
        "shift_factor": 0.1159,
        "scaling_factor": 0.3611,
    }


# ----- 2. Building with random weights directly on the device, in the target dtype -----
@contextlib.contextmanager
def built_on(device, dtype):
    """Create modules straight on `device` in `dtype`: no slow CPU init, no fp32 copy of 12B parameters."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def build_transformer(guidance_embeds: bool, smoke: bool, device, dtype):
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    with built_on(device, dtype):
        return FluxTransformer2DModel(**transformer_config(guidance_embeds, smoke)).eval()


def build_shared(smoke: bool, device, dtype) -> dict:
    """Text encoders, tokenizers and VAE: the components schnell and dev share."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel, T5EncoderModel

    from flux_demo.offline.tiny import build_clip_tokenizer, build_t5_tokenizer

    clip_config, t5_config = text_configs(smoke)
    torch.manual_seed(0)
    with built_on(device, dtype):
        modules = {
            "text_encoder": CLIPTextModel(clip_config).eval(),
            "text_encoder_2": T5EncoderModel(t5_config).eval(),
            "vae": AutoencoderKL(**vae_config(smoke)).eval(),
        }
    # Token ids stay below every vocabulary above; tokenizer content does not change the compute.
    return {**modules, "tokenizer": build_clip_tokenizer(), "tokenizer_2": build_t5_tokenizer()}


def assemble(shared: dict, transformer, variant_key: str):
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    from flux_demo.offline.tiny import SCHEDULER_CONFIGS

    scheduler = FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIGS[variant_key])
    pipe = FluxPipeline(scheduler=scheduler, transformer=transformer, **shared)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ----- 3. Timing -----
class Clock:
    """Wall time with CUDA synchronisation, and CUDA events at each step end for the per-step time."""

    def __init__(self, device: str):
        import torch

        self.cuda = device == "cuda"
        self.torch = torch
        self.step_marks: list = []

    def mark(self):
        if self.cuda:
            event = self.torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start, end) -> float:
        return start.elapsed_time(end) / 1000 if self.cuda else end - start

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def on_step_end(self, _pipe, _step, _timestep, callback_kwargs):
        self.step_marks.append(self.mark())
        return callback_kwargs


def run_image(pipe, clock: Clock, model, size: int, steps: int) -> tuple[float, float | None]:
    """One image; returns (seconds for the whole call, median seconds per step after the first)."""
    import torch

    clock.step_marks = []
    clock.sync()
    start = clock.mark()
    pipe(
        prompt="a lighthouse on a cliff at dusk, detailed oil painting",
        width=size,
        height=size,
        num_inference_steps=steps,
        guidance_scale=model.default_guidance,
        max_sequence_length=model.max_sequence_length,
        generator=torch.Generator("cpu").manual_seed(0),
        callback_on_step_end=clock.on_step_end,
    )
    end = clock.mark()
    clock.sync()
    marks = clock.step_marks
    per_step = [clock.seconds(a, b) for a, b in itertools.pairwise(marks)]
    return clock.seconds(start, end), (sorted(per_step)[len(per_step) // 2] if per_step else None)


def count_full_steps(transformer) -> list[int]:
    """A counter of transformer calls that ran the last block's attention (a step cache skips it).

    Step caches replace the blocks' forward but not their hooks, so the count sits on the inner attention.
    """
    calls = [0]
    attention = transformer.single_transformer_blocks[-1].attn
    attention.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


# ----- 4. Variants and memory -----
def reset_device(device: str) -> None:
    import torch

    torch._dynamo.reset()
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def allocated(device: str) -> int:
    import torch

    return torch.cuda.memory_allocated() if device == "cuda" else 0


def measure_memory(shared_builder, device, dtype, smoke: bool) -> dict:
    """Bytes of the shared components and each transformer, and tensors shared by the two pipelines."""
    base = allocated(device)
    shared = shared_builder()
    shared_bytes = allocated(device) - base
    schnell_t = build_transformer(False, smoke, device, dtype)
    schnell_bytes = allocated(device) - base - shared_bytes
    dev_t = build_transformer(True, smoke, device, dtype)
    dev_bytes = allocated(device) - base - shared_bytes - schnell_bytes
    pipes = [assemble(shared, schnell_t, "flux1-schnell"), assemble(shared, dev_t, "flux1-dev")]
    pointers = [
        {t.data_ptr() for m in p.components.values() if hasattr(m, "parameters") for t in m.parameters()}
        for p in pipes
    ]
    del pipes, schnell_t, dev_t
    return shared, {
        "shared_components_bytes": shared_bytes,
        "schnell_transformer_bytes": schnell_bytes,
        "dev_transformer_bytes": dev_bytes,
        "schnell_alone_bytes": shared_bytes + schnell_bytes,
        "dev_alone_bytes": shared_bytes + dev_bytes,
        "both_bytes": shared_bytes + schnell_bytes + dev_bytes,
        "shared_tensors": len(pointers[0] & pointers[1]),
    }


def run_variant(name: str, model, shared, args, clock: Clock, device, dtype) -> dict:
    import torch

    reset_device(device)
    key = "flux1-dev" if model is DEV else "flux1-schnell"
    transformer = build_transformer(model is DEV, args.smoke, device, dtype)
    # A Python counter inside compiled blocks would break fullgraph, so count only eager variants.
    full_steps = count_full_steps(transformer) if VARIANTS[name].compile == "off" else None
    pipe = assemble(shared, transformer, key)
    applied = speed.apply_speed_options(pipe, VARIANTS[name], device, model)
    start = time.perf_counter()
    for _ in range(args.warmup):  # compiles here; short runs compile the same shapes
        run_image(pipe, clock, model, args.size, min(2, model.default_steps))
    warmup_s = time.perf_counter() - start
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if full_steps:
        full_steps[0] = 0
    steps = args.steps or model.default_steps
    timings = [run_image(pipe, clock, model, args.size, steps) for _ in range(args.repeats)]
    images = sorted(t[0] for t in timings)
    per_step = sorted(t[1] for t in timings if t[1] is not None)
    return {
        "variant": name,
        "model": model.key,
        "steps": steps,
        "applied": applied,
        "warmup_s": round(warmup_s, 2),
        "s_per_image": round(images[len(images) // 2], 4),
        "s_per_step": round(per_step[len(per_step) // 2], 4) if per_step else None,
        "full_steps": full_steps[0] / args.repeats if full_steps else None,
        "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if device == "cuda" else None,
    }


def main(argv=None) -> dict:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", "--tiny", action="store_true", help="tiny configs on CPU (or GPU)")
    parser.add_argument("--variants", default=None, help=f"comma list from: {', '.join(VARIANTS)}")
    parser.add_argument("--models", default="schnell,dev")
    parser.add_argument("--size", type=int, default=None, help="image side; 1024 (256 with --smoke)")
    parser.add_argument("--steps", type=int, default=None, help="override the models' default steps")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--budget-s", type=float, default=540, help="start no variant after this many seconds"
    )
    args = parser.parse_args(argv)
    args.size = args.size or (256 if args.smoke else 1024)
    names = (args.variants or (SMOKE_VARIANTS if args.smoke else DEFAULT_VARIANTS)).split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    models = [{"schnell": SCHNELL, "dev": DEV}[m] for m in args.models.split(",")]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    started = time.perf_counter()
    shared, memory = measure_memory(
        lambda: build_shared(args.smoke, device, dtype), device, dtype, args.smoke
    )
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "capability": list(torch.cuda.get_device_capability()) if device == "cuda" else None,
        "smoke": args.smoke,
        "size": args.size,
        "memory": memory,
        "build_s": round(time.perf_counter() - started, 1),
        "runs": [],
    }
    clock = Clock(device)
    for model in models:
        for name in names:
            if model is SCHNELL and name in CACHE_ONLY:
                continue
            if time.perf_counter() - started > args.budget_s:
                result["runs"].append({"variant": name, "model": model.key, "skipped": "time budget"})
                continue
            try:
                run = run_variant(name, model, shared, args, clock, device, dtype)
            except Exception as error:  # one failing variant must not lose the others' results
                run = {"variant": name, "model": model.key, "error": f"{type(error).__name__}: {error}"[:500]}
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
            harness.write_results("gpu_flux_smoke" if args.smoke else "gpu_flux", result)
    print_summary(result)
    return result


def print_summary(result: dict) -> None:
    eager = {
        r["model"]: r["s_per_image"] for r in result["runs"] if r["variant"] == "eager" and "s_per_image" in r
    }
    rows = []
    for r in result["runs"]:
        if "s_per_image" not in r:
            rows.append(
                [r["model"], r["variant"], "-", "-", "-", "-", r.get("skipped") or r.get("error", "")[:60]]
            )
            continue
        skipped = [f"{k}: {v}" for k, v in r["applied"].items() if v.startswith(speed.SKIPPED)]
        ratio = eager[r["model"]] / r["s_per_image"] if r["model"] in eager else None
        note = "; ".join(skipped)[:60]
        rows.append([r["model"], r["variant"], r["s_per_image"], r["s_per_step"], ratio, r["peak_gb"], note])
    print(f"\n{result['device']} at {result['size']}² (memory: {json.dumps(result['memory'])})")
    harness.print_table(["model", "variant", "s/image", "s/step", "x eager", "peak GB", "skipped"], rows)


if __name__ == "__main__":
    main()
