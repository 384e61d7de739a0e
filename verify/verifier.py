"""One-shot verification: a template vector and a probe sample -> decision at a security level."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from verify.calibration import Thresholds
from verify.config import DEFAULT_SECURITY_LEVEL
from verify.embedding import Embedding, Pipeline
from verify.errors import VerifyError
from verify.scoring import Decision, cosine_scores, decide


class Verifier:
    """Scores probes of one modality against templates and decides at a security level."""

    def __init__(self, pipeline: Pipeline, thresholds: Thresholds, level: str = DEFAULT_SECURITY_LEVEL) -> None:
        self.pipeline = pipeline
        self.thresholds = thresholds
        self.operating_point = thresholds.operating_point(level)

    def decide(self, template: np.ndarray, probe: Embedding) -> Decision:
        """Decision for an already embedded probe against a ``(D,)`` template."""
        score = float(cosine_scores(template, probe.vector)[0, 0])
        return decide(score, self.operating_point, probe.quality_issues)

    def check(self, template: np.ndarray, source: Any) -> Decision:
        """Embed one probe sample and decide; raises the sample's :class:`VerifyError`."""
        return self.decide(template, self.pipeline.embed(source))

    def check_many(self, template: np.ndarray, sources: Sequence[Any]) -> list[Decision | VerifyError]:
        """Embed probes in batches and decide each; failed samples yield their error."""
        return [
            result if isinstance(result, VerifyError) else self.decide(template, result)
            for result in self.pipeline.embed_many(sources)
        ]
