"""LoRA swaps on a compiled transformer: does a new LoRA or scale recompile, and what does a swap cost?

Builds FLUX.1 [dev] at full size with random weights (as `gpu_flux.py` does; compute does not depend on
values), compiles its repeated blocks through the app's speed options (`FLUX_DEMO_COMPILE=regional`), and
drives the app's own `pipelines.adapters.Adapters` with two random LoRAs of different ranks (saved with
diffusers and loaded through `load_lora_weights`). For each stage it records the seconds of `activate`
(loading or swapping the adapter), of one image, and how many graphs torch.compile added
(`torch._dynamo`'s unique-graph count). A slot's first LoRA and the first run without LoRAs compile
once; after that a swap or a new scale should add none. Writes $OUT/lora_hotswap.json.

    python benchmarks/lora_hotswap.py            # GPU: dev at 1024², 28 steps
    python benchmarks/lora_hotswap.py --smoke    # CPU: tiny configs, the same code path
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gpu_flux
import harness

from flux_demo.config import SpeedOptions
from flux_demo.loras import LoraChoice
from flux_demo.models import DEV
from flux_demo.pipelines import speed
from flux_demo.pipelines.adapters import Adapters, LoraFile

TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"]
# (stage, LoRAs as (name, scale)): the order a visitor's requests might come in.
STAGES = [
    ("no LoRA (first compile)", ()),
    ("LoRA A, slot 0 first used", (("A", 1.0),)),
    ("swap to LoRA B (other rank)", (("B", 1.0),)),
    ("LoRA B at scale 0.5", (("B", 0.5),)),
    ("back to LoRA A", (("A", 1.0),)),
    ("no LoRA again (disabled adapters)", ()),
    ("LoRA A again", (("A", 0.8),)),
]


def random_lora(transformer, folder: Path, rank: int, seed: int) -> Path:
    """A LoRA for `transformer`'s architecture with random weights, in diffusers' file format."""
    import torch
    from diffusers import FluxPipeline

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and any(name.endswith(t) for t in TARGETS):
            down = torch.randn(rank, module.in_features, generator=generator) * 0.01
            up = torch.randn(module.out_features, rank, generator=generator) * 0.01
            state[f"{name}.lora_A.weight"] = down.to(module.weight.dtype)
            state[f"{name}.lora_B.weight"] = up.to(module.weight.dtype)
    folder.mkdir(parents=True, exist_ok=True)
    FluxPipeline.save_lora_weights(folder, transformer_lora_layers=state, weight_name="lora.safetensors")
    return folder / "lora.safetensors"


def main(argv=None) -> dict:
    import torch
    from torch._dynamo.utils import counters

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny configs on the CPU")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (28; 2 with --smoke)")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    size, steps = (256, args.steps or 2) if args.smoke else (1024, args.steps or DEV.default_steps)
    shared = gpu_flux.build_shared(args.smoke, device, dtype)
    transformer = gpu_flux.build_transformer(True, args.smoke, device, dtype)
    pipe = gpu_flux.assemble(shared, transformer, "flux1-dev")
    folder = Path(tempfile.mkdtemp())
    files = {
        name: random_lora(transformer, folder / name, rank, seed)
        for name, rank, seed in (("A", 16, 1), ("B", 64, 2))
    }
    options = SpeedOptions(compile="regional", fp8="off", cache="off", attention="native")
    applied = speed.apply_speed_options(pipe, options, device, DEV)
    adapters = Adapters(pipe, applied, DEV)
    clock = gpu_flux.Clock(device)
    result = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "smoke": args.smoke}
    result |= {"size": size, "steps": steps, "compile": applied["compile"], "stages": []}
    for stage, chosen in STAGES:
        graphs = counters["stats"]["unique_graphs"]
        lora_files = [
            LoraFile(LoraChoice(name, scale), str(files[name]), f"{name}@{files[name]}")
            for name, scale in chosen
        ]
        clock.sync()
        start = time.perf_counter()
        adapters.activate(lora_files)
        clock.sync()
        activate_s = time.perf_counter() - start
        start = time.perf_counter()
        pipe(
            "a lighthouse on a cliff",
            width=size,
            height=size,
            num_inference_steps=steps,
            guidance_scale=DEV.default_guidance,
            generator=torch.Generator("cpu").manual_seed(0),
        )
        clock.sync()
        row = {
            "stage": stage,
            "activate_s": round(activate_s, 3),
            "image_s": round(time.perf_counter() - start, 3),
            "new_graphs": counters["stats"]["unique_graphs"] - graphs,
        }
        result["stages"].append(row)
        print(row, flush=True)
        harness.write_results("lora_hotswap_smoke" if args.smoke else "lora_hotswap", result)
    print(f"\n{result['device']}, dev {size}², {steps} steps, {result['compile']}")
    print(f"{'stage':38} {'activate s':>10} {'image s':>9} {'new graphs':>10}")
    for row in result["stages"]:
        print(f"{row['stage']:38} {row['activate_s']:>10} {row['image_s']:>9} {row['new_graphs']:>10}")
    return result


if __name__ == "__main__":
    main()
