"""Settings read from environment variables, in one place.

Every knob a Space owner can turn lives here, with its default and the range it accepts; the README's
environment-variable table mirrors this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # speed.py reads on_zerogpu from here
    from flux_demo.speed import SpeedOptions


def _default_speed() -> SpeedOptions:
    from flux_demo.speed import SpeedOptions

    return SpeedOptions()


MEMORY_MODES = ("auto", "gpu", "model-offload", "sequential-offload")


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _env_int(name: str, default: int, minimum: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    number = int(value)
    if number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


def on_zerogpu() -> bool:
    """True inside a ZeroGPU Space, where `spaces` sets this variable."""
    return _env_bool("SPACES_ZERO_GPU", False)


ZEROGPU_SIZES = ("large", "xlarge")


def zerogpu_size() -> str:
    """The ZeroGPU slice to request (`FLUX_DEMO_ZEROGPU_SIZE`): all three real models need "xlarge"."""
    size = os.environ.get("FLUX_DEMO_ZEROGPU_SIZE", "").strip().lower() or "xlarge"
    if size not in ZEROGPU_SIZES:
        raise ValueError(f"FLUX_DEMO_ZEROGPU_SIZE must be one of {', '.join(ZEROGPU_SIZES)}, got {size!r}")
    return size


def default_tiny_dir() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache_home) / "flux-demo" / "tiny-models"


@dataclass(frozen=True)
class Settings:
    """The app's configuration; build it with `Settings.from_env()`."""

    models: tuple[str, ...] | None  # None: pick real models on a GPU, tiny ones elsewhere
    memory_mode: str
    preload: bool
    tiny_dir: Path
    queue_size: int
    gpu_concurrency: int
    mcp_server: bool = True
    rate_limit: str | None = None  # e.g. "10/minute" per visitor for GPU work; None: no limit
    speed: SpeedOptions = field(default_factory=_default_speed)

    @classmethod
    def from_env(cls) -> Settings:
        from flux_demo.speed import SpeedOptions

        models_env = os.environ.get("FLUX_DEMO_MODELS", "").strip()
        models = tuple(k.strip() for k in models_env.split(",") if k.strip()) or None
        memory_mode = os.environ.get("FLUX_DEMO_MEMORY_MODE", "auto").strip().lower() or "auto"
        if memory_mode not in MEMORY_MODES:
            raise ValueError(
                f"FLUX_DEMO_MEMORY_MODE must be one of {', '.join(MEMORY_MODES)}, got {memory_mode!r}"
            )
        return cls(
            models=models,
            memory_mode=memory_mode,
            # (On ZeroGPU `create_demo` always loads before launch, as `spaces` requires.)
            preload=_env_bool("FLUX_DEMO_PRELOAD", False),
            tiny_dir=Path(os.environ.get("FLUX_DEMO_TINY_DIR") or default_tiny_dir()),
            queue_size=_env_int("FLUX_DEMO_QUEUE_SIZE", 32, minimum=1),
            gpu_concurrency=_env_int("FLUX_DEMO_GPU_CONCURRENCY", 1, minimum=1),
            mcp_server=_env_bool("FLUX_DEMO_MCP", True),
            rate_limit=os.environ.get("FLUX_DEMO_RATE_LIMIT", "").strip() or None,
            speed=SpeedOptions.from_env(),
        )
