"""The service every front end calls, on the shipped samples: one set of rules for every use case."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from enrollment.errors import LockedOutError, ThrottledError, UnknownIdentityError
from enrollment.service import MissingSampleError, Service
from verify.errors import ConfigError, NoSpeechError, QualityError
from verify.io import decode_image


@pytest.fixture
def service(tmp_path, face_pipeline, voice_pipeline):
    with Service(tmp_path / "people.db", device="cpu", caller="tester",
                 pipelines={"face": face_pipeline, "voice": voice_pipeline}) as opened:
        yield opened


def test_enroll_check_identify_across_modalities(service, face_files, voice_files):
    enrolled = service.enroll("Andy", face=face_files[0], voice=voice_files[0])
    assert [t.modality for t in enrolled.templates] == ["face", "voice"] and not enrolled.failed
    both = service.check("Andy", face=face_files[1], voice=voice_files[1])
    assert both.outcome == "accepted" and set(both.decisions) == {"face", "voice"}
    assert both.score == min(both.decisions.values(), key=lambda d: d.score - d.threshold).score
    wrong_voice = service.check("Andy", face=face_files[1], voice=voice_files[6])
    assert wrong_voice.outcome == "rejected" and "voice rejected" in wrong_voice.reason
    assert service.identify(face=face_files[2]).identity == "Andy"
    stranger = service.identify(face=face_files[6])
    assert stranger.identity is None and stranger.outcome == "rejected"
    assert stranger.searches["face"].candidates == ()  # nobody near the retry band: no names, no scores


def test_files_bytes_and_arrays_are_all_samples(service, face_files):
    service.enroll("Andy", face=face_files[0].read_bytes())
    assert service.check("Andy", face=decode_image(face_files[1])).accepted
    assert service.check("Andy", face=str(face_files[2])).accepted


def test_a_failed_modality_is_reported_beside_the_enrolled_one(service, face_files, tmp_path):
    silent = tmp_path / "silence.wav"
    import soundfile

    soundfile.write(silent, np.zeros(32_000, np.float32), 16_000)
    result = service.enroll("Andy", face=face_files[0], voice=silent)
    assert list(result.enrolled) == ["face"] and isinstance(result.failed["voice"], NoSpeechError)
    with pytest.raises(NoSpeechError):
        service.enroll("Bob", voice=silent)
    with pytest.raises(MissingSampleError, match="give a face photo, a voice clip, or both"):
        service.enroll("Bob")


def test_an_unknown_name_fails_before_any_model_loads(tmp_path, face_files):
    with Service(tmp_path / "empty.db", device="cpu") as fresh:
        with pytest.raises(UnknownIdentityError, match="no face template enrolled for 'nobody'"):
            fresh.check("nobody", face=face_files[0])
        with pytest.raises(UnknownIdentityError):
            fresh.check_many("nobody", [face_files[0]], "face")
        assert fresh.loaded() == ()


def test_reenroll_goes_through_the_quality_gate_and_the_lookalike_check(service, face_files, tmp_path):
    service.enroll("Andy", face=face_files[0])
    service.enroll("Andrew", face=face_files[3])
    blurred = tmp_path / "blurred.png"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(cv2.imread(str(face_files[1])), (0, 0), 6))
    with pytest.raises(QualityError, match="blurry"):
        service.reenroll("Andrew", face=blurred)
    replaced = service.reenroll("Andrew", face=face_files[0])  # the very photo Andy enrolled with
    assert replaced.templates[0].sample_count == 1
    assert any("looks like the already enrolled 'Andy'" in warning for warning in replaced.warnings)
    with pytest.raises(UnknownIdentityError, match="'Zed' is not enrolled"):
        service.reenroll("Zed", face=face_files[1])


def test_identification_is_audited_and_throttled_per_caller(tmp_path, face_pipeline, face_files):
    with Service(tmp_path / "t.db", device="cpu", identify_limit=2, pipelines={"face": face_pipeline}) as service:
        service.enroll("Andy", face=face_files[0])
        for photo in face_files[1:3]:  # each photo once: the same file twice would be a replay
            assert service.identify(face=photo, caller="kiosk").identity == "Andy"
        with pytest.raises(ThrottledError, match=r"too many identifications from this client \(2 per 60 s\)"):
            service.identify(face=face_files[1], caller="kiosk")
        mirrored = np.ascontiguousarray(decode_image(face_files[1])[:, ::-1])
        assert service.identify(face=mirrored, caller="desk").identity == "Andy"
        logged = [(a.caller, a.decision, a.identity) for a in service.audit() if a.action == "identify"]
    assert logged == [("desk", "accepted", "Andy"), ("kiosk", "throttled", ""), ("kiosk", "accepted", "Andy"),
                      ("kiosk", "accepted", "Andy")]


def test_batches_count_towards_the_lockout(tmp_path, face_pipeline, face_files):
    with Service(tmp_path / "l.db", device="cpu", max_failures=3, pipelines={"face": face_pipeline}) as service:
        service.enroll("Andy", face=face_files[0])
        results = service.check_many("Andy", [face_files[3]] * 4 + [face_files[1]], "face")
        assert [getattr(r, "outcome", type(r).__name__) for r in results] == [
            "rejected", "rejected", "rejected", "LockedOutError", "LockedOutError"]
        with pytest.raises(LockedOutError):
            service.check("Andy", face=face_files[1])
        assert service.unlock("Andy", "face") and service.check("Andy", face=face_files[1]).accepted


def test_a_locked_out_voice_stops_a_face_and_voice_check_before_the_face_is_checked(tmp_path, face_pipeline,
                                                                                    voice_pipeline, face_files,
                                                                                    voice_files):
    with Service(tmp_path / "b.db", device="cpu", max_failures=1,
                 pipelines={"face": face_pipeline, "voice": voice_pipeline}) as service:
        service.enroll("Andy", face=face_files[0], voice=voice_files[0])
        assert service.check("Andy", voice=voice_files[6]).outcome == "rejected"  # another speaker: locks voice
        with pytest.raises(LockedOutError, match="'Andy' \\(voice\\) is locked out"):
            service.check("Andy", face=face_files[1], voice=voice_files[1])
        logged = [(attempt.modality, attempt.decision) for attempt in service.audit("Andy", limit=3)]
    assert logged[:2] == [("voice", "locked"), ("voice", "rejected")]  # nothing of the face was checked


def test_adaptation_setting_is_refused_while_no_adaptation_ships(tmp_path, face_pipeline, voice_pipeline,
                                                                  face_files, voice_files):
    with Service(tmp_path / "a.db", device="cpu", adapt=True,
                 pipelines={"face": face_pipeline, "voice": voice_pipeline}) as service:
        for modality, sample in (("face", face_files[0]), ("voice", voice_files[0])):
            with pytest.raises(ConfigError, match=f"no per-user adaptation ships for {modality}"):
                service.enroll("Andy", **{modality: sample})
        assert service.identities() == []


def test_settings_or_options_not_both(tmp_path):
    with Service(tmp_path / "s.db") as service:
        with pytest.raises(ConfigError, match="either settings or store and options"):
            Service(settings=service.settings, level="high")


# --- face + voice by the sum of their LLRs ------------------------------------------------------
@pytest.fixture
def summing(tmp_path, face_pipeline, voice_pipeline, face_files, voice_files):
    with Service(tmp_path / "sum.db", device="cpu", caller="tester", fusion="sum", max_failures=3,
                 pipelines={"face": face_pipeline, "voice": voice_pipeline}) as opened:
        opened.enroll("Andy", face=face_files[0], voice=voice_files[0])
        yield opened


def test_the_sum_rule_accepts_the_genuine_pair_and_logs_one_answer_per_modality(summing, face_files, voice_files):
    both = summing.check("Andy", face=face_files[1], voice=voice_files[1])

    assert both.outcome == "accepted" and set(both.decisions) == {"face", "voice"}
    llrs = {modality: decision.llr for modality, decision in both.decisions.items()}
    assert all(llr is not None for llr in llrs.values())
    logged = {attempt.modality: attempt.decision for attempt in summing.audit("Andy", limit=2)}
    assert logged == {"face": "accepted", "voice": "accepted"}


def test_under_the_sum_rule_a_clearly_wrong_voice_still_vetoes_a_genuine_face(summing, face_files, voice_files):
    wrong_voice = summing.check("Andy", face=face_files[1], voice=voice_files[6])

    assert wrong_voice.decisions["voice"].llr < summing.operating_point("voice", "low").retry_threshold
    assert wrong_voice.outcome == "rejected" and wrong_voice.reason == "voice rejected: not the enrolled person"
    logged = [attempt.decision for attempt in summing.audit("Andy", limit=2)]
    assert logged == ["rejected", "rejected"]  # the fused answer counts for both modalities' lockouts


def test_under_the_sum_rule_failures_lock_out_and_a_replayed_pair_is_refused(summing, face_files, voice_files):
    assert summing.check("Andy", face=face_files[1], voice=voice_files[1]).accepted
    again = summing.check("Andy", face=face_files[1], voice=voice_files[1])
    assert again.outcome == "rejected" and again.reason.startswith("replay suspected")
    for _ in range(2):
        summing.check("Andy", face=face_files[1], voice=voice_files[6])
    with pytest.raises(LockedOutError):
        summing.check("Andy", face=face_files[2], voice=voice_files[2])


def test_the_sum_rule_is_refused_with_per_user_adaptation(tmp_path):
    with pytest.raises(ConfigError, match="the sum fusion rule needs calibrated LLRs"):
        Service(tmp_path / "x.db", fusion="sum", adapt=True)
    with pytest.raises(ConfigError, match="unknown fusion rule 'or'"):
        Service(tmp_path / "x.db", fusion="or")
