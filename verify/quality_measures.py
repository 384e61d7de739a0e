"""Quality measures as calibration features, and what a person can do about each.

A front end reports numeric measures of a sample (:attr:`verify.embedding.Embedding.measures`).
Calibration turns each into a feature ``f(q) = transform(clip(q, low, high))`` (:class:`QualityFeature`)
that shifts and scales the log-likelihood ratio. When a sample's quality is what keeps it from
being accepted, :data:`QUALITY_ADVICE` (data, not code) says which way the measure should move
and the message that asks for it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from types import MappingProxyType
from typing import Any, Iterable, Literal, Mapping

import numpy as np

from verify.errors import CalibrationError

Transform = Literal["linear", "log", "distance"]
Better = Literal["higher", "lower", "nearer"]
TRANSFORMS = ("linear", "log", "distance")


@dataclass(frozen=True)
class QualityFeature:
    """One calibration feature made from one measure.

    ``linear``: ``clip(q)``; ``log``: ``log(clip(q))`` (needs ``low > 0``); ``distance``:
    ``|clip(q) - center|`` (for measures best near a value: brightness, yaw).
    """

    measure: str
    transform: Transform
    low: float
    high: float
    center: float = 0.0

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise CalibrationError(
                f"unknown transform {self.transform!r} of {self.measure!r}: choose one of {TRANSFORMS}"
            )
        if not self.low < self.high or (self.transform == "log" and self.low <= 0):
            raise CalibrationError(
                f"bad clip range [{self.low}, {self.high}] for the {self.transform} of {self.measure!r}"
            )

    @property
    def name(self) -> str:
        """Feature name, e.g. ``"log_speech_seconds"``."""
        return f"{self.transform}_{self.measure}"

    def apply(self, values: np.ndarray) -> np.ndarray:
        """The feature of ``(N,)`` measure values.

        Raises:
            CalibrationError: a value is NaN.
        """
        values = np.asarray(values, dtype=np.float64)
        if np.isnan(values).any():
            raise CalibrationError(f"quality measure {self.measure!r} is NaN")
        clipped = np.clip(values, self.low, self.high)
        if self.transform == "log":
            return np.log(clipped)
        if self.transform == "distance":
            return np.abs(clipped - self.center)
        return clipped

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> QualityFeature:
        """Inverse of :meth:`to_dict`."""
        return cls(
            str(document["measure"]),
            document["transform"],
            float(document["low"]),
            float(document["high"]),
            float(document.get("center", 0.0)),
        )


@dataclass(frozen=True)
class Advice:
    """Which way a measure is better, and what to ask of the person.

    Attributes:
        better: ``"higher"``, ``"lower"``, or ``"nearer"`` to ``ideal``.
        too_low: message when the value is below the good one; ``{gap}`` in it becomes the
            shortfall in the measure's unit, rounded up to a whole unit (at least 1).
        too_high: message when the value is above it.
        ideal: the best value of a ``"nearer"`` measure.
    """

    better: Better
    too_low: str = ""
    too_high: str = ""
    ideal: float = 0.0


QUALITY_ADVICE: Mapping[str, Advice] = MappingProxyType(
    {
        "speech_seconds": Advice("higher", too_low="speak for about {gap} s more"),
        "snr_db": Advice("higher", too_low="too much background noise: move somewhere quieter"),
        "clipped_fraction": Advice(
            "lower", too_high="the sound is distorted: speak a little further from the microphone"
        ),
        "decay_db": Advice("lower", too_high="too much echo: move closer to the microphone, or somewhere with less echo"),
        "face_px": Advice("higher", too_low="move closer to the camera"),
        "sharpness": Advice("higher", too_low="hold still: the image is too blurry"),
        "brightness": Advice(
            "nearer",
            too_low="more light on your face, please",
            too_high="too much light: avoid bright light on or behind you",
            ideal=128.0,
        ),
        "contrast": Advice("higher", too_low="the face looks washed out: use more even light"),
        "yaw": Advice("nearer", too_low="face the camera", too_high="face the camera", ideal=0.0),
    }
)

DEFAULT_FEATURES: Mapping[str, QualityFeature] = MappingProxyType(
    {
        "speech_seconds": QualityFeature("speech_seconds", "log", 0.25, 30.0),
        "snr_db": QualityFeature("snr_db", "linear", -5.0, 40.0),
        "clipped_fraction": QualityFeature("clipped_fraction", "log", 1e-4, 0.5),
        "decay_db": QualityFeature("decay_db", "linear", -20.0, -3.0),
        "face_px": QualityFeature("face_px", "log", 16.0, 512.0),
        "sharpness": QualityFeature("sharpness", "log", 1.0, 5000.0),
        "brightness": QualityFeature("brightness", "distance", 0.0, 255.0, center=128.0),
        "contrast": QualityFeature("contrast", "log", 1.0, 128.0),
        "yaw": QualityFeature("yaw", "distance", -90.0, 90.0, center=0.0),
    }
)


COSINE = "cosine"
"""The trial's raw cosine, which a calibration fitted on S-normalised scores may also weigh: on
clean voices the raw cosine separates better at low FARs, S-norm under every degradation
(``python benchmarks/score_ceiling.py``). A score input, not a quality measure: it gives no
advice and sets no limit (it is not in :data:`QUALITY_ADVICE`)."""

COSINE_FEATURE = QualityFeature(COSINE, "linear", -1.0, 1.0)


def trial_measures(probe_measures: Mapping[str, Any], cosines: Any) -> dict[str, Any]:
    """What a calibration reads of trials beside their input scores: the probes' quality measures
    and the raw cosines (scalars or ``(N,)`` arrays)."""
    return {**probe_measures, COSINE: cosines}


def default_features(measure_names: Iterable[str]) -> tuple[QualityFeature, ...]:
    """The :data:`DEFAULT_FEATURES` of the measures named (unknown names are skipped), sorted."""
    return tuple(DEFAULT_FEATURES[name] for name in sorted(set(measure_names)) if name in DEFAULT_FEATURES)


def observed_features(features: Iterable[QualityFeature], measures: Mapping[str, Any]) -> tuple[QualityFeature, ...]:
    """``features`` with each clip range narrowed to the values ``measures`` hold for it.

    A calibration then never extrapolates a measure past the samples it was fitted on. Better
    quality lowers the LLR of a given score (a sharp, large face or a long clip should score
    higher), and a straight line fitted on LFW's faces and 4 s clips would go on lowering it for a
    phone photo or a 20 s reading, whose scores have stopped rising; a clip range that holds every
    fitted value leaves the fit itself unchanged. A ``distance`` measure (brightness, yaw) is
    clipped as far from its centre on both sides as the farthest value, so a head turned right
    reads like one turned left. Poorer quality than calibration saw is answered before the LLR
    matters (:attr:`verify.calibration.ScoreCalibration.limits`, "retry").
    """
    narrowed = []
    for feature in features:
        values = np.asarray(measures[feature.measure], dtype=np.float64)
        values = values[np.isfinite(values)]
        if not values.size:
            narrowed.append(feature)
            continue
        if feature.transform == "distance":  # as far from the centre on both sides as the farthest value
            farthest = float(np.abs(values - feature.center).max())
            low, high = feature.center - farthest, feature.center + farthest
        else:
            low, high = float(values.min()), float(values.max())
        low, high = max(feature.low, low), min(feature.high, high)
        narrowed.append(replace(feature, low=low, high=high) if low < high else feature)
    return tuple(narrowed)


def feature_columns(features: Iterable[QualityFeature], measures: Mapping[str, Any], rows: int) -> np.ndarray:
    """``(rows, F)`` feature matrix from measures given as scalars or ``(rows,)`` arrays.

    Raises:
        CalibrationError: a measure a feature needs is missing, NaN or of the wrong length.
    """
    columns = []
    for feature in features:
        if feature.measure not in measures:
            raise CalibrationError(
                f"quality measure {feature.measure!r} is missing "
                f"(the calibration needs it; got {sorted(measures)})"
            )
        raw = np.asarray(measures[feature.measure], dtype=np.float64)
        values = np.full(rows, raw) if raw.ndim == 0 else raw
        if values.shape != (rows,):
            raise CalibrationError(
                f"quality measure {feature.measure!r} has shape {values.shape}, expected ({rows},)"
            )
        columns.append(feature.apply(values))
    return np.stack(columns, axis=1) if columns else np.zeros((rows, 0))


def reference_values(measures: Mapping[str, np.ndarray], quantile: float) -> dict[str, float]:
    """Value of every advised measure present that a share ``quantile`` of the samples is worse than.

    ``higher``: the ``quantile`` of the values; ``lower``: the ``1 - quantile``; ``nearer``: the
    ``1 - quantile`` of the distances to the ideal (a distance, not a value). A high quantile
    gives a good-quality reference (what the better samples reach); a low one, the worst
    quality seen.
    """
    references = {}
    for name, values in sorted(measures.items()):
        advice = QUALITY_ADVICE.get(name)
        values = np.asarray(values, dtype=np.float64)
        if advice is None or values.size == 0:
            continue
        if advice.better == "higher":
            references[name] = float(np.quantile(values, quantile))
        elif advice.better == "lower":
            references[name] = float(np.quantile(values, 1.0 - quantile))
        else:
            references[name] = float(np.quantile(np.abs(values - advice.ideal), 1.0 - quantile))
    return references


def improved_values(name: str, values: np.ndarray, reference: float) -> np.ndarray:
    """Values moved to the reference where they are worse than it, left alone where better."""
    advice = QUALITY_ADVICE[name]
    values = np.asarray(values, dtype=np.float64)
    if advice.better == "higher":
        return np.maximum(values, reference)
    if advice.better == "lower":
        return np.minimum(values, reference)
    offset = values - advice.ideal
    return advice.ideal + np.sign(offset) * np.minimum(np.abs(offset), reference)


def stricter_limit(name: str, limit: float, other: float) -> float:
    """The stricter of two limits of measure ``name`` (as :func:`reference_values` states them)."""
    return max(limit, other) if QUALITY_ADVICE[name].better == "higher" else min(limit, other)


def worse_than(name: str, values: np.ndarray, limit: float) -> np.ndarray:
    """Boolean mask of the values worse than ``limit`` (as :func:`reference_values` states it)."""
    advice = QUALITY_ADVICE[name]
    values = np.asarray(values, dtype=np.float64)
    if advice.better == "higher":
        return values < limit
    if advice.better == "lower":
        return values > limit
    return np.abs(values - advice.ideal) > limit


def advice_message(name: str, value: float, reference: float) -> str:
    """What to ask of a person whose ``name`` measure is ``value`` (reference as stored)."""
    advice = QUALITY_ADVICE[name]
    if advice.better == "nearer":
        gap, low = abs(abs(value - advice.ideal) - reference), value < advice.ideal
    else:
        gap, low = abs(reference - value), value < reference
    message = advice.too_low if low else advice.too_high
    return message.format(gap=max(1, math.ceil(gap))) if message else f"improve the sample's {name}"
