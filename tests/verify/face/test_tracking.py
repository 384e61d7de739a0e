"""Tracking a live stream's face: frames made from a shipped (LFW) photo moved a few pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from verify.config import FaceFrontEndConfig
from verify.errors import ConfigError, FaceTooSmallError, NoFaceError
from verify.face.detect import choose_face
from verify.face.pipeline import LEGACY_FUSION, FacePipeline
from verify.face.tracking import FaceTracker, TrackingConfig, TrackingPipeline, search_region, touches_border
from verify.face.yunet import YuNetDetector
from verify.io import decode_image

FRAME_SHAPE = (480, 640, 3)


def frame_with(photos: list[np.ndarray], corners: list[tuple[int, int]]) -> np.ndarray:
    """A grey 640x480 RGB frame with each photo pasted with its top left corner at ``(x, y)``."""
    frame = np.full(FRAME_SHAPE, 118, np.uint8)
    for photo, (x, y) in zip(photos, corners):
        frame[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
    return frame


@pytest.fixture(scope="module")
def photo(face_files) -> np.ndarray:
    return decode_image(face_files[0])


@pytest.fixture(scope="module")
def stream(photo) -> list[np.ndarray]:
    """Eight frames of one face drifting 3 px right and 2 px down per frame."""
    return [frame_with([photo], [(150 + 3 * step, 100 + 2 * step)]) for step in range(8)]


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return YuNetDetector()


def test_search_region_widens_the_box_and_stays_in_the_frame() -> None:
    assert search_region(np.array([100, 100, 200, 300.0]), FRAME_SHAPE, 0.5) == (50, 0, 250, 400)
    assert search_region(np.array([600, 400, 640, 480.0]), FRAME_SHAPE, 1.0) == (560, 320, 640, 480)


def test_a_face_touches_a_region_border_only_inside_the_frame() -> None:
    assert touches_border(np.array([50.5, 60, 100, 100]), (50, 50, 200, 200), FRAME_SHAPE)
    assert not touches_border(np.array([60, 60, 100, 100]), (50, 50, 200, 200), FRAME_SHAPE)
    assert not touches_border(np.array([0, 0, 100, 100]), (0, 0, 200, 200), FRAME_SHAPE)  # the frame's border


@pytest.mark.parametrize(("field", "value", "message"), [("margin", -0.1, "margin"), ("redetect_every", 0, "redetect_every")])
def test_bad_tracking_settings_are_refused(field, value, message) -> None:
    with pytest.raises(ConfigError, match=message):
        TrackingConfig(**{field: value})


def test_a_moving_face_is_found_around_its_last_box_as_the_whole_frame_finds_it(yunet, stream) -> None:
    tracker = FaceTracker(yunet)
    for frame in stream:
        (tracked,) = tracker.detect([frame])[0]
        whole = choose_face(yunet.detect([frame])[0], frame.shape)
        eye_distance = np.linalg.norm(whole.landmarks[1] - whole.landmarks[0])
        assert np.abs(tracked.box - whole.box).max() < 0.1 * eye_distance
        # the same pixels and anchors as the whole frame's search: within a twentieth of the eye distance
        assert np.linalg.norm(tracked.landmarks - whole.landmarks, axis=1).max() < 0.05 * eye_distance
    assert (tracker.full_searches, tracker.tracked) == (1, len(stream) - 1)


def test_a_lost_face_sends_the_next_frames_to_a_whole_frame_search(yunet, stream, photo) -> None:
    tracker = FaceTracker(yunet)
    tracker.detect(stream[:2])
    blank = np.full(FRAME_SHAPE, 118, np.uint8)
    assert tracker.detect([blank]) == [[]]  # looked around the face, found nothing, searched whole
    assert tracker.full_searches == 2
    jumped = frame_with([photo], [(380, 200)])  # back, far from where it was
    (found,) = tracker.detect([jumped])[0]
    assert tracker.full_searches == 3 and found.box[0] > 380
    tracker.detect(stream[2:3])  # jumped back: outside the region around the last box
    assert tracker.full_searches == 4 and tracker.tracked == 1


def test_the_whole_frame_is_searched_every_n_frames(yunet, stream) -> None:
    tracker = FaceTracker(yunet, TrackingConfig(redetect_every=3))
    tracker.detect(stream[:7])
    assert (tracker.full_searches, tracker.tracked) == (3, 4)  # frames 0, 3 and 6 whole
    untracked = FaceTracker(yunet, TrackingConfig(redetect_every=1))
    untracked.detect(stream[:3])
    assert untracked.tracked == 0


def test_several_faces_in_view_are_always_searched_whole(yunet, face_files) -> None:
    first, second = decode_image(face_files[0]), decode_image(face_files[3])
    frames = [frame_with([first, second], [(40 + step, 100), (360, 120)]) for step in range(3)]
    tracker = FaceTracker(yunet)
    assert [len(found) for found in tracker.detect(frames)] == [2, 2, 2]
    assert tracker.tracked == 0


def test_tracked_frames_go_through_the_same_alignment_and_networks(face_pipeline, stream) -> None:
    assert isinstance(face_pipeline, TrackingPipeline)
    tracker = face_pipeline.new_tracker()
    for frame in stream[:4]:
        tracked, whole = face_pipeline.embed_frame(frame, tracker), face_pipeline.embed(frame)
        assert tracked.vector.shape == whole.vector.shape
        assert float(tracked.vector @ whole.vector) > 0.98
        assert tracked.measures["alignments"] == whole.measures["alignments"] == 2.0
    assert tracker.tracked == 3
    with pytest.raises(NoFaceError):
        face_pipeline.embed_frame(np.full(FRAME_SHAPE, 118, np.uint8), tracker)


def test_locating_a_frame_finds_the_face_embedding_it_would_choose_without_embedding(face_pipeline, stream, photo) -> None:
    tracker = face_pipeline.new_tracker()
    for frame in stream[:3]:
        located = face_pipeline.locate_frame(frame, tracker)
        assert np.allclose(located.box, face_pipeline.embed(frame).location, atol=2.0)
    assert (tracker.full_searches, tracker.tracked) == (1, 2)
    assert np.allclose(face_pipeline.locate_frame(stream[0]).box, face_pipeline.embed(stream[0]).location, atol=0.5)
    with pytest.raises(NoFaceError):
        face_pipeline.locate_frame(np.full(FRAME_SHAPE, 118, np.uint8), tracker)
    small = np.full((160, 160, 3), 118, np.uint8)
    small[50:120, 50:120] = cv2.resize(photo, (70, 70), interpolation=cv2.INTER_AREA)  # a face of about 28 px
    assert face_pipeline.locate_frame(small).short_side > face_pipeline.config.min_face_px
    with pytest.raises(FaceTooSmallError, match="at least 40 px"):
        FacePipeline(device="cpu", config=FaceFrontEndConfig(min_face_px=40)).locate_frame(small)


def test_tracking_needs_yunet_first() -> None:
    with pytest.raises(ConfigError, match="YuNet"):
        FacePipeline(device="cpu", fusion=LEGACY_FUSION).new_tracker()
