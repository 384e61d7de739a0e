"""The shipped cohorts and LLR calibrations load, match each other and decide sensibly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from verify.calibration import load_calibration
from verify.config import SECURITY_LEVELS
from verify.normalization import load_cohort
from verify.quality_measures import QUALITY_ADVICE

MODELS_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"
SHIPPED = sorted(path.name.removesuffix(".calibration.json")
                 for path in MODELS_DIR.glob("*.calibration.json"))


@pytest.mark.parametrize("model_id", SHIPPED)
def test_shipped_calibration_matches_its_cohort_and_orders_its_levels(model_id):
    calibration = load_calibration(MODELS_DIR / f"{model_id}.calibration.json", model_id)
    cohort = load_cohort(MODELS_DIR / f"{model_id}.cohort.json", model_id) if calibration.normalized else None

    calibration.check_cohort(cohort)
    thresholds = [calibration.operating_point(level).threshold for level in SECURITY_LEVELS]
    assert thresholds == sorted(thresholds)  # stricter level, higher LLR threshold
    assert calibration.scale > 0


@pytest.mark.parametrize("model_id", SHIPPED)
def test_shipped_calibration_accepts_a_sample_against_itself_and_rejects_its_opposite(model_id):
    calibration = load_calibration(MODELS_DIR / f"{model_id}.calibration.json", model_id)
    cohort = load_cohort(MODELS_DIR / f"{model_id}.cohort.json", model_id)
    template = cohort.vectors[0]
    stats, opposite = cohort.stats(template), cohort.stats(-template)
    measures = {feature.measure: good_value(feature.measure, calibration.references[feature.measure])
                for feature in calibration.features if feature.measure in calibration.references}  # not the cosine

    same = calibration.decide(1.0, "high", measures, template=stats, probe=stats)
    cosine = float(np.dot(template, -template))
    other = calibration.decide(cosine, "low", measures, template=stats, probe=opposite)

    assert same.accepted and other.outcome == "rejected"


def good_value(measure: str, reference: float) -> float:
    """A measure's value at its good-quality reference (a distance from the ideal for "nearer" ones)."""
    advice = QUALITY_ADVICE.get(measure)
    return advice.ideal + reference if advice is not None and advice.better == "nearer" else reference



@pytest.mark.parametrize("model_id, measure, best_seen, far_better", [
    ("ge2e-robust", "speech_seconds", 4.0, 60.0),  # LibriSpeech segments are at most 4 s long
    ("face-fusion-reid0095-sface", "face_px", 250.0, 900.0),  # no face is wider than its 250 px LFW photo
])
def test_shipped_calibration_does_not_extrapolate_quality_past_its_data(model_id, measure, best_seen, far_better):
    # a minute's reading or a phone photo's 900 px face gets the LLR of the best samples calibration saw
    calibration = load_calibration(MODELS_DIR / f"{model_id}.calibration.json", model_id)
    measures = {other.measure: np.array([calibration.references.get(other.measure, 0.9)])
                for other in calibration.features}

    def llr(value: float) -> float:
        return float(calibration.llrs(np.array([3.0]), {**measures, measure: np.array([value])})[0])

    assert llr(far_better) == llr(best_seen)
