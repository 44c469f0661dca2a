"""What marking an output costs, and what its watermark survives.

Cost, per image size (median of `--repeats`): the watermark (`marks.embed_watermark`), writing the PNG
plainly (what the app did before marking) and with XMP and a signed C2PA manifest (`save_png`), and
checking an image (`check_image`'s watermark search). The added cost is watermark + (marked PNG - plain
PNG); it is compared with a FLUX.1 [schnell] run on an H200 (0.84 s eager at 1024², docs/performance.md),
although the marking runs on the CPU after the GPU is released.

Robustness: photos shipped with Gradio and nano-style renders (flat background, a sign with a word: the
hardest case) are marked, attacked (JPEG, WebP, half size, combinations, a crop, brightness) and
searched; every attack is also applied to the unmarked image, to count false detections.

    python benchmarks/provenance_cost.py [--repeats 5] [--sizes 256,1024] [--robust-sizes 512,1024]

Writes benchmarks/results/provenance_cost.json and prints both tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import tempfile
import time
from pathlib import Path

import harness

SCHNELL_H200_S = 0.84  # FLUX.1 [schnell], 4 steps, 1024², eager bf16 (benchmarks/results/gpu_flux.json)


def median_s(repeats: int, fn, *args) -> float:
    """Median seconds of `fn(*args)` over `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sample_images(size: int) -> dict:
    """Name -> RGB image of `size`²: four photos and two nano-style renders."""
    import gradio.media
    from PIL import Image

    from flux_demo.offline.nano import render_word

    images = {
        name.split(".")[0]: Image.open(gradio.media.get_image(name)).convert("RGB").resize((size, size))
        for name in ("cheetah.jpg", "tower.jpg", "groot.jpeg", "lion.jpg")
    }
    images["nano-sign-1"] = render_word("HELLO", (40, 90, 200), size)
    images["nano-sign-2"] = render_word("FLUX", (230, 230, 230), size)
    return images


def attacks() -> dict:
    """Name -> function of an image: what a copy may have gone through."""
    from PIL import Image, ImageEnhance

    def encoded(image, fmt: str, quality: int):
        buffer = io.BytesIO()
        image.save(buffer, fmt, quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")

    def half(image):
        return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)

    return {
        "none (PNG)": lambda im: im,
        "JPEG 85": lambda im: encoded(im, "JPEG", 85),
        "JPEG 70": lambda im: encoded(im, "JPEG", 70),
        "WebP 80": lambda im: encoded(im, "WEBP", 80),
        "half size": half,
        "half size, then JPEG 85": lambda im: encoded(half(im), "JPEG", 85),
        "JPEG 85, then half size": lambda im: half(encoded(im, "JPEG", 85)),
        "crop 8 px off the left": lambda im: im.crop((8, 0, im.width, im.height)),
        "brightness +10%": lambda im: ImageEnhance.Brightness(im).enhance(1.1),
    }


def measure_cost(sizes: list[int], repeats: int, workdir: Path) -> list[dict]:
    from flux_demo import metadata, provenance
    from flux_demo.config import Settings
    from flux_demo.provenance import marks

    settings = Settings.from_env()
    marking = provenance.Provenance(dataclasses.replace(settings, watermark=True, c2pa_dir=workdir / "c2pa"))
    plain = provenance.Provenance(dataclasses.replace(settings, watermark=False))
    marking.signer  # noqa: B018  (make the credentials before timing)
    rows = []
    for size in sizes:
        image = sample_images(size)["tower"]
        text = metadata.png_text(
            prompt="a tower", model="schnell", seed=1, steps=4, guidance=0.0, width=size, height=size
        )
        metadata.attach(image, text)
        marks.embed_watermark(image)  # imports and first-call costs outside the timing
        marked = marks.embed_watermark(image)
        row = {
            "size": size,
            "watermark_s": median_s(repeats, marks.embed_watermark, image),
            "plain_png_s": median_s(repeats, plain.save_png, marked, workdir / "plain.png"),
            "marked_png_s": median_s(repeats, marking.save_png, marked, workdir / "marked.png"),
            "find_watermark_s": median_s(repeats, marks.find_watermark, marked),
        }
        row["xmp_c2pa_s"] = row["marked_png_s"] - row["plain_png_s"]
        row["added_s"] = row["watermark_s"] + row["xmp_c2pa_s"]
        row["added_vs_schnell_h200"] = row["added_s"] / SCHNELL_H200_S
        row["png_bytes_added"] = (workdir / "marked.png").stat().st_size - (
            workdir / "plain.png"
        ).stat().st_size
        rows.append(row)
    return rows


def measure_robustness(sizes: list[int]) -> list[dict]:
    from flux_demo.provenance import marks

    rows = []
    for size in sizes:
        samples = sample_images(size)
        marked = {name: marks.embed_watermark(image) for name, image in samples.items()}
        for attack, apply in attacks().items():
            found = [marks.find_watermark(apply(image)) for image in marked.values()]
            false = [marks.find_watermark(apply(image)) for image in samples.values()]
            rows.append(
                {
                    "size": size,
                    "attack": attack,
                    "found": sum(f is not None and f.source == marks.OWN_SOURCE for f in found),
                    "images": len(found),
                    "missed": [name for name, f in zip(marked, found, strict=True) if f is None],
                    "false_detections": sum(f is not None for f in false),
                }
            )
            print(f"  {size}² {attack}: {rows[-1]['found']}/{rows[-1]['images']}", flush=True)
    return rows


def package_default_after_jpeg(sizes: list[int]) -> list[dict]:
    """The package's default placement (U channel, scale 36: Black Forest Labs' choice) before and after a
    JPEG 85 re-save, for comparison with the app's luma placement."""
    import numpy as np
    from imwatermark import WatermarkDecoder, WatermarkEncoder
    from PIL import Image

    from flux_demo.provenance import marks

    jpeg85 = attacks()["JPEG 85"]
    rows = []
    for size in sizes:
        kept = {"none (PNG)": 0, "JPEG 85": 0}
        samples = sample_images(size)
        for image in samples.values():
            encoder = WatermarkEncoder()
            encoder.set_watermark("bytes", marks.WATERMARK_MESSAGE)
            marked = encoder.encode(np.asarray(image)[:, :, ::-1].copy(), "dwtDct")[:, :, ::-1]
            for attack, copy in (
                ("none (PNG)", marked),
                ("JPEG 85", np.asarray(jpeg85(Image.fromarray(np.ascontiguousarray(marked))))),
            ):
                bits = WatermarkDecoder("bits", 48).decode(np.ascontiguousarray(copy[:, :, ::-1]), "dwtDct")
                kept[attack] += int(np.sum(np.asarray(bits, int) != marks.OWN_BITS)) <= marks.MAX_BIT_ERRORS
        rows += [{"size": size, "attack": a, "found": n, "images": len(samples)} for a, n in kept.items()]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--robust-sizes", default="512,1024")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="provenance-cost-"))
    harness.use_offline_env(workdir)

    cost = measure_cost([int(s) for s in args.sizes.split(",")], args.repeats, workdir)
    robust_sizes = [int(s) for s in args.robust_sizes.split(",")]
    robustness = measure_robustness(robust_sizes)
    default_channel = package_default_after_jpeg(robust_sizes)
    path = harness.write_results(
        "provenance_cost",
        {
            "repeats": args.repeats,
            "schnell_h200_s": SCHNELL_H200_S,
            "cost": cost,
            "robustness": robustness,
            "package_default_u_channel": default_channel,
        },
    )
    print()
    harness.print_table(
        [
            "size",
            "watermark ms",
            "plain PNG ms",
            "marked PNG ms",
            "XMP+C2PA ms",
            "added ms",
            "vs schnell H200",
        ],
        [
            [
                f"{r['size']}²",
                r["watermark_s"] * 1000,
                r["plain_png_s"] * 1000,
                r["marked_png_s"] * 1000,
                r["xmp_c2pa_s"] * 1000,
                r["added_s"] * 1000,
                f"{r['added_vs_schnell_h200']:.0%}",
            ]
            for r in cost
        ],
    )
    print()
    harness.print_table(
        ["size", "attack", "found", "false detections"],
        [
            [f"{r['size']}²", r["attack"], f"{r['found']}/{r['images']}", r["false_detections"]]
            for r in robustness
        ],
    )
    print("\nthe package's default placement (U channel), for comparison:")
    harness.print_table(
        ["size", "attack", "found"],
        [[f"{r['size']}²", r["attack"], f"{r['found']}/{r['images']}"] for r in default_channel],
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
