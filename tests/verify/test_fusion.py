"""AND-rule and LLR-sum fusion of face and voice, and fusion thresholds on chimeric trials."""

from __future__ import annotations

import numpy as np
import pytest

from verify.errors import CalibrationError, ConfigError
from verify.fusion import ModalityTrials, chimeric_trials, fuse_and, fuse_llr, fusion_thresholds
from verify.metrics import cllr, tar_at_far, threshold_at_far
from verify.scoring import CalibratedScore, Decision, OperatingPoint

ACCEPT = Decision("accepted", 0.70, 0.36)
RETRY = Decision("retry", 0.30, 0.36, "borderline score, try another sample")
REJECT = Decision("rejected", 0.10, 0.87, "score below threshold")


def test_both_accept_is_accepted_with_the_smaller_margin():
    fused = fuse_and({"face": ACCEPT, "voice": Decision("accepted", 0.90, 0.87)})
    assert fused.accepted and fused.reason == ""
    assert fused.margin == pytest.approx(0.03)


@pytest.mark.parametrize(
    ("face", "voice", "outcome", "reason"),
    [
        (ACCEPT, REJECT, "rejected", "voice rejected"),
        (REJECT, ACCEPT, "rejected", "face rejected"),
        (RETRY, REJECT, "rejected", "voice rejected"),
        (ACCEPT, RETRY, "retry", "voice needs another sample"),
        (RETRY, RETRY, "retry", "face and voice need"[:8]),
    ],
)
def test_any_failure_blocks_acceptance(face, voice, outcome, reason):
    fused = fuse_and({"face": face, "voice": voice})
    assert fused.outcome == outcome and not fused.accepted
    assert fused.reason.startswith(reason)
    assert fused.margin < 0


def test_single_modality_passes_through():
    assert fuse_and({"face": REJECT}).outcome == "rejected"


def test_empty_is_refused():
    with pytest.raises(ConfigError, match="at least one modality"):
        fuse_and({})


# --- LLR-sum fusion -----------------------------------------------------------------------------
FUSED_POINT = OperatingPoint("medium", 1e-3, threshold=8.0, retry_threshold=5.0)


def test_fused_llr_is_the_sum_and_is_held_against_the_fused_threshold():
    scores = {"face": CalibratedScore(2.0, 5.0, 1.0), "voice": CalibratedScore(1.0, 4.0, 1.0)}

    fused = fuse_llr(scores, FUSED_POINT, decisions={"face": ACCEPT})

    assert fused.accepted and fused.llr == 9.0 and fused.margin == pytest.approx(1.0)
    assert fused.decisions == {"face": ACCEPT}


def test_two_weak_modalities_can_together_accept_what_neither_would_alone():
    scores = {"face": CalibratedScore(1.0, 4.5, 1.0), "voice": CalibratedScore(1.0, 4.5, 1.0)}

    assert fuse_llr(scores, FUSED_POINT).accepted
    assert not fuse_llr({"face": scores["face"]}, FUSED_POINT).accepted


def test_fused_retry_names_the_modality_whose_quality_costs_most():
    scores = {
        "face": CalibratedScore(1.0, 3.0, 1.0, quality_gain=0.5, advice="more light on your face, please"),
        "voice": CalibratedScore(1.0, 3.0, 1.0, quality_gain=2.5, advice="speak for about 2 s more"),
    }

    fused = fuse_llr(scores, FUSED_POINT)

    assert fused.outcome == "retry" and fused.reason == "voice: speak for about 2 s more"


def test_fused_front_end_issues_are_prefixed_with_their_modality():
    scores = {"face": CalibratedScore(0.0, -3.0, 1.0), "voice": CalibratedScore(0.0, -3.0, 1.0)}

    fused = fuse_llr(scores, FUSED_POINT, quality_issues={"voice": ["audio is clipped"]})

    assert (fused.outcome, fused.reason) == ("retry", "voice: audio is clipped")
    assert fuse_llr(scores, FUSED_POINT).outcome == "rejected"


def test_a_modality_below_its_floor_vetoes_however_strong_the_other():
    scores = {"face": CalibratedScore(3.0, 20.0, 1.0), "voice": CalibratedScore(-1.0, -4.0, 1.0)}

    assert fuse_llr(scores, FUSED_POINT).accepted  # the sum alone: a strong face carries a wrong voice
    vetoed = fuse_llr(scores, FUSED_POINT, floors={"face": -3.0, "voice": -3.0})
    assert (vetoed.outcome, vetoed.reason) == ("rejected", "voice rejected: not the enrolled person")
    assert vetoed.llr == 16.0
    assert fuse_llr(scores, FUSED_POINT, floors={"face": -3.0, "voice": -5.0}).accepted


def test_llr_fusion_of_nothing_is_refused():
    with pytest.raises(ConfigError, match="at least one modality's calibrated score"):
        fuse_llr({}, FUSED_POINT)


def synthetic_modality(rng, people: int, per: int, separation: float) -> ModalityTrials:
    """All pairs of ``people x per`` samples with calibrated LLRs of N(+-d/2, 1)-like scores."""
    identities = np.repeat(np.arange(people), per)
    first, second = np.triu_indices(identities.size, 1)
    labels = identities[first] == identities[second]
    scores = rng.normal(0.0, 1.0, labels.size) + np.where(labels, separation, 0.0)
    return ModalityTrials(separation * scores - separation**2 / 2, identities[first], identities[second])


def test_chimeric_trials_pair_people_one_to_one_and_keep_labels():
    rng = np.random.default_rng(0)
    face, voice = synthetic_modality(rng, 30, 3, 2.0), synthetic_modality(rng, 20, 3, 2.0)

    llrs, labels = chimeric_trials(face, voice, seed=1)

    # 20 face people get a voice partner: their 20 * 3 genuine and 190 * 9 impostor face trials
    assert labels.sum() == 60 and (~labels).sum() == 190 * 9
    assert np.all(np.isfinite(llrs))


def test_fusion_beats_either_modality_alone():
    rng = np.random.default_rng(1)
    face, voice = synthetic_modality(rng, 150, 4, 2.5), synthetic_modality(rng, 150, 3, 2.0)

    llrs, labels = chimeric_trials(face, voice)

    face_labels = face.enroll_identity == face.probe_identity
    voice_labels = voice.enroll_identity == voice.probe_identity
    assert cllr(llrs, labels) < min(cllr(face.llrs, face_labels), cllr(voice.llrs, voice_labels))
    fused_tar = tar_at_far(llrs, labels, 1e-3)
    alone = max(tar_at_far(face.llrs, face_labels, 1e-3), tar_at_far(voice.llrs, voice_labels, 1e-3))
    assert fused_tar > alone
    thresholds = fusion_thresholds(llrs, labels, "face+voice", provenance={"trials": "chimeric"})
    medium = thresholds.operating_point("medium").threshold
    assert medium == pytest.approx(threshold_at_far(llrs, labels, 1e-3))
    assert thresholds.provenance == {"trials": "chimeric"}


def test_chimeric_trials_need_matching_trials():
    face = ModalityTrials(np.zeros(1), np.array([0]), np.array([1]))
    voice = ModalityTrials(np.zeros(1), np.array([5]), np.array([5]))  # only a genuine voice trial

    with pytest.raises(CalibrationError, match="no trial of the first modality has a partner trial"):
        chimeric_trials(face, voice)


def test_modality_trials_refuse_arrays_of_different_lengths():
    with pytest.raises(CalibrationError, match=r"llrs and identities must be \(N,\) arrays of one length"):
        ModalityTrials(np.zeros(3), np.zeros(3), np.zeros(2))


def test_fusion_thresholds_need_enough_impostor_trials():
    with pytest.raises(CalibrationError, match="cannot set fusion thresholds: 3 impostor trials cannot"):
        fusion_thresholds(np.arange(5.0), np.array([True, True, False, False, False]), "face+voice")


def test_a_modality_outside_its_calibrated_quality_blocks_fused_acceptance():
    scores = {"face": CalibratedScore(3.0, 9.0, 1.0),
              "voice": CalibratedScore(1.0, 4.0, 1.0, unsupported="speak for about 2 s more")}

    fused = fuse_llr(scores, FUSED_POINT)

    assert (fused.outcome, fused.reason) == ("retry", "voice: speak for about 2 s more")
