"""The live challenge on real photos of one ORL person at different head poses (picked by the poses the face
pipeline measures), through the Python API."""

from __future__ import annotations

import random

import pytest
from posed_faces import measure, pick_poses, segments, webcam_frame

from enrollment.service import Service
from verify.challenge import ChallengeConfig, random_moves

pytestmark = pytest.mark.data
SEED = 4  # prompts (look_up, turn_left)
PERSON, ENROLLED, NEUTRAL = "s1", "0.png", "7.png"


@pytest.fixture(scope="module")
def poses(shared_data, face_pipeline):
    moves = random_moves(ChallengeConfig(), random.Random(SEED))
    photos = measure(face_pipeline, shared_data / "faces" / "orl_att" / PERSON)
    return moves, photos, pick_poses(photos, NEUTRAL, moves + ("turn_right", "come_closer"))


@pytest.fixture
def service(tmp_path, face_pipeline, poses):
    _, photos, _ = poses
    with Service(tmp_path / "orl.db", caller="test", challenge_seed=SEED, pipelines={"face": face_pipeline}) as shared:
        shared.enroll("s1", face=webcam_frame(photos[ENROLLED]))
        yield shared


def feed(session, frames, fps: float = 2.0):
    return [session.feed(frame, index / fps) for index, frame in enumerate(frames)]


def test_the_person_making_the_prompted_moves_is_accepted(service, poses):
    moves, _, picked = poses
    assert moves == ("look_up", "turn_left")
    results = feed(service.live_session("s1"), segments(picked, moves, 2.5, 1.0, 1.0, fps=2))
    assert results[-1].outcome == "accepted", [(r.outcome, r.reason) for r in results]
    assert results[-1].reason == "live: 2 moves done"


def test_the_same_moves_in_another_order_are_refused(service, poses):
    moves, _, picked = poses
    results = feed(service.live_session("s1"), segments(picked, tuple(reversed(moves)), 2.5, 1.0, 1.0, fps=2))
    assert "accepted" not in {r.outcome for r in results}
    refused = next(r for r in results if r.outcome == "rejected")
    assert refused.reason == "step 1 of 2 (look up) failed: you turned to your left instead"


def test_the_neutral_photo_held_still_moved_or_zoomed_is_never_accepted(service, poses):
    _, _, picked = poses
    frames = segments(picked, ("come_closer",) * 6, 2.5, 1.0, 1.0, fps=2)[:40]
    assert "accepted" not in {r.outcome for r in feed(service.live_session("s1"), frames)}


def test_forty_frames_of_the_enrolled_persons_still_photo_are_never_accepted(service, poses):
    _, photos, _ = poses
    frames = [webcam_frame(photos[NEUTRAL], jitter=index + 1) for index in range(40)]  # shaken a little, never turned
    results = feed(service.live_session("s1"), frames)
    assert "accepted" not in {r.outcome for r in results}
    assert any(r.outcome == "rejected" and "not done within 6 s" in r.reason for r in results)
