"""Trials of the condition sets: who enrolls, and cohort people scored as at run time."""

from __future__ import annotations

import numpy as np

from verify.calibration import ScoreCalibration, Thresholds
from verify.conditions import CLEAN, EmbeddedSamples, TrialScores, condition_trials, llr_sum_trials, score_trials
from verify.normalization import Cohort, s_norm_many
from verify.scorer import CalibratedScorer


def samples_of(people: list[str], conditions: list[str], flagged: list[bool], seed: int = 0) -> EmbeddedSamples:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(people), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    files = np.array([f"{person}/{index}" for index, person in enumerate(people)])
    return EmbeddedSamples(vectors, np.array(people), files, np.array(conditions), {}, np.array(flagged))


def test_a_flagged_clean_sample_never_enrolls_but_still_probes():
    samples = samples_of(["a", "a", "b", "b"], [CLEAN] * 4, [False, True, False, False])

    enroll, probe = condition_trials(samples, CLEAN)

    assert 1 not in enroll  # enrollment would refuse it: the person is asked for another sample
    assert 1 in probe
    assert sorted(zip(enroll.tolist(), probe.tolist())) == [(0, 1), (0, 2), (0, 3), (2, 0), (2, 1), (2, 3), (3, 0),
                                                            (3, 1), (3, 2)]
    assert 1 in condition_trials(samples, CLEAN, flagged_enroll=True)[0]


def test_samples_of_cohort_people_are_scored_with_both_people_left_out():
    people = [f"p{index // 2}" for index in range(40)]
    samples = samples_of(people, [CLEAN] * 40, [False] * 40, seed=1)
    codes = {f"p{index}": index for index in range(20)}
    identities = np.array([codes[person] for person in people])
    cohort = Cohort(samples.vectors, 6, "m", identities)
    calibration = ScoreCalibration("m", (), 1.0, 0.0, (), (), Thresholds("m", {0.1: -1.0, 0.01: 0.0, 0.001: 1.0,
                                                                                0.0001: 2.0}),
                                   cohort_id=cohort.cohort_id, top_k=6)
    scorer = CalibratedScorer(calibration, cohort)
    enroll, probe = condition_trials(samples, CLEAN)

    scored = score_trials(scorer, samples, enroll, probe, cohort_codes=codes)

    cosines = np.einsum("ij,ij->i", samples.vectors[enroll], samples.vectors[probe])
    expected = s_norm_many(cosines, *cohort.trial_statistics(samples.vectors, identities, enroll, probe))
    np.testing.assert_allclose(scored.llr, expected)
    own_only = score_trials(scorer, samples, enroll, probe)  # every cohort row, own samples included
    assert not np.allclose(own_only.llr, scored.llr)


def scored(llr: list[float]) -> TrialScores:
    count = len(llr)
    return TrialScores(np.ones(count, bool), np.array(llr), {}, np.zeros(count), np.ones(count, bool),
                       np.zeros(count, bool))


def test_the_llr_sum_of_paired_trials_vetoes_a_part_below_its_floor():
    thresholds = Thresholds("fused", {0.1: -2.0, 0.01: 0.0, 0.001: 1.0, 0.0001: 2.0})
    face, voice = scored([9.0, 9.0, -1.0]), scored([-4.0, -1.0, 1.5])

    plain = llr_sum_trials([face, voice], thresholds, ["medium"])
    vetoed = llr_sum_trials([face, voice], thresholds, ["medium"], floors=[-3.0, -3.0])

    assert plain.outcomes["medium"].tolist() == ["accepted", "accepted", "retry"]
    assert vetoed.outcomes["medium"].tolist() == ["rejected", "accepted", "retry"]
