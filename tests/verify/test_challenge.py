"""Challenge geometry and state machine on landmark sequences: a real head turning vs a flat photo turned."""

from __future__ import annotations

import random

import numpy as np
import pytest
from head_model import flat_photo, real_head

from verify.challenge import (
    MOVES,
    ROTATIONS,
    Challenge,
    ChallengeConfig,
    HeadPose,
    LandmarkError,
    boxes_continuous,
    head_pose,
    random_moves,
)
from verify.errors import ConfigError, InputError


def test_a_frontal_head_has_no_yaw_and_its_nose_between_eyes_and_mouth():
    pose = head_pose(real_head())
    assert abs(pose.yaw) < 1e-9 and 0.4 < pose.pitch < 0.7 and pose.scale > 0


@pytest.mark.parametrize("degrees", [20, 30])
def test_a_real_head_turn_moves_the_nose_across_the_eye_axis(degrees):
    frontal = head_pose(real_head())
    left, right = head_pose(real_head(yaw=degrees)), head_pose(real_head(yaw=-degrees))
    assert left.yaw - frontal.yaw > ChallengeConfig().turn  # the person's left is the image's right
    assert right.yaw - frontal.yaw < -ChallengeConfig().turn
    assert abs(left.pitch - frontal.pitch) < 0.03  # turning does not look like nodding


@pytest.mark.parametrize("degrees", [20, 30])
def test_a_real_head_nod_moves_the_nose_between_eyes_and_mouth(degrees):
    frontal = head_pose(real_head())
    up, down = head_pose(real_head(pitch=-degrees)), head_pose(real_head(pitch=degrees))
    assert up.pitch - frontal.pitch < -ChallengeConfig().tilt
    assert down.pitch - frontal.pitch > ChallengeConfig().tilt
    assert abs(up.yaw - frontal.yaw) < 1e-9


@pytest.mark.parametrize("distance", [250.0, 350.0, 600.0])
@pytest.mark.parametrize("yaw, pitch", [(60, 0), (-60, 0), (0, 60), (0, -60), (30, 30), (-40, 40)])
def test_a_flat_photo_turned_or_tilted_barely_moves_the_nose(yaw, pitch, distance):
    frontal = head_pose(flat_photo(distance=distance))
    turned = head_pose(flat_photo(yaw, pitch, distance=distance))
    # only perspective moves the points of a plane off an affine map: at most 0.05 here, from a photo
    # turned by 60 degrees 25 cm from the camera; a real head turned by 17 degrees moves 0.15
    assert abs(turned.yaw - frontal.yaw) < ChallengeConfig().turn / 2
    assert abs(turned.pitch - frontal.pitch) < ChallengeConfig().tilt / 1.8


def test_a_flat_photo_rolled_scaled_or_moved_keeps_its_pose_exactly():
    frontal = head_pose(flat_photo())
    for landmarks in (flat_photo(roll=35), flat_photo(distance=200), flat_photo() + [40, -25]):
        moved = head_pose(landmarks)
        assert moved.yaw == pytest.approx(frontal.yaw, abs=1e-9)
        assert moved.pitch == pytest.approx(frontal.pitch, abs=1e-9)


def test_bad_landmarks_are_refused():
    with pytest.raises(LandmarkError, match="5 finite"):
        head_pose(np.zeros((4, 2)))
    with pytest.raises(LandmarkError, match="5 finite"):
        head_pose(np.full((5, 2), np.nan))
    with pytest.raises(LandmarkError, match="collinear"):
        head_pose(np.array([[0, 0], [10, 0], [5, 0], [0, 0], [10, 0]], float))
    assert issubclass(LandmarkError, InputError)


def run(challenge: Challenge, frames: list[np.ndarray], start: float = 0.0, step: float = 0.5):
    """Feed landmark frames every ``step`` seconds; every status."""
    return [challenge.observe(head_pose(points), start + step * index) for index, points in enumerate(frames)]


NEUTRAL = [real_head()] * 4  # 1.5 s of a still, frontal head at 2 frames/s
POSES = {"turn_left": real_head(yaw=25), "turn_right": real_head(yaw=-25), "look_up": real_head(pitch=-25),
         "look_down": real_head(pitch=25), "come_closer": real_head(closer_mm=150)}


def performing(moves) -> list[np.ndarray]:
    frames = list(NEUTRAL)
    for move in moves:
        frames += [POSES[move], POSES[move], real_head()]
    return frames


@pytest.mark.parametrize("moves", [("turn_left", "look_up"), ("come_closer", "turn_right", "look_down")])
def test_a_real_head_making_the_prompted_moves_passes(moves):
    statuses = run(Challenge(moves), performing(moves))
    assert statuses[-1].phase == "passed" and statuses[-1].marks == " ".join(["[x]"] * len(moves))
    assert [s.prompt for s in statuses[:4]] == ["look straight at the camera and hold still"] * 3 + ["turn your head to your left" if moves[0] == "turn_left" else "come closer to the camera"]
    assert sum(s.frontal for s in statuses) == 4 + len(moves)  # neutral frames and each look back


def test_a_flat_photo_turned_and_tilted_every_way_never_passes():
    photo = [flat_photo()] * 4 + [flat_photo(yaw, pitch) for yaw, pitch in
                                  [(40, 0), (-40, 0), (0, 35), (0, -35), (25, 25)] * 3]
    challenge = Challenge(("turn_left", "look_up"))
    statuses = run(challenge, photo)
    assert [s.phase for s in statuses] == ["neutral"] * 3 + ["move"] * 13 + ["failed"] * 3
    assert max(s.progress for s in statuses) < 0.35
    assert statuses[-1].reason == "step 1 of 2 (turn your head to your left) failed: not done within 6 s"


def test_moves_in_another_order_fail_the_step_with_what_was_done():
    statuses = run(Challenge(("turn_left", "look_up")), performing(("look_up", "turn_left")))
    failed = next(s for s in statuses if s.phase == "failed")
    assert failed.reason == "step 1 of 2 (turn your head to your left) failed: you looked up instead"
    assert failed.marks == "[ ] [ ]"
    opposite = run(Challenge(("turn_left",)), performing(("turn_right",)))
    assert "you turned to your right instead" in next(s for s in opposite if s.phase == "failed").reason


def test_not_looking_back_in_time_fails():
    frames = list(NEUTRAL) + [POSES["turn_left"]] * 16
    statuses = run(Challenge(("turn_left", "look_up")), frames)
    assert statuses[4].phase == "return" and statuses[4].prompt == "now look back at the camera"
    assert statuses[-1].phase == "failed" and "did not look back at the camera within 6 s" in statuses[-1].reason


def test_mirrored_frames_swap_left_and_right():
    mirrored = [np.column_stack([640 - points[:, 0], points[:, 1]])[[1, 0, 2, 4, 3]] for points in performing(["turn_left"])]
    assert run(Challenge(("turn_left",), ChallengeConfig(mirrored=True)), mirrored)[-1].phase == "passed"
    assert run(Challenge(("turn_left",)), mirrored)[-1].phase == "failed"


def test_the_neutral_pose_needs_a_still_frontal_face_held_long_enough():
    challenge = Challenge(("turn_left", "look_up"))
    statuses = run(challenge, [real_head(yaw=30)] * 4 + [real_head()] * 3)
    assert all(s.phase == "neutral" for s in statuses)  # turned away, then only 1 s frontal
    assert challenge.observe(head_pose(real_head()), 3.5).phase == "move"
    assert challenge.neutral == pytest.approx(head_pose(real_head()))
    jittery = Challenge(("turn_left",))
    assert {s.phase for s in run(jittery, [real_head(yaw=(-1) ** i * 5) for i in range(8)])} == {"neutral"}


def test_random_moves_are_distinct_include_a_rotation_and_follow_the_seed():
    config = ChallengeConfig()
    drawn = [random_moves(config, random.Random(seed)) for seed in range(300)]
    assert all(len(set(moves)) == len(moves) and 2 <= len(moves) <= 3 for moves in drawn)
    assert all(set(moves) & ROTATIONS for moves in drawn) and {m for moves in drawn for m in moves} == set(MOVES)
    assert random_moves(config, random.Random(7)) == random_moves(config, random.Random(7))
    only_closer = ChallengeConfig(min_moves=1, max_moves=1)
    assert all(random_moves(only_closer, random.Random(seed)) != ("come_closer",) for seed in range(100))


def test_bad_challenge_settings_are_refused():
    with pytest.raises(ConfigError, match="1 <= min <= max"):
        ChallengeConfig(min_moves=3, max_moves=2)
    with pytest.raises(ConfigError, match="turn must be positive"):
        ChallengeConfig(turn=0)
    with pytest.raises(ConfigError, match="closer must be above 1"):
        ChallengeConfig(closer=0.9)
    with pytest.raises(ConfigError, match="needs moves"):
        Challenge(("wave",))


def test_boxes_are_continuous_for_a_moving_head_not_for_a_jump():
    box = (100.0, 100.0, 200.0, 220.0)
    assert boxes_continuous(box, (130, 110, 235, 235))  # moved and a little closer
    assert not boxes_continuous(box, (300, 100, 400, 220))  # another place
    assert not boxes_continuous(box, (100, 100, 120, 124))  # far smaller
    assert not boxes_continuous(box, (100, 100, 100, 220))


def test_head_pose_is_a_plain_value():
    assert HeadPose(0.1, 0.5, 40.0) == HeadPose(0.1, 0.5, 40.0)
