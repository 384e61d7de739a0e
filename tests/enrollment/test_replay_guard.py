"""The service's replay guard: copies of enrollment samples and of accepted probes are refused everywhere."""

from __future__ import annotations

import sqlite3

import cv2
import numpy as np
import pytest
from vector_pipeline import THRESHOLDS, VectorPipeline, direction

from enrollment.errors import StoreKeyError
from enrollment.replay_guard import KEEP, remembered
from enrollment.service import Service
from verify.io import decode_image
from verify.scorer import CosineScorer

KEY = bytes(range(32))


SCORERS = {"face": CosineScorer(THRESHOLDS)}  # the stand-in model ships no calibration


@pytest.fixture
def service(tmp_path):
    with Service(tmp_path / "r.db", caller="test", pipelines={"face": VectorPipeline("face")},
                 scorers=SCORERS) as shared:
        shared.enroll("Ann", face=direction(0, lean=0.3))
        yield shared


def test_the_enrollment_sample_itself_is_refused_logged_and_counted(service):
    result = service.check("Ann", face=direction(0, lean=0.3))
    assert result.outcome == "rejected" and result.score == pytest.approx(1.0)
    assert result.reason == "face rejected"
    assert result.decisions["face"].reason == "replay suspected: a byte-identical copy of an enrollment sample"
    (attempt,) = service.audit("Ann")
    assert (attempt.decision, attempt.detail) == ("rejected", "replay suspected: a byte-identical copy of an enrollment sample")


def test_an_accepted_probe_sent_again_is_refused_another_one_is_not(service):
    probe = direction(0, lean=0.5)
    assert service.check("Ann", face=probe).accepted
    again = service.check("Ann", face=probe.copy())
    assert again.decisions["face"].reason == "replay suspected: a byte-identical copy of a recently accepted sample"
    assert service.check("Ann", face=direction(0, lean=0.7)).accepted  # a different genuine sample


def test_near_identical_copies_are_caught_from_the_models_threshold(service):
    service._replay_thresholds["face"] = 0.999  # the stand-in model has no measured threshold
    copy = direction(0, lean=0.3) + np.float32(1e-3) * direction(3)
    assert "near-identical copy of an enrollment sample" in service.check("Ann", face=copy).decisions["face"].reason
    assert service.check("Ann", face=direction(0, lean=0.6)).accepted


def test_batches_and_identification_apply_the_guard(service):
    answers = service.check_many("Ann", [direction(0, lean=0.3), direction(0, lean=0.8)], "face")
    assert [a.reason[:16] for a in answers] == ["replay suspected", ""]
    found = service.identify(face=direction(0, lean=0.3))
    assert found.identity is None and found.outcome == "rejected" and found.reason.startswith("replay suspected")
    assert service.identify(face=direction(0, lean=0.9)).identity == "Ann"
    identified = [a for a in service.audit() if a.action == "identify"]
    assert [(a.identity, a.detail[:16]) for a in identified] == [("Ann", ""), ("", "replay suspected")]


def test_a_locked_out_acceptance_is_not_remembered(tmp_path):
    with Service(tmp_path / "l.db", max_failures=1, pipelines={"face": VectorPipeline("face")},
                 scorers=SCORERS) as service:
        service.enroll("Ann", face=direction(0, lean=0.3))
        answers = service.check_many("Ann", [direction(1), direction(0, lean=0.5)], "face")
        assert [type(a).__name__ for a in answers] == ["Decision", "LockedOutError"]
        assert [s.kind for s in remembered(service.store, "Ann", service.pipeline("face"))] == ["enrolled"]


def test_kept_samples_are_capped_and_go_with_delete_and_reenroll(service):
    pipeline = service.pipeline("face")
    for index in range(KEEP["enrolled"] + 4):
        service.enroll("Ann", face=direction(0, lean=0.01 * index + 0.31))
    for index in range(KEEP["accepted"] + 3):
        assert service.check("Ann", face=direction(0, lean=0.02 * index + 0.6)).accepted
    kinds = [sample.kind for sample in remembered(service.store, "Ann", pipeline)]
    assert kinds.count("enrolled") == KEEP["enrolled"] and kinds.count("accepted") == KEEP["accepted"]
    service.reenroll("Ann", face=direction(0, lean=0.9))
    assert [s.kind for s in remembered(service.store, "Ann", pipeline)] == ["enrolled"]
    service.delete("Ann")
    assert remembered(service.store, "Ann", pipeline) == []


def test_kept_samples_are_sealed_under_the_store_key(tmp_path):
    path = tmp_path / "sealed.db"
    sample = direction(0, lean=0.3)
    with Service(path, key=KEY, pipelines={"face": VectorPipeline("face")}, scorers=SCORERS) as service:
        service.enroll("Ann", face=sample)
        assert service.check("Ann", face=sample).decisions["face"].reason.startswith("replay suspected")
    with sqlite3.connect(path) as connection:
        blob, seal = connection.execute("SELECT sample, seal FROM replay_samples").fetchone()
    assert seal is not None and (sample / np.linalg.norm(sample)).astype("<f4").tobytes() not in blob
    with Service(path, pipelines={"face": VectorPipeline("face")}, scorers=SCORERS) as keyless:
        with pytest.raises(StoreKeyError, match="encrypted"):
            remembered(keyless.store, "Ann", keyless.pipeline("face"))


def test_a_real_photo_re_encoded_and_a_replayed_recording_are_refused(tmp_path, face_pipeline, voice_pipeline,
                                                                       face_files, voice_files):
    with Service(tmp_path / "real.db", pipelines={"face": face_pipeline, "voice": voice_pipeline}) as service:
        service.enroll("Andy", face=face_files[0], voice=voice_files[0])
        reencoded = cv2.imencode(".jpg", decode_image(face_files[0])[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])[1]
        face = service.check("Andy", face=reencoded.tobytes()).decisions["face"]
        assert face.reason.startswith("replay suspected: a near-identical copy of an enrollment sample")
        voice = service.check("Andy", voice=voice_files[0].read_bytes()).decisions["voice"]
        assert voice.reason == "replay suspected: a byte-identical copy of an enrollment sample"
        assert service.check("Andy", face=face_files[1], voice=voice_files[1]).accepted
