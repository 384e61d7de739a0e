"""Verification metrics over scored trials: EER, TAR at fixed FAR, minDCF, ROC and DET data,
Cllr and min Cllr of calibrated LLRs, and FAR / FRR / retry rates of decisions per security level.

Conventions: a *trial* is one (template, probe) comparison with a score (higher = more alike)
and a label (``True`` = same identity). A trial that failed to produce a score (no face, no
speech) is passed as ``-inf``: it is rejected at every threshold, so a failed genuine trial counts
as a false reject and a failed impostor trial as a correct reject ("generalised" FRR/FAR of
ISO/IEC 19795-1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

DEFAULT_P_TARGET = 0.01


@dataclass(frozen=True)
class RocCurve:
    """Error rates at every distinct threshold, thresholds descending.

    ``far[i]`` and ``frr[i]`` are the rates when accepting ``score >= thresholds[i]``.
    """

    thresholds: np.ndarray
    far: np.ndarray
    frr: np.ndarray

    @property
    def tar(self) -> np.ndarray:
        """True accept rate, ``1 - frr``."""
        return 1.0 - self.frr


def _split(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in length")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; pass -inf for failed trials")
    genuine, impostor = scores[labels], scores[~labels]
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError(
            f"need genuine and impostor trials, got {genuine.size} genuine and {impostor.size} impostor"
        )
    return genuine, impostor


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> RocCurve:
    """FAR and FRR at every distinct score used as threshold (accept ``score >= t``).

    The first point has threshold ``+inf`` (nothing accepted: FAR 0, FRR 1).
    """
    genuine, impostor = _split(scores, labels)
    finite = np.concatenate([genuine, impostor])
    thresholds = np.unique(finite[np.isfinite(finite)])[::-1]
    thresholds = np.concatenate([[np.inf], thresholds])
    genuine_sorted, impostor_sorted = np.sort(genuine), np.sort(impostor)
    accepted_genuine = genuine.size - np.searchsorted(genuine_sorted, thresholds, side="left")
    accepted_impostor = impostor.size - np.searchsorted(impostor_sorted, thresholds, side="left")
    far = accepted_impostor / impostor.size
    frr = 1.0 - accepted_genuine / genuine.size
    return RocCurve(thresholds=thresholds, far=far, frr=frr)


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Return ``(eer, threshold)``: the rate where FAR and FRR cross, linearly interpolated.

    The threshold is the one of the ROC point nearest to the crossing. When failed genuine trials
    keep FRR above FAR at every threshold, the curves never cross; the rates are then closest at
    the lowest threshold, and their mean there is returned.
    """
    curve = roc_curve(scores, labels)
    difference = curve.far - curve.frr  # rises from -1 towards +something as thresholds fall
    index = int(np.argmax(difference >= 0))
    if index == 0:  # no crossing (difference[0] is always -1)
        return float((curve.far[-1] + curve.frr[-1]) / 2), float(curve.thresholds[-1])
    before, after = index - 1, index
    span = difference[after] - difference[before]
    weight = 0.0 if span == 0 else -difference[before] / span
    eer_far = curve.far[before] + weight * (curve.far[after] - curve.far[before])
    eer_frr = curve.frr[before] + weight * (curve.frr[after] - curve.frr[before])
    nearest = before if weight < 0.5 else after
    return float((eer_far + eer_frr) / 2), float(curve.thresholds[nearest])


def _operating_index(curve: RocCurve, target_far: float) -> int:
    """Index of the lowest threshold whose FAR does not exceed ``target_far``."""
    if not 0.0 < target_far < 1.0:
        raise ValueError(f"target_far must be in (0, 1), got {target_far}")
    return int(np.nonzero(curve.far <= target_far)[0][-1])


def threshold_at_far(scores: np.ndarray, labels: np.ndarray, target_far: float) -> float:
    """Lowest threshold whose FAR does not exceed ``target_far``."""
    curve = roc_curve(scores, labels)
    return float(curve.thresholds[_operating_index(curve, target_far)])


def tar_at_far(scores: np.ndarray, labels: np.ndarray, target_far: float) -> float:
    """True accept rate at the lowest threshold whose FAR does not exceed ``target_far``."""
    curve = roc_curve(scores, labels)
    return float(curve.tar[_operating_index(curve, target_far)])


def min_dcf(
    scores: np.ndarray,
    labels: np.ndarray,
    p_target: float = DEFAULT_P_TARGET,
    cost_miss: float = 1.0,
    cost_false_alarm: float = 1.0,
) -> float:
    """Minimum normalised detection cost (NIST SRE): min over thresholds of
    ``(C_miss * P_target * FRR + C_fa * (1 - P_target) * FAR) / min(C_miss * P_target, C_fa * (1 - P_target))``.
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    curve = roc_curve(scores, labels)
    cost = cost_miss * p_target * curve.frr + cost_false_alarm * (1 - p_target) * curve.far
    default_cost = min(cost_miss * p_target, cost_false_alarm * (1 - p_target))
    return float(np.min(cost) / default_cost)


def det_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DET curve coordinates ``(probit(FAR), probit(FRR))``, rates clipped to (1e-6, 1 - 1e-6)."""
    from scipy.stats import norm

    curve = roc_curve(scores, labels)
    far, frr = (np.clip(rate, 1e-6, 1 - 1e-6) for rate in (curve.far, curve.frr))
    return norm.ppf(far), norm.ppf(frr)


# --- calibration quality: Cllr ----------------------------------------------------------------
def _prior_costs(llrs: np.ndarray, labels: np.ndarray, p_target: float) -> float:
    """Prior-weighted mean cost in bits, divided by the cost of ``llr = 0`` (``H(p_target)``)."""
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    target, nontarget = _split(llrs, labels)
    prior_logodds = np.log(p_target / (1 - p_target))
    miss = np.mean(np.logaddexp(0.0, -(target + prior_logodds)))
    false_alarm = np.mean(np.logaddexp(0.0, nontarget + prior_logodds))
    entropy = -(p_target * np.log(p_target) + (1 - p_target) * np.log(1 - p_target))
    return float((p_target * miss + (1 - p_target) * false_alarm) / entropy)


def cllr(llrs: np.ndarray, labels: np.ndarray, p_target: float = 0.5) -> float:
    """Log-likelihood-ratio cost of calibrated LLRs (natural log), in bits per trial.

    At ``p_target = 0.5`` this is Brümmer's Cllr, ``0.5 * (mean log2(1 + e^-llr) over genuine +
    mean log2(1 + e^llr) over impostors)``; other priors give the prior-weighted cost divided by
    that of the uninformative ``llr = 0``. 0 is perfect, 1 is no better than not deciding.
    """
    return _prior_costs(llrs, labels, p_target)


def min_cllr(scores: np.ndarray, labels: np.ndarray, p_target: float = 0.5) -> float:
    """Cllr after the best monotonic recalibration of ``scores`` (pool-adjacent-violators).

    Tied scores are pooled first, so the optimum cannot exploit their order. ``min_cllr <=
    cllr`` for any LLRs that rise with the scores; the gap is the calibration loss.
    """
    from scipy.optimize import isotonic_regression

    target, nontarget = _split(scores, labels)
    values, inverse = np.unique(np.concatenate([target, nontarget]), return_inverse=True)
    is_target = np.r_[np.ones(target.size), np.zeros(nontarget.size)]
    counts = np.bincount(inverse, minlength=values.size).astype(np.float64)
    targets = np.bincount(inverse, weights=is_target, minlength=values.size)
    posterior = isotonic_regression(targets / counts, weights=counts).x
    with np.errstate(divide="ignore"):
        llr = np.log(posterior) - np.log1p(-posterior) - np.log(target.size / nontarget.size)
    # blocks with posterior 0 hold no genuine trials (and 1 no impostors): their infinite LLR
    # costs nothing, which the clip keeps out of nan arithmetic
    limit = 700.0
    block_llr = np.clip(llr, -limit, limit)[inverse]
    return _prior_costs(block_llr, is_target.astype(bool), p_target)


# --- rates of decisions at the shipped security levels ----------------------------------------
@dataclass(frozen=True)
class LevelRates:
    """Error and retry rates of decisions at one security level, as fractions.

    Attributes:
        threshold: the level's threshold (in the units of the scores decided on).
        far: impostor trials accepted / impostor trials.
        frr: genuine trials not accepted (rejected or retry) / genuine trials: one attempt.
        retry: genuine trials answered "retry" / genuine trials (part of ``frr``).
        genuine: number of genuine trials.
        impostor: number of impostor trials.
    """

    threshold: float
    far: float
    frr: float
    retry: float
    genuine: int
    impostor: int

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready ``{"threshold", "far", "frr", "retry", "genuine", "impostor"}``."""
        return {"threshold": self.threshold, "far": self.far, "frr": self.frr, "retry": self.retry,
                "genuine": self.genuine, "impostor": self.impostor}


def level_rates(labels: np.ndarray, outcomes: np.ndarray, threshold: float) -> LevelRates:
    """FAR, FRR and retry rate of per-trial outcomes (``"accepted"``, ``"retry"``, ``"rejected"``,
    or ``"error"`` for a sample that could not be scored: never accepted, not a retry).

    Raises:
        ValueError: lengths differ, an outcome is unknown, or a class has no trials.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    outcomes = np.asarray(outcomes).astype(str).ravel()
    if labels.shape != outcomes.shape:
        raise ValueError(f"labels {labels.shape} and outcomes {outcomes.shape} differ in length")
    unknown = {str(outcome) for outcome in np.unique(outcomes)} - {"accepted", "retry", "rejected", "error"}
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)}: expected accepted, retry, rejected or error")
    genuine, impostor = int(labels.sum()), int((~labels).sum())
    if genuine == 0 or impostor == 0:
        raise ValueError(f"need genuine and impostor trials, got {genuine} genuine and {impostor} impostor")
    accepted = outcomes == "accepted"
    return LevelRates(
        threshold=float(threshold),
        far=float(np.sum(accepted & ~labels) / impostor),
        frr=float(np.sum(~accepted & labels) / genuine),
        retry=float(np.sum((outcomes == "retry") & labels) / genuine),
        genuine=genuine,
        impostor=impostor,
    )


def levels_report(
    labels: np.ndarray, outcomes_by_level: Mapping[str, np.ndarray], thresholds: Mapping[str, float]
) -> dict[str, dict[str, float | int]]:
    """``{"low"|"medium"|"high": {"threshold", "far", "frr", "retry", ...}}`` for ``evaluate --json``.

    Raises:
        ValueError: a level of ``outcomes_by_level`` has no threshold (or as :func:`level_rates`).
    """
    missing = sorted(set(outcomes_by_level) - set(thresholds))
    if missing:
        raise ValueError(f"no threshold given for levels {missing}")
    return {level: level_rates(labels, outcomes, thresholds[level]).as_dict()
            for level, outcomes in outcomes_by_level.items()}
