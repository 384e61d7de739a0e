"""Live microphone chunks -> the running decision as Markdown; face and voice live together (free of gradio)."""

from __future__ import annotations

import numpy as np

from enrollment.live import FrameResult
from enrollment.live_voice import LiveVoiceSession, VoiceResult
from verify.fusion import fuse_and
from verify.scoring import Decision
from verify_app.handlers import badge


def process_chunk(session: LiveVoiceSession, chunk: tuple[int, np.ndarray]) -> VoiceResult:
    """Feed one ``(rate, samples)`` microphone chunk (as a browser microphone streams it) to ``session``.

    Raises:
        DecodeError: the chunk is not audio.
    """
    rate, samples = chunk
    return session.feed(samples, int(rate))


def voice_message(result: VoiceResult) -> str:
    """The microphone's running state: what to do, then the running and final decision with its score."""
    who = result.identity or "nobody recognised"
    lines = [f"### {badge(result.outcome, 'Listening' if result.outcome == 'pending' else None)} (voice)"]
    if result.decision is not None:
        lines.append(f"{who}: score {result.decision.score:.3f} (needs ≥ {result.decision.threshold:.3f})")
    lines.append(f"{result.reason}" if result.reason else "")
    lines.append(f"<small>{result.speech_seconds:.1f} s of speech in the window</small>")
    return "  \n".join(line for line in lines if line)


def final_decision(result: FrameResult | VoiceResult | None) -> Decision | None:
    """The decision a live result stands for once it is final; ``None`` while it is pending."""
    if result is None or result.outcome == "pending":
        return None
    if isinstance(result, VoiceResult) and not result.final:
        return None
    score, threshold = (result.decision.score, result.decision.threshold) if result.decision else (float("nan"),) * 2
    return Decision(result.outcome, score, threshold, result.reason)


def together_message(face: FrameResult | None, voice: VoiceResult | None) -> str:
    """Face and voice combined by the AND rule once both are final (empty unless both are in use)."""
    if face is None or voice is None:
        return ""
    decisions = {"face": final_decision(face), "voice": final_decision(voice)}
    waiting = [modality for modality, decision in decisions.items() if decision is None]
    if waiting:
        return f"### {badge('pending', 'Face and voice')}: waiting for the {' and '.join(waiting)} decision"
    fused = fuse_and(decisions)
    detail = f" — {fused.reason}" if fused.reason else ""
    return f"### {badge(fused.outcome, 'Face and voice: ' + fused.outcome)}{detail}"
