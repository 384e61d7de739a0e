"""The app's handlers, without gradio: enroll, verify, identify, gallery, and bad inputs."""

from __future__ import annotations

import pytest

from enrollment.errors import InvalidIdentityError, UnknownIdentityError
from verify.errors import DecodeError, NoFaceError, NoSpeechError
from verify.models import model_spec
from verify_app import handlers
from enrollment.service import MissingSampleError
from verify_app.handlers import WHO_IS_THIS


def test_enroll_face_shows_the_aligned_crop(service, face_files):
    result = handlers.enroll_samples(service, "  Andy ", face=str(face_files[0]))
    assert "Enrolled</span> **Andy**" in result.message and "face: 1 sample(s)" in result.message
    assert result.face_crop.shape == (128, 128, 3) and result.speech is None
    second = handlers.enroll_samples(service, "Andy", face=str(face_files[1]))
    assert "face: 2 sample(s)" in second.message


def test_enroll_face_and_voice_at_once(service, face_files, voice_files):
    result = handlers.enroll_samples(service, "Andy", face=str(face_files[0]), voice=str(voice_files[0]))
    assert {t.modality for t in result.templates} == {"face", "voice"}
    assert result.speech.ndim == 1 and result.speech.size > 16_000


def test_a_failed_modality_is_reported_beside_the_enrolled_one(service, face_files, silent_clip):
    result = handlers.enroll_samples(service, "Andy", face=str(face_files[0]), voice=str(silent_clip))
    assert "face: 1 sample(s)" in result.message and "voice not enrolled</span>: " in result.message
    assert [t.modality for t in service.store.find("Andy")] == ["face"]


def test_an_echoing_voice_is_refused_with_what_to_do(service, face_files, voice_files, tmp_path):
    import numpy as np
    import soundfile

    from verify.voice import degrade

    samples, rate = soundfile.read(voice_files[0], dtype="float32")
    room = tmp_path / "room.wav"
    soundfile.write(room, degrade.reverberate(samples, np.random.default_rng(0), (0.8, 0.8)), rate)
    result = handlers.enroll_samples(service, "Andy", face=str(face_files[0]), voice=str(room))
    assert "voice not enrolled</span>: " in result.message and "too much echo" in result.message


def test_genuine_accepted_impostor_rejected(service, face_files):
    handlers.enroll_samples(service, "Andy", face=str(face_files[0]))
    genuine = handlers.verify_samples(service, "Andy", face=str(face_files[1]))
    assert genuine.outcome == "accepted" and genuine.identity == "Andy"
    assert "Accepted" in genuine.message and genuine.details["modalities"]["face"]["score"] > 0.36
    impostor = handlers.verify_samples(service, "Andy", face=str(face_files[3]))
    assert impostor.outcome == "rejected" and impostor.identity is None


def test_face_and_voice_must_both_match(service, face_files, voice_files):
    handlers.enroll_samples(service, "Andy", face=str(face_files[0]), voice=str(voice_files[0]))
    both = handlers.verify_samples(service, "Andy", face=str(face_files[1]), voice=str(voice_files[1]))
    assert both.outcome == "accepted" and both.details["rule"] == "and"
    wrong_voice = handlers.verify_samples(service, "Andy", face=str(face_files[1]), voice=str(voice_files[3]))
    assert wrong_voice.outcome == "rejected" and "voice rejected" in wrong_voice.message


def test_face_and_voice_by_the_sum_rule_say_so(tmp_path, face_pipeline, voice_pipeline, face_files, voice_files):
    from enrollment.service import Service
    from verify_app.api_models import verify_answer

    with Service(tmp_path / "sum.db", device="cpu", caller="test", fusion="sum",
                 pipelines={"face": face_pipeline, "voice": voice_pipeline}) as summing:
        handlers.enroll_samples(summing, "Andy", face=str(face_files[0]), voice=str(voice_files[0]))
        both = handlers.verify_samples(summing, "Andy", face=str(face_files[1]), voice=str(voice_files[1]))
        assert both.outcome == "accepted" and both.details["rule"] == "sum"
        assert "Face and voice decide together" in both.message
        result = summing.check("Andy", face=face_files[2], voice=voice_files[2])
        assert verify_answer(result)["rule"] == "sum"


def test_who_is_this_names_the_right_person(service, face_files):
    for person in range(3):
        handlers.enroll_samples(service, f"person {person}", face=str(face_files[3 * person]))
    found = handlers.verify_samples(service, WHO_IS_THIS, face=str(face_files[4]))
    assert found.outcome == "accepted" and found.identity == "person 1"
    assert found.details["modalities"]["face"]["candidates"][0][0] == "person 1"


def test_who_is_this_refuses_a_stranger(service, face_files):
    handlers.enroll_samples(service, "Andy", face=str(face_files[0]))
    stranger = handlers.verify_samples(service, None, face=str(face_files[6]))
    assert stranger.outcome == "rejected" and stranger.identity is None
    assert "nobody enrolled could be recognised" in stranger.message


def test_gallery_delete_and_reenroll(service, face_files, voice_files):
    handlers.enroll_samples(service, "Andy", face=str(face_files[0]), voice=str(voice_files[0]))
    handlers.enroll_samples(service, "Andy", face=str(face_files[1]))
    rows = handlers.gallery_rows(service)
    assert [row[:3] for row in rows] == [["Andy", "face", 2], ["Andy", "voice", 1]]
    assert rows[0][5].startswith(f"{model_spec('face').model_id} ") and rows[0][3].endswith("UTC")
    assert "Re-enrolled" in handlers.reenroll(service, "Andy", face=str(face_files[2])).message
    assert service.store.get("Andy", "face").sample_count == 1
    assert "Deleted 1 template" in handlers.delete_identity(service, "Andy", "voice")
    assert "Deleted 1 template" in handlers.delete_identity(service, "Andy", "all")
    assert service.identities() == []


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s, f: handlers.enroll_samples(s, "  ", face=f["face"]), InvalidIdentityError, "type the person's name"),
        (lambda s, f: handlers.enroll_samples(s, "a\x00b", face=f["face"]), InvalidIdentityError, "control character"),
        (lambda s, f: handlers.enroll_samples(s, "Andy"), MissingSampleError, "face photo, a voice clip"),
        (lambda s, f: handlers.enroll_samples(s, "Andy", face=f["blank"]), NoFaceError, "no face"),
        (lambda s, f: handlers.enroll_samples(s, "Andy", voice=f["silent"]), NoSpeechError, "silent"),
        (lambda s, f: handlers.enroll_samples(s, "Andy", face=f["corrupt"]), DecodeError, "broken.jpg"),
        (lambda s, f: handlers.verify_samples(s, "Nobody", face=f["face"]), UnknownIdentityError, "Nobody"),
        (lambda s, f: handlers.verify_samples(s, WHO_IS_THIS, face=f["face"]), UnknownIdentityError, "nobody is enrolled"),
        (lambda s, f: handlers.delete_identity(s, "Nobody"), UnknownIdentityError, "Nobody"),
        (lambda s, f: handlers.reenroll(s, "Nobody", face=f["face"]), UnknownIdentityError, "not enrolled"),
    ],
)
def test_bad_inputs_raise_clear_errors(service, face_files, blank_photo, silent_clip, corrupt_file, call, error, match):
    files = {"face": str(face_files[0]), "blank": str(blank_photo), "silent": str(silent_clip),
             "corrupt": str(corrupt_file)}
    with pytest.raises(error, match=match):
        call(service, files)


def test_settings_and_level_texts_show_thresholds(service):
    text = handlers.settings_markdown(service)
    medium = service.operating_point("face", "medium").threshold
    assert model_spec("face").model_id in text and "ge2e-robust" in text and f"LLR ≥ {medium:.2f}" in text
    assert "`cpu`" in text
    assert "1 impostor in 10,000" in handlers.thresholds_summary(service, "high")


def test_repeated_impostor_checks_lock_the_identity_out_and_are_audited(service, face_files):
    from enrollment.audit import recent_attempts
    from enrollment.errors import LockedOutError

    handlers.enroll_samples(service, "Andy", face=str(face_files[0]))
    for _ in range(5):
        assert handlers.verify_samples(service, "Andy", face=str(face_files[3])).outcome == "rejected"

    with pytest.raises(LockedOutError, match="Andy"):
        handlers.verify_samples(service, "Andy", face=str(face_files[1]))  # even the genuine face
    assert len(recent_attempts(service.store, identity="Andy")) == 6


def test_a_copy_of_the_enrollment_sample_shows_replay_suspected(service, face_files):
    handlers.enroll_samples(service, "Andy", face=str(face_files[0]))
    view = handlers.verify_samples(service, "Andy", face=str(face_files[0]))
    assert view.outcome == "rejected" and "replay suspected: a byte-identical copy of an enrollment sample" in view.message
    assert view.details["modalities"]["face"]["reason"].startswith("replay suspected")
    who = handlers.verify_samples(service, WHO_IS_THIS, face=str(face_files[0]))
    assert who.identity is None and "replay suspected" in who.message
