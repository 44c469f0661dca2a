"""Train the nano FLUX family from scratch: ``python -m training.nano_train --out DIR``.

``--family flux1`` trains nano-schnell and nano-dev (`training.nano_flux1`), ``--family klein`` trains
nano-klein (`training.nano_klein`) on the autoencoder of a FLUX.1 nano folder (``--autoencoder``, by
default the one the flux1 family wrote into DIR, else the shipped one), and ``--family all`` (the default)
does both in that order. Every stage is checkpointed under ``DIR/ckpt``: a re-run resumes after the last
finished stage. ``--init-from FOLDER`` seeds the FLUX.1 checkpoints from finished pipelines (e.g. the
shipped ``flux_demo/offline/nano_weights``), so only the stages after them run.

Everything is seeded; ``--smoke`` runs a few steps of each stage on a tiny data set, ``--scale F``
multiplies every stage's steps. Writes the pipelines (``save_pretrained``, float16 safetensors),
``DIR/metrics.json``, ``DIR/nano_loss.png`` and ``DIR/train.log``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from training.common import Log, Stages, plot_losses, seed_everything

LOSS_LABELS = {
    "vae": "VAE L1 (edge-weighted)",
    "base": "base flow loss",
    "dev": "guidance distill",
    "schnell": "schnell reflow",
    "decoder": "decoder L1 (edge-weighted)",
    "klein_base": "klein flow loss",
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    import torch

    from flux_demo.offline.nano import WEIGHTS_DIR

    parser = argparse.ArgumentParser(description="Train the nano FLUX family.")
    parser.add_argument("--out", type=Path, required=True, help="folder for the pipelines and logs")
    parser.add_argument("--family", choices=("all", "flux1", "klein"), default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a few steps of every stage on tiny data")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (ignored on CUDA)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every stage's steps; 1 = shipped")
    parser.add_argument("--until", default=None, help="stop after this stage (e.g. vae)")
    parser.add_argument("--init-from", type=Path, default=None, help="finished FLUX.1 nano pipelines")
    parser.add_argument(
        "--autoencoder",
        type=Path,
        default=None,
        help=f"the AutoencoderKL folder nano-klein uses (default DIR/nano-schnell/vae, else {WEIGHTS_DIR})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    import torch

    from flux_demo.offline.nano import WEIGHTS_DIR, load_grammar

    args = parse(argv)
    torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "train.log")
    metrics: dict = {"device": args.device, "seed": args.seed, "stages": {}, "plans": {}}
    stages = Stages(out / "ckpt", log, metrics)
    seed_everything(args.seed)
    grammar = load_grammar()
    started = time.time()

    if args.family in ("all", "flux1"):
        from training import nano_flux1_train as nano_flux1

        plan = nano_flux1.Plan.smoke() if args.smoke else nano_flux1.Plan().scaled(args.scale)
        metrics["plans"]["flux1"] = plan.__dict__
        if args.init_from:
            nano_flux1.seed_checkpoints(args.init_from, stages)
        nano_flux1.train(out, grammar, plan, stages, log, args.device, args.seed, args.smoke, args.until)
    if args.family in ("all", "klein") and args.until is None:
        from training import nano_klein

        plan = nano_klein.Plan.smoke() if args.smoke else nano_klein.Plan().scaled(args.scale)
        metrics["plans"]["klein"] = plan.__dict__
        autoencoder = args.autoencoder or out / "nano-schnell" / "vae"
        if not autoencoder.exists():
            autoencoder = WEIGHTS_DIR / "nano-schnell" / "vae"
        metrics["klein_autoencoder"] = str(autoencoder)
        nano_klein.train(out, grammar, plan, autoencoder, stages, log, args.device, args.smoke)

    metrics["seconds_total_this_run"] = round(time.time() - started, 1)
    metrics["stage_seconds_sum"] = round(sum(s.get("seconds", 0) for s in metrics["stages"].values()), 1)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n", encoding="utf-8")
    plot_losses(log.curves, LOSS_LABELS, out / "nano_loss.png")
    return metrics


if __name__ == "__main__":
    main()
