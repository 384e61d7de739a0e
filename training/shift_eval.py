"""Per-user methods against the shipped decision path on the same degraded trials, with 95 % CIs.

The shipped path is cosine -> S-norm against the shipped cohort -> quality-aware calibrated LLR
-> thresholds per level (:func:`verify.conditions.score_trials`). A per-user method replaces the
cosine by its own score; to compete at the same levels it gets a calibration of its own, fitted
the same way (:func:`verify.calibration_fit.fit_calibration`, the probes' quality features, LLR
thresholds per target FAR) on the held-out train people's trials (never on the people the method
was trained on, nor on those it is judged on).
Both then answer "accepted", "retry" or "rejected" with the same rules (a flagged probe that is
not accepted gets "retry").

A method *beats* the shipped path at a level when its FRR is lower with the person-bootstrap 95 %
interval of the paired difference entirely below zero, and its FAR is no higher than the shipped
path's or the level's target, whichever is larger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.person_bootstrap import Curve, PersonResampler, interval, weighted_cllr
from training.shift_setup import TrialList
from verify.calibration import ScoreCalibration
from verify.calibration_fit import FitConfig, fit_calibration
from verify.conditions import EmbeddedSamples, score_trials
from verify.config import SECURITY_LEVELS, target_far
from verify.quality_measures import default_features
from verify.scorer import CalibratedScorer
from verify.scoring import calibrated_outcomes

LEVELS = tuple(SECURITY_LEVELS)
MATCHED_LEVEL = "medium"  # FRR at this level's target FAR, each path at its own threshold for it


@dataclass(frozen=True)
class Decisions:
    """What one decision path makes of a list of trials: ``(N,)`` LLRs and answers per level."""

    name: str
    llr: np.ndarray
    outcomes: Mapping[str, np.ndarray]


def probe_measures(samples: EmbeddedSamples, trials: TrialList) -> dict[str, np.ndarray]:
    """Measure name -> ``(N,)`` value of each trial's probe."""
    return {name: values[trials.probe] for name, values in samples.measures.items()}


def shipped_decisions(scorer: CalibratedScorer, samples: EmbeddedSamples, trials: TrialList,
                      name: str = "shipped") -> Decisions:
    """The shipped path's LLRs and answers (:func:`verify.conditions.score_trials`)."""
    scored = score_trials(scorer, samples, trials.enroll, trials.probe, LEVELS)
    return Decisions(name, scored.llr, dict(scored.outcomes))


def fit_method_calibration(scores: np.ndarray, labels: np.ndarray, measures: Mapping[str, np.ndarray],
                           model_id: str, provenance: Mapping[str, Any] | None = None) -> ScoreCalibration:
    """A method's score -> LLR calibration with the probes' quality features (no cohort)."""
    return fit_calibration(scores, labels, measures, default_features(measures), model_id, FitConfig(),
                           provenance=provenance)


def calibrated_decisions(name: str, calibration: ScoreCalibration, scores: np.ndarray,
                         measures: Mapping[str, np.ndarray], flagged: np.ndarray) -> Decisions:
    """LLRs and answers of a method's scores, with the shipped path's rules (see the module docstring)."""
    terms = calibration.terms(scores, measures)
    outcomes = {}
    for level in LEVELS:
        answer = calibrated_outcomes(terms.llr, terms.slope, terms.quality_gain, calibration.operating_point(level),
                                     terms.supported)
        outcomes[level] = np.where((answer == "rejected") & flagged, "retry", answer)
    return Decisions(name, terms.llr, outcomes)


def _estimate(value: float, replicates: np.ndarray) -> dict[str, float]:
    low, high = interval(replicates)
    return {"value": float(value), "ci95": [low, high]}


def _rates(decisions: Decisions, labels: np.ndarray, resampler: PersonResampler) -> dict[str, dict]:
    genuine, impostor = labels.astype(float), (~labels).astype(float)
    figures: dict[str, dict] = {}
    for level in LEVELS:
        accepted = decisions.outcomes[level] == "accepted"
        retry = (decisions.outcomes[level] == "retry") & labels
        parts = {"far": (accepted & ~labels, impostor), "frr": (~accepted & labels, genuine), "retry": (retry, genuine)}
        figures[level] = {key: _estimate(np.sum(top) / np.sum(bottom), resampler.ratio(top, bottom))
                          for key, (top, bottom) in parts.items()}
    return figures


def _curve_figures(decisions: Decisions, labels: np.ndarray, resampler: PersonResampler,
                   curve_replicates: int) -> tuple[dict[str, dict], np.ndarray]:
    """EER, Cllr and FRR at the :data:`MATCHED_LEVEL`'s target FAR with 95 % CIs, and the latter's replicates."""
    far = target_far(MATCHED_LEVEL)
    weights = [resampler.trial_weights(b) for b in range(curve_replicates)]
    ones = np.ones(len(labels))
    curve = Curve(decisions.llr, labels)
    eer = np.array([curve.eer(w) for w in weights])
    cllr = np.array([weighted_cllr(decisions.llr, labels, w) for w in weights])
    matched = np.array([curve.frr_at_far(w, far) for w in weights])
    return {"eer": _estimate(curve.eer(ones), eer),
            "cllr": _estimate(weighted_cllr(decisions.llr, labels, ones), cllr),
            "frr_at_far": {"level": MATCHED_LEVEL, "far": far, **_estimate(curve.frr_at_far(ones, far), matched)}}, matched


def compare(paths: Sequence[Decisions], labels: np.ndarray, people: np.ndarray, baseline: str = "shipped",
            replicates: int = 1000, curve_replicates: int = 200, seed: int = 0) -> dict[str, Any]:
    """Figures of every path with 95 % CIs, paired differences against ``baseline`` and the verdict.

    Returns ``{"trials", "genuine", "impostor", "people", "paths": {name: {"levels": {level: {far,
    frr, retry}}, "eer", "cllr", "frr_at_far", "vs_baseline": {level: {"frr_difference",
    "far_difference", "beats"}}, "frr_at_far_difference", "beats_at_every_level"}}}``; every
    estimate is ``{"value", "ci95": [low, high]}``; ``frr_at_far`` is the FRR at the medium
    level's target FAR with each path's own threshold for it (a threshold-free comparison).
    """
    labels = np.asarray(labels, bool)
    resampler = PersonResampler.draw(people, replicates, seed)
    by_name = {path.name: path for path in paths}
    base = by_name[baseline]
    results: dict[str, Any] = {"trials": int(labels.size), "genuine": int(labels.sum()),
                               "impostor": int((~labels).sum()), "people": resampler.groups, "paths": {}}
    curves = {path.name: _curve_figures(path, labels, resampler, curve_replicates) for path in paths}
    for path in paths:
        figures = {"levels": _rates(path, labels, resampler), **curves[path.name][0]}
        if path.name != baseline:
            figures["frr_at_far_difference"] = _estimate(
                figures["frr_at_far"]["value"] - curves[baseline][0]["frr_at_far"]["value"],
                curves[path.name][1] - curves[baseline][1])
            figures["vs_baseline"] = _paired(path, base, labels, resampler, figures["levels"],
                                             results["paths"][baseline]["levels"])
            figures["beats_at_every_level"] = all(entry["beats"] for entry in figures["vs_baseline"].values())
        results["paths"][path.name] = figures
    return results


def _paired(path: Decisions, base: Decisions, labels: np.ndarray, resampler: PersonResampler,
            mine: Mapping[str, dict], theirs: Mapping[str, dict]) -> dict[str, dict]:
    genuine, impostor = labels.astype(float), (~labels).astype(float)
    verdicts = {}
    for level in LEVELS:
        accepted = path.outcomes[level] == "accepted"
        accepted_base = base.outcomes[level] == "accepted"
        frr = resampler.ratio((~accepted & labels).astype(float) - (~accepted_base & labels), genuine)
        far = resampler.ratio((accepted & ~labels).astype(float) - (accepted_base & ~labels), impostor)
        frr_difference = _estimate(mine[level]["frr"]["value"] - theirs[level]["frr"]["value"], frr)
        far_difference = _estimate(mine[level]["far"]["value"] - theirs[level]["far"]["value"], far)
        far_ok = mine[level]["far"]["value"] <= max(theirs[level]["far"]["value"], target_far(level))
        verdicts[level] = {"frr_difference": frr_difference, "far_difference": far_difference,
                           "beats": bool(frr_difference["ci95"][1] < 0 and far_ok)}
    return verdicts
