"""Similarity scores and accept / reject / retry decisions.

:func:`decide` holds a raw cosine against cosine thresholds; :func:`decide_calibrated` holds a
calibrated log-likelihood ratio (:mod:`verify.calibration`) against LLR thresholds and answers
"retry" with an action when the sample's quality is what stands between it and acceptance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

Outcome = Literal["accepted", "rejected", "retry"]
BORDERLINE_REASON = "borderline score, try another sample"
BELOW_THRESHOLD_REASON = "score below threshold"


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
    """Thresholds of one security level: accept at ``threshold``, retry from ``retry_threshold``.

    Thresholds are in the units of what they are held against: cosine for :func:`decide`, LLR
    for :func:`decide_calibrated`.
    """

    level: str
    target_far: float
    threshold: float
    retry_threshold: float


@dataclass(frozen=True)
class Decision:
    """The answer to one verification: outcome, score and the threshold it was held against.

    Attributes:
        outcome: ``"accepted"``, ``"rejected"`` or ``"retry"``.
        score: the raw cosine (:func:`decide`) or the calibration's input score, the S-normalised
            cosine when the calibration uses a cohort (:func:`decide_calibrated`).
        threshold: the score needed for acceptance, in the units of ``score``; for a calibrated
            decision it is the score at which this sample's LLR reaches ``llr_threshold``
            (``inf`` when no score would do).
        reason: what went wrong or what to do, empty when accepted.
        llr: calibrated log-likelihood ratio (natural log), ``None`` for an uncalibrated decision.
        llr_threshold: the level's LLR threshold, ``None`` for an uncalibrated decision.
        calibrated: what calibration made of the sample (LLR, quality gain, advice), for fusing
            modalities by their LLRs; ``None`` for an uncalibrated decision. Not compared.
    """

    outcome: Outcome
    score: float
    threshold: float
    reason: str = ""
    llr: float | None = None
    llr_threshold: float | None = None
    calibrated: CalibratedScore | None = field(default=None, compare=False, repr=False)

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
        return Decision("retry", score, point.threshold, BORDERLINE_REASON)
    return Decision("rejected", score, point.threshold, BELOW_THRESHOLD_REASON)


@dataclass(frozen=True)
class CalibratedScore:
    """What calibration makes of one trial (see :meth:`verify.calibration.ScoreCalibration.calibrated`).

    Attributes:
        score: the calibration's input score (S-normalised cosine, or raw cosine without a cohort).
        llr: calibrated log-likelihood ratio of same person vs different people.
        slope: ``d llr / d score`` at this sample's quality.
        quality_gain: how much higher the LLR would be with every measure at its good-quality
            reference (``>= 0``).
        advice: what the person can do about the measure that costs most, empty when none.
        unsupported: non-empty when a quality measure is worse than anything the calibration
            was fitted on: what to do about it. Such a sample is never accepted (its LLR is an
            extrapolation).
    """

    score: float
    llr: float
    slope: float
    quality_gain: float = 0.0
    advice: str = ""
    unsupported: str = ""


def score_at_llr(result: CalibratedScore, llr_threshold: float) -> float:
    """The score at which ``result``'s LLR would equal ``llr_threshold`` (``inf`` if never)."""
    if result.slope <= 0:
        return float("inf")
    return result.score + (llr_threshold - result.llr) / result.slope


def calibrated_outcomes(
    llr: np.ndarray, slope: np.ndarray, quality_gain: np.ndarray, point: OperatingPoint,
    supported: np.ndarray | None = None,
) -> np.ndarray:
    """Vectorised outcomes of :func:`decide_calibrated` without front-end quality issues.

    ``point`` holds LLR thresholds. Accepted: supported quality, positive slope and ``llr >=
    threshold``. Retry: unsupported quality, good quality would be accepted, or ``llr >=
    retry_threshold``. Rejected otherwise.
    """
    llr, slope, gain = (np.asarray(value, dtype=np.float64) for value in (llr, slope, quality_gain))
    supported = np.ones(llr.shape, bool) if supported is None else np.asarray(supported, bool)
    accepted = supported & (slope > 0) & (llr >= point.threshold)
    quality_limited = ~supported | ((gain > 0) & (llr + gain >= point.threshold))
    retry = ~accepted & (quality_limited | (llr >= point.retry_threshold))
    return np.where(accepted, "accepted", np.where(retry, "retry", "rejected"))


def decide_calibrated(
    result: CalibratedScore, point: OperatingPoint, quality_issues: Sequence[str] = ()
) -> Decision:
    """Decide on a calibrated LLR at an operating point whose thresholds are LLRs.

    In order: retry asking for better quality when a measure is worse than anything the
    calibration saw (``result.unsupported``); accepted when the LLR reaches the threshold (and
    the score carries evidence, ``slope > 0``); retry with the quality advice when the same
    score at good quality would be accepted; retry naming the front end's quality issues; retry
    when the LLR is in the retry band; rejected otherwise.
    """
    threshold = float("inf") if result.unsupported else score_at_llr(result, point.threshold)
    made = {"score": result.score, "threshold": threshold, "llr": result.llr,
            "llr_threshold": point.threshold, "calibrated": result}
    if result.unsupported:
        return Decision("retry", reason=result.unsupported, **made)
    if result.slope > 0 and result.llr >= point.threshold:
        return Decision("accepted", **made)
    if result.quality_gain > 0 and result.llr + result.quality_gain >= point.threshold:
        reason = result.advice or "; ".join(quality_issues) or BORDERLINE_REASON
        return Decision("retry", reason=reason, **made)
    if quality_issues:
        return Decision("retry", reason="; ".join(quality_issues), **made)
    if result.llr >= point.retry_threshold:
        return Decision("retry", reason=BORDERLINE_REASON, **made)
    return Decision("rejected", reason=BELOW_THRESHOLD_REASON, **made)
