"""Threshold calibration, thresholds files, security-level operating points, and LLR calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from verify.calibration import (
    CALIBRATED_FARS,
    ScoreCalibration,
    Thresholds,
    calibrate,
    load_calibration,
    load_thresholds,
    save_calibration,
    save_thresholds,
)
from verify.calibration_fit import FitConfig, class_weights, fit_calibration, thresholds_in_every_condition
from verify.config import SECURITY_LEVELS
from verify.errors import CalibrationError, CohortMismatchError, ConfigError, WeightsError
from verify.metrics import cllr, min_cllr
from verify.normalization import Cohort, CohortStats
from verify.quality_measures import default_features
from verify.scoring import OperatingPoint, decide_calibrated

BY_FAR = {1e-1: 0.2, 1e-2: 0.4, 1e-3: 0.6, 1e-4: 0.8}


@pytest.fixture(scope="module")
def gaussian_trials() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20 000 impostor scores N(0, 1) and 2 000 genuine N(3, 1), shuffled: (scores, labels, impostors)."""
    rng = np.random.default_rng(42)
    impostor, genuine = rng.normal(0.0, 1.0, 20_000), rng.normal(3.0, 1.0, 2_000)
    scores = np.concatenate([impostor, genuine])
    labels = np.r_[np.zeros(impostor.size, bool), np.ones(genuine.size, bool)]
    order = rng.permutation(scores.size)
    return scores[order], labels[order], impostor


# --- calibrate ----------------------------------------------------------------------------------
def test_calibrated_thresholds_keep_empirical_far_at_or_below_each_target(gaussian_trials):
    scores, labels, impostor = gaussian_trials

    thresholds = calibrate(scores, labels)

    assert sorted(thresholds) == sorted(CALIBRATED_FARS)
    for far, threshold in thresholds.items():
        accepted = np.sum(impostor >= threshold)
        assert accepted / impostor.size <= far
        assert (accepted + 1) / impostor.size > far  # as low as the target allows


def test_calibrated_thresholds_rise_as_the_target_far_falls_and_match_gaussian_quantiles(gaussian_trials):
    scores, labels, _ = gaussian_trials

    thresholds = calibrate(scores, labels)

    ordered = [thresholds[far] for far in sorted(thresholds, reverse=True)]
    assert ordered == sorted(ordered)
    # N(0, 1) upper quantiles: 1.2816 (10 %), 2.3263 (1 %)
    assert thresholds[1e-1] == pytest.approx(1.2816, abs=0.05)
    assert thresholds[1e-2] == pytest.approx(2.3263, abs=0.1)


def test_calibrate_with_chosen_fars_returns_only_those():
    scores = np.array([0.9, 0.8, 0.5, 0.4, 0.3, 0.2])
    labels = np.array([True, True, False, False, False, False])

    # 4 impostors: FAR 1/4 allows one of them, so the lowest threshold is 0.5
    assert calibrate(scores, labels, fars=(0.25,)) == {0.25: 0.5}


def test_calibrate_refuses_too_few_impostors_for_a_target_far():
    scores = np.linspace(0, 1, 1_100)
    labels = np.r_[np.zeros(999, bool), np.ones(101, bool)]  # 999 impostors: FAR 1e-3 needs 1000

    with pytest.raises(ValueError, match="999 impostor trials cannot calibrate FAR 0.001"):
        calibrate(scores, labels, fars=(1e-2, 1e-3))


def test_calibrate_accepts_exactly_one_over_far_impostors():
    scores = np.linspace(0, 1, 1_100)
    labels = np.r_[np.zeros(1_000, bool), np.ones(100, bool)]

    assert set(calibrate(scores, labels, fars=(1e-3,))) == {1e-3}


def test_calibrate_with_default_fars_needs_ten_thousand_impostors():
    scores = np.linspace(0, 1, 5_000)
    labels = np.r_[np.zeros(4_900, bool), np.ones(100, bool)]

    with pytest.raises(ValueError, match="4900 impostor trials cannot calibrate FAR 0.0001"):
        calibrate(scores, labels)


def test_calibrate_without_impostors_is_refused():
    with pytest.raises(ValueError, match="0 impostor trials cannot calibrate FAR 0.1"):
        calibrate(np.array([0.9, 0.8]), np.array([True, True]))


# --- operating_point ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "far", "threshold", "retry_threshold"),
    [("low", 1e-2, 0.4, 0.2), ("medium", 1e-3, 0.6, 0.4), ("high", 1e-4, 0.8, 0.6)],
)
def test_operating_point_takes_retry_band_from_the_ten_times_looser_target(
    level, far, threshold, retry_threshold
):
    point = Thresholds("face-model", BY_FAR).operating_point(level)

    assert point == OperatingPoint(level, far, threshold, retry_threshold)
    assert SECURITY_LEVELS[level] == far


@pytest.mark.parametrize("level", ["ultra", "", "Medium", "0.001"])
def test_operating_point_refuses_unknown_level(level):
    message = rf"unknown security level {level!r}: choose one of low \(FAR 0.01\)"
    with pytest.raises(ConfigError, match=message):
        Thresholds("face-model", BY_FAR).operating_point(level)


def test_operating_point_refuses_a_level_the_model_was_not_calibrated_for():
    thresholds = Thresholds("voice-model", {1e-1: 0.2, 1e-2: 0.4})

    assert thresholds.operating_point("low").threshold == 0.4
    message = r"model voice-model has no calibrated threshold for level 'medium'"
    with pytest.raises(ConfigError, match=message):
        thresholds.operating_point("medium")


def test_operating_point_needs_the_looser_retry_threshold_too():
    thresholds = Thresholds("voice-model", {1e-3: 0.6})  # medium's retry band needs FAR 1e-2

    with pytest.raises(ConfigError, match=r"calibrated FARs: \[0.001\]"):
        thresholds.operating_point("medium")


# --- save / load --------------------------------------------------------------------------------
def test_save_then_load_round_trips_thresholds_and_provenance(tmp_path: Path):
    path = tmp_path / "thresholds.json"
    original = Thresholds("face-model", {1e-1: 0.25, 1e-2: 0.5, 1e-3: 0.625, 1e-4: 0.75}, {"trials": 12345})

    save_thresholds(path, original)
    loaded = load_thresholds(path)

    assert loaded == original
    assert loaded.operating_point("high") == OperatingPoint("high", 1e-4, 0.75, 0.625)


def test_saved_file_is_readable_json_with_far_keys_and_six_decimals(tmp_path: Path):
    path = tmp_path / "thresholds.json"

    save_thresholds(path, Thresholds("m", {1e-2: 0.123456789, 1e-1: 0.1}, {"source": "lfw"}))

    document = json.loads(path.read_text(encoding="utf-8"))
    assert document == {
        "model_id": "m",
        "thresholds": {"0.1": 0.1, "0.01": 0.123457},
        "calibration": {"source": "lfw"},
    }
    assert load_thresholds(path).by_far == {0.1: 0.1, 0.01: 0.123457}


def test_load_without_provenance_defaults_to_empty(tmp_path: Path):
    path = tmp_path / "thresholds.json"
    path.write_text('{"model_id": "m", "thresholds": {"0.01": 0.5}}', encoding="utf-8")

    assert load_thresholds(path) == Thresholds("m", {0.01: 0.5}, {})


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{not json", "Expecting property name"),
        ("", "Expecting value"),
        ('{"model_id": "m"}', "'thresholds'"),
        ('{"thresholds": {"0.01": 0.5}}', "'model_id'"),
        ('{"model_id": "m", "thresholds": {"low": 0.5}}', "could not convert string to float"),
        ('{"model_id": "m", "thresholds": {"0.01": null}}', "NoneType"),
        ('{"model_id": "m", "thresholds": [0.5]}', "'list' object has no attribute"),
        ('{"model_id": "m", "thresholds": null}', "'NoneType' object has no attribute"),
        ("[1, 2]", "list indices must be integers"),
    ],
    ids=[
        "bad-json", "empty", "no-thresholds", "no-model-id", "bad-far", "null-value", "list", "null", "array"
    ],
)
def test_corrupt_thresholds_file_raises_weights_error_naming_it(tmp_path: Path, content, detail):
    path = tmp_path / "thresholds.json"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(WeightsError, match=r"cannot read calibrated thresholds .*thresholds\.json") as caught:
        load_thresholds(path)
    assert detail in str(caught.value)
    assert "Recalibrate with: python scripts/calibrate.py" in str(caught.value)


def test_binary_thresholds_file_raises_weights_error(tmp_path: Path):
    path = tmp_path / "thresholds.json"
    path.write_bytes(b"\xff\xfe\x00garbage")

    with pytest.raises(WeightsError, match="cannot read calibrated thresholds"):
        load_thresholds(path)


def test_missing_thresholds_file_raises_weights_error(tmp_path: Path):
    message = r"cannot read calibrated thresholds .*missing\.json: .*No such file"
    with pytest.raises(WeightsError, match=message):
        load_thresholds(tmp_path / "missing.json")


# --- LLR calibration: synthetic trials with known answers -----------------------------------------
def gaussian_scores(rng, genuine: int, impostor: int, mean: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Genuine N(mean, 1) and impostor N(0, 1) scores: the true LLR is ``mean * s - mean**2 / 2``."""
    scores = np.r_[rng.normal(mean, 1.0, genuine), rng.normal(0.0, 1.0, impostor)]
    return scores, np.r_[np.ones(genuine, bool), np.zeros(impostor, bool)]


def seconds_trials(rng, genuine: int, impostor: int, shift: float = 0.0, separation=None):
    """Scores whose distributions depend on the probe's speech seconds (log-uniform 0.5..16 s).

    Impostors: N(shift * log s, 1). Genuine: N(shift * log s + separation(log s), 1).
    """
    labels = np.r_[np.ones(genuine, bool), np.zeros(impostor, bool)]
    seconds = np.exp(rng.uniform(np.log(0.5), np.log(16.0), labels.size))
    gap = 2.0 if separation is None else separation(np.log(seconds))
    scores = shift * np.log(seconds) + rng.normal(0.0, 1.0, labels.size) + np.where(labels, gap, 0.0)
    return scores, labels, {"speech_seconds": seconds}


SECONDS = default_features(["speech_seconds"])


def test_fit_recovers_the_analytic_llr_of_gaussian_scores():
    scores, labels = gaussian_scores(np.random.default_rng(0), 20_000, 200_000)

    calibration = fit_calibration(scores, labels, {}, (), "m", FitConfig(max_impostor_trials=200_000))

    assert calibration.scale == pytest.approx(2.0, abs=0.1)
    assert calibration.offset == pytest.approx(-2.0, abs=0.1)
    assert calibration.features == () and calibration.references == {}


def test_fit_recovers_a_quality_measure_that_shifts_every_score():
    # llr = 2 (s - 0.5 log t) - 2 = 2 s - 1 * log t - 2
    scores, labels, measures = seconds_trials(np.random.default_rng(1), 20_000, 200_000, shift=0.5)

    calibration = fit_calibration(scores, labels, measures, SECONDS, "m")

    assert calibration.scale == pytest.approx(2.0, abs=0.1)
    assert calibration.quality_weights[0] == pytest.approx(-1.0, abs=0.1)
    assert calibration.offset == pytest.approx(-2.0, abs=0.15)
    assert calibration.interaction_weights == (0.0,)


def test_a_measure_that_raises_the_genuine_mean_gets_a_positive_interaction_and_lowers_cllr():
    rng = np.random.default_rng(2)
    separation = lambda log_seconds: 1.0 + 0.8 * log_seconds  # longer speech, clearer evidence  # noqa: E731
    fit_scores, fit_labels, fit_measures = seconds_trials(rng, 10_000, 100_000, separation=separation)
    test_scores, test_labels, test_measures = seconds_trials(rng, 10_000, 100_000, separation=separation)

    plain = fit_calibration(fit_scores, fit_labels, fit_measures, SECONDS, "m")
    scaled = fit_calibration(fit_scores, fit_labels, fit_measures, SECONDS, "m", FitConfig(interactions=True))

    assert scaled.interaction_weights[0] > 0.5
    held_out = {name: cllr(c.llrs(test_scores, test_measures), test_labels) for name, c in
                (("plain", plain), ("scaled", scaled))}
    assert held_out["scaled"] < held_out["plain"] - 0.01


def test_calibrated_llrs_cost_less_than_raw_scores_and_min_cllr_is_a_lower_bound():
    rng = np.random.default_rng(3)
    fit_scores, fit_labels = gaussian_scores(rng, 5_000, 50_000, mean=0.3)
    raw, labels = gaussian_scores(rng, 5_000, 50_000, mean=0.3)
    raw, fit_scores = 0.1 * raw + 0.4, 0.1 * fit_scores + 0.4  # cosine-like: all positive, narrow

    calibration = fit_calibration(fit_scores, fit_labels, {}, (), "m", FitConfig(fars=(1e-1, 1e-2)))
    calibrated = calibration.llrs(raw, {})

    assert cllr(calibrated, labels) < cllr(raw, labels)
    assert min_cllr(raw, labels) <= cllr(calibrated, labels)
    assert min_cllr(calibrated, labels) == pytest.approx(min_cllr(raw, labels))  # monotonic map


def test_thresholds_hold_the_far_in_every_condition_not_only_on_average():
    rng = np.random.default_rng(11)
    labels = np.r_[np.ones(2_000, bool), np.zeros(40_000, bool)]
    llrs = np.r_[rng.normal(6.0, 1.0, 2_000), rng.normal(0.0, 1.0, 20_000), rng.normal(-3.0, 1.0, 20_000)]
    conditions = np.r_[np.zeros(2_000), np.zeros(20_000), np.ones(20_000)]  # clean impostors score higher

    pooled = thresholds_in_every_condition(llrs, labels, (0.01,))[0.01]
    each = thresholds_in_every_condition(llrs, labels, (0.01,), conditions)[0.01]

    clean_impostors = llrs[(conditions == 0) & ~labels]
    assert np.mean(clean_impostors >= pooled) > 0.015  # the pooled threshold fails clean probes
    assert np.mean(clean_impostors >= each) <= 0.01
    assert each > pooled


def test_a_condition_too_small_for_a_far_does_not_set_its_threshold():
    labels = np.r_[np.ones(10, bool), np.zeros(1_000, bool), np.zeros(5, bool)]
    llrs = np.r_[np.full(10, 5.0), np.linspace(-3.0, 0.0, 1_000), np.full(5, 4.0)]
    conditions = np.r_[np.ones(5), np.zeros(1_005), np.ones(5)]

    thresholds = thresholds_in_every_condition(llrs, labels, (0.01,), conditions)

    assert thresholds[0.01] < 4.0  # 5 impostor trials cannot measure a 1 % FAR


def test_held_out_far_never_exceeds_any_target_by_more_than_sampling_error():
    rng = np.random.default_rng(4)
    fit_scores, fit_labels, fit_measures = seconds_trials(rng, 5_000, 100_000, shift=0.3)
    scores, labels, measures = seconds_trials(rng, 5_000, 100_000, shift=0.3)

    calibration = fit_calibration(fit_scores, fit_labels, fit_measures, SECONDS, "m")

    impostor_llrs = calibration.llrs(scores, measures)[~labels]
    for far, threshold in calibration.thresholds.by_far.items():
        bound = binom.ppf(0.999, impostor_llrs.size, far) / impostor_llrs.size
        assert np.mean(impostor_llrs >= threshold) <= bound


def test_subsampled_impostors_still_recover_the_llr_and_thresholds_use_them_all():
    scores, labels = gaussian_scores(np.random.default_rng(5), 10_000, 100_000)

    calibration = fit_calibration(scores, labels, {}, (), "m", FitConfig(max_impostor_trials=20_000))

    assert calibration.scale == pytest.approx(2.0, abs=0.15)
    llrs = calibration.llrs(scores, {})
    assert np.mean(llrs[~labels] >= calibration.thresholds.by_far[1e-4]) <= 1e-4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"effective_prior": 0.0}, r"effective_prior must be in \(0, 1\), got 0.0"),
        ({"effective_prior": 1.0}, r"effective_prior must be in \(0, 1\), got 1.0"),
        ({"l2": -1.0}, "l2 must be >= 0, got -1.0"),
        ({"reference_quantile": 0.2}, r"reference_quantile must be in \[0.5, 1\), got 0.2"),
        ({"max_impostor_trials": 0}, "max_impostor_trials must be >= 1, got 0"),
        ({"limit_quantile": 0.5}, r"limit_quantile must be in \[0, 0.5\), got 0.5"),
    ],
)
def test_fit_config_refuses_bad_options(options, message):
    with pytest.raises(CalibrationError, match=message):
        FitConfig(**options)


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        (np.zeros(3), np.ones(4, bool), r"scores \(3,\) and labels \(4,\) differ in length"),
        (np.r_[np.nan, np.arange(99.0)], np.arange(100) < 50, "calibration scores must be finite"),
        (np.arange(100.0), np.arange(100) < 1, "need at least 2 genuine and 2 impostor trials, got 1 and 99"),
        (np.arange(100.0), np.arange(100) < 50, "50 impostor trials cannot calibrate FAR 0.01"),
    ],
    ids=["length", "nan", "one-genuine", "too-few-impostors"],
)
def test_fit_refuses_unusable_trials(scores, labels, message):
    with pytest.raises(CalibrationError, match=message):
        fit_calibration(scores, labels, {}, (), "m")


def test_class_weights_sum_to_one_per_class_and_balance_groups():
    labels = np.array([True, True, True, False, False, False, False])
    groups = np.array(["a", "a", "b", "a", "b", "b", "b"])

    weights = class_weights(labels, groups)

    np.testing.assert_allclose(weights, [0.25, 0.25, 0.5, 0.5, 1 / 6, 1 / 6, 1 / 6])
    np.testing.assert_allclose(class_weights(labels), [1 / 3] * 3 + [0.25] * 4)


def test_fit_refuses_groups_of_another_length():
    scores, labels = gaussian_scores(np.random.default_rng(9), 100, 1_000)
    with pytest.raises(CalibrationError, match=r"groups \(3,\) and scores \(1100,\) differ in length"):
        fit_calibration(scores, labels, {}, (), "m", FitConfig(fars=(0.1,)), groups=np.zeros(3))


def test_fit_refuses_a_constant_score():
    labels = np.arange(200) < 100
    with pytest.raises(CalibrationError, match="every calibration score is the same"):
        fit_calibration(np.ones(200), labels, {}, (), "m", FitConfig(fars=(0.1,)))


def test_fit_refuses_a_missing_measure():
    scores, labels = gaussian_scores(np.random.default_rng(6), 100, 1_000)
    with pytest.raises(CalibrationError, match="quality measure 'speech_seconds' is missing"):
        fit_calibration(scores, labels, {}, SECONDS, "m", FitConfig(fars=(0.1,)))


# --- ScoreCalibration ---------------------------------------------------------------------------
LLR_THRESHOLDS = Thresholds("voice", {1e-1: 1.0, 1e-2: 3.0, 1e-3: 5.0, 1e-4: 7.0})
STATS = CohortStats(0.1, 0.1, 100, "c0ffee")


def seconds_calibration(**changes) -> ScoreCalibration:
    """llr = (2 + 0.5 log t) s - 3 + 0.2 log t, reference 4 s of speech, calibrated down to 0.5 s."""
    fields = dict(model_id="voice", features=SECONDS, scale=2.0, offset=-3.0, quality_weights=(0.2,),
                  interaction_weights=(0.5,), thresholds=LLR_THRESHOLDS, references={"speech_seconds": 4.0},
                  limits={"speech_seconds": 0.5},
                  cohort_id="c0ffee", top_k=100, model_version="1", provenance={"data": "synthetic"})
    return ScoreCalibration(**{**fields, **changes})


def test_llr_slope_and_quality_gain_follow_the_weights():
    calibration = seconds_calibration()

    result = calibration.calibrated(2.0, {"speech_seconds": 1.0})

    assert result.llr == pytest.approx(2.0 * 2.0 - 3.0)  # log 1 = 0
    assert result.slope == pytest.approx(2.0)
    assert result.quality_gain == pytest.approx((0.2 + 0.5 * 2.0) * np.log(4.0))
    assert result.advice == "speak for about 3 s more"
    assert calibration.calibrated(2.0, {"speech_seconds": 8.0}).quality_gain == 0.0  # already better


def test_a_measure_worse_than_the_calibrated_limit_is_never_accepted():
    calibration = seconds_calibration()

    result = calibration.calibrated(10.0, {"speech_seconds": 0.3})  # huge LLR, but 0.3 s < 0.5 s

    assert result.llr > 10 and result.unsupported == "speak for about 4 s more"
    decision = calibration.decide(10.0, "low", {"speech_seconds": 0.3}, template=STATS, probe=STATS)
    assert decision.outcome == "retry"
    outcomes = calibration.outcomes(np.array([10.0, 10.0]), {"speech_seconds": np.array([0.3, 0.6])}, "low")
    assert outcomes.tolist() == ["retry", "accepted"]
    assert calibration.calibrated(10.0, {"speech_seconds": 0.6}).unsupported == ""


def test_fit_records_the_worst_quality_it_saw():
    scores, labels, measures = seconds_trials(np.random.default_rng(8), 2_000, 20_000)

    calibration = fit_calibration(scores, labels, measures, SECONDS, "m", FitConfig(fars=(0.1, 0.01)))
    tolerant = fit_calibration(scores, labels, measures, SECONDS, "m", FitConfig(fars=(0.1, 0.01), limit_quantile=0.005))

    seconds = measures["speech_seconds"]
    assert calibration.limits["speech_seconds"] == pytest.approx(seconds.min())
    assert tolerant.limits["speech_seconds"] == pytest.approx(np.quantile(seconds, 0.005))
    assert calibration.references["speech_seconds"] == pytest.approx(np.quantile(seconds, 0.8))


def test_no_gain_where_the_model_says_quality_would_lower_the_llr():
    # at s = -1 the per-feature weight 0.2 + 0.5 * (-1) < 0: more speech lowers the LLR
    result = seconds_calibration().calibrated(-1.0, {"speech_seconds": 1.0})

    assert result.quality_gain == 0.0 and result.advice == ""


def test_outcomes_agree_with_decide_calibrated():
    calibration = seconds_calibration()
    rng = np.random.default_rng(7)
    scores, seconds = rng.uniform(-1, 5, 500), np.exp(rng.uniform(np.log(0.3), np.log(20), 500))

    seen = set()
    for level in SECURITY_LEVELS:
        outcomes = calibration.outcomes(scores, {"speech_seconds": seconds}, level)
        point = calibration.operating_point(level)
        expected = [decide_calibrated(calibration.calibrated(s, {"speech_seconds": t}), point).outcome
                    for s, t in zip(scores, seconds)]
        assert list(outcomes) == expected
        seen.update(expected)
    assert seen == {"accepted", "retry", "rejected"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quality_weights": ()}, "1 features but 0 quality and 1 interaction weights"),
        ({"features": SECONDS * 2, "quality_weights": (1.0, 1.0), "interaction_weights": (0.0, 0.0)},
         "feature names repeat"),
        ({"scale": float("nan")}, "calibration weights must be finite"),
        ({"top_k": None}, "cohort_id and top_k go together"),
    ],
    ids=["weights", "repeat", "nan", "cohort"],
)
def test_score_calibration_refuses_inconsistent_fields(changes, message):
    with pytest.raises(CalibrationError, match=message):
        seconds_calibration(**changes)


def test_calibrated_scores_need_finite_scores():
    with pytest.raises(CalibrationError, match=r"scores to calibrate must be a finite \(N,\) array"):
        seconds_calibration().llrs(np.array([np.inf]), {"speech_seconds": 1.0})


def test_input_score_s_normalises_with_matching_statistics():
    calibration = seconds_calibration()
    template, probe = CohortStats(0.2, 0.1, 100, "c0ffee"), CohortStats(0.4, 0.2, 100, "c0ffee")

    assert calibration.input_score(0.6, template, probe) == pytest.approx(2.5)
    assert seconds_calibration(cohort_id=None, top_k=None).input_score(0.6) == 0.6


def test_input_score_needs_both_statistics_when_normalising():
    with pytest.raises(CalibrationError, match="against cohort c0ffee: pass the template"):
        seconds_calibration().input_score(0.6, CohortStats(0.2, 0.1, 100, "c0ffee"))


@pytest.mark.parametrize("stats", [CohortStats(0.2, 0.1, 100, "beef"), CohortStats(0.2, 0.1, 50, "c0ffee")],
                         ids=["cohort", "top-k"])
def test_input_score_refuses_statistics_of_another_cohort(stats):
    good = CohortStats(0.2, 0.1, 100, "c0ffee")
    with pytest.raises(CohortMismatchError, match="template statistics of cohort .* do not match"):
        seconds_calibration().input_score(0.6, stats, good)


def test_decide_goes_from_cosine_to_a_calibrated_decision():
    calibration = seconds_calibration()
    stats = CohortStats(0.1, 0.1, 100, "c0ffee")

    # s_norm(0.5) = 4; llr = (2 + 0.5 log 9) 4 - 3 + 0.2 log 9 > 5 (medium)
    decision = calibration.decide(0.5, "medium", {"speech_seconds": 9.0}, template=stats, probe=stats)

    assert decision.accepted and decision.score == pytest.approx(4.0)
    assert decision.llr_threshold == 5.0 and decision.threshold < 4.0


def test_check_cohort_refuses_another_cohort():
    cohort = Cohort(np.eye(3), 2, "voice")
    with pytest.raises(WeightsError, match=r"expects cohort \('c0ffee', 100\) \(id, top_k\) but got \("):
        seconds_calibration().check_cohort(cohort)
    with pytest.raises(WeightsError, match=r"expects cohort None \(id, top_k\) but got \("):
        seconds_calibration(cohort_id=None, top_k=None).check_cohort(cohort)
    seconds_calibration(cohort_id=cohort.cohort_id, top_k=2).check_cohort(cohort)
    seconds_calibration(cohort_id=None, top_k=None).check_cohort(None)


# --- calibration files --------------------------------------------------------------------------
def test_save_then_load_round_trips_the_calibration(tmp_path: Path):
    path = tmp_path / "voice.calibration.json"
    original = seconds_calibration()

    save_calibration(path, original)
    loaded = load_calibration(path, "voice")

    assert loaded == original
    document = json.loads(path.read_text())
    assert document["format"] == "verify-score-calibration" and document["format_version"] == 1
    assert document["score"] == {"kind": "s-norm", "cohort_id": "c0ffee", "top_k": 100}
    assert document["weights"]["quality"] == {"log_speech_seconds": 0.2}
    assert document["thresholds"] == {"0.0001": 7.0, "0.001": 5.0, "0.01": 3.0, "0.1": 1.0}


def test_a_raw_cosine_calibration_round_trips(tmp_path: Path):
    original = seconds_calibration(cohort_id=None, top_k=None)
    save_calibration(tmp_path / "c.json", original)

    assert load_calibration(tmp_path / "c.json", "voice") == original
    assert json.loads((tmp_path / "c.json").read_text())["score"] == {"kind": "cosine"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(model_id="face"), "calibrates model 'face', not 'voice'"),
        (lambda d: d.update(format="verify-thresholds"), r"is not a verify-score-calibration v1 file"),
        (lambda d: d.update(format_version=2), r"found \('verify-score-calibration', 2\)"),
        (lambda d: d["weights"]["quality"].clear(), "cannot read calibration .*log_speech_seconds"),
        (lambda d: d["score"].update(kind="z-norm"), "unknown score kind 'z-norm'"),
        (lambda d: d["features"][0].update(transform="cube"), "unknown transform 'cube'"),
        (lambda d: d["weights"].update(scale=None), "cannot read calibration"),
        (lambda d: d.update(thresholds=[1.0]), "cannot read calibration"),
    ],
    ids=["model", "format", "version", "missing-weight", "score-kind", "transform", "null-scale",
         "thresholds"],
)
def test_load_refuses_files_of_another_model_or_format_or_malformed(tmp_path: Path, edit, message):
    path = tmp_path / "voice.calibration.json"
    save_calibration(path, seconds_calibration())
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))

    with pytest.raises(WeightsError, match=message):
        load_calibration(path, "voice")


def test_load_refuses_a_missing_calibration_file(tmp_path: Path):
    with pytest.raises(WeightsError, match=r"cannot read calibration .*No such file.*Recalibrate with"):
        load_calibration(tmp_path / "none.json", "voice")
