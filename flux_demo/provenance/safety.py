"""The optional content filter: an image classifier screens every output, and an image it scores as
"nsfw" at or above the threshold is withheld with a message instead of being shown.

`FLUX_DEMO_SAFETY_MODEL` names any `transformers` image-classification model with an "nsfw" label (for
example Falconsai/nsfw_image_detection, the classifier Black Forest Labs' FLUX code runs);
`FLUX_DEMO_SAFETY_THRESHOLD` sets the threshold (0.85 by default, as there). Without a model, nothing
is loaded.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from PIL import Image

from flux_demo.faults import GenerationFailed
from flux_demo.messages import Message

log = logging.getLogger(__name__)

LABEL = "nsfw"  # compared without case


class ContentWithheld(GenerationFailed):
    """The content filter scored the image at or above its threshold; the image is not shown."""

    title = "title.content_filtered"

    def __init__(self, score: float, threshold: float):
        super().__init__(Message("fault.content_filtered", score=score, limit=threshold))
        self.score = score


class SafetyFilter:
    """An image-classification pipeline (loaded on first use, on the CPU) and a threshold on its
    "nsfw" score; counts what it screened and withheld."""

    def __init__(self, model: str, threshold: float = 0.85):
        self.model = model
        self.threshold = threshold
        self.screened = 0
        self.withheld = 0
        self._classifier: Any = None  # a transformers pipeline, loaded on first use
        self._lock = threading.Lock()

    def _load(self):
        from transformers import pipeline

        classifier = pipeline("image-classification", model=self.model, device="cpu")
        labels = {str(label).lower() for label in classifier.model.config.id2label.values()}
        if LABEL not in labels:
            raise ValueError(
                f"FLUX_DEMO_SAFETY_MODEL: {self.model} has no {LABEL!r} label (its labels: {sorted(labels)})"
            )
        log.info("content filter: %s loaded, threshold %.2f", self.model, self.threshold)
        return classifier

    def score(self, image: Image.Image) -> float:
        """The classifier's "nsfw" probability for `image`, 0 to 1."""
        with self._lock:  # one classification at a time: the pipeline is not thread-safe
            if self._classifier is None:
                self._classifier = self._load()
            results = self._classifier(image.convert("RGB"), top_k=None)
        return max(float(r["score"]) for r in results if str(r["label"]).lower() == LABEL)

    def screen(self, image: Image.Image) -> None:
        """Raise `ContentWithheld` when `image` scores at or above the threshold; log every withheld one."""
        score = self.score(image)
        with self._lock:
            self.screened += 1
            withheld = score >= self.threshold
            self.withheld += withheld
            counts = (self.withheld, self.screened)
        if withheld:
            log.warning(
                "content filter withheld an image (score %.3f >= %.2f); %d of %d withheld since start",
                score,
                self.threshold,
                *counts,
            )
            raise ContentWithheld(score, self.threshold)
