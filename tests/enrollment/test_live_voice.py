"""Live microphone sessions: chunks in, a running decision once there is enough speech."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from enrollment.live_voice import VoiceStreamConfig
from enrollment.service import Service
from verify.errors import ConfigError, DecodeError


@pytest.fixture
def service(tmp_path, voice_pipeline, voice_files):
    with Service(tmp_path / "v.db", caller="test", pipelines={"voice": voice_pipeline}) as shared:
        shared.enroll("reader", voice=voice_files[0])
        yield shared


def chunks(*paths, seconds: float = 0.5, pad_silence: float = 0.0):
    """``paths`` one after the other as the int16 chunks a browser microphone streams (``seconds`` each),
    after some silence."""
    clips = [soundfile.read(path, dtype="int16") for path in paths]
    rate = clips[0][1]
    samples = np.concatenate([np.zeros(int(pad_silence * rate), np.int16)] + [clip for clip, _ in clips])
    step = int(seconds * rate)
    return [(samples[i : i + step], rate) for i in range(0, len(samples), step)]


def test_the_enrolled_speaker_is_accepted_as_soon_as_there_is_enough_speech(service, voice_files):
    session = service.live_voice_session("reader")
    results = [session.feed(samples, rate) for samples, rate in chunks(voice_files[1], pad_silence=1.0)]
    assert results[0].outcome == "pending" and results[0].decision is None
    scored = [result for result in results if result.decision is not None]
    assert scored[0].speech_seconds >= 2.0 and scored[0].outcome == "pending"  # the running decision, shown
    assert scored[0].reason.startswith(f"running decision: {scored[0].decision.outcome}; keep speaking")
    final = next(index for index, result in enumerate(results) if result.final)
    assert results[final].outcome == "accepted" and results[final].speech_seconds >= 4.0
    assert results[-1] is results[final]  # final: later chunks change nothing
    (attempt,) = service.audit("reader")
    assert (attempt.modality, attempt.decision, attempt.caller) == ("voice", "accepted", "test")


def test_a_speaker_who_pauses_a_lot_still_gets_a_final_decision(service, voice_files):
    """1.2 s of speech, then 1.6 s of silence, and so on: under half of the stream is speech."""
    speech = np.concatenate([soundfile.read(path, dtype="int16")[0] for path in voice_files[1:3]])
    rate = soundfile.info(voice_files[1]).samplerate
    piece, pause = int(1.2 * rate), np.zeros(int(1.6 * rate), np.int16)
    halting = np.concatenate([part for start in range(0, len(speech), piece) for part in (speech[start : start + piece], pause)])
    session = service.live_voice_session("reader")

    results = [session.feed(halting[i : i + rate // 2], rate) for i in range(0, len(halting), rate // 2)]

    final = next((result for result in results if result.final), results[-1])
    assert final.final and final.outcome == "accepted", (final.speech_seconds, final.reason)


def test_another_speaker_is_rejected_and_replaying_the_enrollment_is_a_replay(service, voice_files):
    other = service.live_voice_session("reader")
    results = [other.feed(samples, rate) for samples, rate in chunks(voice_files[4], voice_files[5])]
    assert results[-1].outcome == "rejected" and results[-1].final and "accepted" not in {r.outcome for r in results}
    replay = service.live_voice_session("reader")
    results = [replay.feed(samples, rate) for samples, rate in chunks(voice_files[0])]
    final = next(r for r in results if r.final)
    assert final.outcome == "rejected" and final.reason.startswith("replay suspected: a near-identical copy")


def test_identify_mode_names_the_speaker(service, voice_files):
    session = service.live_voice_session(None)
    final = [session.feed(samples, rate) for samples, rate in chunks(voice_files[2], voice_files[1])][-1]
    assert final.identity == "reader" and final.outcome == "accepted"
    session.reset()
    assert session.last.outcome == "pending" and not session.last.final


def test_silence_stays_pending_and_bad_chunks_are_refused(service):
    session = service.live_voice_session("reader")
    assert {session.feed(np.zeros(8000, np.int16), 16_000).outcome for _ in range(8)} == {"pending"}
    with pytest.raises(DecodeError, match="microphone chunk"):
        session.feed(np.zeros((0,), np.int16), 16_000)
    with pytest.raises(ConfigError, match="step_seconds"):
        VoiceStreamConfig(step_seconds=0)
