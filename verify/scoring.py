"""Similarity scores and accept / reject / retry decisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

Outcome = Literal["accepted", "rejected", "retry"]


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row of ``(N, D)`` (or a single ``(D,)`` vector) to unit length."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    if not np.all(np.isfinite(vectors)) or np.any(norms == 0):
        raise ValueError("cannot normalise an embedding that is zero or not finite")
    return vectors / norms


def cosine_scores(templates: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Cosine similarity of every template ``(N, D)`` with every probe ``(M, D)``: ``(N, M)``."""
    templates, probes = np.atleast_2d(templates), np.atleast_2d(probes)
    if templates.shape[1] != probes.shape[1]:
        raise ValueError(
            f"templates have dimension {templates.shape[1]} but probes have {probes.shape[1]}"
        )
    return l2_normalize(templates) @ l2_normalize(probes).T


@dataclass(frozen=True)
class OperatingPoint:
    """Thresholds of one security level: accept at ``threshold``, retry from ``retry_threshold``."""

    level: str
    target_far: float
    threshold: float
    retry_threshold: float


@dataclass(frozen=True)
class Decision:
    """The answer to one verification: outcome, score and the threshold it was held against."""

    outcome: Outcome
    score: float
    threshold: float
    reason: str = ""

    @property
    def accepted(self) -> bool:
        """True only for an ``"accepted"`` outcome."""
        return self.outcome == "accepted"


def decide(score: float, point: OperatingPoint, quality_issues: Sequence[str] = ()) -> Decision:
    """Turn a score into a decision at an operating point.

    Scores at or above the threshold are accepted. Below it, a sample with quality issues, or a
    score inside the retry band, asks for another sample; anything else is rejected.
    """
    if score >= point.threshold:
        return Decision("accepted", score, point.threshold)
    if quality_issues:
        return Decision("retry", score, point.threshold, "; ".join(quality_issues))
    if score >= point.retry_threshold:
        return Decision("retry", score, point.threshold, "borderline score, try another sample")
    return Decision("rejected", score, point.threshold, "score below threshold")
