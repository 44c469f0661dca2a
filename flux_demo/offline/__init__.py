"""Offline FLUX models: random tiny twins for fast tests and the trained nano family."""

from __future__ import annotations

from pathlib import Path


def local_source(variant: str, tiny_dir: Path) -> str:
    """The folder `from_pretrained` loads an offline model from: a shipped nano folder ("nano-dev"), or a
    tiny twin ("flux1-dev"), built into `tiny_dir` on first use."""
    if variant.startswith("nano-"):
        from flux_demo.offline.nano import WEIGHTS_DIR

        folder = WEIGHTS_DIR / variant
        if not (folder / "model_index.json").exists():
            raise FileNotFoundError(
                f"{folder} is missing: the nano weights ship with the repository (git lfs pull?)"
            )
        return str(folder)  # diffusers on Python 3.10 wants a str, not a Path
    from flux_demo.offline.tiny import ensure_tiny_model

    return str(ensure_tiny_model(variant, tiny_dir))
