"""Live webcam frames (annotation, challenge, strict liveness) and batch checks (zip safety, limits)."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from verify.errors import DecodeError, InputTooLargeError
from verify.io import decode_image
from verify_app import handlers
from verify_app.batch import BatchLimits, batch_check, collect_samples, write_csv
from verify_app.frames import process_frame


def webcam_frame(photo: Path, shift: int = 0, brightness: int = 0) -> np.ndarray:
    """A 480x640 'webcam' frame with the photo's face in the middle."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    face = cv2.resize(decode_image(photo), (300, 300)).astype(int) + brightness
    frame[90 + shift : 390 + shift, 170 + shift : 470 + shift] = np.clip(face, 0, 255)
    return frame


@pytest.fixture
def enrolled(service, face_files):
    handlers.enroll_samples(service, "Andy", face=str(face_files[0]))
    return service


def test_frame_of_the_enrolled_person_is_accepted_and_boxed(enrolled, face_files):
    frame = webcam_frame(face_files[1])
    result = process_frame(enrolled.live_session("Andy", challenge=False), frame)
    assert result.outcome == "accepted" and "Accepted" in result.message and result.latency_ms > 0
    assert result.image.shape == frame.shape and not np.array_equal(result.image, frame)
    assert tuple(result.image[-5, 5]) == (30, 170, 60)  # the green label bar


def test_frame_of_someone_else_is_rejected_and_identify_names_nobody(enrolled, face_files):
    assert process_frame(enrolled.live_session("Andy", challenge=False), webcam_frame(face_files[3])).outcome == "rejected"
    who = enrolled.live_session(None, challenge=False)  # people coming one after another, each answer's hold over
    assert process_frame(who, webcam_frame(face_files[3]), 0.0).outcome == "rejected"
    assert process_frame(who, webcam_frame(face_files[2]), 10.0).outcome == "accepted"
    assert process_frame(who, webcam_frame(face_files[1]), 20.0).outcome == "accepted"
    named = [a for a in enrolled.audit() if a.action == "identify"]
    assert [(a.identity, a.decision) for a in named] == [("Andy", "accepted")]  # logged once per new name


def test_frame_without_face_or_template_asks_to_retry(enrolled, face_files):
    unknown = process_frame(enrolled.live_session("Bob", challenge=False), webcam_frame(face_files[1]))
    assert unknown.outcome == "retry" and "no face template enrolled for 'Bob'" in unknown.message
    empty = np.full((480, 640, 3), 90, np.uint8)
    assert "no face" in process_frame(enrolled.live_session("Andy", challenge=False), empty).message
    assert "no face" in process_frame(enrolled.live_session(None, challenge=False), empty).message


def test_a_face_that_stays_in_view_is_tracked_and_decided_as_each_frame_alone(enrolled, face_files):
    for photo, expected in ((face_files[1], "accepted"), (face_files[4], "rejected")):
        session = enrolled.live_session("Andy", challenge=False)
        frames = [webcam_frame(photo, shift) for shift in (0, 2, 4, 6, 8)]
        tracked = [process_frame(session, frame, 4.0 * index).outcome for index, frame in enumerate(frames)]  # no hold
        alone = [process_frame(enrolled.live_session("Andy", challenge=False), frame).outcome for frame in frames]
        assert tracked == alone == [expected] * len(frames)
        assert (session.tracker.full_searches, session.tracker.tracked) == (1, len(frames) - 1)


def test_while_an_answer_holds_the_tracked_face_is_only_located(enrolled, face_files):
    for photo, expected in ((face_files[1], "accepted"), (face_files[4], "rejected")):
        session = enrolled.live_session("Andy", challenge=False)
        frames = [webcam_frame(photo, shift) for shift in (0, 2, 4, 6, 8)]
        results = [session.feed(frame, 0.1 * index) for index, frame in enumerate(frames)]
        assert [(r.outcome, r.held) for r in results] == [(expected, False)] + [(expected, True)] * 4
        assert {r.decision for r in results} == {results[0].decision}
        assert results[-1].location[0] - results[0].location[0] == pytest.approx(8, abs=2)  # the box follows the face
        assert (session.tracker.full_searches, session.tracker.tracked) == (1, len(frames) - 1)


def test_strict_mode_rejects_a_static_image_and_accepts_a_moving_face(enrolled, face_files):
    static, live = (enrolled.live_session("Andy", strict=True, challenge=False) for _ in range(2))
    frame = webcam_frame(face_files[1])
    outcomes = [process_frame(static, frame).outcome for _ in range(4)]
    assert outcomes == ["retry", "retry", "retry", "rejected"]
    assert "static image suspected" in process_frame(static, frame).message
    moving = [process_frame(live, webcam_frame(face_files[1], shift, 4 * shift)) for shift in (0, 3, -3, 2)]
    assert [result.outcome for result in moving] == ["retry", "retry", "retry", "accepted"]


def test_forty_frames_of_a_still_photo_never_give_an_accepted_decision(enrolled, face_files):
    session = enrolled.live_session("Andy")  # default settings: the challenge is on
    views = [process_frame(session, webcam_frame(face_files[2], shift % 3, shift % 5), 0.5 * shift)
             for shift in range(40)]
    assert "accepted" not in {view.outcome for view in views}
    assert views[0].outcome == "pending" and "Follow the prompt" in views[0].message
    assert any("failed: not done within 6 s" in view.message for view in views)
    assert tuple(views[-1].image[2, 2]) in {(30, 95, 190), (210, 40, 40)}  # the prompt bar


def _zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def test_batch_of_files_and_a_zip_gives_one_row_each(enrolled, face_files, tmp_path, corrupt_file):
    archive = _zip(tmp_path / "photos.zip", {"../../escape.jpg": face_files[2].read_bytes(),
                                             "sub/other.jpg": face_files[3].read_bytes(), "__MACOSX/._x": b"junk"},
                   symlink="link.jpg")
    rows = batch_check(enrolled, "Andy", "face", [face_files[1], corrupt_file, archive], "medium")
    outcomes = {row[0]: row[1] for row in rows}
    assert outcomes == {"1.jpg": "accepted", "broken.jpg": "error", "photos.zip/../../escape.jpg": "accepted",
                        "photos.zip/sub/other.jpg": "rejected", "photos.zip/link.jpg": "error"}
    assert not (tmp_path.parent / "escape.jpg").exists()
    out = write_csv(rows, tmp_path / "results.csv")
    assert out.read_text().splitlines()[0] == "file,outcome,score,threshold,reason"


def test_batch_limits_guard_against_zip_bombs(tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.jpg": bytes(5_000_000)})  # compresses to a few kB
    assert bomb.stat().st_size < 100_000
    (name, error), = collect_samples([bomb], BatchLimits(max_file_bytes=1_000_000))
    assert isinstance(error, InputTooLargeError)
    with pytest.raises(InputTooLargeError, match="more than 2 MiB"):
        collect_samples([bomb], BatchLimits(max_total_bytes=2 * 2**20))
    many = _zip(tmp_path / "many.zip", {f"{index}.jpg": b"x" for index in range(5)})
    with pytest.raises(InputTooLargeError, match="more than 3 files"):
        collect_samples([many], BatchLimits(max_files=3))


def test_batch_refuses_nothing_and_broken_archives(tmp_path):
    with pytest.raises(DecodeError, match="no files uploaded"):
        collect_samples([])
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    (name, sample), = collect_samples([broken])  # not a valid zip: treated as a plain file
    assert name == "broken.zip" and isinstance(sample, Path)


def test_live_frames_are_refused_while_the_identity_is_locked_out(enrolled, face_files):
    session = enrolled.live_session("Andy", challenge=False)
    for second in range(0, 24, 4):  # live frames alone never lock anyone out (each decided: no answer holds 4 s) ...
        assert process_frame(session, webcam_frame(face_files[3]), second).outcome == "rejected"
    assert process_frame(session, webcam_frame(face_files[1]), 30.0).outcome == "accepted"
    for _ in range(5):  # ... but failed checks of photos do, and then live frames are refused too
        handlers.verify_samples(enrolled, "Andy", face=str(face_files[3]))

    result = process_frame(session, webcam_frame(face_files[1]), 31.0)

    assert result.outcome == "retry" and "locked" in result.message
