"""The cached pipelines: loading, placement, the memory plan and speed options, owned by one `ModelHost`.

`get_pipeline(model_key)` is the short Python entry point: the cached diffusers pipeline for that key,
from a host built from the environment on first use. The app builds its own backend in `create_demo` (see
`pipelines.backend`): a `ModelHost` for one device, a `ReplicaPool` of per-device hosts
(`FLUX_DEMO_DEVICES`), or the `RayBackend` (`FLUX_DEMO_BACKEND=ray`).
"""

from __future__ import annotations

import functools

from flux_demo.pipelines.backend import Backend, Job, JobOutcome, LoadedModel, Replica
from flux_demo.pipelines.host import ModelHost
from flux_demo.pipelines.replicas import ReplicaPool, serving_host

__all__ = [
    "Backend",
    "Job",
    "JobOutcome",
    "LoadedModel",
    "ModelHost",
    "Replica",
    "ReplicaPool",
    "default_host",
    "get_pipeline",
    "serving_host",
]


@functools.cache
def default_host() -> ModelHost:
    """A host for scripts and notebooks, with settings from the environment (built once)."""
    return ModelHost()


def get_pipeline(model_key: str):
    """The cached diffusers pipeline for `model_key`, loading it on first use."""
    return default_host().get_pipeline(model_key)
