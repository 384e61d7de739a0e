"""The probes' condition compensation: ramps, the fit, its file, and one compensation per decision in
every code path (verifier, 1:N identification, vectorised trials, calibration trials)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from enrollment import TemplateStore
from enrollment.enroll import enroll
from enrollment.identify import identify
from verify.calibration import ScoreCalibration, Thresholds
from verify.calibration_trials import Trials, trial_cosines, with_compensated_probes
from verify.compensation import DEFAULT_RAMPS, ProbeCompensation, Ramp, load_compensation, save_compensation
from verify.compensation_fit import fit_directions, shift_profile, shifts
from verify.conditions import CLEAN, EmbeddedSamples, condition_trials, score_trials
from verify.embedding import Embedding
from verify.errors import WeightsError
from verify.normalization import Cohort
from verify.scorer import COMPENSATION_KEY, CalibratedScorer
from verify.verifier import Verifier

LEVELS = ("low", "medium", "high")
DIM = 16
NOISY = {"snr_db": 5.0, "decay_db": -30.0}
ECHOING = {"snr_db": 30.0, "decay_db": -6.0}
CLEAN_MEASURES = {"snr_db": 30.0, "decay_db": -30.0}


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def toy_compensation(seed: int = 0) -> ProbeCompensation:
    directions = 0.3 * unit(np.random.default_rng(seed).standard_normal((2, DIM)))
    return ProbeCompensation("toy", DEFAULT_RAMPS, directions)


def toy_scorer(compensation: ProbeCompensation | None) -> CalibratedScorer:
    cohort = Cohort(unit(np.random.default_rng(5).standard_normal((120, DIM))), top_k=10, model_id="toy")
    thresholds = Thresholds("toy", {1e-1: 1.0, 1e-2: 3.0, 1e-3: 5.0, 1e-4: 7.0})
    provenance = {} if compensation is None else {COMPENSATION_KEY: compensation.compensation_id}
    calibration = ScoreCalibration("toy", (), 1.5, -2.0, (), (), thresholds, cohort_id=cohort.cohort_id,
                                   top_k=cohort.effective_k, provenance=provenance)
    return CalibratedScorer(calibration, cohort, None, compensation)


class VectorPipeline:
    """Samples that are their own embeddings: ``(vector, measures)`` pairs."""

    modality, model_id, model_version = "voice", "toy", "1"

    def embed(self, source) -> Embedding:
        vector, measures = source
        return Embedding(unit(np.asarray(vector)), measures=measures)

    def embed_many(self, sources) -> list[Embedding]:
        return [self.embed(source) for source in sources]


# --- ramps and the fit --------------------------------------------------------------------------
def test_a_ramp_rises_between_its_ends_either_way_and_weighs_a_missing_measure_nothing():
    falling = Ramp("snr_db", 20.0, 8.0)
    rising = Ramp("decay_db", -15.0, -7.0)

    np.testing.assert_allclose(falling.weights(np.array([30.0, 20.0, 14.0, 8.0, -5.0, np.nan])), [0, 0, 0.5, 1, 1, 0])
    np.testing.assert_allclose(rising.weights(np.array([-40.0, -11.0, -7.0, 3.0])), [0, 0.5, 1, 1])
    with pytest.raises(ValueError, match="two different finite ends"):
        Ramp("snr_db", 8.0, 8.0)
    assert not toy_compensation().weights({}, 3).any()


def test_the_fit_recovers_the_directions_that_moved_the_samples():
    rng = np.random.default_rng(1)
    truth = toy_compensation(seed=2).directions
    count = 400
    measures = {"snr_db": rng.uniform(0, 30, count), "decay_db": rng.uniform(-25, -3, count)}
    weights = toy_compensation().weights(measures, count)
    moved = weights @ truth + 0.01 * rng.standard_normal((count, DIM))

    fitted = fit_directions(moved, measures, DEFAULT_RAMPS)

    np.testing.assert_allclose(fitted, truth, atol=0.01)
    profile = shift_profile(moved, measures, fitted[0], "snr_db", [0, 8, 20, 30])
    assert [row["samples"] for row in profile] == [int(((measures["snr_db"] >= lo) & (measures["snr_db"] < hi)).sum())
                                                    for lo, hi in ((0, 8), (8, 20), (20, 30))]
    assert profile[0]["shift"] > profile[1]["shift"] > profile[2]["shift"]  # more noise, further along it
    with pytest.raises(ValueError, match="no sample has any weight on the decay_db ramp"):
        fit_directions(moved, {**measures, "decay_db": np.full(count, -40.0)}, DEFAULT_RAMPS)


def test_shifts_pair_each_degraded_sample_with_the_clean_sample_of_its_file():
    vectors = unit(np.random.default_rng(4).standard_normal((5, DIM)))
    samples = EmbeddedSamples(vectors, np.array(["a", "a", "a", "b", "b"]), np.array(["a1", "a1", "a2", "b1", "b1"]),
                              np.array([CLEAN, "noise", "noise", CLEAN, "room"]),
                              {"snr_db": np.arange(5.0)}, np.zeros(5, bool))

    moved, measures = shifts(samples)

    np.testing.assert_allclose(moved, np.stack([vectors[1] - vectors[0], vectors[4] - vectors[3]]), atol=1e-6)
    np.testing.assert_array_equal(measures["snr_db"], [1.0, 4.0])  # a2 has no clean sample: left out


def test_compensation_removes_the_shift_its_measures_predict_and_leaves_clean_probes_alone():
    compensation = toy_compensation()
    clean = unit(np.random.default_rng(6).standard_normal(DIM))
    noisy = clean + compensation.weights(NOISY, 1)[0] @ compensation.directions

    moved = compensation.compensated(Embedding(noisy, measures=NOISY))

    np.testing.assert_allclose(moved.vector, clean, atol=1e-6)
    assert moved.measures == NOISY
    untouched = Embedding(clean, measures=CLEAN_MEASURES)
    assert compensation.compensated(untouched) is untouched
    assert compensation.compensated(Embedding(clean)) is not None  # no measures: nothing to compensate


# --- the file ---------------------------------------------------------------------------------------
def test_a_compensation_survives_its_file_and_a_wrong_one_is_refused(tmp_path):
    path = tmp_path / "toy.compensation.json"
    compensation = dataclasses.replace(toy_compensation(), provenance={"command": "test"})
    save_compensation(path, compensation)

    loaded = load_compensation(path, "toy")

    assert loaded.ramps == compensation.ramps and loaded.provenance == {"command": "test"}
    np.testing.assert_allclose(loaded.directions, compensation.directions, atol=1e-8)
    with pytest.raises(WeightsError, match="fitted for 'toy', not 'other'"):
        load_compensation(path, "other")
    document = json.loads(path.read_text())
    for broken in ({**document, "format_version": 99}, {**document, "directions": [[1.0, float("nan")]] * 2},
                   {**document, "directions": document["directions"][:1]}, {**document, "ramps": "snr"}):
        path.write_text(json.dumps(broken))
        with pytest.raises(WeightsError, match="cannot read the probe compensation"):
            load_compensation(path, "toy")
    with pytest.raises(WeightsError, match="cannot read the probe compensation"):
        load_compensation(tmp_path / "missing.json", "toy")


def test_a_scorer_refuses_a_compensation_its_calibration_was_not_fitted_with():
    fitted_with = toy_compensation(seed=0)
    calibration = toy_scorer(fitted_with).calibration

    with pytest.raises(WeightsError, match="fitted on probes compensated by"):
        CalibratedScorer(calibration, toy_scorer(fitted_with).cohort, None, toy_compensation(seed=1))
    with pytest.raises(WeightsError, match="fitted on probes compensated by"):
        CalibratedScorer(calibration, toy_scorer(fitted_with).cohort, None, None)
    with pytest.raises(WeightsError, match="compensated by None"):
        CalibratedScorer(toy_scorer(None).calibration, toy_scorer(None).cohort, None, fitted_with)


# --- one compensation per decision, in every code path -------------------------------------------
def test_the_verifier_compensates_a_probe_once():
    rng = np.random.default_rng(7)
    compensation = toy_compensation()
    scorer = toy_scorer(compensation)
    verifier = Verifier(VectorPipeline(), scorer, "medium")
    template, vector = unit(rng.standard_normal(DIM)), unit(rng.standard_normal(DIM))
    probe = Embedding(vector, measures=NOISY)
    moved = compensation.compensated(probe)

    decision = verifier.decide(template, probe)

    expected = scorer.decide_many(np.array([float(template @ moved.vector)]), "medium", moved,
                                  [scorer.template_stats(template)])[0]
    assert (decision.outcome, decision.llr) == (expected.outcome, pytest.approx(expected.llr, abs=1e-5))
    assert verifier.decide_many(template[None], probe, [None]) == [decision]
    uncompensated = scorer.decide_many(np.array([float(template @ vector)]), "medium", probe,
                                       [scorer.template_stats(template)])[0]
    assert decision.llr != pytest.approx(uncompensated.llr)


def test_identification_decides_the_best_candidate_as_a_check_does(tmp_path):
    rng = np.random.default_rng(8)
    compensation = toy_compensation()
    verifier = Verifier(VectorPipeline(), toy_scorer(compensation), "low")
    people = {name: unit(rng.standard_normal(DIM)) for name in ("ann", "bob", "cid")}
    probe = Embedding(unit(people["bob"] + compensation.directions[0] + 0.2 * rng.standard_normal(DIM)), measures=NOISY)
    with TemplateStore(tmp_path / "s.db") as store:
        for name, vector in people.items():
            enroll(store, verifier, name, (vector, CLEAN_MEASURES))

        found = identify(store, verifier, probe)

        checked = verifier.decide(store.get("bob", "voice").embedding, probe)
    best = max(found.candidates, key=lambda candidate: candidate.evidence)
    assert best.identity == "bob"
    assert best.evidence == pytest.approx(checked.llr, abs=1e-5)


def test_score_trials_answers_each_trial_as_the_verifier_decides_it():
    rng = np.random.default_rng(3)
    people = np.repeat([f"p{index}" for index in range(6)], 4)
    conditions = np.tile([CLEAN, CLEAN, "noisy", "room"], 6)
    vectors = unit(rng.standard_normal((24, DIM)) + np.repeat(rng.standard_normal((6, DIM)), 4, axis=0))
    by_condition = {CLEAN: CLEAN_MEASURES, "noisy": NOISY, "room": ECHOING}
    measures = {name: np.array([by_condition[condition][name] for condition in conditions]) for name in NOISY}
    samples = EmbeddedSamples(vectors, people, people, conditions, measures, np.zeros(24, bool))
    scorer = toy_scorer(toy_compensation())

    for condition in ("noisy", "room"):
        enroll_rows, probe_rows = condition_trials(samples, condition)
        scored = score_trials(scorer, samples, enroll_rows, probe_rows, LEVELS)
        for level in LEVELS:
            verifier = Verifier(VectorPipeline(), scorer, level)
            for row, (template, sample) in enumerate(zip(enroll_rows, probe_rows)):
                probe = Embedding(vectors[sample], measures=by_condition[condition])
                decision = verifier.decide(vectors[template], probe)
                assert scored.outcomes[level][row] == decision.outcome
                assert scored.llr[row] == pytest.approx(decision.llr, abs=1e-5)  # float32 cosines


def test_calibration_trials_compare_templates_with_compensated_probes():
    rng = np.random.default_rng(9)
    compensation = toy_compensation()
    vectors = unit(rng.standard_normal((6, DIM)))
    measures = {"snr_db": np.array([30.0, 30.0, 5.0, 5.0, 12.0, 30.0]), "decay_db": np.full(6, -30.0)}
    trials = Trials(vectors, np.array([0, 1, 0, 1, 0, 1]), np.array([0, 1, 0, 1]), np.array([2, 3, 4, 2]), measures,
                    conditions=np.array([CLEAN, CLEAN, "noisy", "noisy", "noisy", CLEAN]))

    moved = with_compensated_probes(trials, compensation)

    probes = compensation.compensated_many(vectors[trials.probe], {name: values[trials.probe]
                                                                   for name, values in measures.items()})
    np.testing.assert_allclose(trial_cosines(moved), np.einsum("ij,ij->i", vectors[trials.enroll], probes), atol=1e-6)
    np.testing.assert_array_equal(moved.labels, trials.labels)
    np.testing.assert_array_equal(moved.probe_conditions, trials.probe_conditions)
    np.testing.assert_array_equal(moved.probe_measures()["snr_db"], trials.probe_measures()["snr_db"])
    assert with_compensated_probes(trials, None) is trials
