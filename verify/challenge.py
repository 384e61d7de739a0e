"""Active liveness: a random sequence of head moves, measured from the five MTCNN landmarks.

Head pose from five points (left eye, right eye, nose tip, left and right mouth corner, in
image pixels): the nose tip is written in the affine frame of the other four,

    nose - eye_mid = yaw * (right_eye - left_eye) + pitch * (mouth_mid - eye_mid)

so ``yaw`` is the nose's offset from the eyes' midpoint over the eye distance and ``pitch`` its
position between the eye line (0) and the mouth line (1); ``scale`` is the eye distance in
pixels. The nose tip stands out of the face, so a head turned by 25 degrees moves ``yaw`` by
about 0.2. A flat photo turned, tilted, rolled or moved keeps its five points on one plane, and
affine coordinates on a plane do not change under any affine map: its ``yaw`` and ``pitch`` move
only by perspective, a few hundredths (``tests/verify/test_challenge.py`` measures both).

:class:`Challenge` is the state machine of one attempt: hold a frontal face (the neutral pose of
this session), then for each prompted move reach it before its deadline and look back at the
camera. A clear move of another kind (turning right when asked to turn left, looking up when
asked to turn) fails the step. Pure NumPy on landmark arrays; the caller checks that every frame
holds one continuous face of the same person (:func:`boxes_continuous`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from verify.errors import ConfigError, InputError

Move = Literal["turn_left", "turn_right", "look_up", "look_down", "come_closer"]
MOVES: tuple[Move, ...] = ("turn_left", "turn_right", "look_up", "look_down", "come_closer")
PROMPTS: dict[str, str] = {
    "turn_left": "turn your head to your left", "turn_right": "turn your head to your right",
    "look_up": "look up", "look_down": "look down", "come_closer": "come closer to the camera",
}
ROTATIONS = frozenset({"turn_left", "turn_right", "look_up", "look_down"})
Phase = Literal["neutral", "move", "return", "passed", "failed"]


class LandmarkError(InputError):
    """Landmarks that are not five finite points, or whose eyes and mouth are degenerate."""


@dataclass(frozen=True)
class HeadPose:
    """Head pose of one frame (see the module docstring).

    Attributes:
        yaw: the nose's offset from the eyes' midpoint along the eye axis, over the eye distance;
            positive towards the image's right.
        pitch: the nose's position from the eye line (0) to the mouth line (1); grows looking down.
        scale: the eye distance in pixels.
    """

    yaw: float
    pitch: float
    scale: float


def head_pose(landmarks: np.ndarray) -> HeadPose:
    """The :class:`HeadPose` of ``(5, 2)`` landmarks in MTCNN order, in pixels.

    Raises:
        LandmarkError: not five finite points, or the eyes and mouth are collinear.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise LandmarkError(f"landmarks must be 5 finite (x, y) points, got shape {points.shape}")
    left_eye, right_eye, nose, left_mouth, right_mouth = points
    eyes, mouth = (left_eye + right_eye) / 2, (left_mouth + right_mouth) / 2
    basis = np.column_stack([right_eye - left_eye, mouth - eyes])
    scale = float(np.linalg.norm(right_eye - left_eye))
    if scale == 0 or abs(np.linalg.det(basis)) < 1e-6 * scale**2:
        raise LandmarkError("the eyes and the mouth of these landmarks are collinear")
    yaw, pitch = np.linalg.solve(basis, nose - eyes)
    return HeadPose(float(yaw), float(pitch), scale)


def boxes_continuous(previous: Sequence[float], current: Sequence[float], max_shift: float = 0.6,
                     max_zoom: float = 1.8) -> bool:
    """Whether face box ``current`` ``(x1, y1, x2, y2)`` can be the face of box ``previous`` one frame later.

    Its centre moved by at most ``max_shift`` box widths and its width changed by at most a factor
    ``max_zoom``: a head moving and turning, not a face swapped for another in another place.
    """
    (px1, py1, px2, py2), (cx1, cy1, cx2, cy2) = previous, current
    width, new_width = px2 - px1, cx2 - cx1
    if width <= 0 or new_width <= 0:
        return False
    shift = np.hypot((cx1 + cx2 - px1 - px2) / 2, (cy1 + cy2 - py1 - py2) / 2)
    return bool(shift <= max_shift * width and 1 / max_zoom <= new_width / width <= max_zoom)


@dataclass(frozen=True)
class ChallengeConfig:
    """Thresholds and timing of the challenge.

    Attributes:
        min_moves, max_moves: how many distinct moves are prompted (at least one is a rotation).
        turn: change of ``yaw`` from the neutral pose that counts as a turn.
        tilt: change of ``pitch`` from the neutral pose that counts as looking up or down.
        closer: ratio of ``scale`` to the neutral one that counts as coming closer.
        frontal_yaw: largest ``|yaw|`` of a neutral frame (looking at the camera).
        steady: largest spread of ``yaw`` and ``pitch`` among the neutral frames.
        back: largest change of ``yaw`` and ``pitch`` from the neutral pose of a frame that
            counts as looking back at the camera (a fraction of ``turn`` and ``tilt``).
        neutral_seconds: how long the frontal face is held before the first prompt.
        neutral_frames: at least this many frames make the neutral pose (their median).
        step_seconds: deadline of each move, and of looking back at the camera after it.
        mirrored: frames are mirror images (a webcam preview): the person's left is the image's left.
    """

    min_moves: int = 2
    max_moves: int = 3
    turn: float = 0.15
    tilt: float = 0.10
    closer: float = 1.25
    frontal_yaw: float = 0.15
    steady: float = 0.06
    back: float = 0.5
    neutral_seconds: float = 1.5
    neutral_frames: int = 3
    step_seconds: float = 6.0
    mirrored: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.min_moves <= self.max_moves <= len(MOVES):
            raise ConfigError(f"moves must satisfy 1 <= min <= max <= {len(MOVES)}, got "
                              f"{self.min_moves}..{self.max_moves}")
        for name in ("turn", "tilt", "frontal_yaw", "steady", "back", "step_seconds"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"challenge {name} must be positive, got {getattr(self, name)!r}")
        if not self.closer > 1:
            raise ConfigError(f"challenge closer must be above 1, got {self.closer!r}")
        if self.neutral_seconds < 0 or self.neutral_frames < 1:
            raise ConfigError("challenge neutral_seconds must be >= 0 and neutral_frames >= 1")


def random_moves(config: ChallengeConfig, rng: random.Random) -> tuple[Move, ...]:
    """A random sequence of distinct moves, ``min_moves`` to ``max_moves`` long, with a rotation.

    Coming closer is the only move a flat photo can make, so a sequence never consists of it alone.
    """
    while True:
        moves = tuple(rng.sample(MOVES, rng.randint(config.min_moves, config.max_moves)))
        if any(move in ROTATIONS for move in moves):
            return moves


@dataclass(frozen=True)
class ChallengeStatus:
    """Where the challenge stands after a frame.

    Attributes:
        phase: ``"neutral"`` (hold still, looking at the camera), ``"move"`` (make the prompted
            move), ``"return"`` (look back at the camera), ``"passed"`` or ``"failed"``.
        step: the current move's index (0-based; ``len(moves)`` once passed).
        moves: the prompted sequence.
        prompt: what to tell the person now.
        progress: how far the current move has got towards its threshold (0..1).
        frontal: this frame shows the neutral pose (it may be used for the decision).
        reason: why the challenge failed; empty otherwise.
    """

    phase: Phase
    step: int
    moves: tuple[Move, ...]
    prompt: str
    progress: float = 0.0
    frontal: bool = False
    reason: str = ""

    @property
    def marks(self) -> str:
        """Progress marks, one per move: ``[x] [>] [ ]`` (done, current, to come)."""
        done = len(self.moves) if self.phase == "passed" else self.step
        return " ".join("[x]" if i < done else "[>]" if i == done and self.phase != "failed" else "[ ]"
                        for i in range(len(self.moves)))


@dataclass
class _Neutral:
    times: list[float] = field(default_factory=list)
    poses: list[HeadPose] = field(default_factory=list)


class Challenge:
    """One challenge attempt: feed it the head pose of every frame, in order, with its time (s)."""

    def __init__(self, moves: Sequence[Move], config: ChallengeConfig = ChallengeConfig()) -> None:
        unknown = [move for move in moves if move not in MOVES]
        if unknown or not moves:
            raise ConfigError(f"a challenge needs moves among {', '.join(MOVES)}, got {list(moves)!r}")
        self.moves: tuple[Move, ...] = tuple(moves)
        self.config = config
        self.neutral: HeadPose | None = None
        self._window = _Neutral()
        self._phase: Phase = "neutral"
        self._step = 0
        self._since = 0.0
        self._reason = ""

    @property
    def phase(self) -> Phase:
        """The current phase."""
        return self._phase

    def status(self) -> ChallengeStatus:
        """Where the challenge stands, without a new frame (one whose pose could not be measured)."""
        return self._status()

    def observe(self, pose: HeadPose, time_s: float) -> ChallengeStatus:
        """Advance with one frame's pose at ``time_s`` seconds (any clock, increasing)."""
        if self._phase in ("passed", "failed"):
            return self._status()
        if self._phase == "neutral":
            return self._observe_neutral(pose, time_s)
        yaw, pitch, zoom = self._relative(pose, self.neutral)
        if time_s - self._since > self.config.step_seconds:
            what = "did not look back at the camera" if self._phase == "return" else "not done"
            return self._fail(f"{what} within {self.config.step_seconds:g} s")
        if self._phase == "return":
            if max(abs(yaw) / self.config.turn, abs(pitch) / self.config.tilt) <= self.config.back:
                self._step += 1
                if self._step == len(self.moves):
                    self._phase = "passed"
                    return self._status(frontal=True)
                self._phase, self._since = "move", time_s
                return self._status(frontal=True)
            return self._status()
        reached = self._progress(yaw, pitch, zoom)
        move = self.moves[self._step]
        if reached[move] >= 1.0:
            self._phase, self._since = "return", time_s
            return self._status(progress=1.0)
        wrong = [other for other in ROTATIONS if other != move and reached[other] >= 1.0]
        if wrong:
            return self._fail(f"you {_PAST[wrong[0]]} instead")
        return self._status(progress=min(max(reached[move], 0.0), 1.0))

    def _observe_neutral(self, pose: HeadPose, time_s: float) -> ChallengeStatus:
        window, config = self._window, self.config
        if abs(pose.yaw) > config.frontal_yaw:
            self._window = _Neutral()
            return self._status()
        window.times.append(time_s)
        window.poses.append(pose)
        while not self._steady(window.poses):
            del window.times[0], window.poses[0]
        held = window.times[-1] - window.times[0]
        if len(window.poses) >= config.neutral_frames and held >= config.neutral_seconds:
            self.neutral = HeadPose(*(float(np.median([getattr(p, name) for p in window.poses]))
                                      for name in ("yaw", "pitch", "scale")))
            self._phase, self._since = "move", time_s
        return self._status(frontal=True)

    def _steady(self, poses: list[HeadPose]) -> bool:
        yaws, pitches = [p.yaw for p in poses], [p.pitch for p in poses]
        return max(np.ptp(yaws), np.ptp(pitches)) <= self.config.steady

    def _relative(self, pose: HeadPose, neutral: HeadPose) -> tuple[float, float, float]:
        """Yaw towards the person's left, pitch downwards, and zoom, relative to the neutral pose."""
        yaw = pose.yaw - neutral.yaw
        return (-yaw if self.config.mirrored else yaw), pose.pitch - neutral.pitch, pose.scale / neutral.scale

    def _progress(self, yaw: float, pitch: float, zoom: float) -> dict[str, float]:
        config = self.config
        return {"turn_left": yaw / config.turn, "turn_right": -yaw / config.turn, "look_up": -pitch / config.tilt,
                "look_down": pitch / config.tilt, "come_closer": (zoom - 1) / (config.closer - 1)}

    def _fail(self, why: str) -> ChallengeStatus:
        self._phase = "failed"
        self._reason = f"step {self._step + 1} of {len(self.moves)} ({PROMPTS[self.moves[self._step]]}) failed: {why}"
        return self._status()

    def _status(self, progress: float = 0.0, frontal: bool = False) -> ChallengeStatus:
        if self._phase == "neutral":
            prompt = "look straight at the camera and hold still"
        elif self._phase == "move":
            prompt = PROMPTS[self.moves[self._step]]
        elif self._phase == "return":
            prompt = "now look back at the camera"
        elif self._phase == "passed":
            prompt = "challenge passed"
        else:
            prompt = self._reason
        return ChallengeStatus(self._phase, self._step, self.moves, prompt, progress, frontal, self._reason)


_PAST = {"turn_left": "turned to your left", "turn_right": "turned to your right", "look_up": "looked up",
         "look_down": "looked down"}
