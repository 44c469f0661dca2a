"""What live previews cost, and how true their colours are.

Measured (offline models, this machine): for each model and size, one run records each step's time
(transformer and scheduler) and the time the preview took inside the step callback; the last step's
preview is compared with the final image (mean absolute difference on the 0–255 scale, the final image
resized to the preview). The handler's work per preview (enlarging it, writing the PNG the browser gets)
is timed on the same previews, and whole runs with and without previews (median of `--repeats`). With
`--word-maps`, the same run with every prompt word mapped gives the word maps' cost per step.

Estimated (full-size models, no weights): FLUX.1 [dev] and FLUX.2 [klein] 4B are built on PyTorch's meta
device and FLOPs are counted for one transformer step at `--flops-size`, a full VAE decode, and the
linear latent→RGB map the full-size models preview with, each as a share of the step.

    python benchmarks/preview_overhead.py [--repeats 2] [--sizes 256,512] [--word-maps]
        [--models nano-schnell,nano-dev,tiny-klein]

On a CUDA GPU, `--gpu` times a random-weight FLUX.1 [dev] step at `--flops-size`, a full VAE decode and
the linear preview map (weights do not change the compute); with the checkpoints, `--models
schnell,dev,klein --sizes 1024` also measures the last-step colour error of the linear map.

Writes benchmarks/results/preview_overhead.json (preview_overhead_gpu.json with `--gpu`).
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import harness

PROMPT = 'a sign that says "FLUX"'


def timed_run(generation, host, valid, observer=None):
    start = time.perf_counter()
    result = generation.generate(host, valid, observer=observer)
    return time.perf_counter() - start, result


def measure(host, valid, repeats: int, word_maps: bool) -> dict:
    """One model at one size: step and preview times, the last preview's colour error, whole runs."""
    import numpy as np
    import PIL.Image

    from flux_demo import generation
    from flux_demo.watching import trajectory
    from flux_demo.watching.previews import PreviewObserver

    steps, previews = [], []

    class Timing(PreviewObserver):
        def on_step(self, step):
            steps.append(step.seconds)
            super().on_step(step)

    _, result = timed_run(
        generation, host, valid, Timing(valid.spec, valid.width, valid.height, previews.append)
    )
    last = previews[-1].image
    final = result.image.convert("RGB").resize(last.size, PIL.Image.Resampling.BOX)
    error = float(np.abs(np.asarray(last, np.float32) - np.asarray(final, np.float32)).mean())
    handler = []
    for preview in previews:
        start = time.perf_counter()
        image = preview.image.resize((valid.width, valid.height), PIL.Image.Resampling.BILINEAR)
        image.save(io.BytesIO(), format="png")
        handler.append(time.perf_counter() - start)
    plain = [timed_run(generation, host, valid)[0] for _ in range(repeats)]
    watched = [
        timed_run(
            generation, host, valid, PreviewObserver(valid.spec, valid.width, valid.height, lambda _: None)
        )[0]
        for _ in range(repeats)
    ]
    step_ms = statistics.fmean(steps) * 1000
    decode_ms = statistics.fmean(p.seconds for p in previews) * 1000
    entry = {
        "model": valid.model,
        "size": valid.width,
        "steps": valid.steps,
        "preview_decoder": valid.spec.preview_decoder,
        "step_ms": round(step_ms, 2),
        "preview_ms": round(decode_ms, 3),
        "preview_share_of_step": round(decode_ms / step_ms, 4),
        "last_step_error_255": round(error, 3),
        "handler_png_ms": round(statistics.fmean(handler) * 1000, 2),
        "run_without_previews_s": round(statistics.median(plain), 3),
        "run_with_previews_s": round(statistics.median(watched), 3),
    }
    if word_maps:
        from flux_demo.watching.word_maps import prompt_words

        mapped = trajectory.run_trajectory(host, valid, words=prompt_words(valid.prompt))
        with_maps = statistics.fmean(step.seconds for step in mapped.steps) * 1000
        entry["step_ms_with_word_maps"] = round(with_maps, 2)
    return entry


def flop_shares(side: int) -> list[dict]:
    """FLOPs of a step, a full VAE decode and the linear preview map for the full-size models at side²."""
    import gpu_flux  # the published FLUX.1 VAE configuration
    import torch
    from diffusers import AutoencoderKL, AutoencoderKLFlux2, Flux2Transformer2DModel, FluxTransformer2DModel
    from torch.utils.flop_counter import FlopCounterMode

    from flux_demo.models import get_spec
    from flux_demo.watching.architecture import published
    from flux_demo.watching.previews import LatentToRGB

    def flops(fn) -> int:
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops()

    tokens, text = (side // 16) ** 2, 512
    rows = []
    with torch.device("meta"):
        dev = FluxTransformer2DModel.from_config(published(get_spec("dev"))["transformer"])
        klein = Flux2Transformer2DModel.from_config(published(get_spec("klein"))["transformer"])
        flux_vae, flux2_vae = AutoencoderKL(**gpu_flux.vae_config(False)), AutoencoderKLFlux2()
        ones = torch.ones(1)
        step = {
            "dev": lambda: dev(
                hidden_states=torch.randn(1, tokens, 64),
                encoder_hidden_states=torch.randn(1, text, 4096),
                pooled_projections=torch.randn(1, 768),
                timestep=ones,
                guidance=ones,
                img_ids=torch.zeros(tokens, 3),
                txt_ids=torch.zeros(text, 3),
            ),
            "klein": lambda: klein(
                hidden_states=torch.randn(1, tokens, 128),
                encoder_hidden_states=torch.randn(1, text, 7680),
                timestep=ones,
                img_ids=torch.zeros(tokens, 4),
                txt_ids=torch.zeros(text, 4),
            ),
        }
        for key, vae in (("dev", flux_vae), ("klein", flux2_vae)):
            channels = get_spec(key).latent_channels
            latents = torch.randn(1, channels, side // 8, side // 8)
            linear = LatentToRGB(channels)
            step_flops = flops(step[key])
            decode_flops = flops(lambda v=vae, z=latents: v.decode(z))
            map_flops = max(flops(lambda m=linear, z=latents: m.rgb(z)), 2 * 3 * channels * (side // 8) ** 2)
            rows.append(
                {
                    "model": key,
                    "size": side,
                    "step_tflop": round(step_flops / 1e12, 2),
                    "vae_decode_tflop": round(decode_flops / 1e12, 2),
                    "vae_decode_share": round(decode_flops / step_flops, 4),
                    "linear_map_mflop": round(map_flops / 1e6, 2),
                    "linear_map_share": map_flops / step_flops,
                }
            )
    return rows


def gpu_shares(side: int) -> dict:
    """On a CUDA GPU, random-weight FLUX.1 [dev] in bf16 (compute does not depend on the weights): the
    eager step, a full VAE decode and the linear preview map (to a PIL image, as a preview is made), in
    milliseconds; mean of 5 steps, 3 decodes and 20 maps after warm-ups."""
    import gpu_flux
    import torch

    from flux_demo.watching.previews import LatentToRGB, to_image

    device, dtype = "cuda", torch.bfloat16
    transformer = gpu_flux.build_transformer(True, False, device, dtype)
    with gpu_flux.built_on(device, dtype):
        from diffusers import AutoencoderKL

        vae = AutoencoderKL(**gpu_flux.vae_config(False)).eval()
        tokens, text = (side // 16) ** 2, 512
        inputs = {
            "hidden_states": torch.randn(1, tokens, 64),
            "encoder_hidden_states": torch.randn(1, text, 4096),
            "pooled_projections": torch.randn(1, 768),
            "timestep": torch.ones(1),
            "guidance": torch.ones(1),
            "img_ids": torch.zeros(tokens, 3),
            "txt_ids": torch.zeros(text, 3),
        }
        latents = torch.randn(1, 16, side // 8, side // 8)
    linear = LatentToRGB(16)

    def ms(fn, count: int, warm: int = 2) -> float:
        for _ in range(warm):
            fn()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(count):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - start) / count * 1000

    with torch.inference_mode():
        step = ms(lambda: transformer(**inputs), 5)
        preview = ms(lambda: to_image(linear.rgb(latents)), 20, 3)
        decode = ms(lambda: vae.decode(latents), 3, 1)
    return {
        "gpu": torch.cuda.get_device_name(),
        "size": side,
        "step_ms": round(step, 1),
        "vae_decode_ms": round(decode, 1),
        "vae_decode_share": round(decode / step, 4),
        "linear_preview_ms": round(preview, 3),
        "linear_preview_share": round(preview / step, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--models", default="nano-schnell,nano-dev,tiny-klein")
    parser.add_argument(
        "--word-maps", action="store_true", help="also time a run with every prompt word mapped"
    )
    parser.add_argument("--flops-size", type=int, default=1024)
    parser.add_argument("--gpu", action="store_true", help="time full-size FLUX.1 on this CUDA GPU instead")
    args = parser.parse_args()
    harness.use_offline_env(Path(tempfile.mkdtemp(prefix="preview-overhead-")))
    if args.gpu:
        measured = gpu_shares(args.flops_size)
        harness.print_table(list(measured), [list(measured.values())])
        print(f"wrote {harness.write_results('preview_overhead_gpu', measured)}")
        return

    from flux_demo.models import get_spec
    from flux_demo.pipelines import ModelHost
    from flux_demo.validation import GenerationRequest, validate

    models = args.models.split(",")
    host = ModelHost(model_keys=models)
    runs = []
    for model in models:
        spec = get_spec(model)
        for size in (int(s) for s in args.sizes.split(",")):
            request = GenerationRequest(
                PROMPT, model, size, size, spec.default_steps, spec.default_guidance, 1
            )
            runs.append(measure(host, validate(request, models), args.repeats, args.word_maps))
    columns = ["model", "size", "preview_decoder", "step_ms", "preview_ms", "preview_share_of_step"]
    columns += ["last_step_error_255", "handler_png_ms", "run_without_previews_s", "run_with_previews_s"]
    if args.word_maps:
        columns.append("step_ms_with_word_maps")
    harness.print_table(columns, [[run[c] for c in columns] for run in runs])
    estimates = flop_shares(args.flops_size)
    flop_columns = ["model", "size", "step_tflop", "vae_decode_tflop", "vae_decode_share", "linear_map_mflop"]
    harness.print_table(
        [*flop_columns, "linear_map_share"],
        [[e[c] for c in flop_columns] + [f"{e['linear_map_share']:.1e}"] for e in estimates],
    )
    payload = {"repeats": args.repeats, "runs": runs, "full_size_flops": estimates}
    print(f"wrote {harness.write_results('preview_overhead', payload)}")


if __name__ == "__main__":
    main()
