"""Live sessions with the head-move challenge, on a stand-in pipeline (landmarks and embeddings given)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from head_model import flat_photo, real_head
from pose_pipeline import PosePipeline
from vector_pipeline import THRESHOLDS

from enrollment.service import Service
from verify.challenge import ChallengeConfig, random_moves
from verify.scorer import CosineScorer

SEED = 3
MOVES = random_moves(ChallengeConfig(), random.Random(SEED))
POSES = {"turn_left": {"yaw": 25}, "turn_right": {"yaw": -25}, "look_up": {"pitch": -25},
         "look_down": {"pitch": 25}, "come_closer": {"closer_mm": 150}}



def person(index: int, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    """Person ``index``'s embedding (an axis of 16 dimensions), slightly varied by ``jitter``."""
    vector = np.zeros(16, np.float32)
    vector[index] = 1.0
    return vector + jitter * np.random.default_rng(seed).normal(size=16).astype(np.float32)


SCORERS = {"face": CosineScorer(THRESHOLDS)}  # the stand-in model ships no calibration


@pytest.fixture
def stub():
    return PosePipeline()


@pytest.fixture
def service(tmp_path, stub):
    with Service(tmp_path / "store.db", caller="test", challenge_seed=SEED, pipelines={"face": stub},
                 scorers=SCORERS) as shared:
        shared.enroll("Ann", face=stub.frame(real_head(), person(0)))
        shared.enroll("Bob", face=stub.frame(real_head(), person(1)))
        yield shared


def head_frames(stub: PosePipeline, moves, who: int = 0) -> list[np.ndarray]:
    """A real head of person ``who``: 2 s looking at the camera, then each move and back."""
    poses = [{}] * 5
    for move in moves:
        poses += [POSES[move], POSES[move], {}]
    return [stub.frame(real_head(**pose), person(who, 0.05, seed)) for seed, pose in enumerate(poses)]


def feed_all(session, frames, start: float = 0.0):
    return [session.feed(frame, start + 0.5 * index) for index, frame in enumerate(frames)]


def test_the_seeded_moves_made_by_the_enrolled_person_are_accepted(service, stub):
    results = feed_all(service.live_session("Ann"), head_frames(stub, MOVES))
    assert results[-1].outcome == "accepted" and results[-1].identity == "Ann"
    assert results[-1].reason == f"live: {len(MOVES)} moves done" and results[-1].decision.score > 0.9
    assert {r.outcome for r in results[:-1]} == {"pending"}
    assert results[4].prompt == {"turn_left": "turn your head to your left", "turn_right": "turn your head to your right",
                                 "look_up": "look up", "look_down": "look down",
                                 "come_closer": "come closer to the camera"}[MOVES[0]]
    completed = [a for a in service.audit("Ann") if a.action == "verify"]
    assert [(a.decision, a.caller) for a in completed] == [("accepted", "test")]  # one attempt logged, not frames


def test_an_accepted_attempt_holds_while_the_face_stays_then_a_new_attempt_starts(service, stub):
    session = service.live_session("Ann")
    frames = head_frames(stub, MOVES)
    assert feed_all(session, frames)[-1].outcome == "accepted"
    end = 0.5 * (len(frames) - 1)
    held = [session.feed(frames[0], end + 1.0), session.feed(frames[0], end + 4.5)]
    assert [(r.outcome, r.held) for r in held] == [("accepted", True)] * 2
    elsewhere = session.feed(stub.frame(real_head(), person(0), box=(0, 0, 100, 120)), end + 4.8)
    assert (elsewhere.outcome, elsewhere.held) == ("pending", False)  # a face elsewhere: a new attempt
    again = feed_all(session, frames, start=10.0)
    assert again[-1].outcome == "accepted"
    assert session.feed(frames[0], 10.0 + end + 5.5).outcome == "pending"  # 5 s over: a new attempt


def test_frames_whose_pose_was_not_measured_neither_move_nor_break_the_challenge(service, stub):
    frames = head_frames(stub, MOVES)
    unmeasured = stub.frame(None, person(0, 0.05, 99))
    results = feed_all(service.live_session("Ann"), frames[:6] + [unmeasured] * 2 + frames[6:])
    assert [r.prompt for r in results[6:8]] == [results[5].prompt] * 2  # held where the challenge stood
    assert {r.outcome for r in results[:-1]} == {"pending"} and results[-1].outcome == "accepted"


class MeasuresSeen(CosineScorer):
    """Cosine thresholds that keep the quality measures of every probe they decide."""

    def __init__(self) -> None:
        super().__init__(THRESHOLDS)
        self.seen: list[dict[str, float]] = []

    def decide_many(self, cosines, level, probe, template_stats):
        self.seen.append(dict(probe.measures))
        return super().decide_many(cosines, level, probe, template_stats)


def test_the_final_decision_carries_the_frontal_frames_quality_measures(tmp_path, stub):
    scorer = MeasuresSeen()  # a quality-aware calibration refuses a probe without its measures
    with Service(tmp_path / "store.db", caller="test", challenge_seed=SEED, pipelines={"face": stub},
                 scorers={"face": scorer}) as service:
        service.enroll("Ann", face=stub.frame(real_head(), person(0)))
        results = feed_all(service.live_session("Ann"), head_frames(stub, MOVES))
    assert results[-1].outcome == "accepted" and scorer.seen[-1] == {"faces": 1.0}


def test_forty_frames_of_a_still_photo_are_never_accepted(service, stub):
    photo = stub.frame(flat_photo(), person(0))
    results = feed_all(service.live_session("Ann"), [photo] * 40)
    assert "accepted" not in {r.outcome for r in results}
    failed = [r for r in results if r.outcome == "rejected"]
    assert failed and "failed: not done within 6 s" in failed[0].reason


def test_a_photo_turned_and_tilted_by_hand_is_never_accepted(service, stub):
    angles = [(0, 0)] * 5 + [(40, 0), (-40, 0), (0, 35), (0, -35), (30, 30), (0, 0)] * 6
    frames = [stub.frame(flat_photo(yaw, pitch, distance=300), person(0, 0.05, i)) for i, (yaw, pitch) in enumerate(angles)]
    assert "accepted" not in {r.outcome for r in feed_all(service.live_session("Ann"), frames)}


def test_moves_in_another_order_are_refused_with_the_failed_step(service, stub):
    results = feed_all(service.live_session("Ann"), head_frames(stub, tuple(reversed(MOVES))))
    assert "accepted" not in {r.outcome for r in results}
    refused = next(r for r in results if r.outcome == "rejected")
    assert refused.reason.startswith(f"step 1 of {len(MOVES)}") and "instead" in refused.reason


def test_someone_else_is_rejected_before_any_prompt(service, stub):
    results = feed_all(service.live_session("Ann"), head_frames(stub, MOVES, who=1)[:3])
    assert [r.outcome for r in results] == ["rejected"] * 3 and results[0].reason == "score below threshold"


def test_identify_mode_names_the_person_after_the_moves(service, stub):
    results = feed_all(service.live_session(None), head_frames(stub, MOVES, who=1))
    assert results[-1].outcome == "accepted" and results[-1].identity == "Bob"
    named = [a for a in service.audit() if a.action == "identify"]
    assert [(a.identity, a.decision) for a in named] == [("Bob", "accepted")]


def test_a_face_that_jumps_changes_or_has_company_starts_again(service, stub):
    frames = head_frames(stub, MOVES)
    session = service.live_session("Ann")
    feed_all(session, frames[:6])
    jumped = session.feed(stub.frame(real_head(), person(0), box=(0, 0, 100, 120)), 3.0)
    assert jumped.outcome == "retry" and "jumped" in jumped.reason
    feed_all(session, frames[:6], start=4.0)
    other = session.feed(stub.frame(real_head(), person(1)), 7.0)
    assert other.outcome == "retry" and "another face" in other.reason
    two = session.feed(stub.frame(real_head(), person(0), faces=2), 7.5)
    assert two.outcome == "retry" and "several faces" in two.reason
    lost = session.feed(PosePipeline.indexed(0), 8.0)
    assert lost.outcome == "retry" and "no face" in lost.reason
    assert feed_all(session, frames, start=9.0)[-1].outcome == "accepted"  # a clean attempt still passes


def test_a_failed_attempt_is_shown_then_a_new_one_starts(service, stub):
    photo = stub.frame(real_head(), person(0))
    session = service.live_session("Ann")
    results = feed_all(session, [photo] * 30)
    outcomes = [r.outcome for r in results]
    first = outcomes.index("rejected")
    assert outcomes[first : first + 6] == ["rejected"] * 6  # shown for 3 s
    assert outcomes[first + 6] == "pending"


def test_a_replayed_enrollment_frame_is_refused_as_a_replay(service, stub):
    service._replay_thresholds["face"] = 0.999  # the stub has no measured threshold
    poses = [{}] * 5 + [p for move in MOVES for p in (POSES[move], POSES[move], {})]
    frames = [stub.frame(real_head(**pose), person(0)) for pose in poses]  # the enrolled vector itself
    last = feed_all(service.live_session("Ann"), frames)[-1]
    assert last.outcome == "rejected" and last.reason.startswith("replay suspected: a near-identical copy")


def test_strict_mode_refuses_frontal_frames_that_never_change(service, stub):
    poses = [{}] * 5 + [p for move in MOVES for p in (POSES[move], POSES[move], {})]
    frames = [stub.frame(real_head(**pose), person(0, 0.05, 1)) for pose in poses]
    last = feed_all(service.live_session("Ann", strict=True), frames)[-1]
    assert last.outcome == "rejected" and "static image suspected" in last.reason


def test_without_the_challenge_a_frame_is_decided_and_its_answer_held_while_the_face_stays(service, stub):
    session = service.live_session("Ann", challenge=False)
    ann, bob = stub.frame(flat_photo(), person(0, 0.05)), stub.frame(flat_photo(), person(1))
    first = session.feed(ann, 0.0)
    assert first.outcome == "accepted" and not first.held
    held = session.feed(ann, 0.2)
    assert held.outcome == "accepted" and held.held and held.decision == first.decision
    assert session.feed(bob, 0.6).outcome == "rejected"  # recheck_seconds (0.5 s) later: decided again
    refused = [session.feed(ann, 0.6 + 0.5 * step) for step in range(1, 7)]
    assert [(r.outcome, r.held) for r in refused] == [("rejected", True)] * 5 + [("accepted", False)]  # 3 s held
    moved = session.feed(stub.frame(flat_photo(), person(1), box=(0, 0, 100, 120)), 4.0)
    assert moved.outcome == "rejected" and not moved.held  # a face elsewhere ends the hold
    lost = session.feed(PosePipeline.indexed(0), 4.1)
    assert lost.outcome == "retry" and "no face" in lost.reason
    assert session.feed(stub.frame(flat_photo(), person(0), box=(0, 0, 100, 120)), 4.2).held  # back where it was


def test_the_settings_turn_the_challenge_off_and_fix_the_seed(tmp_path, stub, monkeypatch):
    monkeypatch.setenv("VERIFY_LIVE_CHALLENGE", "0")
    with Service(tmp_path / "s.db", pipelines={"face": stub}, scorers=SCORERS) as plain:
        assert plain.settings.live_challenge is False and plain.live_session(None).config.challenge is None
    monkeypatch.setenv("VERIFY_LIVE_CHALLENGE", "1")
    monkeypatch.setenv("VERIFY_CHALLENGE_SEED", "3")
    with Service(tmp_path / "s.db", pipelines={"face": stub}, scorers=SCORERS) as seeded:
        assert seeded.settings.challenge_seed == 3
        assert seeded.live_session(None, mirrored=True).config.challenge.mirrored


def test_strict_mode_refuses_an_accepted_attempt_showing_a_shipped_screen_cue(service, stub):
    from verify.screen_cues import ScreenCues

    service._screen_cues = ScreenCues({"fine_detail": 0.5})  # as if a cue had been kept: flat frames fail it
    poses = [{}] * 5 + [p for move in MOVES for p in (POSES[move], POSES[move], {})]
    frames = [stub.frame(real_head(**pose), person(0, 0.05, seed)) for seed, pose in enumerate(poses)]
    last = feed_all(service.live_session("Ann", strict=True), frames)[-1]
    assert last.outcome == "rejected" and last.reason.startswith("screen or print replay suspected: fine detail")
