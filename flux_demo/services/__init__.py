"""The app's services: the GPU backend, and what the app keeps per visitor and per queue beside it (the
admission rules with the rate limiter, the pages' Stop flags, the queue's limits). `create_demo` builds
one `AppServices` and hands it to every tab, so the backend (in-process host, replica pool or Ray) only
runs GPU work, and two demos in one process keep their own limits and Stop flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flux_demo.config import Settings
from flux_demo.pipelines.backend import Backend
from flux_demo.services.admission import Admission
from flux_demo.services.limits import VisitorLimiter, limiter_for
from flux_demo.services.stops import StopRequests

__all__ = ["AppServices"]


@dataclass
class AppServices:
    """The app-level services of one demo (see the module docstring)."""

    backend: Backend
    admission: Admission
    stops: StopRequests = field(default_factory=StopRequests)

    @classmethod
    def for_backend(cls, backend: Backend, rules: Settings | None = None) -> AppServices:
        """The services for serving `backend`, with the admission rules (rate limit, per-visitor cap,
        trusted proxies) of `rules`, by default its own settings."""
        settings = rules or backend.settings
        limiter = limiter_for(settings.rate_limit, settings.trusted_proxies)
        return cls(backend, Admission(limiter, settings.max_queued_per_visitor, settings.trusted_proxies))

    @property
    def limiter(self) -> VisitorLimiter | None:
        return self.admission.limiter

    @property
    def settings(self) -> Settings:
        return self.backend.settings

    @property
    def model_keys(self) -> tuple[str, ...]:
        return self.backend.model_keys

    @property
    def concurrency(self) -> int:
        """GPU events Gradio's queue runs at once: the backend's replicas times their GPU slots."""
        return self.backend.concurrency

    @property
    def queue_size(self) -> int:
        return self.settings.queue_size
