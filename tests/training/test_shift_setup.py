"""Condition-shift material: who plays which role, trials, copies, per-user scoring."""

from __future__ import annotations

import numpy as np
import pytest
from shift_samples import shift_samples

from training.episodes import IdentitySplit
from training.shift_setup import (
    CosineScorer,
    TrialList,
    build_setup,
    copy_table,
    score_trials,
    validation_people,
)
from verify.errors import ConfigError


def split(people: int = 40) -> IdentitySplit:
    names = [f"p{i:02d}" for i in range(people)]
    return IdentitySplit(tuple(names[:28]), tuple(names[28:34]), tuple(names[34:]))


def test_roles_are_disjoint_train_people_and_never_validation_or_test():
    samples, identities = shift_samples(), split()
    setup = build_setup(samples, "face", identities)
    groups = {role: set(names) for role, names in setup.groups.items()}
    assert groups["cohort"] | groups["task"] | groups["held_out"] == set(identities.train)
    assert not (groups["cohort"] & groups["task"] or groups["cohort"] & groups["held_out"]
                or groups["task"] & groups["held_out"])
    assert set(setup.tasks.names) <= groups["task"] and set(setup.held_out.names) <= groups["held_out"]
    cohort_rows = {tuple(np.round(row, 6)) for row in np.concatenate([setup.cohort_fit, setup.cohort_guard])}
    owners = {samples.people[i] for i, row in enumerate(samples.vectors) if tuple(np.round(row, 6)) in cohort_rows}
    assert owners <= groups["cohort"]
    assert 0.0 < setup.threshold < 1.0


def test_too_few_train_people_is_a_config_error():
    with pytest.raises(ConfigError, match=">= 8 train people"):
        build_setup(shift_samples(people=10), "face", IdentitySplit(("p00", "p01"), ("p02",), ("p03",)))


def test_trials_enroll_clean_and_probe_degraded_samples_of_other_files():
    samples = shift_samples()
    people = validation_people(samples, split(), "face")
    trials = TrialList.of_people(samples, people)
    assert set(samples.people[trials.enroll]) == set(split().validation)
    assert np.all(samples.conditions[trials.enroll] == "clean")
    assert np.all(samples.conditions[trials.probe] == "webcam")
    assert np.all(samples.files[trials.enroll] != samples.files[trials.probe])
    np.testing.assert_array_equal(trials.labels, samples.people[trials.enroll] == samples.people[trials.probe])
    assert 0 < trials.labels.sum() < len(trials)


def test_cosine_scorer_scores_trials_as_the_dot_product():
    samples = shift_samples(people=12)
    trials = TrialList.of_people(samples, validation_people(samples, IdentitySplit((), tuple(
        f"p{i:02d}" for i in range(12)), ()), "face"))
    scores = score_trials(CosineScorer(), samples, copy_table(samples), trials, chunk=50)
    expected = np.einsum("ij,ij->i", samples.vectors[trials.enroll], samples.vectors[trials.probe])
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    table = copy_table(samples)
    assert table.shape == (len(samples.vectors), 3) and np.all(table[samples.conditions != "clean"] == -1)


def test_calibration_trials_are_the_held_out_people_in_every_degraded_condition():
    samples = shift_samples()
    setup = build_setup(samples, "face", split())
    trials = setup.calibration_trials()
    assert set(samples.people[trials.enroll]) == set(setup.groups["held_out"])
    assert set(samples.people[trials.probe]) == set(setup.groups["held_out"])
    assert set(samples.conditions[trials.probe]) == {"webcam"}
