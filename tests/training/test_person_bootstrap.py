"""Person bootstrap: replicate weights, ratios, EER and Cllr of weighted trials."""

from __future__ import annotations

import numpy as np
import pytest

from training.person_bootstrap import PersonResampler, interval, weighted_cllr, weighted_eer, weighted_frr_at_far
from verify.errors import ConfigError
from verify.metrics import equal_error_rate


def test_each_replicate_draws_as_many_people_as_there_are():
    people = np.repeat(["a", "b", "c", "d"], [3, 1, 2, 4])
    resampler = PersonResampler.draw(people, replicates=50, seed=1)
    assert resampler.groups == 4 and resampler.counts.shape == (50, 4)
    np.testing.assert_array_equal(resampler.counts.sum(axis=1), 4)
    weights = resampler.trial_weights(0)
    np.testing.assert_array_equal(weights, resampler.counts[0][resampler.person])
    with pytest.raises(ConfigError):
        PersonResampler.draw(people, replicates=1)


def test_ratio_of_a_replicate_is_the_weighted_ratio():
    rng = np.random.default_rng(0)
    people = rng.integers(0, 10, size=200)
    errors, trials = rng.random(200) < 0.2, np.ones(200)
    resampler = PersonResampler.draw(people, replicates=20, seed=0)
    ratios = resampler.ratio(errors, trials)
    for replicate in range(20):
        weights = resampler.trial_weights(replicate)
        assert ratios[replicate] == pytest.approx(np.sum(weights * errors) / np.sum(weights))
    low, high = interval(ratios)
    assert low <= errors.mean() + 0.1 and high >= errors.mean() - 0.1 and low <= high


def test_unit_weights_give_the_plain_eer_and_cllr():
    rng = np.random.default_rng(3)
    labels = rng.random(2000) < 0.3
    scores = rng.standard_normal(2000) + 2.0 * labels
    assert weighted_eer(scores, labels, np.ones(2000)) == pytest.approx(equal_error_rate(scores, labels)[0], abs=2e-3)
    perfect = np.where(labels, 20.0, -20.0)
    assert weighted_cllr(perfect, labels, np.ones(2000)) < 1e-6
    assert weighted_cllr(np.zeros(2000), labels, np.ones(2000)) == pytest.approx(1.0)


def test_frr_at_far_takes_the_lowest_threshold_within_the_far():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    labels = np.array([True, False, True, True, False, True, False, False])
    ones = np.ones(8)
    assert weighted_frr_at_far(scores, labels, ones, 0.0) == pytest.approx(0.75)  # only 0.9 accepted
    assert weighted_frr_at_far(scores, labels, ones, 0.25) == pytest.approx(0.25)  # down to 0.6
    assert weighted_frr_at_far(scores, labels, ones, 0.5) == pytest.approx(0.0)
    assert weighted_frr_at_far(scores, labels, np.r_[ones[:7], 3.0], 0.2) == pytest.approx(0.25)  # 1 of 6
