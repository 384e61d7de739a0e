"""Normalisation + calibration fitted on arrays of trials, checked on held-out people.

The core of ``scripts/calibrate.py``, fed with arrays so that any trial generator (clean pairs
today, degraded probes from the front ends tomorrow) can use it:

    trials = Trials(vectors, identities, enroll, probe, measures)
    result = calibrate_trials(trials, cohort, model_id="ge2e-robust")
    save_calibration(path, result.calibration)

The identities of the trials are split in two: weights and thresholds are fitted on trials among
the first part's people, figures are measured on trials among the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from verify.calibration import ScoreCalibration
from verify.calibration_fit import FitConfig, fit_calibration
from verify.compensation import ProbeCompensation
from verify.config import SECURITY_LEVELS
from verify.errors import CalibrationError
from verify.metrics import cllr, equal_error_rate, levels_report, min_cllr
from verify.normalization import Cohort
from verify.quality_measures import QualityFeature, default_features, observed_features, trial_measures


@dataclass(frozen=True, eq=False)
class Trials:
    """Labelled comparisons among a set of embedded samples.

    Attributes:
        vectors: ``(M, D)`` embeddings of every sample (clean or degraded).
        identities: ``(M,)`` integer person of each sample; a trial is genuine when its two
            samples share it. Cohort identities (if any) use the same labels.
        enroll: ``(N,)`` index of each trial's enrolment sample.
        probe: ``(N,)`` index of each trial's probe sample.
        measures: measure name -> ``(M,)`` quality measure of each sample; the probe's enter
            the calibration.
        groups: optional ``(M,)`` group (data set, condition) of each sample; a trial belongs
            to its enrolment sample's group. Groups weigh the same in the fit, the held-out
            split is drawn within each group, and figures are also given per group.
        conditions: optional ``(M,)`` condition each sample was recorded or degraded in; a
            trial is in its probe's condition. Thresholds hold their FAR in every condition, and
            figures are also given per condition.
    """

    vectors: np.ndarray
    identities: np.ndarray
    enroll: np.ndarray
    probe: np.ndarray
    measures: Mapping[str, np.ndarray] = field(default_factory=dict)
    groups: np.ndarray | None = None
    conditions: np.ndarray | None = None

    def __post_init__(self) -> None:
        vectors, identities = np.asarray(self.vectors, dtype=np.float32), np.asarray(self.identities)
        enroll, probe = np.asarray(self.enroll, dtype=np.int64), np.asarray(self.probe, dtype=np.int64)
        count = len(vectors)
        if vectors.ndim != 2 or identities.shape != (count,):
            raise CalibrationError(
                f"need (M, D) vectors and (M,) identities, got {vectors.shape} and {identities.shape}"
            )
        if enroll.ndim != 1 or enroll.shape != probe.shape or enroll.size == 0:
            raise CalibrationError(
                f"need equal non-empty (N,) enroll and probe indices, got {enroll.shape} and {probe.shape}"
            )
        if min(enroll.min(), probe.min()) < 0 or max(enroll.max(), probe.max()) >= count:
            raise CalibrationError(f"trial indices must lie in [0, {count})")
        if np.any(enroll == probe):
            raise CalibrationError("a trial compares a sample with itself")
        for name, values in self.measures.items():
            if np.shape(values) != (count,):
                raise CalibrationError(f"measure {name!r} has shape {np.shape(values)}, expected ({count},)")
        if self.groups is not None and np.shape(self.groups) != (count,):
            raise CalibrationError(f"groups have shape {np.shape(self.groups)}, expected ({count},)")
        if self.conditions is not None and np.shape(self.conditions) != (count,):
            raise CalibrationError(f"conditions have shape {np.shape(self.conditions)}, expected ({count},)")
        for name, value in (
            ("vectors", vectors),
            ("identities", identities),
            ("enroll", enroll),
            ("probe", probe),
        ):
            object.__setattr__(self, name, value)

    @property
    def trial_groups(self) -> np.ndarray | None:
        """``(N,)`` group of each trial (its enrolment sample's), or None."""
        return None if self.groups is None else np.asarray(self.groups)[self.enroll]

    @property
    def probe_conditions(self) -> np.ndarray | None:
        """``(N,)`` condition of each trial's probe, or None."""
        return None if self.conditions is None else np.asarray(self.conditions)[self.probe]

    @property
    def labels(self) -> np.ndarray:
        """``(N,)`` True for genuine trials."""
        return self.identities[self.enroll] == self.identities[self.probe]

    def probe_measures(self) -> dict[str, np.ndarray]:
        """Measure name -> ``(N,)`` values of each trial's probe."""
        return {
            name: np.asarray(values, dtype=np.float64)[self.probe] for name, values in self.measures.items()
        }

    def subset(self, keep: np.ndarray) -> Trials:
        """The trials selected by a boolean ``(N,)`` mask, over the same samples."""
        return replace(self, enroll=self.enroll[keep], probe=self.probe[keep])


def with_compensated_probes(trials: Trials, compensation: ProbeCompensation | None) -> Trials:
    """``trials`` with their probes as a scorer with ``compensation`` takes them at run time: each
    probe sample appended, compensated for its conditions, and the trials pointed at it
    (enrollments keep theirs: templates are never compensated). ``trials`` itself without one."""
    if compensation is None:
        return trials
    measures = {name: np.asarray(values) for name, values in trials.measures.items()}
    vectors, rows, probe = compensation.appended_probes(trials.vectors, measures, trials.probe)

    def extended(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else np.concatenate([values, np.asarray(values)[rows]])

    return Trials(vectors, extended(trials.identities), trials.enroll, probe,
                  {name: extended(values) for name, values in measures.items()},
                  extended(trials.groups), extended(trials.conditions))


def all_pairs(identities: np.ndarray, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(enroll, probe)`` indices of every unordered pair of samples (within each group, if given)."""
    groups = np.zeros(len(identities), dtype=np.int64) if groups is None else np.asarray(groups)
    enroll, probe = [], []
    for group in np.unique(groups):
        members = np.nonzero(groups == group)[0]
        first, second = np.triu_indices(members.size, 1)
        enroll.append(members[first])
        probe.append(members[second])
    return np.concatenate(enroll), np.concatenate(probe)


def identity_split(trials: Trials, held_out_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(fit, held_out)`` boolean ``(N,)`` masks: trials among a random ``1 - fraction`` of the
    people (of each group, when the trials have groups), and trials among the rest. Trials
    between a person of each part are in neither.

    Raises:
        CalibrationError: the fraction is not in (0, 1).
    """
    if not 0.0 < held_out_fraction < 1.0:
        raise CalibrationError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}")
    rng = np.random.default_rng(seed)
    groups = np.zeros(len(trials.identities)) if trials.groups is None else np.asarray(trials.groups)
    held_people = []
    for group in np.unique(groups):
        people = rng.permutation(np.unique(trials.identities[groups == group]))
        held_people.extend(people[: int(round(held_out_fraction * people.size))])
    held_sample = np.isin(trials.identities, held_people)
    enroll_held, probe_held = held_sample[trials.enroll], held_sample[trials.probe]
    return ~enroll_held & ~probe_held, enroll_held & probe_held


def trial_cosines(trials: Trials) -> np.ndarray:
    """``(N,)`` raw cosine of each trial."""
    vectors = trials.vectors / np.linalg.norm(trials.vectors, axis=1, keepdims=True)
    cosine = np.empty(trials.enroll.size)
    for start in range(0, cosine.size, 65_536):
        rows = slice(start, start + 65_536)
        cosine[rows] = np.einsum("ij,ij->i", vectors[trials.enroll[rows]], vectors[trials.probe[rows]])
    return cosine


def calibration_measures(trials: Trials) -> dict[str, np.ndarray]:
    """What a calibration reads of each trial beside its input score: the probe's quality
    measures and the raw cosine (:func:`~verify.quality_measures.trial_measures`)."""
    return trial_measures(trials.probe_measures(), trial_cosines(trials))


def calibration_features(trials: Trials, measures: Mapping[str, np.ndarray] | None = None) -> tuple[QualityFeature, ...]:
    """The quality features a calibration of ``trials`` weighs: :func:`default_features` of their
    measures, clipped to the range the trials cover (:func:`observed_features`). ``measures``:
    their :func:`calibration_measures` when already computed."""
    return observed_features(default_features(trials.measures), calibration_measures(trials) if measures is None else measures)


def input_scores(trials: Trials, cohort: Cohort | None) -> np.ndarray:
    """``(N,)`` cosine of each trial, S-normalised when a cohort is given.

    A cohort with identities leaves both people of each trial out of its statistics
    (:meth:`Cohort.trial_statistics`).
    """
    cosine = trial_cosines(trials)
    if cohort is None:
        return cosine
    identities = trials.identities if cohort.identities is not None else None
    return cohort.s_norm_trials(cosine, trials.vectors, trials.enroll, trials.probe, identities)


def evaluate_calibration(
    calibration: ScoreCalibration, scores: np.ndarray, labels: np.ndarray, measures: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Figures of a calibration on labelled trials: counts, Cllr, min Cllr, EER, per-level rates."""
    llrs = calibration.llrs(scores, measures)
    outcomes = {level: calibration.outcomes(scores, measures, level) for level in SECURITY_LEVELS}
    thresholds = {level: calibration.operating_point(level).threshold for level in SECURITY_LEVELS}
    return {
        "trials": int(labels.size),
        "genuine": int(labels.sum()),
        "impostor": int((~labels).sum()),
        "cllr": round(cllr(llrs, labels), 5),
        "min_cllr": round(min_cllr(llrs, labels), 5),
        "eer": round(equal_error_rate(llrs, labels)[0], 5),
        "levels": levels_report(labels, outcomes, thresholds),
    }


@dataclass(frozen=True)
class TrialsCalibration:
    """A fitted calibration and its figures on the fit and held-out people."""

    calibration: ScoreCalibration
    figures: Mapping[str, Any]


def calibrate_trials(
    trials: Trials,
    cohort: Cohort | None,
    model_id: str,
    features: Sequence[QualityFeature] | None = None,
    config: FitConfig = FitConfig(),
    *,
    held_out_fraction: float = 0.5,
    model_version: str = "",
    provenance: Mapping[str, Any] | None = None,
    scores: np.ndarray | None = None,
) -> TrialsCalibration:
    """Normalise, fit on some people, measure on the others (see the module docstring).

    Args:
        trials: the labelled trials.
        cohort: impostor cohort to S-normalise against, or None for raw cosine.
        model_id: model the embeddings come from.
        features: quality features; default: :func:`calibration_features`.
        config: fitting options.
        held_out_fraction: share of the people kept for the figures.
        model_version: recorded in the calibration.
        provenance: data, command, date; the figures are added under ``"figures"``.
        scores: :func:`input_scores` of ``trials`` and ``cohort`` when already computed (they do
            not depend on the split or the features, and cost seconds on large trial sets).

    Raises:
        CalibrationError: as :func:`fit_calibration`, for the fit part.
    """
    labels, measures = trials.labels, calibration_measures(trials)
    features = calibration_features(trials, measures) if features is None else tuple(features)
    scores = input_scores(trials, cohort) if scores is None else scores
    fit_rows, held_rows = identity_split(trials, held_out_fraction, config.seed)
    cohort_ref = (cohort.cohort_id, cohort.effective_k) if cohort is not None else None
    groups, conditions = trials.trial_groups, trials.probe_conditions
    calibration = fit_calibration(
        scores[fit_rows],
        labels[fit_rows],
        {name: values[fit_rows] for name, values in measures.items()},
        features,
        model_id,
        config,
        cohort=cohort_ref,
        model_version=model_version,
        groups=None if groups is None else groups[fit_rows],
        conditions=None if conditions is None else conditions[fit_rows],
    )
    figures = {}
    for part, rows in (("fit", fit_rows), ("held_out", held_rows)):
        figures[part] = _figures(calibration, scores, labels, measures, rows)
        if groups is not None:
            figures[part]["by_group"] = {
                str(group): _figures(calibration, scores, labels, measures, rows & (groups == group))
                for group in np.unique(groups)
            }
        if conditions is not None:
            figures[part]["by_condition"] = {
                str(condition): _figures(calibration, scores, labels, measures, rows & (conditions == condition))
                for condition in np.unique(conditions)
            }
    calibration = replace(calibration, provenance={**(provenance or {}), "figures": figures})
    return TrialsCalibration(calibration, figures)


def _figures(
    calibration: ScoreCalibration,
    scores: np.ndarray,
    labels: np.ndarray,
    measures: Mapping[str, np.ndarray],
    rows: np.ndarray,
) -> dict[str, Any]:
    """:func:`evaluate_calibration` on the trials selected by a boolean mask."""
    labels_part = labels[rows]
    if labels_part.all() or not labels_part.any():
        return {"trials": int(labels_part.size), "note": "one class only: no figures"}
    return evaluate_calibration(
        calibration, scores[rows], labels_part, {name: values[rows] for name, values in measures.items()}
    )


CLLR_TOLERANCE = 0.02
"""A variant whose mean held-out Cllr is within this share of the lowest competes on its decisions
at ``medium`` (:func:`choose_variant`)."""

SELECTION_RULE = (f"lowest mean held-out Cllr over the splits, unless variants within {CLLR_TOLERANCE:.0%} of it "
                  "refuse fewer held-out genuine trials at medium at no higher FAR there: then the one refusing fewest")


def choose_variant(summaries: Mapping[str, Mapping[str, float]]) -> str:
    """The variant to ship, from each one's mean held-out ``cllr`` and ``far`` / ``frr`` at ``medium``
    over the splits: the lowest Cllr, unless others within :data:`CLLR_TOLERANCE` of it refuse
    fewer genuine trials at ``medium`` at no higher FAR there (then the one refusing fewest)."""
    best = min(summaries, key=lambda name: summaries[name]["cllr"])
    lowest = summaries[best]
    rivals = [name for name, found in summaries.items()
              if found["cllr"] <= lowest["cllr"] * (1 + CLLR_TOLERANCE)
              and found["far"] <= lowest["far"] and found["frr"] < lowest["frr"]]
    return min(rivals, key=lambda name: summaries[name]["frr"]) if rivals else best
