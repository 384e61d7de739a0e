"""Live webcam verification: a session a front end feeds frames into, one answer per frame.

Frames are not counted one by one towards the lockout (a stranger in view would lock the owner
out within seconds), but an identity that is locked out cannot be verified live either, and a
caller that is throttled cannot identify live. In "Who is this?" mode a named person is logged as
an identification attempt each time the name changes, so the audit log shows who was recognised
without one row per frame. With ``strict`` an accepted frame counts only once a short window of
frames shows natural variation (:mod:`verify.liveness`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from enrollment.enroll import enrolled_template, with_cohort_stats
from enrollment.identify import identify
from enrollment.ratelimit import ensure_not_locked, ensure_not_throttled, record_identification
from verify.errors import FaceTooSmallError, NoFaceError, VerifyError
from verify.io import check_image_array
from verify.liveness import LivenessCheck
from verify.scoring import Decision, Outcome

if TYPE_CHECKING:
    from enrollment.service import Service


@dataclass(frozen=True)
class FrameResult:
    """The answer to one frame.

    Attributes:
        outcome: ``"accepted"``, ``"rejected"`` or ``"retry"`` (no usable face counts as retry).
        identity: the claimed person, or the one recognised; ``None`` when nobody was.
        decision: the score and threshold, when a face was scored.
        reason: what to do or why it was not accepted; empty when accepted.
        location: the face box ``(x1, y1, x2, y2)`` in pixels, when a face was found.
        latency_ms: time spent on this frame.
    """

    outcome: Outcome
    identity: str | None
    decision: Decision | None
    reason: str
    location: tuple[float, float, float, float] | None
    latency_ms: float


class LiveSession:
    """Verify (or identify, when ``identity`` is ``None``) one stream of webcam frames."""

    def __init__(self, service: Service, identity: str | None, level: str, caller: str, strict: bool) -> None:
        self.service = service
        self.identity = identity
        self.level = level
        self.caller = caller
        self.liveness = LivenessCheck() if strict else None
        self._last_named: str | None = None

    def feed(self, frame: np.ndarray) -> FrameResult:
        """Decide one ``(H, W, 3)`` uint8 RGB frame.

        Raises:
            InputError: ``frame`` is not an image array.
        """
        start = time.perf_counter()
        frame = check_image_array(frame, "webcam frame")
        verifier = self.service.verifier("face", self.level)
        try:
            sample = verifier.pipeline.embed(frame)
        except VerifyError as error:
            if self.liveness is not None:
                self.liveness.update(None, False)
            return FrameResult("retry", self.identity, None, _ask(error), None, _ms(start))
        try:
            decision, named = self._decide(verifier, sample)
        except VerifyError as error:
            return FrameResult("retry", self.identity, None, str(error), sample.location, _ms(start))
        outcome, reason = decision.outcome, decision.reason
        if self.liveness is not None:
            status = self.liveness.update(sample.vector, decision.accepted)
            if decision.accepted and status.state != "live":
                outcome, reason = ("retry" if status.state == "collecting" else "rejected"), status.message
        return FrameResult(outcome, named, decision, reason, sample.location, _ms(start))

    def _decide(self, verifier, sample) -> tuple[Decision, str | None]:
        store = self.service.store
        if self.identity is not None:
            template = with_cohort_stats(store, verifier, enrolled_template(store, verifier.pipeline, self.identity))
            ensure_not_locked(store, template.identity, "face", self.service.settings.lockout, caller=self.caller)
            return verifier.decide(template.embedding, sample, template.cohort_stats), self.identity
        ensure_not_throttled(store, self.caller, "face", self.service.settings.throttle)
        found = identify(store, verifier, sample)
        if found.identity is not None and found.identity != self._last_named:
            record_identification(store, self.caller, "face", found.identity, found.decision)
        self._last_named = found.identity
        return found.decision, found.identity


ASK = {NoFaceError: "no face found: look at the camera", FaceTooSmallError: "face too small: come closer"}


def _ask(error: VerifyError) -> str:
    """What a person in front of the camera should do about a frame that could not be scored."""
    return ASK.get(type(error), str(error))


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
