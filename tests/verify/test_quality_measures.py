"""Quality features, good-quality references and the advice catalogue."""

from __future__ import annotations

import numpy as np
import pytest

from verify.errors import CalibrationError
from verify.quality_measures import (
    DEFAULT_FEATURES,
    QUALITY_ADVICE,
    QualityFeature,
    advice_message,
    default_features,
    feature_columns,
    improved_values,
    observed_features,
    reference_values,
    worse_than,
)


def test_transforms_clip_then_transform():
    values = np.array([0.1, 1.0, 100.0])

    np.testing.assert_allclose(QualityFeature("q", "log", 0.5, 10.0).apply(values), np.log([0.5, 1.0, 10.0]))
    np.testing.assert_allclose(QualityFeature("q", "linear", 0.5, 10.0).apply(values), [0.5, 1.0, 10.0])
    np.testing.assert_allclose(
        QualityFeature("q", "distance", 0.0, 50.0, center=20.0).apply(values), [19.9, 19.0, 30.0]
    )


def test_feature_round_trips_through_a_dict_and_is_named_after_transform_and_measure():
    feature = QualityFeature("brightness", "distance", 0.0, 255.0, center=128.0)

    assert QualityFeature.from_dict(feature.to_dict()) == feature
    assert feature.name == "distance_brightness"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("q", "sqrt", 0.0, 1.0), "unknown transform 'sqrt' of 'q'"),
        (("q", "linear", 1.0, 1.0), r"bad clip range \[1.0, 1.0\] for the linear of 'q'"),
        (("q", "log", 0.0, 1.0), r"bad clip range \[0.0, 1.0\] for the log of 'q'"),
    ],
    ids=["transform", "empty-range", "log-of-zero"],
)
def test_bad_features_are_refused(arguments, message):
    with pytest.raises(CalibrationError, match=message):
        QualityFeature(*arguments)


def test_nan_measures_are_refused():
    with pytest.raises(CalibrationError, match="quality measure 'snr_db' is NaN"):
        DEFAULT_FEATURES["snr_db"].apply(np.array([10.0, np.nan]))


def test_default_features_cover_the_known_measures_only_in_name_order():
    features = default_features(["snr_db", "speech_seconds", "made_up", "snr_db"])

    assert [feature.measure for feature in features] == ["snr_db", "speech_seconds"]
    assert set(DEFAULT_FEATURES) <= set(QUALITY_ADVICE)  # every default measure has advice


def test_feature_columns_take_scalars_or_arrays():
    features = default_features(["speech_seconds", "snr_db"])

    columns = feature_columns(features, {"speech_seconds": np.array([1.0, 4.0]), "snr_db": 20.0}, 2)

    np.testing.assert_allclose(columns, [[20.0, 0.0], [20.0, np.log(4.0)]])
    assert feature_columns((), {}, 3).shape == (3, 0)


def test_feature_columns_name_a_missing_measure():
    with pytest.raises(
        CalibrationError, match=r"quality measure 'snr_db' is missing .*got \['speech_seconds'\]"
    ):
        feature_columns(default_features(["snr_db"]), {"speech_seconds": 2.0}, 1)


def test_feature_columns_refuse_a_measure_of_the_wrong_length():
    with pytest.raises(CalibrationError, match=r"'snr_db' has shape \(3,\), expected \(2,\)"):
        feature_columns(default_features(["snr_db"]), {"snr_db": np.ones(3)}, 2)


def test_references_are_what_the_better_samples_reach_in_each_direction():
    values = np.arange(101, dtype=float)  # quantiles are the values themselves

    references = reference_values(
        {"speech_seconds": values, "clipped_fraction": values, "yaw": values - 50, "unknown": values}, 0.8
    )

    assert references == pytest.approx({"speech_seconds": 80.0, "clipped_fraction": 20.0, "yaw": 10.0})


def test_improved_values_move_only_worse_values_towards_the_reference():
    np.testing.assert_allclose(improved_values("speech_seconds", np.array([1.0, 6.0]), 4.0), [4.0, 6.0])
    np.testing.assert_allclose(improved_values("clipped_fraction", np.array([0.2, 0.0]), 0.01), [0.01, 0.0])
    # yaw: reference is a distance from the ideal 0; sides are kept
    np.testing.assert_allclose(improved_values("yaw", np.array([-40.0, 30.0, 5.0]), 10.0), [-10.0, 10.0, 5.0])


@pytest.mark.parametrize(
    ("name", "value", "reference", "message"),
    [
        ("speech_seconds", 1.2, 4.0, "speak for about 3 s more"),
        ("speech_seconds", 3.9, 4.0, "speak for about 1 s more"),
        ("brightness", 40.0, 30.0, "more light on your face, please"),
        ("brightness", 230.0, 30.0, "too much light: avoid bright light on or behind you"),
        ("clipped_fraction", 0.2, 0.0, "the sound is distorted: speak a little further from the microphone"),
        ("face_px", 30.0, 120.0, "move closer to the camera"),
        ("sharpness", 5.0, 200.0, "hold still: the image is too blurry"),
        ("yaw", -35.0, 8.0, "face the camera"),
        ("snr_db", 3.0, 25.0, "too much background noise: move somewhere quieter"),
    ],
)
def test_advice_messages_come_from_the_catalogue(name, value, reference, message):
    assert advice_message(name, value, reference) == message


def test_worse_than_follows_each_measures_direction():
    np.testing.assert_array_equal(worse_than("speech_seconds", np.array([0.5, 2.0]), 1.0), [True, False])
    np.testing.assert_array_equal(worse_than("clipped_fraction", np.array([0.5, 0.0]), 0.1), [True, False])
    np.testing.assert_array_equal(worse_than("yaw", np.array([-50.0, 20.0, 45.0]), 40.0), [True, False, True])


def test_a_low_quantile_gives_the_worst_quality_seen():
    values = np.arange(101, dtype=float)

    limits = reference_values({"speech_seconds": values, "clipped_fraction": values}, 0.05)

    assert limits == pytest.approx({"speech_seconds": 5.0, "clipped_fraction": 95.0})


def test_observed_features_narrow_each_range_to_the_values_seen():
    features = (QualityFeature("seconds", "log", 0.25, 30.0), QualityFeature("snr", "linear", -5.0, 40.0),
                QualityFeature("clipped", "log", 1e-4, 0.5), QualityFeature("flat", "linear", 0.0, 1.0))
    measures = {"seconds": np.array([1.0, 4.0, 2.5]), "snr": np.array([-10.0, 12.0, np.nan]),
                "clipped": np.array([0.0, 0.0, 0.2]), "flat": np.full(3, 0.5)}

    seconds, snr, clipped, flat = observed_features(features, measures)

    assert (seconds.low, seconds.high) == (1.0, 4.0)
    assert (snr.low, snr.high) == (-5.0, 12.0)  # never wider than the default
    assert (clipped.low, clipped.high) == (1e-4, 0.2)  # a log stays above zero
    assert flat == features[3]  # one value seen: the range is kept
    np.testing.assert_allclose(seconds.apply(np.array([20.0])), np.log([4.0]))  # no extrapolation


def test_observed_features_keep_a_distance_symmetric_about_its_centre():
    yaw = QualityFeature("yaw", "distance", -90.0, 90.0, center=0.0)

    (narrowed,) = observed_features((yaw,), {"yaw": np.array([-30.0, 5.0, 12.0])})

    assert (narrowed.low, narrowed.high) == (-30.0, 30.0)  # turned 30° either way reads the same
    np.testing.assert_allclose(narrowed.apply(np.array([-45.0, 25.0, 45.0])), [30.0, 25.0, 30.0])
