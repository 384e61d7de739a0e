"""Normalisation + calibration on arrays of trials, with figures on held-out people."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import binom

from verify.calibration_fit import FitConfig
from verify.calibration_trials import (
    Trials,
    all_pairs,
    calibrate_trials,
    calibration_measures,
    choose_variant,
    identity_split,
    input_scores,
)
from verify.config import SECURITY_LEVELS
from verify.errors import CalibrationError
from verify.normalization import Cohort
from verify.quality_measures import COSINE


def synthetic_people(rng, people: int, per: int, dim: int = 32, first_id: int = 0):
    """Unit embeddings around random centres; noisier when the sample holds less speech."""
    identities = np.repeat(np.arange(first_id, first_id + people), per)
    centres = rng.normal(size=(people, dim))
    seconds = np.exp(rng.uniform(np.log(0.5), np.log(10.0), identities.size))
    noise = (0.6 + 1.2 / np.sqrt(seconds))[:, None] * rng.normal(size=(identities.size, dim))
    vectors = centres[identities - first_id] + noise
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), identities, seconds


@pytest.fixture(scope="module")
def population():
    """Trials among 240 people x 4 samples, and a cohort of 300 other people's samples."""
    rng = np.random.default_rng(0)
    vectors, identities, seconds = synthetic_people(rng, 240, 4)
    cohort_vectors, cohort_ids, _ = synthetic_people(rng, 300, 2, first_id=10_000)
    enroll, probe = all_pairs(identities)
    trials = Trials(vectors, identities, enroll, probe, {"speech_seconds": seconds})
    return trials, Cohort(cohort_vectors, 50, "m", cohort_ids)


def test_trials_label_pairs_of_one_person_as_genuine():
    trials = Trials(np.eye(3), np.array([5, 5, 6]), np.array([0, 0]), np.array([1, 2]), {"q": np.arange(3.0)})

    np.testing.assert_array_equal(trials.labels, [True, False])
    np.testing.assert_array_equal(trials.probe_measures()["q"], [1.0, 2.0])
    assert trials.subset(np.array([False, True])).enroll.tolist() == [0]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((np.ones(3), np.arange(3), [0], [1]), r"need \(M, D\) vectors and \(M,\) identities"),
        ((np.eye(3), np.arange(2), [0], [1]), r"need \(M, D\) vectors and \(M,\) identities"),
        ((np.eye(3), np.arange(3), [0, 1], [1]), "need equal non-empty"),
        ((np.eye(3), np.arange(3), [], []), "need equal non-empty"),
        ((np.eye(3), np.arange(3), [0], [3]), r"trial indices must lie in \[0, 3\)"),
        ((np.eye(3), np.arange(3), [-1], [1]), r"trial indices must lie in \[0, 3\)"),
        ((np.eye(3), np.arange(3), [1], [1]), "a trial compares a sample with itself"),
    ],
    ids=["1-d", "identities", "lengths", "empty", "too-high", "negative", "self"],
)
def test_trials_refuse_bad_arrays(arguments, message):
    vectors, identities, enroll, probe = arguments
    with pytest.raises(CalibrationError, match=message):
        Trials(vectors, identities, np.array(enroll, dtype=int), np.array(probe, dtype=int))


def test_trials_refuse_measures_of_another_length():
    with pytest.raises(CalibrationError, match=r"measure 'snr_db' has shape \(2,\), expected \(3,\)"):
        Trials(np.eye(3), np.arange(3), np.array([0]), np.array([1]), {"snr_db": np.ones(2)})


def test_all_pairs_stay_within_groups():
    enroll, probe = all_pairs(np.arange(5), groups=np.array([0, 0, 0, 1, 1]))

    assert sorted(zip(enroll.tolist(), probe.tolist())) == [(0, 1), (0, 2), (1, 2), (3, 4)]


def test_identity_split_keeps_the_two_parts_people_apart(population):
    trials, _ = population

    fit, held_out = identity_split(trials, 0.5, seed=1)

    fit_people = set(trials.identities[trials.enroll[fit]]) | set(trials.identities[trials.probe[fit]])
    held_people = set(trials.identities[trials.enroll[held_out]]) | set(
        trials.identities[trials.probe[held_out]]
    )
    assert not fit_people & held_people
    assert len(fit_people) == len(held_people) == 120
    assert not np.any(fit & held_out)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_identity_split_refuses_a_fraction_outside_the_open_interval(population, fraction):
    with pytest.raises(CalibrationError, match=r"held_out_fraction must be in \(0, 1\)"):
        identity_split(population[0], fraction)


def test_input_scores_are_cosines_or_s_norms_leaving_both_people_out():
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    trials = Trials(vectors, np.array([1, 1, 2]), np.array([0, 0]), np.array([1, 2]))
    others = np.array([[-1.0, 0.0], [0.0, -1.0], [0.6, -0.8]])
    cohort = Cohort(np.r_[vectors, others], 2, "m", identities=np.array([1, 1, 2, 3, 4, 5]))

    np.testing.assert_allclose(input_scores(trials, None), [0.8, 0.0], atol=1e-6)
    normalised = input_scores(trials, cohort)
    # every side of a trial against the cohort rows of neither of its two people
    def stats(vector, people):
        return Cohort(cohort.vectors[~np.isin(cohort.identities, people)], 2, "m").stats(vector)

    def z(score, side):
        return (score - side.mean) / side.std

    genuine = 0.5 * (z(0.8, stats(vectors[0], [1])) + z(0.8, stats(vectors[1], [1])))
    impostor = 0.5 * (z(0.0, stats(vectors[0], [1, 2])) + z(0.0, stats(vectors[2], [1, 2])))
    expected = [genuine, impostor]
    np.testing.assert_allclose(normalised, expected, rtol=1e-5)


def test_calibrate_trials_reports_figures_on_fit_and_held_out_people(population):
    trials, cohort = population

    result = calibrate_trials(trials, cohort, "m", provenance={"command": "test"})

    calibration, figures = result.calibration, result.figures
    assert (calibration.cohort_id, calibration.top_k) == (cohort.cohort_id, 50)
    assert [feature.measure for feature in calibration.features] == ["speech_seconds"]
    assert calibration.provenance == {"command": "test", "figures": figures}
    held_out = figures["held_out"]
    assert set(held_out["levels"]) == set(SECURITY_LEVELS)
    assert held_out["min_cllr"] <= held_out["cllr"] < 1.0
    assert held_out["genuine"] + held_out["impostor"] == held_out["trials"]


def test_a_probe_longer_than_any_fitted_one_scores_as_the_longest(population):
    trials, cohort = population
    longest = float(trials.probe_measures()["speech_seconds"].max())

    calibration = calibrate_trials(trials, cohort, "m").calibration

    (feature,) = calibration.features
    assert feature.high == pytest.approx(longest)
    at_longest, far_longer = (calibration.llrs(np.array([2.0]), {"speech_seconds": np.array([seconds])})[0]
                              for seconds in (longest, 10 * longest))
    assert far_longer == at_longest


def test_input_scores_computed_once_give_the_same_calibration(population):
    trials, cohort = population
    given = calibrate_trials(trials, cohort, "m", scores=input_scores(trials, cohort))
    assert given == calibrate_trials(trials, cohort, "m")


def test_held_out_far_stays_within_sampling_error_of_each_level(population):
    trials, cohort = population

    figures = calibrate_trials(trials, cohort, "m", config=FitConfig(interactions=True)).figures["held_out"]

    for level, far in SECURITY_LEVELS.items():
        rates = figures["levels"][level]
        assert rates["far"] <= binom.ppf(0.999, rates["impostor"], far) / rates["impostor"]
        assert 0.0 <= rates["retry"] <= rates["frr"] <= 1.0


def test_calibrate_trials_without_cohort_or_measures_calibrates_raw_cosine(population):
    trials, _ = population

    calibration = calibrate_trials(
        Trials(trials.vectors, trials.identities, trials.enroll, trials.probe), None, "m"
    ).calibration

    assert calibration.cohort_id is None and calibration.features == ()
    assert calibration.scale > 0


def test_trials_refuse_groups_of_another_length():
    with pytest.raises(CalibrationError, match=r"groups have shape \(2,\), expected \(3,\)"):
        Trials(np.eye(3), np.arange(3), np.array([0]), np.array([1]), groups=np.zeros(2))


def test_identity_split_is_drawn_within_each_group():
    identities = np.r_[np.repeat(np.arange(40), 2), np.repeat(np.arange(100, 104), 2)]  # 40 + 4 people
    groups = np.r_[np.zeros(80, int), np.ones(8, int)]
    enroll, probe = all_pairs(identities, groups)
    trials = Trials(np.random.default_rng(0).normal(size=(88, 4)), identities, enroll, probe, groups=groups)

    fit, held_out = identity_split(trials, 0.5)

    small_group = trials.trial_groups == 1
    held_small = set(identities[enroll[held_out & small_group]])
    fit_small = set(identities[enroll[fit & small_group]])
    assert len(held_small) == len(fit_small) == 2  # half of the small group on each side


def test_groups_get_figures_of_their_own(population):
    trials, cohort = population
    groups = np.where(trials.identities % 2 == 0, "even", "odd")

    figures = calibrate_trials(replace(trials, groups=groups), cohort, "m").figures

    assert set(figures["held_out"]["by_group"]) == {"even", "odd"}
    assert figures["held_out"]["by_group"]["even"]["trials"] < figures["held_out"]["trials"]


def test_the_lowest_cllr_ships_unless_a_near_variant_refuses_fewer_at_no_higher_far():
    summaries = {"plain": {"cllr": 0.100, "far": 0.0009, "frr": 0.30},
                 "near and better": {"cllr": 0.101, "far": 0.0008, "frr": 0.26},
                 "near, fewer refused, more accepted": {"cllr": 0.100, "far": 0.0010, "frr": 0.20},
                 "far in Cllr": {"cllr": 0.110, "far": 0.0001, "frr": 0.10}}
    assert choose_variant(summaries) == "near and better"
    del summaries["near and better"]
    assert choose_variant(summaries) == "plain"


def test_calibration_measures_are_the_probes_quality_and_each_trials_raw_cosine(population):
    trials, _ = population
    measures = calibration_measures(trials)
    vectors = trials.vectors / np.linalg.norm(trials.vectors, axis=1, keepdims=True)
    expected = np.einsum("ij,ij->i", vectors[trials.enroll], vectors[trials.probe])
    np.testing.assert_allclose(measures[COSINE], expected, rtol=0, atol=1e-6)
    assert set(measures) == {COSINE, *trials.measures}
