"""Live microphone verification: audio chunks in, a running decision on a rolling window of speech.

A front end feeds the microphone's chunks as they arrive. The session keeps the last
``window_seconds`` of audio and, whenever ``step_seconds`` of new audio has arrived, runs the voice
pipeline on that window (its speech detection, trimming and quality rules). From
``min_speech_seconds`` of speech on it shows the running decision and score (outcome still
"pending"); it decides once the window holds ``final_speech_seconds`` of speech. Every window is
checked against the replay guard, which refuses at once a near-identical copy of an enrollment
recording. Deciding on 4 s rather than 2 s is what lets the guard see such a copy: a 2.5 s
part of a 4 s enrollment clip scores only 0.95-0.99 against the whole clip's embedding, below the
near-identical threshold (0.986), while the whole clip scores 1.0. The final answer is logged
and counted towards the lockout like a clip check, then kept until :meth:`LiveVoiceSession.reset`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from enrollment.enroll import decide_template, enrolled_template, with_cohort_stats
from enrollment.identify import identify
from enrollment.live import LiveOutcome
from enrollment.ratelimit import (
    ensure_not_locked,
    ensure_not_throttled,
    record_identification,
    record_results,
)
from verify.errors import ConfigError, NoSpeechError, VerifyError
from verify.io import check_waveform
from verify.replay import REPLAY_REASON
from verify.scoring import Decision

SPEECH_RATE = 16_000
"""Sample rate of the trimmed speech a voice embedding's ``preview`` holds (Hz)."""

if TYPE_CHECKING:
    from enrollment.service import Service
    from verify.embedding import Embedding
    from verify.verifier import Verifier


@dataclass(frozen=True)
class VoiceStreamConfig:
    """Rolling-window settings (seconds).

    Attributes:
        window_seconds: audio kept and verified: 10 s, so that a person who pauses between phrases
            reaches ``final_speech_seconds`` (4 s of speech needs 40 % of the window; a 6 s window
            needed two thirds, and such a stream stayed pending for ever).
        step_seconds: new audio needed before the window is verified again.
        min_speech_seconds: speech in the window before the running decision is shown.
        final_speech_seconds: speech in the window that makes the decision final.
    """

    window_seconds: float = 10.0
    step_seconds: float = 1.0
    min_speech_seconds: float = 2.0
    final_speech_seconds: float = 4.0

    def __post_init__(self) -> None:
        if not 0 < self.step_seconds <= self.window_seconds:
            raise ConfigError(f"step_seconds must be in (0, window_seconds], got {self.step_seconds!r}")
        if not 0 < self.min_speech_seconds <= self.final_speech_seconds <= self.window_seconds:
            raise ConfigError("need 0 < min_speech_seconds <= final_speech_seconds <= window_seconds")


@dataclass(frozen=True)
class VoiceResult:
    """The session's answer after a chunk.

    Attributes:
        outcome: ``"pending"`` until the decision is final, then its outcome (``"retry"`` also
            when the window could not be verified, e.g. a lockout).
        identity: the claimed person, or the one recognised; ``None`` when nobody was.
        decision: the running decision, from ``min_speech_seconds`` of speech on.
        reason: what to do, or why it was not accepted.
        speech_seconds: speech found in the window.
        final: the decision is final (logged); later chunks do not change it.
        latency_ms: time spent on this chunk.
    """

    outcome: LiveOutcome
    identity: str | None
    decision: Decision | None
    reason: str
    speech_seconds: float = 0.0
    final: bool = False
    latency_ms: float = 0.0


class LiveVoiceSession:
    """Verify (or identify, when ``identity`` is ``None``) one microphone stream."""

    def __init__(self, service: Service, identity: str | None, level: str, caller: str,
                 config: VoiceStreamConfig = VoiceStreamConfig()) -> None:
        self.service = service
        self.identity = identity
        self.level = level
        self.caller = caller
        self.config = config
        self.last = VoiceResult("pending", identity, None, "speak: a few seconds of speech are needed")
        self.reset()

    def reset(self) -> None:
        """Forget the audio and any decision: a new attempt."""
        self._buffer = np.zeros(0, np.float32)
        self._rate: int | None = None
        self._new = 0
        self.last = VoiceResult("pending", self.identity, None, "speak: a few seconds of speech are needed")

    def feed(self, samples: np.ndarray, rate: int) -> VoiceResult:
        """Add one chunk of ``(T,)`` or ``(T, C)`` audio at ``rate`` Hz; the running answer.

        Raises:
            DecodeError: the chunk is not audio (bad shape, rate or values).
        """
        start = time.perf_counter()
        if self.last.final:
            return self.last
        chunk = check_waveform(samples, rate, "microphone chunk")
        if self._rate != rate:
            self._buffer, self._rate, self._new = np.zeros(0, np.float32), int(rate), 0
        keep = int(self.config.window_seconds * rate)
        self._buffer = np.concatenate([self._buffer, chunk])[-keep:]
        self._new += len(chunk)
        if self._new < self.config.step_seconds * rate:
            return self.last
        self._new = 0
        self.last = self._verify(start)
        return self.last

    def _verify(self, start: float) -> VoiceResult:
        verifier = self.service.verifier("voice", self.level)
        try:
            sample = verifier.pipeline.embed((self._buffer, self._rate))
        except NoSpeechError:
            return VoiceResult("pending", self.identity, None, "no speech yet: speak", 0.0, False, _ms(start))
        speech = len(sample.preview) / SPEECH_RATE if sample.preview is not None else 0.0
        if speech < self.config.min_speech_seconds:
            return VoiceResult("pending", self.identity, None, f"keep speaking: {speech:.1f} s of speech so far",
                               speech, False, _ms(start))
        try:
            decision, named = self._decide(verifier, sample)
        except VerifyError as error:
            return VoiceResult("retry", self.identity, None, str(error), speech, False, _ms(start))
        if not (decision.reason.startswith(REPLAY_REASON) or speech >= self.config.final_speech_seconds):
            running = f"running decision: {decision.outcome}; keep speaking ({speech:.1f} s of speech)"
            return VoiceResult("pending", named, decision, running, speech, False, _ms(start))
        decision, named = self._finalise(decision, named)
        return VoiceResult(decision.outcome, named, decision, decision.reason, speech, True, _ms(start))

    def _decide(self, verifier: Verifier, sample: Embedding) -> tuple[Decision, str | None]:
        store = self.service.store
        if self.identity is None:
            ensure_not_throttled(store, self.caller, "voice", self.service.settings.throttle)
            found = identify(store, verifier, sample)
            decision, named = found.decision, found.identity
        else:
            template = with_cohort_stats(store, verifier, enrolled_template(store, verifier.pipeline, self.identity))
            ensure_not_locked(store, template.identity, "voice", self.service.settings.lockout, caller=self.caller)
            decision, named = decide_template(verifier, template, sample), self.identity
        if decision.accepted and named is not None:
            why = self.service.replay_guard("voice").find(named, None, [sample.vector])
            if why:
                decision = dataclasses.replace(decision, outcome="rejected", reason=why)
                named = self.identity
        return decision, named

    def _finalise(self, decision: Decision, named: str | None) -> tuple[Decision, str | None]:
        """Log the final decision (1:1: counted towards the lockout; 1:N: as an identification)."""
        store = self.service.store
        if self.identity is None:
            record_identification(store, self.caller, "voice", named if decision.accepted else None, decision)
            return decision, named
        (answer,) = record_results(store, self.identity, "voice", [decision], self.service.settings.lockout,
                                   caller=self.caller)
        if isinstance(answer, VerifyError):
            return Decision("retry", decision.score, decision.threshold, str(answer)), self.identity
        return answer, self.identity


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
