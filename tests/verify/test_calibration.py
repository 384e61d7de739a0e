"""Threshold calibration, thresholds files and security-level operating points."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from verify.calibration import CALIBRATED_FARS, Thresholds, calibrate, load_thresholds, save_thresholds
from verify.config import SECURITY_LEVELS
from verify.errors import ConfigError, WeightsError
from verify.scoring import OperatingPoint

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
