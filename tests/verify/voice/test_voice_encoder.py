"""The CPU speaker encoder (NumPy features, the shipped IR) computes what the PyTorch port computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from verify.errors import NoSpeechError
from verify.voice.encoder import CpuSpeakerEncoder, mel_power, partial_window_starts, partial_windows
from verify.voice.ge2e import MelPowerSpectrogram, embed_utterances, shipped_encoder


def clips() -> list[np.ndarray]:
    """Noise-like clips of 0.5 s to 5 s (one partial window to several, one shorter than a window)."""
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(length)).astype(np.float32) for length in (8_000, 25_600, 41_000, 80_000)]


@pytest.mark.parametrize("length", [1, 399, 16_000, 33_333])
def test_mel_power_equals_torchaudios_frames(length) -> None:
    samples = (0.3 * np.random.default_rng(length).standard_normal(length)).astype(np.float32)
    expected = MelPowerSpectrogram()(torch.from_numpy(samples)[None])[0].numpy()
    found = mel_power(samples, len(expected))
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-6 * float(expected.max()))


def test_partial_windows_are_the_encoders_input_shape() -> None:
    samples = clips()[2]
    assert partial_windows(samples).shape == (len(partial_window_starts(len(samples))), 160, 40)
    with pytest.raises(NoSpeechError):
        partial_windows(np.zeros(0, np.float32))


def test_cpu_encoder_equals_the_pytorch_port(torch_threads) -> None:
    expected = embed_utterances(shipped_encoder(), MelPowerSpectrogram(), [torch.from_numpy(clip) for clip in clips()]).numpy()
    found = CpuSpeakerEncoder(cpu_threads=1)(clips())
    assert found.shape == expected.shape and found.dtype == np.float32
    np.testing.assert_allclose(np.sum(found * expected, axis=1), 1.0, atol=1e-5)
