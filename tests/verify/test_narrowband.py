"""The band-limited voice route: its file, its copy, and the same decisions in every code path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from verify.calibration import ScoreCalibration, Thresholds
from verify.conditions import CLEAN, EmbeddedSamples, condition_trials, score_trials
from verify.embedding import Embedding, Pipeline
from verify.errors import WeightsError
from verify.narrowband import NarrowbandRoute, load_route, narrowband_copy, save_route
from verify.normalization import Cohort
from verify.scorer import CalibratedScorer
from verify.verifier import Verifier
from verify.voice.quality import high_band_db

LEVELS = ("low", "medium", "high")
PHONE = {"high_band_db": -60.0}
WIDE = {"high_band_db": -20.0}


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def power_below(samples: np.ndarray, hertz: float) -> float:
    """Power of ``samples`` (16 kHz) below ``hertz``."""
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    return float(spectrum[np.fft.rfftfreq(len(samples), 1 / 16_000) < hertz].sum())


def route(model_id: str = "toy", scale: float = 0.5, offset: float = -1.0) -> NarrowbandRoute:
    return NarrowbandRoute(model_id, -45.0, scale, offset, Thresholds(model_id, {1e-1: -3.0, 1e-2: -2.0, 1e-3: -1.0,
                                                                          1e-4: 0.0}))


def scorer(with_route: bool = True) -> CalibratedScorer:
    cohort = Cohort(unit(np.random.default_rng(5).standard_normal((120, 16))), top_k=10, model_id="toy")
    thresholds = Thresholds("toy", {1e-1: 1.0, 1e-2: 3.0, 1e-3: 5.0, 1e-4: 7.0})
    calibration = ScoreCalibration("toy", (), 1.5, -2.0, (), (), thresholds, cohort_id=cohort.cohort_id,
                                   top_k=cohort.effective_k)
    return CalibratedScorer(calibration, cohort, route() if with_route else None)


def test_a_route_survives_its_file_and_a_wrong_one_is_refused(tmp_path):
    path = tmp_path / "toy.narrowband.json"
    save_route(path, route())

    loaded = load_route(path, "toy")

    assert (loaded.max_high_band_db, loaded.scale, loaded.offset) == (-45.0, 0.5, -1.0)
    assert loaded.thresholds.by_far == route().thresholds.by_far
    with pytest.raises(WeightsError, match="not 'other'"):
        load_route(path, "other")
    document = json.loads(path.read_text())
    for key, value in (("scale", -1.0), ("format", "something else"), ("offset", "NaN")):
        path.write_text(json.dumps({**document, key: value}))
        with pytest.raises(WeightsError, match="calibrate_narrowband"):
            load_route(path, "toy")


def test_only_band_limited_probes_nearer_the_copy_than_the_template_take_the_route():
    taken = route()

    assert taken.takes(PHONE) and not taken.takes(WIDE)
    assert not taken.takes({})  # a face
    assert taken.chooses(PHONE, 0.5, 0.6)
    assert not taken.chooses(PHONE, 0.6, 0.5)  # a codec, an 8 kHz recording: nearer the template
    assert not taken.chooses(WIDE, 0.5, 0.6)
    many = taken.chooses_many({"high_band_db": np.array([-60.0, -60.0, -45.0, -60.0])}, np.array([0.5, 0.6, 0.5, 0.5]),
                              np.array([0.6, 0.5, 0.6, np.nan]))
    assert many.tolist() == [True, False, False, False]


def test_the_copy_is_reproducible_and_has_no_sound_above_the_telephone_band():
    rng = np.random.default_rng(0)
    speech = (0.1 * rng.standard_normal(16_000)).astype(np.float32)  # white: as much power up high as low

    copy = narrowband_copy(speech)

    assert copy.shape == speech.shape and copy.dtype == np.float32
    np.testing.assert_array_equal(copy, narrowband_copy(speech))
    assert high_band_db(speech) > -10
    assert high_band_db(copy) < -45  # what the front end calls band-limited
    assert power_below(copy, 200.0) < power_below(speech, 200.0) / 10  # and its bass is gone


def test_the_route_holds_the_mapped_llr_at_its_own_thresholds():
    rng = np.random.default_rng(1)
    routed, plain = scorer(), scorer(with_route=False)
    copy, probe = unit(rng.standard_normal(16)), Embedding(unit(rng.standard_normal(16)), measures=PHONE)
    stats = routed.template_stats(copy)
    cosine = float(copy @ probe.vector)

    for level in LEVELS:
        decision = routed.decide_narrowband(cosine, level, probe, stats)
        shipped = plain.decide_many(np.array([cosine]), level, probe, [stats])[0]
        assert decision.llr == pytest.approx(0.5 * shipped.llr - 1.0)
        assert decision.llr_threshold == route().thresholds.operating_point(level).threshold
        assert decision.accepted == (decision.llr >= decision.llr_threshold)


class NoCopies(Pipeline):
    """Stands in for a pipeline: the verifier only asks it for narrowband copies."""

    modality, model_id, model_version = "voice", "toy", "1"

    def embed_narrowband(self, speech: np.ndarray) -> np.ndarray:
        return unit(np.resize(speech, 16))


def test_the_verifier_routes_a_band_limited_probe_to_the_copy_and_any_other_to_the_template():
    rng = np.random.default_rng(2)
    verifier = Verifier(NoCopies(), scorer(), "medium")
    template, probe = unit(rng.standard_normal(16)), unit(rng.standard_normal(16))
    copy = unit(probe + 0.5 * template)  # nearer the probe than the template is
    narrow = Embedding(probe, measures=PHONE)
    wide = Embedding(probe, measures=WIDE)

    routed = verifier.decide(template, narrow, narrowband=copy)
    assert routed == verifier.scorer.decide_narrowband(float(copy @ probe), "medium", narrow,
                                                       verifier.template_stats(copy))
    assert verifier.decide(template, wide, narrowband=copy) == verifier.decide(template, wide)
    far_copy = unit(template - probe)  # farther from the probe than the template
    assert verifier.decide(template, narrow, narrowband=far_copy) == verifier.decide(template, narrow)
    assert verifier.decide(template, narrow) == verifier.decide_many(template[None], narrow, [None])[0]  # no copy
    assert verifier.narrowband_copy(Embedding(template, preview=np.arange(16.0))).shape == (16,)
    assert Verifier(NoCopies(), scorer(with_route=False)).narrowband_copy(Embedding(template, preview=template)) is None
    narrow_enrollment = Embedding(template, preview=template, measures=PHONE)
    assert verifier.narrowband_copy(narrow_enrollment) is None  # its template already matches band-limited probes


def test_score_trials_answers_each_trial_as_the_verifier_decides_it():
    rng = np.random.default_rng(3)
    people = np.repeat([f"p{index}" for index in range(6)], 4)
    conditions = np.tile([CLEAN, CLEAN, "phone", "phone"], 6)
    vectors = unit(rng.standard_normal((24, 16)) + np.repeat(rng.standard_normal((6, 16)), 4, axis=0))
    copies = np.where((conditions == CLEAN)[:, None], unit(vectors + 0.3 * rng.standard_normal((24, 16))), np.nan)
    copies[0] = np.nan  # an older template: no copy, the plain path
    measures = {"high_band_db": np.where(conditions == "phone", PHONE["high_band_db"], WIDE["high_band_db"])}
    samples = EmbeddedSamples(vectors, people, people, conditions, measures, np.zeros(24, bool),
                              copies=copies.astype(np.float32))
    shipped = scorer()
    enroll, probe = condition_trials(samples, "phone")

    scored = score_trials(shipped, samples, enroll, probe, LEVELS)

    for level in LEVELS:
        verifier = Verifier(NoCopies(), shipped, level)
        for row, (template, sample) in enumerate(zip(enroll, probe)):
            copy = None if np.isnan(copies[template, 0]) else copies[template]
            probe_embedding = Embedding(vectors[sample], measures={name: values[sample] for name, values in measures.items()})
            decision = verifier.decide(vectors[template], probe_embedding, narrowband=copy)
            assert scored.outcomes[level][row] == decision.outcome
            assert scored.llr[row] == pytest.approx(decision.llr, abs=1e-5)  # float32 cosines
    plain = score_trials(scorer(with_route=False), samples, enroll, probe, LEVELS).llr
    assert 0 < (scored.llr != plain).sum() < len(plain)  # some trials nearer the copy, some nearer the template


def test_the_serving_wrappers_make_copies_and_a_pipeline_that_cannot_is_an_error():
    from verify.batching import BatchingPipeline
    from verify.errors import ConfigError
    from verify.lanes import Lanes

    speech = np.arange(16.0)
    lanes = Lanes([NoCopies(), NoCopies()])
    with BatchingPipeline(lanes) as serving:
        for wrapper in (lanes, serving):
            np.testing.assert_array_equal(Verifier(wrapper, scorer()).narrowband_copy(Embedding(unit(speech), preview=speech)),
                                          NoCopies().embed_narrowband(speech))

    class Plain(NoCopies):
        embed_narrowband = None

    with pytest.raises(ConfigError, match="makes no narrowband copies"):
        Verifier(Plain(), scorer()).narrowband_copy(Embedding(unit(speech), preview=speech))
