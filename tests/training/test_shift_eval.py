"""Comparison of decision paths on the same trials: rates, paired differences, the verdict."""

from __future__ import annotations

import numpy as np

from training.shift_eval import LEVELS, Decisions, compare


def paths(seed: int = 0):
    rng = np.random.default_rng(seed)
    people = np.repeat(np.arange(40), 50)
    labels = rng.random(len(people)) < 0.2
    base = np.where(labels, np.where(rng.random(len(people)) < 0.3, "rejected", "accepted"), "rejected")
    better = np.where(labels & (base == "rejected") & (rng.random(len(people)) < 0.8), "accepted", base)
    llr = np.where(labels, 2.0, -2.0) + rng.standard_normal(len(people))
    as_path = lambda name, answers: Decisions(name, llr, {level: answers for level in LEVELS})  # noqa: E731
    return people, labels, as_path("shipped", base), as_path("same", base.copy()), as_path("better", better)


def test_a_path_with_fewer_false_rejections_at_equal_far_beats_the_baseline():
    people, labels, base, same, better = paths()
    result = compare([base, same, better], labels, people, replicates=200, curve_replicates=20)
    assert result["people"] == 40 and result["genuine"] == labels.sum()
    assert result["paths"]["better"]["beats_at_every_level"]
    assert not result["paths"]["same"]["beats_at_every_level"]
    for level in LEVELS:
        difference = result["paths"]["better"]["vs_baseline"][level]["frr_difference"]
        assert difference["value"] < 0 and difference["ci95"][1] < 0
        frr = result["paths"]["shipped"]["levels"][level]["frr"]
        assert frr["ci95"][0] <= frr["value"] <= frr["ci95"][1]
    assert "vs_baseline" not in result["paths"]["shipped"]
    matched = result["paths"]["better"]["frr_at_far"]
    assert matched["level"] == "medium" and matched["ci95"][0] <= matched["value"] <= matched["ci95"][1]
    assert result["paths"]["same"]["frr_at_far_difference"]["value"] == 0.0


def test_a_path_that_accepts_more_impostors_than_the_target_does_not_beat():
    people, labels, base, _, _ = paths(1)
    lenient = Decisions("lenient", base.llr, {level: np.full(len(labels), "accepted") for level in LEVELS})
    result = compare([base, lenient], labels, people, replicates=100, curve_replicates=10)
    assert not any(entry["beats"] for entry in result["paths"]["lenient"]["vs_baseline"].values())
