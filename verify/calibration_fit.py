"""Fitting a :class:`~verify.calibration.ScoreCalibration` on labelled trials.

Weights minimise the prior-weighted Cllr (logistic regression in which genuine trials weigh
``P / N_genuine`` and impostor trials ``(1 - P) / N_impostor`` and the prior log-odds are added
to the output, as in BOSARIS and WeSpeaker ``score_calibration.py``), plus a light L2 penalty on
every weight but the offset, on standardised columns. The output is then a log-likelihood ratio.
LLR thresholds per target FAR are set on the same trials, holding the FAR in each probe condition
when conditions are given (:func:`thresholds_in_every_condition`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import minimize

from verify.calibration import CALIBRATED_FARS, ScoreCalibration, Thresholds, calibrate
from verify.errors import CalibrationError
from verify.metrics import threshold_at_far
from verify.quality_measures import QualityFeature, feature_columns, reference_values, stricter_limit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """How a calibration is fitted.

    Attributes:
        effective_prior: target prior ``P`` of the Cllr that is minimised.
        l2: penalty on the squared standardised weights (offset excluded).
        interactions: add ``score * feature`` terms (a quality-dependent scale).
        fars: target FARs that get an LLR threshold.
        reference_quantile: good-quality references are what this quantile of the probes reach.
        limit_quantile: the worst quality calibrated is what all but this share of the probes
            reach; worse samples are never accepted (0: the worst probe fitted on).
        least_quality: measure -> the worst value any decision is made on, whatever the fitted
            probes reached (the stricter of the two is the limit), as the limits state it.
        max_impostor_trials: impostor trials used for the weights (a seeded random subset when
            there are more; thresholds always use all of them).
        seed: seed of that subset.
    """

    effective_prior: float = 0.01
    l2: float = 1e-4
    interactions: bool = False
    fars: tuple[float, ...] = CALIBRATED_FARS
    reference_quantile: float = 0.8
    limit_quantile: float = 0.0
    least_quality: Mapping[str, float] = field(default_factory=dict)
    max_impostor_trials: int = 200_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.effective_prior < 1.0:
            raise CalibrationError(f"effective_prior must be in (0, 1), got {self.effective_prior}")
        if self.l2 < 0:
            raise CalibrationError(f"l2 must be >= 0, got {self.l2}")
        if not 0.5 <= self.reference_quantile < 1.0:
            raise CalibrationError(f"reference_quantile must be in [0.5, 1), got {self.reference_quantile}")
        if not 0.0 <= self.limit_quantile < 0.5:
            raise CalibrationError(f"limit_quantile must be in [0, 0.5), got {self.limit_quantile}")
        if self.max_impostor_trials < 1:
            raise CalibrationError(f"max_impostor_trials must be >= 1, got {self.max_impostor_trials}")


def _check_trials(
    scores: np.ndarray, labels: np.ndarray, fars: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise CalibrationError(f"scores {scores.shape} and labels {labels.shape} differ in length")
    if not np.all(np.isfinite(scores)):
        raise CalibrationError("calibration scores must be finite (leave failed trials out)")
    genuine, impostor = int(labels.sum()), int((~labels).sum())
    if genuine < 2 or impostor < 2:
        raise CalibrationError(f"need at least 2 genuine and 2 impostor trials, got {genuine} and {impostor}")
    for far in fars:
        if impostor * far < 1:
            raise CalibrationError(f"{impostor} impostor trials cannot calibrate FAR {far:g}")
    return scores, labels


def class_weights(labels: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """``(N,)`` trial weights summing to 1 within each class.

    Without groups every trial of a class weighs the same; with groups (e.g. the data set of
    each trial) every group that has trials of a class weighs the same within that class, so a
    data set with many trials (thousands of digit pairs of 3 speakers) does not drown the others.
    """
    groups = np.zeros(labels.size, dtype=np.int64) if groups is None else np.asarray(groups)
    weights = np.empty(labels.size)
    for label in (True, False):
        members = labels == label
        names, inverse, counts = np.unique(groups[members], return_inverse=True, return_counts=True)
        weights[members] = 1.0 / (counts[inverse] * names.size)
    return weights


def _weighted_logistic(
    design: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, prior: float, l2: float
) -> np.ndarray:
    """Weights ``(offset, w_1..w_K)`` minimising the prior-weighted Cllr on standardised columns."""
    entropy = -(prior * np.log(prior) + (1 - prior) * np.log(1 - prior))  # loss of llr = 0: Cllr 1
    weights = class_weights(labels, groups) * np.where(labels, prior, 1 - prior) / entropy
    sign = np.where(labels, 1.0, -1.0)
    prior_logodds = np.log(prior / (1 - prior))
    augmented = np.hstack([np.ones((len(design), 1)), design])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (augmented @ theta + prior_logodds)
        loss = np.sum(weights * np.logaddexp(0.0, -margin)) + l2 * np.sum(theta[1:] ** 2)
        slope = -weights * sign * np.exp(-np.logaddexp(0.0, margin))  # d loss / d output
        gradient = augmented.T @ slope
        gradient[1:] += 2 * l2 * theta[1:]
        return float(loss), gradient

    start = np.zeros(augmented.shape[1])
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    if not result.success:
        logger.warning("calibration fit stopped early: %s", result.message)
    return result.x


def fit_weights(
    scores: np.ndarray,
    labels: np.ndarray,
    columns: np.ndarray,
    config: FitConfig,
    groups: np.ndarray | None = None,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """``(scale, offset, quality (F,), interaction (F,))`` of the LLR model on raw columns.

    Columns that do not vary carry no information and get weight 0. ``groups``: see
    :func:`class_weights`.
    """
    blocks = [scores[:, None], columns] + ([scores[:, None] * columns] if config.interactions else [])
    design = np.hstack(blocks)
    center, spread = design.mean(axis=0), design.std(axis=0)
    varies = spread > 1e-12
    if not varies[0]:
        raise CalibrationError("every calibration score is the same; nothing to calibrate")
    for index in np.nonzero(~varies)[0]:
        logger.info("calibration column %d does not vary; its weight is 0", index)
    theta = _weighted_logistic(
        (design[:, varies] - center[varies]) / spread[varies],
        labels,
        groups,
        config.effective_prior,
        config.l2,
    )
    raw = np.zeros(design.shape[1])
    raw[varies] = theta[1:] / spread[varies]
    offset = theta[0] - float(np.sum(raw * center))
    count = columns.shape[1]
    interaction = raw[1 + count :] if config.interactions else np.zeros(count)
    return float(raw[0]), offset, raw[1 : 1 + count], interaction


def fit_calibration(
    scores: np.ndarray,
    labels: np.ndarray,
    measures: Mapping[str, np.ndarray],
    features: Sequence[QualityFeature],
    model_id: str,
    config: FitConfig = FitConfig(),
    *,
    cohort: tuple[str, int] | None = None,
    groups: np.ndarray | None = None,
    conditions: np.ndarray | None = None,
    model_version: str = "",
    provenance: Mapping[str, Any] | None = None,
) -> ScoreCalibration:
    """Fit LLR weights, LLR thresholds and quality references on labelled trials.

    Args:
        scores: ``(N,)`` input scores (S-normalised, or raw cosine).
        labels: ``(N,)`` True for genuine trials.
        measures: measure name -> ``(N,)`` values of each trial's probe.
        features: the quality features to use (their measures must be in ``measures``).
        model_id: model the scores come from.
        config: fitting options.
        cohort: ``(cohort_id, effective top_k)`` the scores were S-normalised with, or None.
        groups: optional ``(N,)`` group (data set) of each trial; groups weigh the same in the
            fit (:func:`class_weights`).
        conditions: optional ``(N,)`` condition of each trial's probe (clean, degraded...). Each
            threshold then holds its target FAR in every condition: it is the highest any
            condition needs, so a level's FAR is not met on average only, with clean probes
            (whose impostors score highest) above it. Without: every impostor trial alike.
        model_version: recorded in the file.
        provenance: data, command, date, figures.

    Raises:
        CalibrationError: too few trials of a class for the FARs, non-finite scores, a constant
            score, a missing or NaN measure.
    """
    scores, labels = _check_trials(scores, labels, config.fars)
    features = tuple(features)
    columns = feature_columns(features, measures, scores.size)
    chosen = np.arange(scores.size)
    impostors = np.nonzero(~labels)[0]
    if impostors.size > config.max_impostor_trials:
        keep = np.random.default_rng(config.seed).choice(impostors, config.max_impostor_trials, replace=False)
        chosen = np.sort(np.concatenate([np.nonzero(labels)[0], keep]))
    if groups is not None and np.shape(groups) != scores.shape:
        raise CalibrationError(f"groups {np.shape(groups)} and scores {scores.shape} differ in length")
    chosen_groups = None if groups is None else np.asarray(groups)[chosen]
    scale, offset, quality, interaction = fit_weights(
        scores[chosen], labels[chosen], columns[chosen], config, chosen_groups
    )
    used = {
        name: values for name, values in measures.items() if name in {feature.measure for feature in features}
    }
    references = reference_values(used, config.reference_quantile)
    limits = reference_values(used, config.limit_quantile)
    for name, least in config.least_quality.items():
        if name in limits:
            limits[name] = stricter_limit(name, limits[name], least)
    draft = ScoreCalibration(
        model_id,
        features,
        scale,
        offset,
        tuple(quality),
        tuple(interaction),
        Thresholds(model_id, {}),
        references,
        limits,
        cohort_id=cohort[0] if cohort else None,
        top_k=cohort[1] if cohort else None,
        model_version=model_version,
        provenance=dict(provenance or {}),
    )
    llrs = draft.llrs(scores, measures)
    thresholds = Thresholds(model_id, thresholds_in_every_condition(llrs, labels, config.fars, conditions))
    return replace(draft, thresholds=thresholds)


def thresholds_in_every_condition(
    llrs: np.ndarray, labels: np.ndarray, fars: Sequence[float], conditions: np.ndarray | None = None
) -> dict[float, float]:
    """LLR threshold per target FAR that holds in each condition of ``conditions`` (``(N,)``).

    A condition with too few impostor trials to measure a FAR (fewer than ``1 / far``) does not
    count for that FAR; all trials together always do.
    """
    thresholds = calibrate(llrs, labels, fars)
    if conditions is None:
        return thresholds
    conditions = np.asarray(conditions)
    if conditions.shape != llrs.shape:
        raise CalibrationError(f"conditions {conditions.shape} and scores {llrs.shape} differ in length")
    for condition in np.unique(conditions):
        rows = conditions == condition
        impostors = int(np.sum(~labels[rows]))
        for far in fars:
            if impostors * far >= 1 and labels[rows].any():
                thresholds[far] = max(thresholds[far], threshold_at_far(llrs[rows], labels[rows], far))
    return thresholds
