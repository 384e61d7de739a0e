"""Both scorers' evidence computed at once equals the evidence of their decisions."""

from __future__ import annotations

import numpy as np
import pytest

from verify.calibration import ScoreCalibration, Thresholds
from verify.embedding import Embedding
from verify.normalization import Cohort
from verify.quality_measures import COSINE_FEATURE
from verify.scorer import CalibratedScorer, CosineScorer, evidence


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def calibrated(cosine_weight: float | None = None) -> CalibratedScorer:
    """S-norm calibrated to an LLR (``1.5 s - 2``), plus ``cosine_weight`` times the raw cosine when given."""
    cohort = Cohort(unit(np.random.default_rng(5).standard_normal((120, 16))), top_k=10, model_id="toy")
    thresholds = Thresholds("toy", {1e-1: 1.0, 1e-2: 3.0, 1e-3: 5.0, 1e-4: 7.0})
    features, weights = ((COSINE_FEATURE,), (cosine_weight,)) if cosine_weight is not None else ((), ())
    calibration = ScoreCalibration("toy", features, 1.5, -2.0, weights, (0.0,) * len(weights), thresholds,
                                   cohort_id=cohort.cohort_id, top_k=cohort.effective_k)
    return CalibratedScorer(calibration, cohort)


@pytest.mark.parametrize("scorer", [CosineScorer(Thresholds("toy", {1e-1: 0.4, 1e-2: 0.5, 1e-3: 0.6, 1e-4: 0.7})),
                                    calibrated(), calibrated(cosine_weight=4.0)],
                         ids=["cosine", "calibrated", "calibrated with the raw cosine"])
def test_evidence_many_is_the_evidence_of_decide_many(scorer):
    rng = np.random.default_rng(0)
    templates, probe = unit(rng.standard_normal((50, 16))), Embedding(unit(rng.standard_normal(16)))
    stats = [scorer.template_stats(row) for row in templates]
    cosines = templates @ probe.vector
    at_once = scorer.evidence_many(cosines, probe, stats)
    decided = [evidence(decision) for decision in scorer.decide_many(cosines, "medium", probe, stats)]
    assert at_once.shape == (50,)
    np.testing.assert_allclose(at_once, decided, rtol=0, atol=1e-9)
    assert len(scorer.evidence_many(cosines[:0], probe, [])) == 0


def test_a_calibration_weighing_the_raw_cosine_gets_each_trials_own_and_advises_nothing_on_it():
    rng = np.random.default_rng(1)
    templates, probe = unit(rng.standard_normal((20, 16))), Embedding(unit(rng.standard_normal(16)))
    plain, weighing = calibrated(), calibrated(cosine_weight=4.0)
    stats = [plain.template_stats(row) for row in templates]
    cosines = templates @ probe.vector
    gained = weighing.evidence_many(cosines, probe, stats) - plain.evidence_many(cosines, probe, stats)
    np.testing.assert_allclose(gained, 4.0 * cosines, rtol=0, atol=1e-9)
    decisions = weighing.decide_many(cosines, "medium", probe, stats)
    assert all(decision.reason in ("", "score below threshold") for decision in decisions), decisions
