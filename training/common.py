"""What every nano training stage shares: the optimisation loop, EMA, the learning-rate schedule, resumable
stage checkpoints, logging and the loss plot, and the autoencoder's loss."""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# Sleep rather than spin while waiting for work: spinning OpenMP threads slow training down 10-30x
# when other processes share the CPU cores. It only takes effect before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

LOG_EVERY = 50


class Log:
    """Prints progress and keeps every logged loss for the plot and the metrics file."""

    def __init__(self, path: Path):
        self.path = path
        self.curves: dict[str, list[tuple[int, float]]] = {}
        self.started = time.time()

    def __call__(self, message: str) -> None:
        line = f"[{time.time() - self.started:7.1f}s] {message}"
        print(line, flush=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def loss(self, stage: str, step: int, value: float) -> None:
        self.curves.setdefault(stage, []).append((step, value))


class EMA:
    """An exponential moving average of the trainable weights of ``modules``."""

    def __init__(self, modules: Iterable[torch.nn.Module], decay: float):
        self.decay = decay
        self.params = [p for m in modules for p in m.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for shadow, param in zip(self.shadow, self.params, strict=True):
            shadow.lerp_(param.detach(), 1 - decay)

    @torch.no_grad()
    def copy_to(self) -> None:
        for shadow, param in zip(self.shadow, self.params, strict=True):
            param.copy_(shadow)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the live weights and the average (twice restores both): checks run on the average."""
        for shadow, param in zip(self.shadow, self.params, strict=True):
            live = param.detach().clone()
            param.copy_(shadow)
            shadow.copy_(live)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def lr_at(step: int, total: int, peak: float, warmup: int = 100) -> float:
    """Linear warm-up, then a cosine down to a tenth of ``peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_loop(
    name: str,
    groups: list[dict],
    steps: int,
    loss_fn: Callable[[int], torch.Tensor],
    log: Log,
    *,
    warmup: int = 100,
    weight_decay: float = 0.01,
    ema: EMA | None = None,
    check: Callable[[int], str] | None = None,
    check_every: int = 0,
    snapshot: Snapshot | None = None,
) -> None:
    """AdamW over parameter ``groups`` ({"params": [...], "lr": peak}) for ``steps`` steps of
    ``loss_fn(step)``: warm-up and cosine schedule per group, gradients clipped to norm 1, the EMA updated
    after each step and copied into the weights at the end. ``check(step)`` runs every ``check_every``
    steps; ``snapshot`` saves the loop now and then and resumes from its last save."""
    peaks = [group["lr"] for group in groups]
    params = [p for group in groups for p in group["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)
    start = snapshot.resume(optimizer, ema, log) if snapshot else 0
    for step in range(start, steps):
        loss = loss_fn(step)
        for group, peak in zip(optimizer.param_groups, peaks, strict=True):
            group["lr"] = lr_at(step, steps, peak, warmup)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if ema is not None:
            ema.update(step)
        if step % LOG_EVERY == 0 or step == steps - 1:
            log.loss(name, step, loss.item())
            log(f"{name} {step}/{steps} loss {loss.item():.5f}")
        if check is not None and check_every and step and step % check_every == 0:
            log(f"{name} {step} check: {check(step)}")
        if snapshot and (step + 1) % snapshot.every == 0 and step + 1 < steps:
            snapshot.save(step + 1, optimizer, ema, log)
    if ema is not None:
        ema.copy_to()


@dataclass
class Snapshot:
    """A long stage's progress in ``path`` every ``every`` steps: the modules, the optimizer, the EMA, the
    log's curves and whatever ``state()`` returns (data order), so a stopped run goes on where it was."""

    path: Path
    every: int
    modules: list[torch.nn.Module]
    state: Callable[[], dict]
    restore: Callable[[dict], None]

    def save(self, step: int, optimizer, ema: EMA | None, log: Log) -> None:
        saved = {
            "step": step,
            "modules": [m.state_dict() for m in self.modules],
            "optimizer": optimizer.state_dict(),
            "ema": ema.shadow if ema else None,
            "curves": log.curves,
            "state": self.state(),
        }
        torch.save(saved, self.path.with_suffix(".tmp"))
        self.path.with_suffix(".tmp").replace(self.path)

    def resume(self, optimizer, ema: EMA | None, log: Log) -> int:
        if not self.path.exists():
            return 0
        saved = torch.load(self.path, weights_only=False)
        for module, weights in zip(self.modules, saved["modules"], strict=True):
            module.load_state_dict(weights)
        optimizer.load_state_dict(saved["optimizer"])
        if ema is not None:
            for shadow, value in zip(ema.shadow, saved["ema"], strict=True):
                shadow.copy_(value)
        log.curves.update(saved["curves"])
        self.restore(saved["state"])
        log(f"resumed at step {saved['step']} from {self.path}")
        return saved["step"]


class Stages:
    """Resumable stages: each writes ``ckpt/<name>.pt``, and a re-run restores it instead of training."""

    def __init__(self, ckpt: Path, log: Log, metrics: dict):
        self.ckpt = ckpt
        self.log = log
        self.metrics = metrics
        ckpt.mkdir(parents=True, exist_ok=True)

    def done(self, name: str) -> bool:
        return (self.ckpt / f"{name}.pt").exists()

    def run(self, name: str, train: Callable[[], dict], restore: Callable[[dict], None]) -> None:
        """``train()`` returns the stage's state (weights and a "metrics" dict); ``restore(state)`` puts a
        state into the live modules (after training too, so both paths leave the same state)."""
        path = self.ckpt / f"{name}.pt"
        if path.exists():
            state = torch.load(path, weights_only=False)
        else:
            started = time.time()
            state = train()
            state["metrics"] = {"seconds": round(time.time() - started, 1), **state.get("metrics", {})}
            state["curves"] = {key: self.log.curves[key] for key in self.log.curves if key.startswith(name)}
            torch.save(state, path)
        restore(state)
        self.metrics["stages"][name] = state["metrics"]
        self.log.curves.update(state.get("curves", {}))
        self.log(f"{name}: {state['metrics']}")


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> floats in [-1, 1]."""
    return pixels.float() / 127.5 - 1.0


def edge_weights(x: torch.Tensor) -> torch.Tensor:
    """Per-pixel loss weights: 5 near edges (letters, frames, shape outlines), 1 on flat colour.

    Edges are a few percent of the pixels but all of what makes a letter legible.
    """
    step_x = (x[..., :, 1:] - x[..., :, :-1]).abs().amax(1, keepdim=True)
    step_y = (x[..., 1:, :] - x[..., :-1, :]).abs().amax(1, keepdim=True)
    edges = torch.zeros_like(x[:, :1])
    edges[..., :, 1:] += step_x
    edges[..., 1:, :] += step_y
    return 1 + 4 * F.max_pool2d((edges > 0.2).float(), 5, stride=1, padding=2)


def reconstruction_loss(recon: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, edge-weighted L1) of a decoded image against its original: the edge-weighted L1, plus MSE,
    plus an L1 on 8x8 block means (a colour cast is what the colour checks see)."""
    weight = edge_weights(x)
    l1 = ((recon - x).abs() * weight).mean() / weight.mean()
    colour = F.l1_loss(F.avg_pool2d(recon, 8), F.avg_pool2d(x, 8))
    return l1 + 0.5 * F.mse_loss(recon, x) + colour, l1


def plot_losses(curves: dict[str, list[tuple[int, float]]], labels: dict[str, str], path: Path) -> None:
    """A small log-scale loss plot per stage (in the order of ``labels``), drawn with PIL."""
    from PIL import Image, ImageDraw, ImageFont

    stages = [name for name in labels if curves.get(name)]
    width, height, pad = 300, 220, 36
    image = Image.new("RGB", (width * max(1, len(stages)), height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("DejaVuSans.ttf", 11)
    for k, name in enumerate(stages):
        points = curves[name]
        xs = [p[0] for p in points]
        ys = [math.log10(max(p[1], 1e-8)) for p in points]
        x0, x1 = k * width + pad, (k + 1) * width - 10
        y0, y1 = 24, height - pad
        lo, hi = min(ys), max(ys)
        hi = hi if hi > lo else lo + 1
        span = max(1, max(xs))
        draw.rectangle([x0, y0, x1, y1], outline="black")
        coords = [
            (x0 + (x1 - x0) * x / span, y1 - (y1 - y0) * (y - lo) / (hi - lo))
            for x, y in zip(xs, ys, strict=True)
        ]
        if len(coords) > 1:
            draw.line(coords, fill=(30, 90, 200), width=2)
        draw.text((x0, 6), labels[name], fill="black", font=font)
        draw.text((x0, y1 + 4), f"step 0 … {max(xs)}", fill="black", font=font)
        draw.text((x0 + 2, y0 + 2), f"{10**hi:.3g}", fill="gray", font=font)
        draw.text((x0 + 2, y1 - 14), f"{10**lo:.3g}", fill="gray", font=font)
    image.save(path)
