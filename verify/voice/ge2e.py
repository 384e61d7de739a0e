"""GE2E speaker encoder ported from Resemblyzer to PyTorch, with batched torchaudio features.

One utterance flows: preprocessed 16 kHz waveform -> :class:`MelPowerSpectrogram` frames ->
partial windows of :data:`PARTIAL_FRAMES` frames -> :class:`SpeakerEncoder` -> mean of the
partial embeddings, renormalised. :func:`embed_utterances` runs that path for several
utterances of different lengths at once, on the CPU or a CUDA device.

The network and the slicing reproduce Resemblyzer 0.1.4 (``resemblyzer/voice_encoder.py``,
``audio.py``, ``hparams.py``); the weights are its ``pretrained.pt``, converted by
``scripts/convert_ge2e.py``; the shipped weights are those fine-tuned from them for noisy
speech (``scripts/train_robust_voice.py``). Volume normalisation and silence trimming (Resemblyzer's
``preprocess_wav``) are the caller's job. This runs on CUDA and is the reference the CPU path
(:mod:`verify.voice.encoder`: NumPy features, the encoder's shipped OpenVINO IR) is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from verify.device import Device
from verify.errors import ConfigError, InputError, NoSpeechError
from verify.voice.encoder import (
    DEFAULT_MIN_COVERAGE,
    DEFAULT_PARTIAL_RATE,
    EMBEDDING_DIM,
    GE2E_WEIGHTS,
    HOP_SAMPLES,
    MEL_CHANNELS,
    PARTIAL_FRAMES,
    RESEMBLYZER_WEIGHTS,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    partial_window_starts,
)
from verify.weights import load_into

HIDDEN_SIZE = 256
NUM_LAYERS = 3


class MelPowerSpectrogram(nn.Module):
    """Mel power spectrogram matching Resemblyzer's ``wav_to_mel_spectrogram``.

    Resemblyzer calls ``librosa.feature.melspectrogram`` with its defaults: periodic Hann window
    of 400 samples, hop 160, centred frames padded with zeros (librosa >= 0.10), squared
    magnitude, 40 Slaney-normalised mel bands on the Slaney scale from 0 to 8 kHz. There is no
    logarithm: the encoder was trained on linear power.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE,
            n_fft=WINDOW_SAMPLES,
            win_length=WINDOW_SAMPLES,
            hop_length=HOP_SAMPLES,
            f_min=0.0,
            f_max=SAMPLE_RATE / 2,
            n_mels=MEL_CHANNELS,
            window_fn=torch.hann_window,
            power=2.0,
            normalized=False,
            center=True,
            pad_mode="constant",
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Map ``(N, T)`` float32 waveforms at 16 kHz to ``(N, 1 + T // 160, 40)`` mel power frames."""
        return self.mel(waveforms).transpose(1, 2)


class SpeakerEncoder(nn.Module):
    """Resemblyzer's GE2E network: 3-layer LSTM, linear projection, ReLU, L2 normalisation.

    Parameter names (``lstm.*``, ``linear.*``) are Resemblyzer's, so :data:`RESEMBLYZER_WEIGHTS`
    and :data:`GE2E_WEIGHTS` load with ``strict=True``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(MEL_CHANNELS, HIDDEN_SIZE, NUM_LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN_SIZE, EMBEDDING_DIM)
        self.relu = nn.ReLU()

    def forward(self, partials: torch.Tensor) -> torch.Tensor:
        """Embed ``(B, 160, 40)`` mel windows as ``(B, 256)`` unit vectors (non-negative entries)."""
        _, (hidden, _) = self.lstm(partials)
        return F.normalize(self.relu(self.linear(hidden[-1])), dim=1)


def embed_utterances(
    encoder: SpeakerEncoder,
    features: MelPowerSpectrogram,
    waveforms: Sequence[torch.Tensor],
    *,
    rate: float = DEFAULT_PARTIAL_RATE,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> torch.Tensor:
    """Embed several utterances of different lengths in one batch, as Resemblyzer's ``embed_utterance``.

    Every partial window of every utterance (:func:`partial_windows`) goes through the encoder
    in one batch; each utterance's embedding is the mean of its partial embeddings, renormalised.
    Computation runs on the device of ``encoder`` (``features`` must be on the same one).

    Args:
        encoder: a :class:`SpeakerEncoder` with the GE2E weights loaded.
        features: the :class:`MelPowerSpectrogram` front end.
        waveforms: N one-dimensional float tensors of samples at 16 kHz, amplitude in [-1, 1],
            already volume-normalised and silence-trimmed, all on one device.
        rate: partial windows per second of audio.
        min_coverage: fraction of a padded last window that must hold audio for it to be used.

    Returns:
        ``(N, 256)`` float32 unit vectors on the device of ``waveforms``.

    Raises:
        InputError: ``waveforms`` is empty, or one is not a finite 1-D float tensor.
        NoSpeechError: a waveform has no samples.
        ConfigError: bad ``rate`` / ``min_coverage``, or ``features`` and ``encoder`` on
            different devices.
    """
    device = _device_of(encoder)
    if _device_of(features) != device:
        raise ConfigError(
            f"features are on {_device_of(features)} but the encoder is on {device}: move both"
        )
    windows, utterance_index = partial_windows(features, waveforms, rate=rate, min_coverage=min_coverage)
    with torch.inference_mode():
        partial_embeddings = encoder(windows)  # (P, 256)
        sums = torch.zeros(len(waveforms), EMBEDDING_DIM, device=device)
        sums.index_add_(0, utterance_index, partial_embeddings)
        counts = torch.bincount(utterance_index, minlength=len(waveforms)).to(sums.dtype)
        embeddings = F.normalize(sums / counts[:, None], dim=1)
    return embeddings.to(waveforms[0].device)


def partial_windows(
    features: MelPowerSpectrogram,
    waveforms: Sequence[torch.Tensor],
    *,
    rate: float = DEFAULT_PARTIAL_RATE,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every partial window of every utterance, the encoder's input for :func:`embed_utterances`.

    The waveforms are zero-padded to a common length (at least to the end of each utterance's
    last window) and turned into mel frames together on the device of ``features``.

    Returns:
        ``(P, 160, 40)`` mel frames of all P windows, utterance by utterance, and the ``(P,)``
        index of the utterance each window belongs to.

    Raises:
        InputError, NoSpeechError, ConfigError: as :func:`embed_utterances`.
    """
    _check_waveforms(waveforms)
    device = _device_of(features)
    starts = [partial_window_starts(len(wave), rate, min_coverage) for wave in waveforms]
    batch = _pad_to_partials(waveforms, starts, device)
    utterance_index, frame_index = _partial_index(starts, device)
    with torch.inference_mode():
        frames = features(batch)  # (N, F, 40)
        return frames[utterance_index[:, None], frame_index], utterance_index


def _check_waveforms(waveforms: Sequence[torch.Tensor]) -> None:
    """Raise unless ``waveforms`` is a non-empty sequence of finite, non-empty 1-D float tensors."""
    if len(waveforms) == 0:
        raise InputError("no waveforms to embed: pass at least one 1-D tensor")
    for index, wave in enumerate(waveforms):
        if not isinstance(wave, torch.Tensor):
            raise InputError(f"waveform {index} must be a 1-D float tensor, got {type(wave).__name__}")
        if wave.ndim != 1 or not wave.is_floating_point():
            raise InputError(
                f"waveform {index} must be a 1-D float tensor, got {wave.dtype} of shape {tuple(wave.shape)}"
            )
        if wave.numel() == 0:
            raise NoSpeechError(f"waveform {index} has no samples")
        if wave.device != waveforms[0].device:
            raise InputError(
                f"waveform {index} is on {wave.device} but waveform 0 is on {waveforms[0].device}"
            )
        if not bool(torch.isfinite(wave).all()):
            raise InputError(f"waveform {index} holds NaN or infinite samples")


def _partial_index(starts: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Utterance ``(P,)`` and frame ``(P, 160)`` indices of all P partial windows, in order."""
    utterance_index = [index for index, utterance_starts in enumerate(starts) for _ in utterance_starts]
    first_frames = torch.tensor([start for utterance_starts in starts for start in utterance_starts])
    frame_index = first_frames[:, None] + torch.arange(PARTIAL_FRAMES)
    return torch.tensor(utterance_index, device=device), frame_index.to(device)


def _pad_to_partials(
    waveforms: Sequence[torch.Tensor], starts: list[list[int]], device: torch.device
) -> torch.Tensor:
    """Stack waveforms as ``(N, T)`` float32, zero-padded to cover every utterance's last window."""
    window_samples = PARTIAL_FRAMES * HOP_SAMPLES
    ends = [(s[-1] * HOP_SAMPLES) + window_samples for s in starts]
    length = max(max(len(wave), end) for wave, end in zip(waveforms, ends))
    batch = torch.zeros(len(waveforms), length, device=device)
    for row, wave in enumerate(waveforms):
        batch[row, : len(wave)] = wave.to(device=device, dtype=torch.float32)
    return batch


def _device_of(module: nn.Module) -> torch.device:
    """Device of a module's first parameter or buffer (CPU for a module with neither)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def shipped_encoder() -> SpeakerEncoder:
    """The encoder with the shipped (noise-robust) weights, in eval mode."""
    return load_into(SpeakerEncoder(), GE2E_WEIGHTS)


def resemblyzer_encoder() -> SpeakerEncoder:
    """The encoder with Resemblyzer's own weights, in eval mode (the teacher, and the port's reference)."""
    return load_into(SpeakerEncoder(), RESEMBLYZER_WEIGHTS)


class TorchSpeakerEncoder:
    """GE2E in PyTorch on a device (CUDA, or the CPU with ``cpu_runtime="torch"``), called like
    :class:`verify.voice.encoder.CpuSpeakerEncoder`."""

    def __init__(self, device: Device, cpu_threads: int | None = None) -> None:
        """Load the encoder and its features on ``device``; on the CPU, ``cpu_threads`` sets
        torch's (process-wide) threads."""
        if device.type == "cpu" and cpu_threads is not None:
            torch.set_num_threads(cpu_threads)
        self.device = device.torch()
        self.encoder = shipped_encoder().to(self.device)
        self.features = MelPowerSpectrogram().to(self.device)

    def __call__(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, 256)`` float32 unit embeddings of prepared 16 kHz clips (:func:`embed_utterances`)."""
        waveforms = [torch.from_numpy(np.ascontiguousarray(clip, np.float32)).to(self.device) for clip in clips]
        return embed_utterances(self.encoder, self.features, waveforms).cpu().numpy().astype(np.float32)
