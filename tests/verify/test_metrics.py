"""Verification metrics on small trial sets whose rates are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from verify.metrics import (
    DEFAULT_P_TARGET,
    LevelRates,
    cllr,
    det_points,
    equal_error_rate,
    level_rates,
    levels_report,
    min_cllr,
    min_dcf,
    roc_curve,
    tar_at_far,
    threshold_at_far,
)

INF = np.inf


def trials(genuine: list[float], impostor: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels (genuine first) of a trial list."""
    scores = np.array(genuine + impostor, dtype=np.float64)
    labels = np.array([True] * len(genuine) + [False] * len(impostor))
    return scores, labels


# genuine 0.9 0.8 0.4, impostor 0.7 0.3 0.2; accepting score >= t:
#   t     inf  0.9  0.8  0.7  0.4  0.3  0.2
#   FAR   0    0    0    1/3  1/3  2/3  1
#   FRR   1    2/3  1/3  1/3  0    0    0
THREE_BY_THREE = trials([0.9, 0.8, 0.4], [0.7, 0.3, 0.2])

# genuine 0.9 0.6 0.5 0.4, impostor 0.7 0.3:
#   t     inf  0.9   0.7   0.6  0.5   0.4  0.3
#   FAR   0    0     1/2   1/2  1/2   1/2  1
#   FRR   1    3/4   3/4   1/2  1/4   0    0
FOUR_BY_TWO = trials([0.9, 0.6, 0.5, 0.4], [0.7, 0.3])


# --- roc_curve --------------------------------------------------------------------------------
def test_roc_curve_lists_every_distinct_threshold_descending_with_hand_computed_rates():
    curve = roc_curve(*THREE_BY_THREE)

    np.testing.assert_array_equal(curve.thresholds, [INF, 0.9, 0.8, 0.7, 0.4, 0.3, 0.2])
    np.testing.assert_allclose(curve.far, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(curve.frr, [1, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0])
    np.testing.assert_allclose(curve.tar, 1 - curve.frr)


def test_roc_curve_merges_tied_scores_into_one_threshold():
    curve = roc_curve(*trials([0.5, 0.5, 0.9], [0.5, 0.1]))

    np.testing.assert_array_equal(curve.thresholds, [INF, 0.9, 0.5, 0.1])
    np.testing.assert_allclose(curve.far, [0, 0, 0.5, 1])
    np.testing.assert_allclose(curve.frr, [1, 2 / 3, 0, 0])


def test_roc_curve_accepts_integer_labels_and_nested_arrays():
    scores, labels = THREE_BY_THREE
    curve = roc_curve(scores.reshape(2, 3).tolist(), labels.astype(int).reshape(2, 3))

    np.testing.assert_allclose(curve.far, roc_curve(*THREE_BY_THREE).far)


def test_roc_curve_treats_failed_trials_as_rejected_at_every_threshold():
    # one genuine and one impostor trial failed (-inf): never accepted, never a threshold
    curve = roc_curve(*trials([0.9, -INF], [0.2, -INF]))

    np.testing.assert_array_equal(curve.thresholds, [INF, 0.9, 0.2])
    np.testing.assert_allclose(curve.far, [0, 0, 0.5])  # the failed impostor is a correct reject
    np.testing.assert_allclose(curve.frr, [1, 0.5, 0.5])  # the failed genuine is a false reject


def test_roc_curve_with_only_failed_trials_has_only_the_reject_all_point():
    curve = roc_curve(*trials([-INF], [-INF, -INF]))

    np.testing.assert_array_equal(curve.thresholds, [INF])
    np.testing.assert_array_equal(curve.far, [0])
    np.testing.assert_array_equal(curve.frr, [1])


@settings(max_examples=60, deadline=None)
@given(
    genuine=st.lists(st.floats(-1, 1), min_size=1, max_size=30),
    impostor=st.lists(st.floats(-1, 1), min_size=1, max_size=30),
)
def test_roc_curve_rates_are_monotone_and_span_reject_all_to_accept_all(genuine, impostor):
    curve = roc_curve(*trials(genuine, impostor))

    assert (curve.far[0], curve.frr[0]) == (0.0, 1.0)
    assert (curve.far[-1], curve.frr[-1]) == (1.0, 0.0)
    assert np.all(np.diff(curve.thresholds) < 0)
    assert np.all(np.diff(curve.far) >= 0) and np.all(np.diff(curve.frr) <= 0)


# --- equal_error_rate ---------------------------------------------------------------------------
def test_eer_on_hand_computed_case_meets_where_far_equals_frr():
    eer, threshold = equal_error_rate(*THREE_BY_THREE)

    assert eer == pytest.approx(1 / 3)  # at t = 0.7 FAR = FRR = 1/3
    assert threshold == 0.7


def test_eer_is_zero_for_perfect_separation_with_threshold_at_lowest_genuine():
    eer, threshold = equal_error_rate(*trials([0.8, 0.9], [0.1, 0.2]))

    assert eer == 0.0
    assert threshold == 0.8


def test_eer_is_one_when_every_impostor_outscores_every_genuine():
    eer, threshold = equal_error_rate(*trials([0.1], [0.9]))

    assert eer == 1.0
    assert threshold == 0.9


def test_eer_interpolates_between_roc_points_when_a_tie_moves_both_rates():
    # t = 0.9: FAR 0, FRR 1/2; t = 0.5 (tie): FAR 1/2, FRR 0. Lines cross half way, at 1/4.
    eer, threshold = equal_error_rate(*trials([0.5, 0.9], [0.5, 0.1]))

    assert eer == pytest.approx(0.25)
    assert threshold == 0.5  # weight 0.5 picks the later point


def test_eer_interpolation_weight_picks_the_nearer_roc_point_threshold():
    # t = 0.9: (FAR 0, FRR 1/2); t = 0.5: (FAR 3/4, FRR 0).
    # FAR - FRR goes -1/2 -> 3/4, zero at weight 0.4: FAR = FRR = 0.3, nearer to t = 0.9.
    eer, threshold = equal_error_rate(*trials([0.9, 0.5], [0.5, 0.5, 0.5, 0.1]))

    assert eer == pytest.approx(0.3)
    assert threshold == 0.9


def test_eer_counts_failed_genuine_trials_as_false_rejects():
    # genuine 0.9 0.8 -inf, impostor 0.5 0.3 0.1: at t = 0.5 FAR = FRR = 1/3
    eer, threshold = equal_error_rate(*trials([0.9, 0.8, -INF], [0.5, 0.3, 0.1]))

    assert eer == pytest.approx(1 / 3)
    assert threshold == 0.5


def test_eer_counts_failed_impostor_trials_as_correct_rejects():
    eer, _ = equal_error_rate(*trials([0.9, 0.8], [0.3, -INF]))

    assert eer == 0.0


def test_eer_when_failed_genuine_trials_keep_frr_above_far_everywhere():
    # genuine 0.9 0.8 -inf -inf, impostor 0.1 -inf -inf -inf: FAR never reaches FRR.
    # Closest at the lowest threshold 0.1: FAR 1/4, FRR 1/2 -> reported as their mean.
    eer, threshold = equal_error_rate(*trials([0.9, 0.8, -INF, -INF], [0.1, -INF, -INF, -INF]))

    assert eer == pytest.approx(0.375)
    assert threshold == 0.1


def test_eer_when_every_trial_failed_is_one_half_at_infinite_threshold():
    eer, threshold = equal_error_rate(*trials([-INF, -INF], [-INF]))

    assert eer == 0.5
    assert threshold == INF


def test_eer_of_well_separated_gaussians_matches_the_analytic_value():
    rng = np.random.default_rng(0)
    genuine, impostor = rng.normal(2.0, 1.0, 20_000), rng.normal(0.0, 1.0, 20_000)
    scores = np.concatenate([genuine, impostor])
    labels = np.r_[np.ones(genuine.size, bool), np.zeros(impostor.size, bool)]

    eer, threshold = equal_error_rate(scores, labels)

    assert eer == pytest.approx(norm.cdf(-1.0), abs=0.01)  # crossing at the midpoint 1.0
    assert threshold == pytest.approx(1.0, abs=0.05)


# --- threshold_at_far and tar_at_far -------------------------------------------------------------
@pytest.mark.parametrize(
    ("target_far", "expected_threshold", "expected_tar"),
    [
        (0.5, 0.4, 1.0),  # FAR 1/2 allowed down to t = 0.4, where every genuine is accepted
        (0.49, 0.9, 0.25),  # FAR must stay 0: t = 0.9 is the lowest threshold before 0.7
        (0.999, 0.4, 1.0),  # FAR 1 (t = 0.3) still exceeds 0.999
    ],
)
def test_threshold_and_tar_at_far_hand_computed(target_far, expected_threshold, expected_tar):
    assert threshold_at_far(*FOUR_BY_TWO, target_far) == expected_threshold
    assert tar_at_far(*FOUR_BY_TWO, target_far) == expected_tar


def test_threshold_at_far_is_infinite_when_the_top_score_is_an_impostor_tie_group():
    # every impostor shares the top score: any finite threshold has FAR 1
    scores, labels = trials([0.5], [0.9, 0.9])

    assert threshold_at_far(scores, labels, 0.4) == INF
    assert tar_at_far(scores, labels, 0.4) == 0.0


def test_tar_at_far_counts_failed_genuine_trials_as_false_rejects():
    scores, labels = trials([0.9, 0.8, -INF, -INF], [0.1, 0.2, 0.3, 0.4])

    assert tar_at_far(scores, labels, 0.25) == 0.5


@settings(max_examples=60, deadline=None)
@given(
    impostor=st.lists(st.floats(-1, 1), min_size=1, max_size=40),
    genuine=st.lists(st.floats(-1, 1), min_size=1, max_size=10),
    target_far=st.floats(0.01, 0.99),
)
def test_threshold_at_far_is_the_lowest_score_meeting_the_target(impostor, genuine, target_far):
    scores, labels = trials(genuine, impostor)
    impostors = np.array(impostor)

    threshold = threshold_at_far(scores, labels, target_far)

    assert np.mean(impostors >= threshold) <= target_far
    lower = scores[scores < threshold]
    if lower.size:  # the next lower score would let too many impostors in
        assert np.mean(impostors >= lower.max()) > target_far


@pytest.mark.parametrize("function", [threshold_at_far, tar_at_far])
@pytest.mark.parametrize("target_far", [0.0, 1.0, -0.1, 1.5])
def test_far_outside_open_unit_interval_is_refused(function, target_far):
    with pytest.raises(ValueError, match=rf"target_far must be in \(0, 1\), got {target_far}"):
        function(*THREE_BY_THREE, target_far)


# --- min_dcf ------------------------------------------------------------------------------------
def test_min_dcf_with_equal_priors_and_costs_is_min_of_far_plus_frr():
    # (0.5 FRR + 0.5 FAR) / 0.5 = FRR + FAR: 1, 3/4, 5/4, 1, 3/4, 1/2, 1 -> 1/2 at t = 0.4
    assert min_dcf(*FOUR_BY_TWO, p_target=0.5) == pytest.approx(0.5)


def test_min_dcf_default_prior_weights_false_alarms_99_times_misses():
    # (0.01 FRR + 0.99 FAR) / 0.01 = FRR + 99 FAR: minimum 3/4 at t = 0.9 (FAR 0)
    assert DEFAULT_P_TARGET == 0.01
    assert min_dcf(*FOUR_BY_TWO) == pytest.approx(0.75)


def test_min_dcf_with_unequal_costs():
    # C_fa = 3, P = 0.5: (0.5 FRR + 1.5 FAR) / 0.5 = FRR + 3 FAR -> minimum 3/4 at t = 0.9
    assert min_dcf(*FOUR_BY_TWO, p_target=0.5, cost_false_alarm=3.0) == pytest.approx(0.75)
    # C_miss = 3, P = 0.25: (0.75 FRR + 0.75 FAR) / 0.75 = FRR + FAR -> 1/2
    assert min_dcf(*FOUR_BY_TWO, p_target=0.25, cost_miss=3.0) == pytest.approx(0.5)


def test_min_dcf_is_zero_for_perfect_separation_and_one_for_a_useless_system():
    assert min_dcf(*trials([0.8, 0.9], [0.1, 0.2])) == 0.0
    assert min_dcf(*trials([0.1], [0.9])) == pytest.approx(1.0)


def test_min_dcf_counts_failed_genuine_trials_as_misses():
    # FRR can't drop below 1/2, FAR stays 0 until t = 0.1: min of FRR + FAR = 1/2
    assert min_dcf(*trials([0.9, -INF], [0.1, 0.2]), p_target=0.5) == pytest.approx(0.5)


@pytest.mark.parametrize("p_target", [0.0, 1.0, -0.5, 2.0])
def test_min_dcf_refuses_prior_outside_open_unit_interval(p_target):
    with pytest.raises(ValueError, match=rf"p_target must be in \(0, 1\), got {p_target}"):
        min_dcf(*THREE_BY_THREE, p_target=p_target)


# --- det_points ---------------------------------------------------------------------------------
def test_det_points_are_probits_of_the_roc_rates_clipped_away_from_zero_and_one():
    x, y = det_points(*THREE_BY_THREE)

    clipped = norm.ppf(1e-6)
    third, two_thirds = norm.ppf(1 / 3), norm.ppf(2 / 3)
    np.testing.assert_allclose(x, [clipped, clipped, clipped, third, third, two_thirds, -clipped])
    np.testing.assert_allclose(y, [-clipped, two_thirds, third, third, clipped, clipped, clipped])
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))


def test_det_point_of_equal_rates_lies_on_the_diagonal_at_zero_for_one_half():
    x, y = det_points(*trials([0.6, 0.4], [0.5, 0.3]))  # t = 0.5: FAR 1/2, FRR 1/2

    assert (0.0, 0.0) in set(zip(np.round(x, 12), np.round(y, 12)))


# --- validation ---------------------------------------------------------------------------------
METRICS = [
    roc_curve,
    equal_error_rate,
    lambda s, l: threshold_at_far(s, l, 0.1),
    lambda s, l: tar_at_far(s, l, 0.1),
    min_dcf,
    det_points,
]


@pytest.mark.parametrize("metric", METRICS)
def test_scores_and_labels_of_different_lengths_are_refused(metric):
    with pytest.raises(ValueError, match=r"scores \(3,\) and labels \(2,\) differ in length"):
        metric(np.array([0.1, 0.2, 0.3]), np.array([True, False]))


@pytest.mark.parametrize("metric", METRICS)
def test_nan_scores_are_refused_with_a_hint_to_use_minus_infinity(metric):
    with pytest.raises(ValueError, match="scores contain NaN; pass -inf for failed trials"):
        metric(np.array([0.9, np.nan]), np.array([True, False]))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    ("labels", "counts"),
    [([True, True], "2 genuine and 0 impostor"), ([False, False], "0 genuine and 2 impostor")],
)
def test_trials_of_only_one_kind_are_refused(metric, labels, counts):
    with pytest.raises(ValueError, match=f"need genuine and impostor trials, got {counts}"):
        metric(np.array([0.1, 0.2]), np.array(labels))


def test_no_trials_at_all_are_refused():
    with pytest.raises(ValueError, match="got 0 genuine and 0 impostor"):
        roc_curve(np.array([]), np.array([], dtype=bool))


# --- Cllr and min Cllr --------------------------------------------------------------------------
def test_cllr_of_an_uninformative_system_is_one_at_any_prior():
    scores, labels = trials([0.0, 0.0], [0.0, 0.0, 0.0])

    assert cllr(scores, labels) == pytest.approx(1.0)
    assert cllr(scores, labels, p_target=0.01) == pytest.approx(1.0)


def test_cllr_hand_computed():
    # genuine LLR log 3, impostor LLR -log 3: each costs log2(1 + 1/3)
    scores, labels = trials([np.log(3.0)], [-np.log(3.0)])

    assert cllr(scores, labels) == pytest.approx(np.log2(4 / 3))


def test_cllr_punishes_confident_errors_without_bound():
    scores, labels = trials([-50.0, 5.0], [-5.0])

    # 0.5 * (mean(log2(1 + e^50), log2(1 + e^-5)) + log2(1 + e^-5)): the -50 alone costs 72 bits
    small = np.log2(1 + np.exp(-5.0))
    assert cllr(scores, labels) == pytest.approx(0.5 * ((np.log2(1 + np.exp(50.0)) + small) / 2 + small))
    assert cllr(scores, labels) > 18


def test_min_cllr_is_zero_for_separated_scores_and_ignores_monotonic_maps():
    scores, labels = trials([0.9, 0.8], [0.1, 0.2, 0.3])

    assert min_cllr(scores, labels) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(0)
    noisy, noisy_labels = trials(list(rng.normal(1, 1, 300)), list(rng.normal(0, 1, 3000)))
    assert min_cllr(noisy, noisy_labels) == pytest.approx(min_cllr(np.exp(3 * noisy), noisy_labels))


def test_min_cllr_pools_tied_scores():
    # one genuine and one impostor at the same score: the best LLR there is 0 (posterior 1/2 at prior 1/2)
    scores, labels = trials([0.5], [0.5])

    assert min_cllr(scores, labels) == pytest.approx(1.0)


@given(
    st.lists(st.floats(-20, 20), min_size=1, max_size=30),
    st.lists(st.floats(-20, 20), min_size=1, max_size=30),
)
@settings(max_examples=60, deadline=None)
def test_min_cllr_never_exceeds_cllr(genuine, impostor):
    scores, labels = trials(genuine, impostor)

    assert min_cllr(scores, labels) <= cllr(scores, labels) + 1e-9


def test_cllr_refuses_a_prior_outside_the_open_interval():
    scores, labels = trials([1.0], [0.0])
    with pytest.raises(ValueError, match=r"p_target must be in \(0, 1\), got 1.0"):
        cllr(scores, labels, p_target=1.0)


def test_cllr_needs_both_classes():
    with pytest.raises(ValueError, match="need genuine and impostor trials, got 2 genuine and 0 impostor"):
        cllr(np.array([1.0, 2.0]), np.array([True, True]))


# --- rates per security level ------------------------------------------------------------------
def test_level_rates_count_accepts_rejects_and_retries_by_class():
    labels = np.array([True, True, True, True, False, False, False, False, False])
    genuine_outcomes = ["accepted", "retry", "rejected", "accepted"]
    outcomes = np.array(genuine_outcomes + ["accepted", "retry", "rejected", "rejected", "rejected"])

    rates = level_rates(labels, outcomes, threshold=4.5)

    assert rates == LevelRates(threshold=4.5, far=0.2, frr=0.5, retry=0.25, genuine=4, impostor=5)


def test_levels_report_has_the_evaluate_json_shape():
    labels = np.array([True, False])
    report = levels_report(labels, {"low": ["accepted", "rejected"], "high": ["retry", "rejected"]},
                           {"low": 1.0, "medium": 2.0, "high": 3.0})

    assert report == {
        "low": {"threshold": 1.0, "far": 0.0, "frr": 0.0, "retry": 0.0, "genuine": 1, "impostor": 1},
        "high": {"threshold": 3.0, "far": 0.0, "frr": 1.0, "retry": 1.0, "genuine": 1, "impostor": 1},
    }


@pytest.mark.parametrize(
    ("labels", "outcomes", "message"),
    [
        ([True, False], ["accepted"], r"labels \(2,\) and outcomes \(1,\) differ in length"),
        ([True, False], ["accepted", "maybe"], r"unknown outcomes \['maybe'\]"),
        ([True, True], ["accepted", "retry"], "need genuine and impostor trials, got 2 genuine and 0"),
    ],
    ids=["length", "unknown", "one-class"],
)
def test_level_rates_refuse_bad_input(labels, outcomes, message):
    with pytest.raises(ValueError, match=message):
        level_rates(np.array(labels), np.array(outcomes), 0.0)


def test_levels_report_needs_a_threshold_for_every_level():
    with pytest.raises(ValueError, match=r"no threshold given for levels \['high'\]"):
        levels_report(np.array([True, False]), {"high": ["accepted", "rejected"]}, {"low": 1.0})
