"""Cosine scores, and accept / retry / reject decisions on cosines and on calibrated LLRs."""

from __future__ import annotations

import numpy as np
import pytest

from verify.scoring import (
    CalibratedScore,
    Decision,
    OperatingPoint,
    calibrated_outcomes,
    cosine_scores,
    decide,
    decide_calibrated,
    l2_normalize,
    score_at_llr,
)

POINT = OperatingPoint(level="medium", target_far=1e-3, threshold=0.5, retry_threshold=0.3)


# --- l2_normalize -------------------------------------------------------------------------------
def test_l2_normalize_scales_each_row_to_unit_length():
    normalised = l2_normalize(np.array([[3.0, 4.0], [0.0, -2.0]]))

    np.testing.assert_allclose(normalised, [[0.6, 0.8], [0.0, -1.0]])
    assert normalised.dtype == np.float32


def test_l2_normalize_accepts_a_single_vector():
    np.testing.assert_allclose(l2_normalize(np.array([1.0, 2.0, 2.0])), [1 / 3, 2 / 3, 2 / 3], rtol=1e-6)


@pytest.mark.parametrize(
    "vectors",
    [
        np.zeros(4),
        np.array([[1.0, 0.0], [0.0, 0.0]]),
        np.array([[1.0, np.nan]]),
        np.array([np.inf, 1.0]),
        np.array([[1.0, -np.inf], [1.0, 1.0]]),
    ],
    ids=["zero-vector", "zero-row", "nan", "inf", "minus-inf"],
)
def test_l2_normalize_refuses_zero_or_non_finite_embeddings(vectors):
    with pytest.raises(ValueError, match="cannot normalise an embedding that is zero or not finite"):
        l2_normalize(vectors)


# --- cosine_scores ------------------------------------------------------------------------------
def test_cosine_scores_hand_computed_values():
    templates = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    probes = np.array([[3.0, 4.0], [0.0, -5.0]])

    scores = cosine_scores(templates, probes)

    # (3,4)/5 against x, y and -x axes; (0,-1) likewise
    np.testing.assert_allclose(scores, [[0.6, 0.0], [0.8, -1.0], [-0.6, 0.0]], atol=1e-7)


def test_cosine_scores_have_shape_templates_by_probes():
    rng = np.random.default_rng(0)

    scores = cosine_scores(rng.normal(size=(4, 16)), rng.normal(size=(7, 16)))

    assert scores.shape == (4, 7)
    assert np.all(np.abs(scores) <= 1.0 + 1e-6)


def test_cosine_scores_of_single_vectors_is_one_by_one_and_scale_invariant():
    vector = np.array([0.2, -0.5, 0.1])

    assert cosine_scores(vector, 10 * vector).shape == (1, 1)
    assert cosine_scores(vector, 10 * vector)[0, 0] == pytest.approx(1.0)
    assert cosine_scores(vector, -vector)[0, 0] == pytest.approx(-1.0)


def test_cosine_scores_is_symmetric_under_swapping_the_sets():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 8)), rng.normal(size=(5, 8))

    np.testing.assert_allclose(cosine_scores(a, b), cosine_scores(b, a).T, rtol=1e-6)


def test_cosine_scores_refuses_different_dimensions():
    with pytest.raises(ValueError, match="templates have dimension 3 but probes have 4"):
        cosine_scores(np.ones((2, 3)), np.ones((1, 4)))


def test_cosine_scores_refuses_a_zero_probe():
    with pytest.raises(ValueError, match="zero or not finite"):
        cosine_scores(np.ones((2, 3)), np.zeros(3))


# --- decide -------------------------------------------------------------------------------------
@pytest.mark.parametrize("score", [0.5, 0.51, 1.0])
def test_scores_at_or_above_the_threshold_are_accepted(score):
    decision = decide(score, POINT)

    assert decision == Decision("accepted", score, 0.5)
    assert decision.accepted
    assert decision.reason == ""


@pytest.mark.parametrize("score", [0.3, 0.4, 0.4999])
def test_scores_in_the_retry_band_ask_for_another_sample(score):
    decision = decide(score, POINT)

    assert decision.outcome == "retry"
    assert not decision.accepted
    assert decision.reason == "borderline score, try another sample"
    assert (decision.score, decision.threshold) == (score, 0.5)


@pytest.mark.parametrize("score", [0.2999, 0.0, -1.0, float("-inf")])
def test_scores_below_the_retry_band_are_rejected(score):
    decision = decide(score, POINT)

    assert decision == Decision("rejected", score, 0.5, "score below threshold")
    assert not decision.accepted


def test_quality_issues_turn_a_reject_into_a_retry_naming_every_issue():
    issues = ("face is blurry (sharpness 3 < 15)", "face is too dark (brightness 20 < 35)")

    decision = decide(0.1, POINT, issues)

    assert decision.outcome == "retry"
    assert decision.reason == "face is blurry (sharpness 3 < 15); face is too dark (brightness 20 < 35)"


def test_quality_issues_take_precedence_over_the_borderline_reason():
    decision = decide(0.4, POINT, ["audio is clipped (5.0% of samples at full scale)"])

    assert decision == Decision("retry", 0.4, 0.5, "audio is clipped (5.0% of samples at full scale)")


def test_quality_issues_do_not_block_an_accept():
    decision = decide(0.8, POINT, ("face is too bright (brightness 240 > 225)",))

    assert decision.accepted
    assert decision.reason == ""


def test_empty_quality_issues_mean_none():
    assert decide(0.1, POINT, ()).outcome == "rejected"
    assert decide(0.1, POINT, []).outcome == "rejected"


def test_decision_and_operating_point_are_immutable():
    with pytest.raises(AttributeError):
        POINT.threshold = 0.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        decide(0.9, POINT).outcome = "rejected"  # type: ignore[misc]


# --- decide_calibrated --------------------------------------------------------------------------
LLR_POINT = OperatingPoint(level="medium", target_far=1e-3, threshold=5.0, retry_threshold=3.0)


def test_decision_stays_backward_compatible():
    decision = Decision("accepted", 0.7, 0.5)

    assert decision.llr is None and decision.llr_threshold is None
    assert decision == Decision("accepted", 0.7, 0.5, "")


def test_an_llr_at_the_threshold_is_accepted_with_the_equivalent_score_threshold():
    decision = decide_calibrated(CalibratedScore(score=3.0, llr=6.0, slope=2.0), LLR_POINT)

    assert decision == Decision("accepted", 3.0, 2.5, "", llr=6.0, llr_threshold=5.0)  # 3 + (5 - 6) / 2


def test_good_quality_that_would_be_accepted_asks_for_the_advised_action():
    result = CalibratedScore(score=1.0, llr=4.0, slope=2.0, quality_gain=1.5, advice="move closer")

    decision = decide_calibrated(result, LLR_POINT, ("face is too dark",))

    assert decision.outcome == "retry" and decision.reason == "move closer"
    assert decision.threshold == pytest.approx(1.5)


def test_quality_gain_that_is_not_enough_falls_back_to_the_retry_band():
    result = CalibratedScore(score=1.0, llr=3.2, slope=2.0, quality_gain=1.0, advice="move closer")

    assert decide_calibrated(result, LLR_POINT).reason == "borderline score, try another sample"


def test_front_end_quality_issues_turn_a_reject_into_a_retry():
    decision = decide_calibrated(CalibratedScore(0.0, -2.0, 1.0), LLR_POINT, ["audio is clipped"])

    assert decision.outcome == "retry" and decision.reason == "audio is clipped"


def test_a_low_llr_without_quality_problems_is_rejected():
    result = CalibratedScore(0.0, -2.0, 1.0, quality_gain=0.5, advice="speak for about 1 s more")

    decision = decide_calibrated(result, LLR_POINT)

    assert decision.outcome == "rejected" and decision.reason == "score below threshold"
    assert decision.llr == -2.0


def test_a_score_that_carries_no_evidence_is_never_accepted():
    decision = decide_calibrated(CalibratedScore(score=9.0, llr=8.0, slope=0.0), LLR_POINT)

    assert decision.outcome == "retry"  # in the retry band, but not accepted
    assert decision.threshold == float("inf")


@pytest.mark.parametrize("score", np.linspace(-2, 4, 13))
def test_score_at_least_the_equivalent_threshold_iff_accepted(score):
    result = CalibratedScore(score=score, llr=1.5 * score + 1.0, slope=1.5)

    decision = decide_calibrated(result, LLR_POINT)

    assert decision.accepted == (score >= decision.threshold - 1e-12)
    assert score_at_llr(result, LLR_POINT.threshold) == pytest.approx((5.0 - 1.0) / 1.5)


def test_calibrated_outcomes_vectorise_the_rules():
    outcomes = calibrated_outcomes(
        llr=np.array([6.0, 4.0, 4.0, 3.5, 1.0, 7.0]),
        slope=np.array([1.0, 1.0, 1.0, 1.0, 1.0, -1.0]),
        quality_gain=np.array([0.0, 1.0, 0.5, 0.0, 3.0, 0.0]),
        point=LLR_POINT,
    )

    assert outcomes.tolist() == ["accepted", "retry", "retry", "retry", "rejected", "retry"]


def test_quality_worse_than_anything_calibrated_is_never_accepted():
    result = CalibratedScore(score=9.0, llr=20.0, slope=2.0, unsupported="speak for about 3 s more")

    decision = decide_calibrated(result, LLR_POINT)

    assert (decision.outcome, decision.reason) == ("retry", "speak for about 3 s more")
    assert decision.threshold == float("inf")
    outcomes = calibrated_outcomes(np.array([20.0, 20.0, -9.0]), np.ones(3), np.zeros(3), LLR_POINT,
                                   supported=np.array([False, True, False]))
    assert outcomes.tolist() == ["retry", "accepted", "retry"]
