"""The live microphone's Markdown and face + voice combined by the AND rule (gradio-free)."""

from __future__ import annotations

import numpy as np

from enrollment.live import FrameResult
from enrollment.live_voice import VoiceResult
from verify.scoring import Decision
from verify_app.live_voice import final_decision, process_chunk, together_message, voice_message

ACCEPTED_FACE = FrameResult("accepted", "Ann", Decision("accepted", 0.7, 0.36), "live: 2 moves done", None, 50.0)
PENDING_FACE = FrameResult("pending", "Ann", None, "look up", None, 50.0, prompt="look up")
FAILED_FACE = FrameResult("rejected", "Ann", None, "step 1 of 2 (look up) failed: not done within 6 s", None, 50.0)
ACCEPTED_VOICE = VoiceResult("accepted", "Ann", Decision("accepted", 0.93, 0.88), "", 4.2, final=True)
RUNNING_VOICE = VoiceResult("pending", "Ann", Decision("accepted", 0.93, 0.88), "running decision: accepted; keep speaking", 2.4)


def test_voice_message_shows_the_running_decision_and_score():
    text = voice_message(RUNNING_VOICE)
    assert "Listening" in text and "Ann: score 0.930 (needs ≥ 0.880)" in text and "2.4 s of speech" in text
    assert "Accepted" in voice_message(ACCEPTED_VOICE)


def test_face_and_voice_together_wait_for_both_then_apply_the_and_rule():
    assert together_message(ACCEPTED_FACE, None) == "" and together_message(None, ACCEPTED_VOICE) == ""
    assert "waiting for the voice decision" in together_message(ACCEPTED_FACE, RUNNING_VOICE)
    assert "waiting for the face decision" in together_message(PENDING_FACE, ACCEPTED_VOICE)
    assert "Face and voice: accepted" in together_message(ACCEPTED_FACE, ACCEPTED_VOICE)
    refused = together_message(FAILED_FACE, ACCEPTED_VOICE)
    assert "Face and voice: rejected" in refused and "face rejected" in refused
    assert final_decision(FAILED_FACE).reason.startswith("step 1 of 2")


def test_chunks_arrive_as_rate_and_samples():
    class Session:
        def feed(self, samples, rate):
            return (len(samples), rate)

    assert process_chunk(Session(), (48_000, np.zeros(100, np.int16))) == (100, 48_000)
