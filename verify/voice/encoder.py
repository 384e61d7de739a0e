"""GE2E speaker embeddings (Resemblyzer's encoder, made robust to noise): the contract, NumPy
features, and the encoder on each device.

One utterance flows: prepared 16 kHz speech -> mel power frames (:func:`mel_power`) -> partial
windows of :data:`PARTIAL_FRAMES` frames (:func:`partial_window_starts`) -> the encoder network
-> the mean of the windows' embeddings, renormalised. This reproduces Resemblyzer 0.1.4
(``resemblyzer/voice_encoder.py``, ``audio.py``, ``hparams.py``).

On the CPU the features are computed here in NumPy (they match torchaudio's
``MelSpectrogram`` to float32 rounding: ``tests/verify/voice/test_voice_encoder.py``) and the
network runs from its shipped OpenVINO IR, so no torch is imported. On CUDA (or with
``cpu_runtime="torch"``) :mod:`verify.voice.ge2e` runs both in PyTorch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from verify.device import Device
from verify.errors import ConfigError, NoSpeechError
from verify.runtime import NetworkSpec, load_network
from verify.scoring import l2_normalize
from verify.weights import WeightsFile

SAMPLE_RATE = 16000  # Hz
WINDOW_SAMPLES = 400  # 25 ms analysis window
HOP_SAMPLES = 160  # 10 ms between frames
MEL_CHANNELS = 40
PARTIAL_FRAMES = 160  # 1.6 s per partial window
EMBEDDING_DIM = 256
DEFAULT_PARTIAL_RATE = 1.3  # partial windows per second of audio
DEFAULT_MIN_COVERAGE = 0.75  # keep a padded last window only if this fraction holds audio

RESEMBLYZER_WEIGHTS = WeightsFile(
    filename="ge2e-resemblyzer.safetensors",
    sha256="b053bd1844ad6cf73dbf277b82f9299085e046dc59f87d9e1073263b7e473bed",
    rebuild_command="python scripts/convert_ge2e.py",
)
"""Resemblyzer's own GE2E weights: the teacher of :data:`GE2E_WEIGHTS` and the reference the port
is tested against."""

GE2E_WEIGHTS = WeightsFile(
    filename="ge2e-robust.safetensors",
    sha256="4019519a55d4cb8fb895ecc3be14c78eac9d00f55e9b1e7147e5593047cb036a",
    rebuild_command="python scripts/train_robust_voice.py --data ../shared/data",
)
"""The shipped voice encoder: Resemblyzer's GE2E fine-tuned to embed degraded speech like clean
speech (``training/robust_voice.py``, model card ``ge2e-robust.md``)."""

GE2E_NETWORK = NetworkSpec(
    name="ge2e-robust",
    graph_sha256="01ed28c757856abcb422809908de84baae64dac3465bd3b58441e7d02540c875",
    weights_sha256="d3fffab52c2f2bd4ef6da690664798485e6c197c85a5714649d613997bbba716",
    module="verify.voice.ge2e:shipped_encoder",
    example_shape=(1, PARTIAL_FRAMES, MEL_CHANNELS),
    dynamic_dims=(0,),
)

CPU_WINDOW_BATCH = 64
"""Partial windows per encoder call on the CPU (a bound on memory, not a speed lever)."""


def partial_window_starts(
    num_samples: int,
    rate: float = DEFAULT_PARTIAL_RATE,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> list[int]:
    """First frame of each partial window of an utterance, as Resemblyzer's ``compute_partial_slices``.

    Windows of :data:`PARTIAL_FRAMES` frames start every ``round(16000 / rate / 160)`` frames and
    cover the whole utterance; the last one is dropped when less than ``min_coverage`` of it holds
    audio, unless it is the only one. There is always at least one window.

    Args:
        num_samples: utterance length in samples at 16 kHz.
        rate: partial windows per second, between 0.625 and 100 (about 1.6 s and 10 ms apart).
        min_coverage: fraction in (0, 1].

    Raises:
        ConfigError: ``rate`` or ``min_coverage`` is out of range.
    """
    if not 0 < min_coverage <= 1:
        raise ConfigError(f"min_coverage must be in (0, 1], got {min_coverage!r}")
    frame_step = round(SAMPLE_RATE / rate / HOP_SAMPLES) if rate > 0 else 0
    if not 0 < frame_step <= PARTIAL_FRAMES:
        raise ConfigError(
            f"partial window rate {rate!r} per second is out of range: the windows must be "
            f"between 1 and {PARTIAL_FRAMES} frames (10 ms each) apart"
        )
    num_frames = (num_samples + HOP_SAMPLES) // HOP_SAMPLES  # ceil((num_samples + 1) / hop)
    steps = max(1, num_frames - PARTIAL_FRAMES + frame_step + 1)
    starts = list(range(0, steps, frame_step))
    window_samples = PARTIAL_FRAMES * HOP_SAMPLES
    coverage = (num_samples - starts[-1] * HOP_SAMPLES) / window_samples
    if coverage < min_coverage and len(starts) > 1:
        starts.pop()
    return starts


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    linear = hz / (200.0 / 3)
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_hz_to_mel`."""
    return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), mel * (200.0 / 3))


@functools.lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """``(201, 40)`` float32 Slaney-normalised triangular filters on the Slaney mel scale, 0 to 8 kHz
    (torchaudio's ``melscale_fbanks(norm="slaney", mel_scale="slaney")``, librosa's default)."""
    frequencies = np.linspace(0, SAMPLE_RATE // 2, WINDOW_SAMPLES // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), MEL_CHANNELS + 2))
    widths = np.diff(edges)
    slopes = edges[None, :] - frequencies[:, None]
    rising, falling = -slopes[:, :-2] / widths[:-1], slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return (filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]).astype(np.float32)


@functools.lru_cache(maxsize=1)
def hann_window() -> np.ndarray:
    """``(400,)`` float32 periodic Hann window (``torch.hann_window``'s default)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW_SAMPLES) / WINDOW_SAMPLES)).astype(np.float32)


def mel_power(samples: np.ndarray, frames: int) -> np.ndarray:
    """The first ``frames`` mel power frames ``(frames, 40)`` float32 of ``(T,)`` speech at 16 kHz,
    zero beyond its end: centred 400-sample Hann frames every 160 samples, squared magnitude,
    40 mel bands, no logarithm (Resemblyzer's ``wav_to_mel_spectrogram``)."""
    padded = np.zeros((frames - 1) * HOP_SAMPLES + WINDOW_SAMPLES, np.float32)
    kept = samples[: len(padded) - WINDOW_SAMPLES // 2]
    padded[WINDOW_SAMPLES // 2 : WINDOW_SAMPLES // 2 + len(kept)] = kept
    windows = np.lib.stride_tricks.sliding_window_view(padded, WINDOW_SAMPLES)[::HOP_SAMPLES]
    spectrum = np.fft.rfft(windows * hann_window(), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return power @ mel_filterbank()


def partial_windows(samples: np.ndarray, rate: float = DEFAULT_PARTIAL_RATE,
                    min_coverage: float = DEFAULT_MIN_COVERAGE) -> np.ndarray:
    """Every partial window of one utterance: ``(P, 160, 40)`` mel frames, the encoder's input.

    Raises:
        NoSpeechError: ``samples`` is empty.
        ConfigError: bad ``rate`` / ``min_coverage``.
    """
    if len(samples) == 0:
        raise NoSpeechError("a clip to embed has no samples")
    starts = partial_window_starts(len(samples), rate, min_coverage)
    frames = mel_power(np.asarray(samples, np.float32), starts[-1] + PARTIAL_FRAMES)
    return np.stack([frames[start : start + PARTIAL_FRAMES] for start in starts])


class CpuSpeakerEncoder:
    """GE2E on the CPU without torch: NumPy features, the shipped IR in OpenVINO."""

    def __init__(self, cpu_threads: int | None = None) -> None:
        """Load the encoder network (see :func:`verify.runtime.load_network`)."""
        self.network = load_network(GE2E_NETWORK, Device("cpu"), "openvino", cpu_threads)

    def __call__(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, 256)`` float32 unit embeddings of prepared 16 kHz clips: each the renormalised
        mean of its partial windows' embeddings, all windows of all clips through the network
        together."""
        windows = [partial_windows(clip) for clip in clips]
        batch = np.concatenate(windows)
        partials = np.concatenate([self.network(batch[start : start + CPU_WINDOW_BATCH])[0]
                                   for start in range(0, len(batch), CPU_WINDOW_BATCH)])
        bounds = np.cumsum([0] + [len(group) for group in windows])
        return np.stack([l2_normalize(partials[bounds[i] : bounds[i + 1]].mean(axis=0)) for i in range(len(clips))])
