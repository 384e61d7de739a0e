"""Live webcam verification: a session a front end feeds frames into, one answer per frame.

With the challenge (the default) an attempt runs a random sequence of head moves
(:mod:`verify.challenge`): hold a frontal face, make each prompted move before its deadline, look
back at the camera. Every frame must hold exactly one face, continuous with the previous frame's
box and close enough to the attempt's first frame to be the same person; a break starts the
attempt again. Only once the moves are done is the person decided, from the attempt's frontal
frames (their mean embedding), and checked against the replay guard. A still photo, turned or
tilted by hand, never completes the moves (its nose does not move relative to its eyes).

Frames are not counted one by one towards the lockout (a stranger in view would lock the owner
out within seconds); each *completed* attempt is logged and counted like a photo check. An
identity that is locked out cannot be verified live, and a throttled caller cannot identify
live. Without the challenge (kiosks that cannot prompt), a frame is decided on its own;
``strict`` then accepts only once a few frames show natural variation (:mod:`verify.liveness`),
and with the challenge adds that check to the final decision. Strict mode also refuses an
accepted face whose region shows the shipped screen or print cues (:mod:`verify.screen_cues`);
those cues never accept anything.

An answer holds while the same face stays in view (its box continuous from frame to frame): an
attempt's final answer for ``hold_seconds`` (accepted) or ``show_failure_seconds`` (refused);
without the challenge, an accepted frame for ``recheck_seconds``, after which a frame is decided
again, and a rejected one for ``show_failure_seconds``, so a stranger in view gets one decision
every few seconds, not one per frame. While an answer holds, a frame's face is only located (the
tracked first detector: no alignment, no network), which makes such frames several times
cheaper; a frame without a face does not end the hold, a face elsewhere does.
"""

from __future__ import annotations

import dataclasses

import random
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from enrollment.enroll import decide_template, enrolled_template, with_cohort_stats
from enrollment.identify import identify
from enrollment.ratelimit import (
    ensure_not_locked,
    ensure_not_throttled,
    record_identification,
    record_results,
)
from verify.challenge import (
    Challenge,
    ChallengeConfig,
    ChallengeStatus,
    boxes_continuous,
    head_pose,
    random_moves,
)
from verify.embedding import Embedding
from verify.errors import FaceTooSmallError, NoFaceError, VerifyError
from verify.face.tracking import FaceTracker, TrackingPipeline
from verify.io import check_image_array
from verify.liveness import LivenessCheck, LivenessConfig, max_pairwise_distance
from verify.scorer import evidence
from verify.scoring import Decision, l2_normalize
from verify.screen_cues import face_region

if TYPE_CHECKING:
    from enrollment.service import Service
    from verify.verifier import Verifier

LiveOutcome = Literal["accepted", "rejected", "retry", "pending"]
SAME_PERSON_LEVEL = "low"
"""A frame is the attempt's person when it scores at least this level's retry threshold (FAR 10 %)
against the attempt's first frame: a loose bound, the box continuity does the rest."""


@dataclass(frozen=True)
class LiveConfig:
    """How a live session decides.

    Attributes:
        challenge: the head-move challenge, or ``None`` to decide every frame on its own.
        seed: a fixed seed makes every attempt prompt the same moves (tests, demos): never in
            production, where a recording of those moves would pass.
        show_failure_seconds: how long a failed attempt's answer is shown before a new attempt.
        hold_seconds: how long an accepted answer holds while the same face stays in view.
        recheck_seconds: without the challenge, how long an accepted answer holds while the same
            face stays in view before a frame is decided again.
        strict: also require natural variation between frames (:mod:`verify.liveness`).
    """

    challenge: ChallengeConfig | None = field(default_factory=ChallengeConfig)
    seed: int | None = None
    show_failure_seconds: float = 3.0
    hold_seconds: float = 5.0
    recheck_seconds: float = 0.5
    strict: bool = False


@dataclass(frozen=True)
class FrameResult:
    """The answer to one frame.

    Attributes:
        outcome: ``"accepted"``, ``"rejected"``, ``"retry"`` (no usable face, start again), or
            ``"pending"`` while the challenge runs.
        identity: the claimed person, or the one recognised; ``None`` when nobody was.
        decision: the score and threshold, when a face was scored (during the challenge: this
            frame against the claimed template; at the end: the attempt's frontal frames).
        reason: what to do or why it was not accepted; empty when accepted.
        location: the face box ``(x1, y1, x2, y2)`` in pixels, when a face was found.
        latency_ms: time spent on this frame.
        prompt: what to tell the person now (the challenge's prompt); empty without a challenge.
        challenge: where the challenge stands (moves, step, progress), when one runs.
        held: the answer is an earlier frame's, held while its face stays in view (only this
            frame's face was located).
    """

    outcome: LiveOutcome
    identity: str | None
    decision: Decision | None
    reason: str
    location: tuple[float, float, float, float] | None
    latency_ms: float
    prompt: str = ""
    challenge: ChallengeStatus | None = None
    held: bool = False


@dataclass
class _Attempt:
    """One challenge attempt: its moves and frames so far."""

    challenge: Challenge
    frontal: list[Embedding] = field(default_factory=list)
    anchor: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    regions: list[np.ndarray] = field(default_factory=list)


@dataclass
class _Hold:
    """An answer shown until ``until`` (seconds) while its face, last seen at ``box``, stays in view."""

    result: FrameResult
    until: float
    box: tuple[float, float, float, float]


class LiveSession:
    """Verify (or identify, when ``identity`` is ``None``) one stream of webcam frames."""

    def __init__(self, service: Service, identity: str | None, level: str, caller: str,
                 config: LiveConfig = LiveConfig()) -> None:
        self.service = service
        self.identity = identity
        self.level = level
        self.caller = caller
        self.config = config
        self.liveness = LivenessCheck() if config.strict and config.challenge is None else None
        self._rng = random.Random() if config.seed is None else None
        self._attempt = self._new_attempt() if config.challenge is not None else None
        self._last_named: str | None = None
        self._hold: _Hold | None = None
        self.tracker: FaceTracker | None = None  # follows the face of this session's frames
        self._tracked_pipeline: TrackingPipeline | None = None
        self.last: FrameResult | None = None

    def feed(self, frame: np.ndarray, time_s: float | None = None) -> FrameResult:
        """Decide one ``(H, W, 3)`` uint8 RGB frame, taken at ``time_s`` seconds (default: now); kept as ``last``.

        Raises:
            InputError: ``frame`` is not an image array.
        """
        start = time.perf_counter()
        now = time.monotonic() if time_s is None else float(time_s)
        frame = check_image_array(frame, "webcam frame")
        verifier = self.service.verifier("face", self.level)
        held = self._held(verifier.pipeline, frame, now, start)
        if held is not None:
            self.last = held
            return held
        try:
            sample = self._embed(verifier.pipeline, frame)
        except VerifyError as error:
            self.last = self._no_face(error, start)
            return self.last
        region = face_region(frame, sample.location) if self.config.strict else None
        if self._attempt is None:
            self.last = self._plain(verifier, sample, region, start)
            seconds = {"accepted": self.config.recheck_seconds, "rejected": self.config.show_failure_seconds}
            if self.last.outcome in seconds:
                self._hold_answer(self.last, now + seconds[self.last.outcome])
        else:
            self.last = self._challenged(verifier, sample, region, now, start)
        return self.last

    def _embed(self, pipeline: Any, frame: np.ndarray) -> Embedding:
        """The frame's face, searched around the last frame's first when the pipeline tracks
        (:mod:`verify.face.tracking`); the same alignment and networks either way.

        Strict sessions search every frame whole: they measure how much the embeddings vary
        between frames, and a region's search places the landmarks a little differently from the
        whole frame's (a variation a still photo would show too).
        """
        tracker = self._tracker(pipeline)
        return pipeline.embed(frame) if tracker is None else pipeline.embed_frame(frame, tracker)

    def _tracker(self, pipeline: Any) -> FaceTracker | None:
        """This stream's tracker for ``pipeline``, or ``None`` when frames are searched whole."""
        if self.config.strict or not isinstance(pipeline, TrackingPipeline):
            return None
        if self.tracker is None or self._tracked_pipeline is not pipeline:
            self.tracker, self._tracked_pipeline = pipeline.new_tracker(), pipeline
        return self.tracker

    # --- held answers ---------------------------------------------------------------------------------------
    def _hold_answer(self, result: FrameResult, until: float) -> None:
        if result.location is not None:
            self._hold = _Hold(result, until, result.location)

    def _held(self, pipeline: Any, frame: np.ndarray, now: float, start: float) -> FrameResult | None:
        """This frame's answer while an answer holds (see the module docstring), or ``None`` when
        none does (any more): the frame is then decided, as the first of a new attempt."""
        hold = self._hold
        if hold is None:
            return None
        if now < hold.until:
            location = self._locate(pipeline, frame)
            if isinstance(location, VerifyError):
                return FrameResult("retry", self.identity, None, _ask(location), None, _ms(start))
            if boxes_continuous(hold.box, location):
                hold.box = location
                return replace(hold.result, location=location, latency_ms=_ms(start), held=True)
        self._hold = None
        if self._attempt is not None:
            self._attempt = self._new_attempt()
        return None

    def _locate(self, pipeline: Any, frame: np.ndarray) -> tuple[float, float, float, float] | VerifyError:
        """Where the frame's face is: found by the tracked first detector alone when the pipeline
        tracks, else by the whole pipeline."""
        try:
            if isinstance(pipeline, TrackingPipeline):
                box = pipeline.locate_frame(frame, self._tracker(pipeline)).box
                return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
            location = pipeline.embed(frame).location
        except VerifyError as error:
            return error
        return location if location is not None else NoFaceError("no face found in the image")

    # --- one frame, one decision (no challenge) -------------------------------------------------------------
    def _plain(self, verifier: Verifier, sample: Embedding, region: np.ndarray | None, start: float) -> FrameResult:
        try:
            decision, named = self._decide_frame(verifier, sample)
        except VerifyError as error:
            return FrameResult("retry", self.identity, None, str(error), sample.location, _ms(start))
        if decision.accepted and named is not None:
            decision = self._unless_replay(named, [sample.vector], decision)
        if region is not None:
            decision = self._unless_screen(decision, [region])
        outcome, reason = decision.outcome, decision.reason
        if self.liveness is not None:
            status = self.liveness.update(sample.vector, decision.accepted)
            if decision.accepted and status.state != "live":
                outcome, reason = ("retry" if status.state == "collecting" else "rejected"), status.message
        return FrameResult(outcome, named, decision, reason, sample.location, _ms(start))

    def _decide_frame(self, verifier: Verifier, sample: Embedding) -> tuple[Decision, str | None]:
        store = self.service.store
        if self.identity is not None:
            return self._claimed_decision(verifier, sample), self.identity
        ensure_not_throttled(store, self.caller, "face", self.service.settings.throttle)
        found = identify(store, verifier, sample)
        if found.identity is not None and found.identity != self._last_named:
            record_identification(store, self.caller, "face", found.identity, found.decision)
        self._last_named = found.identity
        return found.decision, found.identity

    def _claimed_decision(self, verifier: Verifier, sample: Embedding) -> Decision:
        store = self.service.store
        template = with_cohort_stats(store, verifier, enrolled_template(store, verifier.pipeline, self.identity))
        ensure_not_locked(store, template.identity, "face", self.service.settings.lockout, caller=self.caller)
        return decide_template(verifier, template, sample)

    def _unless_replay(self, named: str, vectors: list[np.ndarray], decision: Decision) -> Decision:
        why = self.service.replay_guard("face").find(named, None, vectors)
        return dataclasses.replace(decision, outcome="rejected", reason=why) if why else decision

    # --- the challenge ----------------------------------------------------------------------------------
    def _new_attempt(self) -> _Attempt:
        config = self.config.challenge
        rng = self._rng if self._rng is not None else random.Random(self.config.seed)
        return _Attempt(Challenge(random_moves(config, rng), config))

    def _reset(self) -> None:
        """A new attempt: the same moves while none was prompted yet, else new ones."""
        challenge = self._attempt.challenge
        self._attempt = (_Attempt(Challenge(challenge.moves, challenge.config)) if challenge.phase == "neutral"
                         else self._new_attempt())

    def _restart(self, sample: Embedding | None, reason: str, start: float) -> FrameResult:
        """Start a new attempt and ask to start again."""
        self._reset()
        location = sample.location if sample is not None else None
        return FrameResult("retry", self.identity, None, reason, location, _ms(start),
                           prompt="look straight at the camera and hold still")

    def _no_face(self, error: VerifyError, start: float) -> FrameResult:
        if self._attempt is None:
            return FrameResult("retry", self.identity, None, _ask(error), None, _ms(start))
        return self._restart(None, _ask(error) + "; the challenge starts again", start)

    def _challenged(self, verifier: Verifier, sample: Embedding, region: np.ndarray | None, now: float,
                    start: float) -> FrameResult:
        attempt = self._attempt
        if sample.measures.get("faces", 1.0) > 1:
            return self._restart(sample, "several faces in view: only the person being verified, please", start)
        if attempt.box is not None and not boxes_continuous(attempt.box, sample.location):
            return self._restart(sample, "the face jumped between frames: start again", start)
        try:
            decision = self._claimed_decision(verifier, sample) if self.identity is not None else None
        except VerifyError as error:
            return FrameResult("retry", self.identity, None, str(error), sample.location, _ms(start))
        if attempt.anchor is not None and not self._same_person(verifier, attempt.anchor, sample):
            return self._restart(sample, "another face appeared: start again", start)
        if decision is not None and decision.outcome == "rejected" and attempt.challenge.phase == "neutral":
            self._reset()
            return FrameResult("rejected", self.identity, decision, decision.reason, sample.location, _ms(start))
        attempt.box = sample.location
        if sample.landmarks is None:  # the pose detector missed this face: the frame cannot move the challenge
            status = attempt.challenge.status()
            return FrameResult("pending", self.identity, decision, status.prompt, sample.location, _ms(start),
                               prompt=status.prompt, challenge=status)
        status = attempt.challenge.observe(head_pose(sample.landmarks), now)
        if status.frontal:
            attempt.frontal.append(sample)
            attempt.anchor = attempt.frontal[0].vector
            if region is not None:
                attempt.regions = [*attempt.regions[-1:], region]
        if status.phase == "failed":
            return self._finish(FrameResult("rejected", self.identity, None, status.reason, sample.location,
                                            _ms(start), challenge=status), now)
        if status.phase == "passed":
            return self._finish(self._final(verifier, attempt, status, sample.location, start), now)
        return FrameResult("pending", self.identity, decision, status.prompt, sample.location, _ms(start),
                           prompt=status.prompt, challenge=status)

    def _same_person(self, verifier: Verifier, anchor: np.ndarray, sample: Embedding) -> bool:
        """Whether ``sample`` is the attempt's first face: inside the retry band of the low level or above."""
        loose = verifier.at_level(SAME_PERSON_LEVEL)
        return evidence(loose.decide(anchor, sample)) >= loose.operating_point.retry_threshold

    def _finish(self, result: FrameResult, now: float) -> FrameResult:
        """Show ``result`` for a while (held while the same face stays in view)."""
        seconds = self.config.hold_seconds if result.outcome == "accepted" else self.config.show_failure_seconds
        self._hold_answer(result, now + seconds)
        if self._hold is None:  # no box to follow: the next frame starts a new attempt
            self._attempt = self._new_attempt()
        return result

    def _final(self, verifier: Verifier, attempt: _Attempt, status: ChallengeStatus,
               location: tuple[float, float, float, float] | None, start: float) -> FrameResult:
        """The decision on the attempt's frontal frames, once the moves are done; logged."""
        vectors = np.stack([frame.vector for frame in attempt.frontal])
        probe = Embedding(l2_normalize(vectors.mean(axis=0)), attempt.frontal[-1].quality_issues,
                          measures=_mean_measures(attempt.frontal))
        try:
            decision, named = self._final_decision(verifier, probe, vectors, attempt.regions)
        except VerifyError as error:
            return FrameResult("retry", self.identity, None, str(error), location, _ms(start), challenge=status)
        reason = decision.reason or f"live: {len(status.moves)} moves done"
        return FrameResult(decision.outcome, named, decision, reason, location, _ms(start),
                           prompt=status.prompt, challenge=status)

    def _final_decision(self, verifier: Verifier, probe: Embedding, vectors: np.ndarray,
                        regions: list[np.ndarray]) -> tuple[Decision, str | None]:
        store, settings = self.service.store, self.service.settings
        if self.identity is None:
            ensure_not_throttled(store, self.caller, "face", settings.throttle)
            found = identify(store, verifier, probe)
            decision, named = found.decision, found.identity
            if named is not None:
                decision = self._passive(self._unless_replay(named, list(vectors), decision), vectors, regions)
                named = named if decision.accepted else None
            record_identification(store, self.caller, "face", named, decision)
            return decision, named
        decision = self._passive(self._unless_replay(self.identity, list(vectors),
                                                     self._claimed_decision(verifier, probe)), vectors, regions)
        (answer,) = record_results(store, self.identity, "face", [decision], settings.lockout, caller=self.caller)
        if isinstance(answer, VerifyError):
            raise answer
        return answer, self.identity

    def _passive(self, decision: Decision, vectors: np.ndarray, regions: list[np.ndarray]) -> Decision:
        """In strict mode, refuse an accepted attempt whose frontal frames do not vary naturally or
        show screen or print cues; the cues never accept anything."""
        if not (self.config.strict and decision.accepted):
            return decision
        if max_pairwise_distance(vectors) < LivenessConfig().min_variation:
            return dataclasses.replace(decision, outcome="rejected",
                                       reason="static image suspected: the face does not change between frames")
        return self._unless_screen(decision, regions)

    def _unless_screen(self, decision: Decision, regions: list[np.ndarray]) -> Decision:
        """``decision``, or a rejection when an accepted face region shows the shipped screen/print cues."""
        if not decision.accepted:
            return decision
        cues = self.service.screen_cues()
        found = [cue for region in regions for cue in cues.suspicious(region)]
        if found:
            return dataclasses.replace(decision, outcome="rejected",
                                       reason=f"screen or print replay suspected: {found[0]}")
        return decision


ASK = {NoFaceError: "no face found: look at the camera", FaceTooSmallError: "face too small: come closer"}


def _ask(error: VerifyError) -> str:
    """What a person in front of the camera should do about a frame that could not be scored."""
    return ASK.get(type(error), str(error))


def _mean_measures(frames: list[Embedding]) -> dict[str, float]:
    """The mean of each quality measure every frame has: the measures of their mean embedding (a
    quality-aware calibration needs them)."""
    names = set.intersection(*(set(frame.measures) for frame in frames))
    return {name: float(np.mean([frame.measures[name] for frame in frames])) for name in sorted(names)}


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
