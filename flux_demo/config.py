"""Settings read from environment variables, in one place.

Every knob a Space owner can turn lives here, with its default and the range it accepts; the README's
environment-variable table mirrors this module. It imports nothing from the package.

Speed options (applied by `flux_demo.pipelines.speed`):

    FLUX_DEMO_COMPILE    auto | off | regional | aoti    auto: regional on a CUDA GPU, off elsewhere
    FLUX_DEMO_FP8        auto | off | on                 auto: on where compute capability >= 8.9 + torchao
    FLUX_DEMO_ATTENTION  auto | <diffusers backend>      auto: FlashAttention 3 on Hopper if installed,
                                                          else PyTorch SDPA's own choice
    FLUX_DEMO_CACHE      off | first-block:T | taylorseer:N | mag:T   lossy step caches, off by default
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MEMORY_MODES = ("auto", "gpu", "model-offload", "sequential-offload")
BACKENDS = ("local", "ray")


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _env_choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip().lower() or default
    _check_choice(name, value, allowed)
    return value


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


def on_space() -> bool:
    """True on a Hugging Face Space, where the platform sets SPACE_ID."""
    return bool(os.environ.get("SPACE_ID", "").strip())


def default_trusted_proxies() -> int:
    """One on a Space (its front-end proxy appends the visitor's address to X-Forwarded-For), else none."""
    return 1 if on_space() else 0


ZEROGPU_SIZES = ("auto", "large", "xlarge")


def zerogpu_size_setting() -> str:
    """`FLUX_DEMO_ZEROGPU_SIZE`: "auto" (the default: from the served models' size), "large" or "xlarge"."""
    size = os.environ.get("FLUX_DEMO_ZEROGPU_SIZE", "").strip().lower() or "auto"
    if size not in ZEROGPU_SIZES:
        raise ValueError(f"FLUX_DEMO_ZEROGPU_SIZE must be one of {', '.join(ZEROGPU_SIZES)}, got {size!r}")
    return size


def parse_devices(text: str) -> tuple[str, ...] | None:
    """`FLUX_DEMO_DEVICES`: a comma list of torch devices, one replica each ("cuda:0,cuda:1", "cpu,cpu");
    empty: None (every visible GPU, or the CPU)."""
    devices = tuple(d.strip().lower() for d in text.split(",") if d.strip())
    for device in devices:
        kind, _, index = device.partition(":")
        if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
            raise ValueError(f"FLUX_DEMO_DEVICES: each entry must be cpu, cuda or cuda:N, got {device!r}")
    return devices or None


def parse_replicas(text: str) -> tuple[int, int]:
    """`FLUX_DEMO_RAY_REPLICAS`: "N" (fixed) or "MIN-MAX" (autoscaling) Serve replicas per model."""
    low, _, high = text.strip().partition("-")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        bounds = (0, -1)
    if not 1 <= bounds[0] <= bounds[1]:
        raise ValueError(f"FLUX_DEMO_RAY_REPLICAS must look like 2 or 1-4 (1 <= MIN <= MAX), got {text!r}")
    return bounds


def _env_float(name: str, minimum: float) -> float | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = minimum - 1
    if not number >= minimum:
        raise ValueError(f"{name} must be a number >= {minimum:g}, got {value!r}")
    return number


def default_cache_dir() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache_home) / "flux-demo"


def default_tiny_dir() -> Path:
    return default_cache_dir() / "tiny-models"


def safety_model_setting() -> str | None:
    """`FLUX_DEMO_SAFETY_MODEL`: an image-classification model (hub id or folder) with an "nsfw" label that
    screens every output; None (the default) loads nothing."""
    return os.environ.get("FLUX_DEMO_SAFETY_MODEL", "").strip() or None


def c2pa_credentials() -> tuple[Path, Path] | None:
    """`FLUX_DEMO_C2PA_CERT` and `FLUX_DEMO_C2PA_KEY`: PEM files of the C2PA signing certificate chain and its
    private key, both or neither; None: a self-signed pair made on first use (see docs/provenance.md)."""
    cert = os.environ.get("FLUX_DEMO_C2PA_CERT", "").strip()
    key = os.environ.get("FLUX_DEMO_C2PA_KEY", "").strip()
    if bool(cert) != bool(key):
        raise ValueError("FLUX_DEMO_C2PA_CERT and FLUX_DEMO_C2PA_KEY must be set together (PEM file paths)")
    return (Path(cert), Path(key)) if cert else None


def safety_threshold_setting() -> float:
    """`FLUX_DEMO_SAFETY_THRESHOLD`: the "nsfw" score from which an output is withheld, 0 < T <= 1 (0.85,
    as in Black Forest Labs' own FLUX code)."""
    value = _env_float("FLUX_DEMO_SAFETY_THRESHOLD", minimum=0.0)
    if value is None:
        return 0.85
    if not 0 < value <= 1:
        raise ValueError(f"FLUX_DEMO_SAFETY_THRESHOLD must be a number > 0 and <= 1, got {value:g}")
    return value


COMPILE_MODES = ("auto", "off", "regional", "aoti")
FP8_MODES = ("auto", "off", "on")
# kind -> (config parameter, default value); the value after ":" overrides the default.
CACHE_KINDS = {
    "first-block": ("threshold", 0.08),
    "taylorseer": ("cache_interval", 5),
    "mag": ("threshold", 0.06),
}


@dataclass(frozen=True)
class SpeedOptions:
    """Requested speed-ups; `apply_speed_options` decides what this machine can actually use."""

    compile: str = "auto"
    fp8: str = "auto"
    attention: str = "auto"
    cache: str = "off"  # "off" or "<kind>[:<value>]", see CACHE_KINDS

    def __post_init__(self):
        _check_choice("FLUX_DEMO_COMPILE", self.compile, COMPILE_MODES)
        _check_choice("FLUX_DEMO_FP8", self.fp8, FP8_MODES)
        parse_cache(self.cache)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpeedOptions:
        env = os.environ if environ is None else environ

        def read(name: str, default: str) -> str:
            return env.get(name, "").strip().lower() or default

        return cls(
            compile=read("FLUX_DEMO_COMPILE", "auto"),
            fp8=read("FLUX_DEMO_FP8", "auto"),
            attention=read("FLUX_DEMO_ATTENTION", "auto"),
            cache=read("FLUX_DEMO_CACHE", "off"),
        )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def parse_cache(value: str) -> tuple[str, float] | None:
    """`"first-block:0.1"` -> `("first-block", 0.1)`; `"off"` -> None; a bad value raises ValueError."""
    if value == "off":
        return None
    kind, _, number = value.partition(":")
    if kind not in CACHE_KINDS:
        allowed = ", ".join(["off", *(f"{k}[:{v}]" for k, (_, v) in CACHE_KINDS.items())])
        raise ValueError(f"FLUX_DEMO_CACHE must be one of {allowed}, got {value!r}")
    if not number:
        return kind, float(CACHE_KINDS[kind][1])
    try:
        parsed = float(number)
    except ValueError:
        parsed = -1.0
    if not parsed > 0:
        raise ValueError(f"FLUX_DEMO_CACHE: the value after '{kind}:' must be a number > 0, got {number!r}")
    return kind, parsed


@dataclass(frozen=True)
class Settings:
    """The app's configuration; build it with `Settings.from_env()`."""

    models: tuple[str, ...] | None  # None: pick real models on a GPU, offline ones (nano) elsewhere
    memory_mode: str
    preload: bool
    tiny_dir: Path
    queue_size: int
    gpu_concurrency: int
    gpu_timeshare: int = 3  # GPU jobs per slot that may wait paused for their next turn (0: none)
    mcp_server: bool = True
    rate_limit: str | None = None  # e.g. "10/minute" per visitor for GPU work; None: no limit
    trusted_proxies: int = 0  # proxies in front of the app whose X-Forwarded-For entries are trusted
    max_queued_per_visitor: int = 2  # GPU and OCR jobs one visitor may have waiting or running at once
    session_capacity: int = 2000  # browser sessions whose state Gradio keeps (least recently used out)
    speed: SpeedOptions = field(default_factory=SpeedOptions)
    devices: tuple[str, ...] | None = None  # one replica per entry; None: every visible GPU, or the CPU
    backend: str = "local"  # "ray": the GPU work runs on Ray Serve (flux_demo.pipelines.ray_serve)
    ray_replicas: tuple[int, int] = (1, 1)  # Serve replicas per model: (min, max); min < max autoscales
    ray_gpus: float | None = None  # GPUs per Serve replica; None: 1 if the cluster has GPUs, else 0
    # Provenance (flux_demo.provenance): every output is watermarked, with XMP and a signed C2PA manifest.
    watermark: bool = True  # False only for local use: no watermark, no XMP, no C2PA
    c2pa_credentials: tuple[Path, Path] | None = None  # (certificate chain, key); None: self-signed
    c2pa_dir: Path = field(default_factory=lambda: default_cache_dir() / "c2pa")  # the self-signed pair
    safety_model: str | None = None  # image classifier that screens every output; None: no filter
    safety_threshold: float = 0.85  # "nsfw" score from which an output is withheld
    hub_loras: bool = True  # visitors may name any Hub LoRA by id (else only the curated ones)
    lora_max_mb: int = 700  # the largest LoRA file fetched from the Hub, in MB (a rank-128 FLUX.1 LoRA: ~650)

    @classmethod
    def from_env(cls) -> Settings:
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
            gpu_timeshare=_env_int("FLUX_DEMO_GPU_TIMESHARE", 3, minimum=0),
            mcp_server=_env_bool("FLUX_DEMO_MCP", True),
            rate_limit=os.environ.get("FLUX_DEMO_RATE_LIMIT", "").strip() or None,
            trusted_proxies=_env_int("FLUX_DEMO_TRUSTED_PROXIES", default_trusted_proxies(), minimum=0),
            max_queued_per_visitor=_env_int("FLUX_DEMO_MAX_QUEUED_PER_VISITOR", 2, minimum=1),
            session_capacity=_env_int("FLUX_DEMO_SESSION_CAPACITY", 2000, minimum=10),
            speed=SpeedOptions.from_env(),
            devices=parse_devices(os.environ.get("FLUX_DEMO_DEVICES", "")),
            backend=_env_choice("FLUX_DEMO_BACKEND", "local", BACKENDS),
            ray_replicas=parse_replicas(os.environ.get("FLUX_DEMO_RAY_REPLICAS", "") or "1"),
            ray_gpus=_env_float("FLUX_DEMO_RAY_GPUS", minimum=0.0),
            watermark=_env_bool("FLUX_DEMO_WATERMARK", True),
            c2pa_credentials=c2pa_credentials(),
            safety_model=safety_model_setting(),
            safety_threshold=safety_threshold_setting(),
            hub_loras=_env_bool("FLUX_DEMO_HUB_LORAS", True),
            lora_max_mb=_env_int("FLUX_DEMO_LORA_MAX_MB", 700, minimum=1),
        )
