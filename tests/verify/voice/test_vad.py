"""Silero VAD: speech in the shipped samples, none in silence or noise, the hysteresis, the model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from verify.errors import WeightsError
from verify.voice import vad
from verify.voice.vad import SileroVad, context_frames, speech_frames

RATE = vad.SAMPLE_RATE
VOICES = Path(__file__).resolve().parents[3] / "assets" / "samples" / "voices"


@pytest.fixture(scope="module")
def detector() -> SileroVad:
    return SileroVad()


def speech_seconds(detector: SileroVad, samples: np.ndarray) -> float:
    return float(speech_frames(detector.probabilities(samples)).sum() * vad.FRAME_SAMPLES / RATE)


@pytest.mark.parametrize("path", sorted(VOICES.glob("*/*.flac")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_finds_most_of_the_speech_in_every_shipped_sample(detector, path):
    samples, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE

    probabilities = detector.probabilities(samples)

    assert probabilities.shape == (-(-len(samples) // vad.FRAME_SAMPLES),)
    assert probabilities.dtype == np.float32 and ((0 <= probabilities) & (probabilities <= 1)).all()
    assert 2.5 < speech_seconds(detector, samples) <= len(samples) / RATE + 0.032


def test_speech_moves_with_the_silence_put_before_it(detector):
    samples, _ = soundfile.read(VOICES / "1081" / "0.flac", dtype="float32")
    padded = np.concatenate([np.zeros(RATE, np.float32), samples, np.zeros(RATE, np.float32)])

    alone = np.flatnonzero(speech_frames(detector.probabilities(samples)))
    moved = np.flatnonzero(speech_frames(detector.probabilities(padded)))

    shift = RATE / vad.FRAME_SAMPLES  # 31.25 frames in one second
    assert abs(moved[0] - alone[0] - shift) <= 1 and abs(moved[-1] - alone[-1] - shift) <= 1
    assert (len(padded) - moved[-1] * vad.FRAME_SAMPLES) / RATE > 1.0  # the trailing second is not speech


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: np.zeros(3 * RATE),
        lambda rng: 1e-4 * rng.standard_normal(3 * RATE),
        lambda rng: 0.1 * rng.standard_normal(3 * RATE),
        lambda rng: 0.9 * np.clip(rng.standard_normal(3 * RATE), -1, 1),
        lambda rng: 0.5 * np.sin(2 * np.pi * 1000 * np.arange(3 * RATE) / RATE),
    ],
    ids=["digital-silence", "faint-noise", "white-noise", "loud-noise", "1-khz-tone"],
)
def test_finds_no_speech_in_silence_noise_or_a_tone(detector, make):
    samples = make(np.random.default_rng(0)).astype(np.float32)

    assert speech_seconds(detector, samples) == 0.0


def test_a_long_clip_runs_in_blocks_with_the_state_carried(detector):
    onnxruntime = pytest.importorskip("onnxruntime")
    samples, _ = soundfile.read(VOICES / "103" / "1.flac", dtype="float32")
    long = np.tile(samples, 6)  # 24 s: two blocks of at most 512 frames
    assert len(context_frames(long)) > vad.BLOCK_FRAMES
    session = onnxruntime.InferenceSession(str(vad.model_path()), providers=["CPUExecutionProvider"])
    state = np.zeros((1, 1, vad.STATE_SIZE), np.float32)

    (expected,) = session.run(["speech_probs"], {"input": context_frames(long), "h": state, "c": state})

    np.testing.assert_allclose(detector.probabilities(long), expected.ravel(), atol=1e-4)


def test_a_clip_shorter_than_a_frame_gives_one_probability(detector):
    assert detector.probabilities(np.zeros(10, np.float32)).shape == (1,)


def test_context_frames_prepend_the_end_of_the_previous_frame():
    samples = np.arange(1100, dtype=np.float32)

    frames = context_frames(samples)

    assert frames.shape == (3, vad.CONTEXT_SAMPLES + vad.FRAME_SAMPLES)
    np.testing.assert_array_equal(frames[0, : vad.CONTEXT_SAMPLES], 0)
    np.testing.assert_array_equal(frames[1, : vad.CONTEXT_SAMPLES], samples[448:512])
    np.testing.assert_array_equal(frames[1, vad.CONTEXT_SAMPLES :], samples[512:1024])
    np.testing.assert_array_equal(frames[2, vad.CONTEXT_SAMPLES : vad.CONTEXT_SAMPLES + 76], samples[1024:])
    np.testing.assert_array_equal(frames[2, vad.CONTEXT_SAMPLES + 76 :], 0)


def test_speech_frames_hysteresis_hand_computed():
    probabilities = np.array([0.1, 0.4, 0.6, 0.4, 0.2, 0.4, 0.36, 0.3, 0.55, 0.5, 0.1])

    # runs above 0.35: [1..3] reaches 0.6 -> speech; [5..6] never reaches 0.5 -> not; [8..9] -> speech
    assert speech_frames(probabilities).astype(int).tolist() == [0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0]
    assert speech_frames(probabilities, threshold=0.7).sum() == 0
    assert speech_frames(probabilities, threshold=0.5, hysteresis=0.0).astype(int).tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0]


def test_loading_leaves_torch_threads_alone():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        SileroVad()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_model_file_with_another_hash_is_refused(monkeypatch):
    monkeypatch.setattr(vad, "MODEL_SHA256", "0" * 64)

    with pytest.raises(WeightsError, match=r"silero_vad_16k_sequence\.onnx has sha256 .*expected 000000000000.*pip install silero-vad==6\.2\.3"):
        vad.model_path()


def test_a_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(vad.importlib.util, "find_spec", lambda name: None)

    with pytest.raises(WeightsError, match=r"silero-vad package is not installed; install it with: pip install silero-vad==6\.2\.3"):
        vad.model_path()
