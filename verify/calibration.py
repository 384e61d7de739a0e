"""Calibration of scores: thresholds per target FAR, and scores -> calibrated LLRs.

Two files ship beside a model:

* ``<model_id>.thresholds.json`` (:class:`Thresholds`): ``{"model_id", "thresholds": {"<far>":
  cosine, ...}, "calibration": {...provenance...}}``, one raw-cosine threshold per target FAR.
* ``<model_id>.calibration.json`` (:class:`ScoreCalibration`, written by
  :func:`verify.calibration_fit.fit_calibration`): a linear logistic calibration

      llr = scale * s + offset + sum_i (quality_i + interaction_i * s) * f_i(q)

  of the input score ``s`` (S-normalised cosine against the model's cohort, or the raw cosine)
  and features ``f_i`` of the probe's quality measures ``q`` (:mod:`verify.quality_measures`),
  with one LLR threshold per target FAR, good-quality references for "retry" advice, and the
  worst quality it was fitted on (a worse sample is never accepted: its LLR would be a guess).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from verify.config import RETRY_FAR_FACTOR, target_far
from verify.errors import CalibrationError, CohortMismatchError, ConfigError, WeightsError
from verify.metrics import threshold_at_far
from verify.normalization import Cohort, CohortStats, s_norm
from verify.quality_measures import (
    QUALITY_ADVICE,
    QualityFeature,
    advice_message,
    feature_columns,
    improved_values,
    trial_measures,
    worse_than,
)
from verify.scoring import CalibratedScore, Decision, OperatingPoint, calibrated_outcomes, decide_calibrated

CALIBRATED_FARS = (1e-1, 1e-2, 1e-3, 1e-4)


@dataclass(frozen=True)
class Thresholds:
    """Calibrated thresholds of one model: target FAR -> cosine threshold."""

    model_id: str
    by_far: dict[float, float]
    provenance: dict[str, Any] = field(default_factory=dict)

    def operating_point(self, level: str) -> OperatingPoint:
        """Thresholds of a security level (``"low"``, ``"medium"``, ``"high"``)."""
        far = target_far(level)
        looser = far * RETRY_FAR_FACTOR
        if far not in self.by_far or looser not in self.by_far:
            raise ConfigError(
                f"model {self.model_id} has no calibrated threshold for level {level!r} "
                f"(FAR {far:g}); calibrated FARs: {sorted(self.by_far)}"
            )
        return OperatingPoint(level, far, self.by_far[far], self.by_far[looser])


def calibrate(
    scores: np.ndarray, labels: np.ndarray, fars: Sequence[float] = CALIBRATED_FARS
) -> dict[float, float]:
    """Threshold for each target FAR from labelled trial scores.

    Raises:
        ValueError: fewer impostor trials than ``1 / far`` for some target FAR, which would make
            that threshold meaningless.
    """
    impostors = int(np.sum(~np.asarray(labels).astype(bool)))
    for far in fars:
        if impostors * far < 1:
            raise ValueError(f"{impostors} impostor trials cannot calibrate FAR {far:g}")
    return {far: threshold_at_far(scores, labels, far) for far in fars}


def save_thresholds(path: Path, thresholds: Thresholds) -> None:
    """Write thresholds as JSON."""
    document = {
        "model_id": thresholds.model_id,
        "thresholds": {f"{far:g}": round(value, 6) for far, value in sorted(thresholds.by_far.items())},
        "calibration": thresholds.provenance,
    }
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def load_thresholds(path: Path) -> Thresholds:
    """Read a thresholds JSON file written by :func:`save_thresholds`."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        by_far = {float(far): float(value) for far, value in document["thresholds"].items()}
        return Thresholds(document["model_id"], by_far, document.get("calibration", {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise WeightsError(
            f"cannot read calibrated thresholds {path}: {error}. "
            "Recalibrate with: python scripts/calibrate.py"
        ) from error


# --- calibrated LLRs ----------------------------------------------------------------------------
CALIBRATION_FORMAT = "verify-score-calibration"
CALIBRATION_FORMAT_VERSION = 1


@dataclass(frozen=True)
class QualityTerms:
    """Per-trial pieces of a calibration's output: ``(N,)`` arrays.

    Attributes:
        llr: calibrated LLRs.
        slope: ``d llr / d score`` at each trial's quality.
        gains: measure -> LLR gained by moving that measure to its reference (``>= 0``).
        outside: measure -> True where it is worse than the calibration's limit for it.
    """

    llr: np.ndarray
    slope: np.ndarray
    gains: Mapping[str, np.ndarray]
    outside: Mapping[str, np.ndarray]

    @property
    def supported(self) -> np.ndarray:
        """True where no measure is worse than what the calibration was fitted on."""
        return ~np.any(list(self.outside.values()), axis=0) if self.outside else np.ones(self.llr.shape, bool)

    @property
    def quality_gain(self) -> np.ndarray:
        """Total LLR gained with every advised measure at its reference."""
        return sum(self.gains.values(), np.zeros_like(self.llr))


@dataclass(frozen=True)
class ScoreCalibration:
    """A fitted score -> LLR calibration of one model, with its LLR thresholds.

    Attributes:
        model_id: the model whose scores it calibrates.
        features: quality features, in weight order.
        scale: weight of the input score.
        offset: constant term.
        quality_weights: one weight per feature.
        interaction_weights: one weight per feature on ``score * feature`` (zeros without).
        thresholds: LLR threshold per target FAR (``Thresholds.by_far``).
        references: advised measure -> good-quality value (a distance from the ideal for
            ``"nearer"`` measures, see :func:`verify.quality_measures.reference_values`).
        limits: advised measure -> the worst value the calibration was fitted on (same
            convention); a worse sample is never accepted.
        cohort_id, top_k: the cohort scores are S-normalised against; ``None`` for raw cosine.
        model_version: version of the model, as its pipeline reports it.
        provenance: data, command, date and figures of the fit.
    """

    model_id: str
    features: tuple[QualityFeature, ...]
    scale: float
    offset: float
    quality_weights: tuple[float, ...]
    interaction_weights: tuple[float, ...]
    thresholds: Thresholds
    references: Mapping[str, float] = field(default_factory=dict)
    limits: Mapping[str, float] = field(default_factory=dict)
    cohort_id: str | None = None
    top_k: int | None = None
    model_version: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        count = len(self.features)
        if len(self.quality_weights) != count or len(self.interaction_weights) != count:
            raise CalibrationError(
                f"{count} features but {len(self.quality_weights)} quality and "
                f"{len(self.interaction_weights)} interaction weights"
            )
        names = [feature.name for feature in self.features]
        if len(set(names)) != count:
            raise CalibrationError(f"feature names repeat: {names}")
        weights = (self.scale, self.offset, *self.quality_weights, *self.interaction_weights)
        if not all(math.isfinite(weight) for weight in weights):
            raise CalibrationError(f"calibration weights must be finite, got {weights}")
        if (self.cohort_id is None) != (self.top_k is None):
            raise CalibrationError("cohort_id and top_k go together: both set or both None")

    @property
    def normalized(self) -> bool:
        """True when scores are S-normalised against a cohort before calibration."""
        return self.cohort_id is not None

    def operating_point(self, level: str) -> OperatingPoint:
        """LLR thresholds of a security level (see :meth:`Thresholds.operating_point`)."""
        return self.thresholds.operating_point(level)

    def terms(self, scores: np.ndarray, measures: Mapping[str, Any]) -> QualityTerms:
        """LLRs, slopes and quality gains of ``(N,)`` scores with measures (scalars or ``(N,)``).

        Raises:
            CalibrationError: scores are not finite, or a measure is missing or NaN.
        """
        scores = np.atleast_1d(np.asarray(scores, dtype=np.float64))
        if scores.ndim != 1 or not np.all(np.isfinite(scores)):
            raise CalibrationError("scores to calibrate must be a finite (N,) array")
        columns = feature_columns(self.features, measures, scores.size)
        quality, interaction = np.asarray(self.quality_weights), np.asarray(self.interaction_weights)
        per_feature = quality[None, :] + interaction[None, :] * scores[:, None]
        llr = self.scale * scores + self.offset + np.sum(per_feature * columns, axis=1)
        slope = self.scale + columns @ interaction
        gains, outside = {}, {}
        for name in sorted(set(self.references) | set(self.limits)):
            used = [index for index, feature in enumerate(self.features) if feature.measure == name]
            if not used or name not in QUALITY_ADVICE:
                continue
            values = np.broadcast_to(np.asarray(measures[name], dtype=np.float64), scores.shape)
            if name in self.limits:
                outside[name] = worse_than(name, values, self.limits[name])
            if name in self.references:
                better = improved_values(name, values, self.references[name])
                change = sum(per_feature[:, j] * (self.features[j].apply(better) - columns[:, j])
                             for j in used)
                gains[name] = np.maximum(change, 0.0)
        return QualityTerms(llr, slope, gains, outside)

    def llrs(self, scores: np.ndarray, measures: Mapping[str, Any]) -> np.ndarray:
        """Calibrated LLRs of ``(N,)`` scores (see :meth:`terms`)."""
        return self.terms(scores, measures).llr

    def outcomes(self, scores: np.ndarray, measures: Mapping[str, Any], level: str) -> np.ndarray:
        """Per-trial outcomes at a level, as :func:`verify.scoring.decide_calibrated` gives them
        for samples without front-end quality issues."""
        terms = self.terms(scores, measures)
        return calibrated_outcomes(terms.llr, terms.slope, terms.quality_gain, self.operating_point(level),
                                   terms.supported)

    def calibrated(self, score: float, measures: Mapping[str, float]) -> CalibratedScore:
        """One trial's LLR, slope, quality gain and the advice on its costliest measure."""
        terms = self.terms(np.array([score]), measures)
        gains = {name: float(gain[0]) for name, gain in terms.gains.items() if gain[0] > 0}
        advice = unsupported = ""
        if gains:
            worst = max(gains, key=gains.get)
            advice = advice_message(worst, float(measures[worst]), self.references[worst])
        beyond = [name for name, flag in terms.outside.items() if flag[0]]
        if beyond:
            name = beyond[0]
            good = self.references.get(name, self.limits[name])
            unsupported = advice_message(name, float(measures[name]), good)
        return CalibratedScore(float(score), float(terms.llr[0]), float(terms.slope[0]), sum(gains.values()),
                               advice, unsupported)

    def input_score(
        self, cosine: float, template: CohortStats | None = None, probe: CohortStats | None = None
    ) -> float:
        """The score this calibration takes: S-norm of ``cosine`` with both statistics, or ``cosine``.

        Raises:
            CalibrationError: statistics are needed but missing.
            CohortMismatchError: statistics of another cohort (recompute with ``Cohort.stats``).
        """
        if not self.normalized:
            return float(cosine)
        if template is None or probe is None:
            raise CalibrationError(
                f"the calibration of {self.model_id} S-normalises scores against cohort {self.cohort_id}: "
                "pass the template's and the probe's CohortStats"
            )
        for side, stats in (("template", template), ("probe", probe)):
            if (stats.cohort_id, stats.top_k) != (self.cohort_id, self.top_k):
                raise CohortMismatchError(
                    f"{side} statistics of cohort {stats.cohort_id} (top {stats.top_k}) do not match the "
                    f"calibration's cohort {self.cohort_id} (top {self.top_k}); "
                    "recompute them with Cohort.stats"
                )
        return s_norm(cosine, template, probe)

    def decide(
        self, cosine: float, level: str, measures: Mapping[str, float], quality_issues: Sequence[str] = (),
        template: CohortStats | None = None, probe: CohortStats | None = None,
    ) -> Decision:
        """The check-time decision: cosine -> input score -> LLR -> decision at ``level``."""
        return self.decide_input(self.input_score(cosine, template, probe), level, trial_measures(measures, cosine),
                                 quality_issues)

    def decide_input(
        self, score: float, level: str, measures: Mapping[str, float], quality_issues: Sequence[str] = ()
    ) -> Decision:
        """Decide on an input score already normalised as this calibration expects (see :meth:`input_score`);
        ``measures`` hold the trial's raw cosine too (:func:`~verify.quality_measures.trial_measures`)."""
        return decide_calibrated(self.calibrated(score, measures), self.operating_point(level), quality_issues)

    def check_cohort(self, cohort: Cohort | None) -> None:
        """Raise :class:`WeightsError` unless ``cohort`` is the one this calibration was fitted with."""
        found = None if cohort is None else (cohort.cohort_id, cohort.effective_k)
        expected = None if not self.normalized else (self.cohort_id, self.top_k)
        if found != expected:
            raise WeightsError(
                f"the calibration of {self.model_id} expects cohort {expected} (id, top_k) but got {found}. "
                "Recalibrate with: python scripts/calibrate.py"
            )


def save_calibration(path: Path, calibration: ScoreCalibration) -> None:
    """Write a calibration as JSON (format in the module docstring)."""
    names = [feature.name for feature in calibration.features]
    score = ({"kind": "s-norm", "cohort_id": calibration.cohort_id, "top_k": calibration.top_k}
             if calibration.normalized else {"kind": "cosine"})
    document = {
        "format": CALIBRATION_FORMAT,
        "format_version": CALIBRATION_FORMAT_VERSION,
        "model_id": calibration.model_id,
        "model_version": calibration.model_version,
        "score": score,
        "features": [feature.to_dict() for feature in calibration.features],
        "weights": {
            "scale": calibration.scale,
            "offset": calibration.offset,
            "quality": dict(zip(names, calibration.quality_weights)),
            "interaction": dict(zip(names, calibration.interaction_weights)),
        },
        "thresholds": {f"{far:g}": value for far, value in sorted(calibration.thresholds.by_far.items())},
        "references": dict(calibration.references),
        "limits": dict(calibration.limits),
        "provenance": dict(calibration.provenance),
    }
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def load_calibration(path: Path, model_id: str) -> ScoreCalibration:
    """Read a calibration written by :func:`save_calibration` for ``model_id``.

    Raises:
        WeightsError: unreadable or malformed file, another format or version, another model.
    """
    fix = "Recalibrate with: python scripts/calibrate.py"
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        found = (document.get("format"), document.get("format_version"))
        if found != (CALIBRATION_FORMAT, CALIBRATION_FORMAT_VERSION):
            raise WeightsError(
                f"{path} is not a {CALIBRATION_FORMAT} v{CALIBRATION_FORMAT_VERSION} file "
                f"(found {found}). {fix}"
            )
        if document["model_id"] != model_id:
            raise WeightsError(f"{path} calibrates model {document['model_id']!r}, not {model_id!r}. {fix}")
        features = tuple(QualityFeature.from_dict(entry) for entry in document["features"])
        weights, score = document["weights"], document["score"]
        normalized = score["kind"] == "s-norm"
        if score["kind"] not in ("s-norm", "cosine"):
            raise ValueError(f"unknown score kind {score['kind']!r}")
        by_far = {float(far): float(value) for far, value in document["thresholds"].items()}
        return ScoreCalibration(
            model_id=model_id,
            features=features,
            scale=float(weights["scale"]),
            offset=float(weights["offset"]),
            quality_weights=tuple(float(weights["quality"][feature.name]) for feature in features),
            interaction_weights=tuple(float(weights["interaction"][feature.name]) for feature in features),
            thresholds=Thresholds(model_id, by_far),
            references={str(name): float(value) for name, value in document["references"].items()},
            limits={str(name): float(value) for name, value in document["limits"].items()},
            cohort_id=str(score["cohort_id"]) if normalized else None,
            top_k=int(score["top_k"]) if normalized else None,
            model_version=str(document.get("model_version", "")),
            provenance=document.get("provenance", {}),
        )
    except WeightsError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, CalibrationError) as error:
        raise WeightsError(f"cannot read calibration {path}: {error!r}. {fix}") from error
