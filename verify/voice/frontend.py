"""Voice front end: mono 16 kHz, speech kept and silence trimmed, level normalised, quality checked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchaudio.functional

from verify.config import VoiceFrontEndConfig
from verify.errors import NoSpeechError


@dataclass(frozen=True)
class Speech:
    """Speech ready for the encoder: ``(T,)`` float32 at ``config.sample_rate`` and its issues."""

    samples: np.ndarray
    quality_issues: tuple[str, ...]


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample ``(T,)`` float32 audio from ``rate`` to ``target_rate`` Hz (windowed sinc)."""
    if rate == target_rate:
        return samples
    tensor = torchaudio.functional.resample(torch.from_numpy(samples), rate, target_rate)
    return tensor.numpy()


def frame_levels_dbfs(samples: np.ndarray, frame: int) -> np.ndarray:
    """RMS level of each non-overlapping ``frame``-sample window in dB re full scale."""
    count = max(1, len(samples) // frame)
    padded = np.zeros(count * frame, np.float32)
    padded[: min(len(samples), count * frame)] = samples[: count * frame]
    rms = np.sqrt(np.mean(padded.reshape(count, frame) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def loud_frames(samples: np.ndarray, config: VoiceFrontEndConfig) -> np.ndarray:
    """Per-frame boolean: louder than ``silence_dbfs`` and within ``dynamic_range_db`` of the loudest.

    Raises:
        NoSpeechError: no frame is louder than ``config.silence_dbfs``.
    """
    frame = int(config.frame_seconds * config.sample_rate)
    levels = frame_levels_dbfs(samples, frame)
    if levels.max() <= config.silence_dbfs:
        raise NoSpeechError(f"the clip is silent (no part louder than {config.silence_dbfs:.0f} dBFS)")
    floor = max(config.silence_dbfs, levels.max() - config.dynamic_range_db)
    return levels > floor


def speech_mask(samples: np.ndarray, config: VoiceFrontEndConfig) -> np.ndarray:
    """Per-sample boolean mask of speech: loud frames (energy detector), widened by ``keep_seconds``.

    Raises:
        NoSpeechError: no frame is louder than ``config.silence_dbfs``.
    """
    frame = int(config.frame_seconds * config.sample_rate)
    loud = loud_frames(samples, config)
    widen = int(round(config.keep_seconds / config.frame_seconds))
    if widen:
        loud = np.convolve(loud.astype(np.int32), np.ones(2 * widen + 1, np.int32), mode="same") > 0
    mask = np.repeat(loud, frame)[: len(samples)]
    return np.pad(mask, (0, len(samples) - len(mask)), mode="edge")


def clipped_fraction(samples: np.ndarray) -> float:
    """Fraction of samples at (or within 0.1 % of) full scale."""
    return float(np.mean(np.abs(samples) >= 0.999))


def prepare_speech(samples: np.ndarray, rate: int, config: VoiceFrontEndConfig = VoiceFrontEndConfig()) -> Speech:
    """Turn decoded mono audio into trimmed, level-normalised speech at ``config.sample_rate``.

    Raises:
        NoSpeechError: the clip is silent or holds less than ``min_speech_seconds`` of speech.
    """
    issues = []
    fraction = clipped_fraction(samples)
    if fraction > config.max_clipped_fraction:
        issues.append(f"audio is clipped ({fraction:.1%} of samples at full scale)")
    samples = resample(samples, rate, config.sample_rate)
    speech = samples[speech_mask(samples, config)]
    # detected speech, before the keep_seconds margins (which alone exceed min_speech_seconds)
    frame = int(config.frame_seconds * config.sample_rate)
    seconds = min(int(loud_frames(samples, config).sum()) * frame, len(samples)) / config.sample_rate
    if seconds < config.min_speech_seconds:
        raise NoSpeechError(
            f"only {seconds:.2f} s of speech found; at least {config.min_speech_seconds:.2f} s is needed"
        )
    return Speech(normalize_level(speech, config.target_dbfs), tuple(issues))


def normalize_level(samples: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Scale quiet speech up to ``target_dbfs`` RMS; loud speech is left as it is (as Resemblyzer)."""
    level = 20 * np.log10(max(float(np.sqrt(np.mean(samples**2))), 1e-10))
    gain = float(10 ** ((target_dbfs - level) / 20))  # a Python float keeps float32 samples float32
    return samples * gain if gain > 1 else samples
