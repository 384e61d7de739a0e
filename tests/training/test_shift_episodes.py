"""Condition-shift episodes: enrollment rows and their copies, people's probes, sampled tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shift_samples import DIM, shift_samples

from training.condition_sets import is_probe_condition
from training.shift_episodes import PeopleRows, ShiftShape, ShiftTaskSampler, copy_names, enrollment_rows
from verify.adaptation import AugmentConfig
from verify.errors import ConfigError


def test_copies_are_the_same_file_in_copy_conditions_in_order():
    samples = shift_samples(people=4)
    clean, copies = enrollment_rows(samples)
    assert copy_names(samples) == ["copy 0", "copy 1", "copy 2"]
    assert copies.shape == (len(clean), 3) and np.all(samples.conditions[clean] == "clean")
    for row, copy_rows in zip(clean, copies):
        assert np.all(samples.files[copy_rows] == samples.files[row])
        assert list(samples.conditions[copy_rows]) == ["copy 0", "copy 1", "copy 2"]


def test_a_failed_copy_falls_back_to_the_clean_sample():
    samples = shift_samples(people=3)
    drop = (samples.conditions == "copy 1") & (samples.files == "p00/0.jpg")
    clean, copies = enrollment_rows(samples.select(~drop))
    kept = samples.select(~drop)
    first = int(np.nonzero(kept.files[clean] == "p00/0.jpg")[0][0])
    assert copies[first, 1] == clean[first]


def test_people_rows_hold_only_the_given_people_and_their_degraded_probes():
    samples = shift_samples(people=6)
    people = PeopleRows.build(samples, ["p01", "p03", "p04"], is_probe_condition)
    assert people.names == ("p01", "p03", "p04") and people.copy_count == 3
    for name, enroll, probes in zip(people.names, people.enroll, people.probes):
        assert set(samples.people[enroll]) == {name} == set(samples.people[probes])
        assert set(samples.conditions[probes]) == {"webcam"}


def test_too_few_people_is_a_config_error():
    with pytest.raises(ConfigError, match="need >= 2 people"):
        PeopleRows.build(shift_samples(people=3), ["p00"], is_probe_condition)


def test_tasks_probe_the_person_from_other_files_and_strangers_only():
    samples = shift_samples(people=8)
    people = PeopleRows.build(samples, [f"p{i:02d}" for i in range(8)], is_probe_condition)
    cohort = torch.from_numpy(samples.vectors[:20])
    config = AugmentConfig(count=6, holdout=2)
    sampler = ShiftTaskSampler(people, cohort, config, ShiftShape(3, 5), seed=0)
    tasks = sampler.sample(10)
    assert {name: tuple(value.shape) for name, value in tasks.items()} == {
        "template": (10, DIM), "copies": (10, 3, DIM), "fit": (10, 4, DIM), "query_pos": (10, 3, DIM),
        "query_neg": (10, 5, DIM)}
    lookup = {tuple(np.round(vector, 6)): row for row, vector in enumerate(samples.vectors)}
    row_of = lambda vector: lookup[tuple(np.round(vector.numpy(), 6))]  # noqa: E731
    for task in range(10):
        enroll = row_of(tasks["template"][task])
        assert samples.conditions[enroll] == "clean"
        for vector in tasks["copies"][task]:
            assert samples.files[row_of(vector)] == samples.files[enroll]
        for vector in tasks["query_pos"][task]:
            row = row_of(vector)
            assert samples.people[row] == samples.people[enroll] and samples.files[row] != samples.files[enroll]
            assert samples.conditions[row] == "webcam"
        for vector in tasks["query_neg"][task]:
            assert samples.people[row_of(vector)] != samples.people[enroll]


def test_sampling_is_seeded():
    samples = shift_samples(people=5)
    people = PeopleRows.build(samples, [f"p{i:02d}" for i in range(5)], is_probe_condition)
    cohort = torch.from_numpy(samples.vectors[:10])

    def draw():
        return ShiftTaskSampler(people, cohort, AugmentConfig(count=6, holdout=2), ShiftShape(2, 4), seed=3).sample(4)

    first, second = draw(), draw()
    for name in first:
        torch.testing.assert_close(first[name], second[name])
