"""Low-cut copies of template and probe: their file, their fit, the choice with its penalty, and the
same decisions in every code path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from verify.calibration import ScoreCalibration, Thresholds
from verify.conditions import CLEAN, EmbeddedSamples, condition_trials, score_trials
from verify.embedding import Embedding
from verify.errors import ConfigError, WeightsError
from verify.io import decode_audio
from verify.low_cut import LowCutCopy, load_copy, save_copy
from verify.low_cut_fit import choose_penalty, fit_copy, held_out_cosines, high_pass
from verify.models import model_spec
from verify.narrowband import NarrowbandRoute
from verify.normalization import Cohort
from verify.scorer import CalibratedScorer
from verify.verifier import Verifier

LEVELS = ("low", "medium", "high")
DIMENSION = 16
PENALTY = 0.7


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def toy_copy(strength: float = 0.8, seed: int = 1) -> LowCutCopy:
    """A rank-2 map that moves templates along two fixed directions."""
    rng = np.random.default_rng(seed)
    down = strength * rng.standard_normal((DIMENSION, 2)) / math.sqrt(DIMENSION)
    up = np.linalg.qr(rng.standard_normal((DIMENSION, 2)))[0].T
    return LowCutCopy("toy", 150.0, down, up, PENALTY)


def scorer(low_cut: LowCutCopy | None = None, narrowband: NarrowbandRoute | None = None) -> CalibratedScorer:
    cohort = Cohort(unit(np.random.default_rng(5).standard_normal((120, DIMENSION))), top_k=10, model_id="toy")
    thresholds = Thresholds("toy", {1e-1: 1.0, 1e-2: 3.0, 1e-3: 5.0, 1e-4: 7.0})
    calibration = ScoreCalibration("toy", (), 1.5, -2.0, (), (), thresholds, cohort_id=cohort.cohort_id,
                                   top_k=cohort.effective_k)
    return CalibratedScorer(calibration, cohort, narrowband, low_cut=low_cut)


class NoPipeline:
    modality, model_id, model_version = "voice", "toy", "v1"


def test_a_map_survives_its_file_and_a_wrong_one_is_refused(tmp_path):
    path = tmp_path / "toy.low_cut.json"
    shipped = toy_copy()
    save_copy(path, shipped)
    loaded = load_copy(path, "toy")
    templates = unit(np.random.default_rng(0).standard_normal((5, DIMENSION)))
    np.testing.assert_allclose(loaded.copies(templates), shipped.copies(templates), atol=1e-6)
    assert loaded.penalty == PENALTY
    with pytest.raises(WeightsError, match="fit_low_cut.py"):
        load_copy(path, "another-model")
    path.write_text(path.read_text().replace('"penalty": ', '"penalty": "x'), encoding="utf-8")
    with pytest.raises(WeightsError):
        load_copy(path, "toy")
    with pytest.raises(ValueError):
        LowCutCopy("toy", 150.0, np.zeros((DIMENSION, 2)), np.zeros((3, DIMENSION)), PENALTY)
    with pytest.raises(ValueError):
        LowCutCopy("toy", 150.0, np.zeros((DIMENSION, 2)), np.zeros((2, DIMENSION)), -0.1)


def test_copies_are_unit_rows_and_one_template_gives_one_copy():
    copy = toy_copy()
    templates = unit(np.random.default_rng(0).standard_normal((4, DIMENSION)))
    copies = copy.copies(templates)
    assert copies.shape == (4, DIMENSION) and copies.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(copies, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(copy.copies(templates[1]), copies[1], atol=1e-7)
    assert np.all(np.einsum("ij,ij->i", copies, templates) < 0.9999)  # they moved


def test_the_fit_recovers_a_low_rank_shift_it_is_given():
    rng = np.random.default_rng(4)
    truth = toy_copy(strength=1.5, seed=9)
    plain = unit(rng.standard_normal((400, DIMENSION)))
    shifted = plain + (plain @ truth.down) @ truth.up  # a linear shift (copies() then normalises)
    fitted = fit_copy("toy", plain, shifted, rank=2, ridge=1e-6)
    held_out = unit(rng.standard_normal((50, DIMENSION)))
    found = np.einsum("ij,ij->i", fitted.copies(held_out), truth.copies(held_out))
    assert found.min() > 0.999
    assert np.einsum("ij,ij->i", held_out, truth.copies(held_out)).mean() < 0.98  # the shift was there to find
    with pytest.raises(ConfigError):
        fit_copy("toy", plain, shifted[:10])


def test_held_out_speakers_show_which_ranks_find_the_shift():
    # a rank-2 shift: maps of rank 2 and more carry it to speakers left out of the fit, rank 1 not all of it
    rng = np.random.default_rng(5)
    truth = toy_copy(strength=1.5, seed=9)
    plain = unit(rng.standard_normal((300, DIMENSION)))
    high_passed = truth.copies(plain)
    speakers = np.repeat(np.arange(60), 5)

    found = held_out_cosines("toy", plain, high_passed, speakers, ranks=(1, 2, 8), folds=3)

    assert set(found) == {1, 2, 8}
    assert found[2] > 0.99 and abs(found[8] - found[2]) < 0.005  # the embeddings alone: 0.91
    assert found[1] < found[2] - 0.01


def test_the_penalty_is_the_smallest_step_that_meets_the_target_far():
    def far_at(penalty: float) -> float:  # falls from 0.2 % by 0.03 points per unit of penalty
        return 0.002 - 0.0003 * penalty

    assert choose_penalty(far_at, 0.001) == pytest.approx(3.4)  # 3.3 leaves 0.00101
    assert choose_penalty(far_at, 0.005) == 0.0
    with pytest.raises(ConfigError):
        choose_penalty(far_at, 0.0001, largest=2.0)


def test_the_high_pass_removes_the_bass_and_keeps_the_voice_band():
    time = np.arange(16_000) / 16_000
    hum, voice = np.sin(2 * np.pi * 50 * time), np.sin(2 * np.pi * 1000 * time)
    filtered = high_pass((hum + voice).astype(np.float32))
    spectrum = np.abs(np.fft.rfft(filtered[4000:] * np.hanning(12_000)))
    frequencies = np.fft.rfftfreq(12_000, 1 / 16_000)
    level = {hertz: spectrum[np.argmin(np.abs(frequencies - hertz))] for hertz in (50, 1000)}
    assert 20 * np.log10(level[50] / level[1000]) < -35


def single_llr(shipped: CalibratedScorer, template: np.ndarray, probe: Embedding) -> float:
    """The LLR of one template against one probe, no copies."""
    cosine = float(template @ probe.vector)
    return shipped.decide_many(np.array([cosine]), "medium", probe, [shipped.template_stats(template)])[0].llr


def test_a_scorer_with_a_part_replaced_keeps_the_others():
    copy = toy_copy()
    shipped = scorer(copy)

    without = shipped.replaced(low_cut=None)
    again = without.replaced(low_cut=copy)

    assert without.low_cut is None and again.low_cut is copy
    assert (without.calibration, without.cohort, without.narrowband) == (shipped.calibration, shipped.cohort, None)
    assert shipped.replaced().low_cut is copy


def test_the_decision_takes_the_highest_of_the_three_llrs_less_the_penalty_for_a_copy():
    rng = np.random.default_rng(2)
    shipped = scorer(toy_copy(2.0))
    template = unit(rng.standard_normal(DIMENSION))
    template_copy = shipped.low_cut.copies(template)
    for probe_vector in (unit(template_copy + 0.2 * rng.standard_normal(DIMENSION)),  # near the template's copy
                         unit(template + 0.2 * rng.standard_normal(DIMENSION)),  # near the template
                         unit(rng.standard_normal(DIMENSION))):  # anyone
        probe = Embedding(probe_vector)
        probe_copy = Embedding(shipped.low_cut.copies(probe_vector))
        expected = max(single_llr(shipped, template, probe), single_llr(shipped, template_copy, probe) - PENALTY,
                       single_llr(shipped, template, probe_copy) - PENALTY)
        decision = shipped.decide_with_copies(template, probe, "medium", shipped.template_stats(template))
        assert decision.llr == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError):
        scorer().decide_with_copies(template, probe, "medium", shipped.template_stats(template))


def test_the_verifier_weighs_the_copy_and_never_answers_lower_than_without_it():
    rng = np.random.default_rng(3)
    with_copy, without = Verifier(NoPipeline(), scorer(toy_copy(2.0)), "medium"), Verifier(NoPipeline(), scorer(), "medium")
    template = unit(rng.standard_normal(DIMENSION))
    near_copy = Embedding(unit(with_copy.scorer.low_cut.copies(template) + 0.3 * rng.standard_normal(DIMENSION)))
    decision = with_copy.decide(template, near_copy)
    assert decision.llr > without.decide(template, near_copy).llr
    recording = unit(rng.standard_normal(DIMENSION))  # enrolled without its bass, probed with it
    bass_less_template = with_copy.scorer.low_cut.copies(recording)
    full_probe = Embedding(unit(recording + 0.3 * rng.standard_normal(DIMENSION)))
    assert with_copy.decide(bass_less_template, full_probe).llr > without.decide(bass_less_template, full_probe).llr
    for _ in range(20):
        probe = Embedding(unit(rng.standard_normal(DIMENSION)))
        assert with_copy.decide(template, probe).llr >= without.decide(template, probe).llr - 1e-5  # float32 cosines


def test_score_trials_answers_each_trial_as_the_verifier_decides_it_with_both_copies():
    rng = np.random.default_rng(3)
    people = np.repeat([f"p{index}" for index in range(6)], 4)
    conditions = np.tile([CLEAN, CLEAN, "phone", "phone"], 6)
    vectors = unit(rng.standard_normal((24, DIMENSION)) + np.repeat(rng.standard_normal((6, DIMENSION)), 4, axis=0))
    narrowband = unit(vectors + 0.3 * rng.standard_normal((24, DIMENSION)))
    measures = {"high_band_db": np.where(conditions == "phone", -60.0, -20.0)}
    samples = EmbeddedSamples(vectors, people, people, conditions, measures, np.zeros(24, bool), copies=narrowband)
    route = NarrowbandRoute("toy", -45.0, 0.5, -1.0, Thresholds("toy", {1e-1: -3.0, 1e-2: -2.0, 1e-3: -1.0,
                                                                       1e-4: 0.0}))
    shipped = scorer(toy_copy(2.0), route)
    enroll, probe = condition_trials(samples, "phone")
    clean_enroll, clean_probe = condition_trials(samples, CLEAN)
    enroll, probe = np.concatenate([enroll, clean_enroll]), np.concatenate([probe, clean_probe])

    scored = score_trials(shipped, samples, enroll, probe, LEVELS)

    for level in LEVELS:
        verifier = Verifier(NoPipeline(), shipped, level)
        for row, (template, sample) in enumerate(zip(enroll, probe)):
            embedding = Embedding(vectors[sample], measures={"high_band_db": float(measures["high_band_db"][sample])})
            decision = verifier.decide(vectors[template], embedding, narrowband=narrowband[template])
            assert scored.outcomes[level][row] == decision.outcome
            assert scored.llr[row] == pytest.approx(decision.llr, abs=1e-5)  # float32 cosines
    without = score_trials(scorer(None, route), samples, enroll, probe, LEVELS).llr
    assert np.all(scored.llr >= without - 1e-9)
    assert 0 < (scored.llr > without + 1e-9).sum() < len(without)  # the copy wins some trials, not all


def test_the_shipped_copy_is_nearer_a_high_passed_recording_than_the_template(voice_pipeline, voice_files):
    copy = model_spec("voice").scorer.low_cut
    assert copy is not None and copy.provenance["command"] == "python scripts/fit_low_cut.py"
    clips = [decode_audio(path) for path in voice_files]
    plain = np.stack([result.vector for result in voice_pipeline.embed_many(clips)])
    high_passed = np.stack([result.vector for result in voice_pipeline.embed_many(
        [(high_pass(speech, copy.corner_hz, rate), rate) for speech, rate in clips])])
    to_template = np.einsum("ij,ij->i", plain, high_passed)
    to_copy = np.einsum("ij,ij->i", copy.copies(plain), high_passed)
    assert np.all(to_copy > to_template)
