"""Thresholds calibrated from labelled trials, stored beside the model they belong to.

A thresholds file is JSON: ``{"model_id", "thresholds": {"<far>": score, ...}, "calibration":
{...provenance...}}`` with one threshold per target false accept rate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from verify.config import RETRY_FAR_FACTOR, target_far
from verify.errors import ConfigError, WeightsError
from verify.metrics import threshold_at_far
from verify.scoring import OperatingPoint

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
