"""Voice front end: mono 16 kHz, speech found and kept, level normalised, quality measured.

One clip flows: resample to 16 kHz -> remove its DC offset -> refuse it if silent -> find speech
(Silero VAD by default, or an energy detector) -> keep the speech frames with ``keep_seconds``
margins -> refuse it if under ``min_speech_seconds`` -> measure (:data:`MEASURE_NAMES`) and flag
what makes the score unreliable (too little speech, noise, clipping, a narrow band, echo) -> scale
quiet speech up.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from verify.config import VoiceFrontEndConfig
from verify.errors import ConfigError, NoSpeechError
from verify.quality_measures import QUALITY_ADVICE
from verify.voice.quality import clipped_fraction, decay_db, high_band_db, snr_db
from verify.voice.vad import FRAME_SAMPLES, SileroVad, speech_frames

SPEECH_DETECTORS = ("silero", "energy")

MEASURE_NAMES = ("speech_seconds", "snr_db", "clipped_fraction", "high_band_db", "decay_db", "speech_probability")
"""What :attr:`Speech.measures` holds:

- ``speech_seconds``: speech found by the detector, before the ``keep_seconds`` margins (s).
- ``snr_db``: estimated signal-to-noise ratio of the whole clip (:func:`~verify.voice.quality.snr_db`).
- ``clipped_fraction``: share of the input's samples at full scale.
- ``high_band_db``: share of the kept speech's power above 4.5 kHz (dB); very low for telephone audio.
- ``decay_db``: how fast the clip's level can fall over 50 ms (dB, :func:`~verify.voice.quality.decay_db`);
  near 0 in an echoing room.
- ``speech_probability``: mean Silero speech probability of the speech frames (1.0 with the
  energy detector); lower when speech is masked by noise or babble.
"""


BAND_LIMITED = "the sound is band-limited (a phone line or a poor microphone): use a better microphone"
ECHO = QUALITY_ADVICE["decay_db"].too_high


@dataclass(frozen=True)
class Speech:
    """Speech ready for the encoder: ``(T,)`` float32 at ``config.sample_rate``, its issues and measures."""

    samples: np.ndarray
    quality_issues: tuple[str, ...]
    measures: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DetectedSpeech:
    """Where the speech is: a per-sample mask, seconds of speech and its mean speech probability."""

    mask: np.ndarray
    seconds: float
    probability: float


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample ``(T,)`` float32 audio from ``rate`` to ``target_rate`` Hz (windowed sinc).

    torchaudio's ``functional.resample`` with its defaults (Hann-windowed sinc, 6 zero crossings,
    roll-off 0.99), in NumPy: it agrees with torchaudio to float32 rounding
    (``tests/verify/voice/test_frontend.py``).
    """
    if rate == target_rate:
        return samples
    kernels, width = _sinc_kernels(rate, target_rate)
    steps, phases = kernels.shape
    stride = rate // math.gcd(rate, target_rate)
    padded = np.pad(np.asarray(samples, np.float32), (width, width + stride))
    windows = np.lib.stride_tricks.sliding_window_view(padded, phases)[::stride]
    resampled = (windows @ kernels.T).reshape(-1)
    return resampled[: math.ceil(steps * len(samples) / stride)]


@functools.lru_cache(maxsize=4)  # the common rates' kernels are small (44.1 kHz: 160 x 475)
def _sinc_kernels(rate: int, target_rate: int, zero_crossings: int = 6, rolloff: float = 0.99) -> tuple[np.ndarray, int]:
    """torchaudio's ``_get_sinc_resample_kernel`` in float32: ``(new, 2 width + orig)`` kernels, one
    per output phase, and ``width``, for the rates reduced by their greatest common divisor."""
    gcd = math.gcd(rate, target_rate)
    orig, new = rate // gcd, target_rate // gcd
    base = min(orig, new) * rolloff
    width = math.ceil(zero_crossings * orig / base)
    offsets = np.arange(-width, width + orig, dtype=np.float32)[None, :] / np.float32(orig)
    times = np.arange(0, -new, -1, dtype=np.float32)[:, None] / np.float32(new) + offsets
    times = np.clip(times * np.float32(base), -zero_crossings, zero_crossings).astype(np.float32)
    window = np.cos(times * np.float32(math.pi / zero_crossings / 2)) ** 2
    times = times * np.float32(math.pi)
    with np.errstate(invalid="ignore", divide="ignore"):
        kernels = np.where(times == 0, np.float32(1.0), np.sin(times) / times)
    return (kernels * window * np.float32(base / orig)).astype(np.float32), width


def remove_dc_offset(samples: np.ndarray) -> np.ndarray:
    """``samples`` less their mean: the constant offset many sound cards and cheap microphones add.

    Left in, an offset reads as noise and echo (a floor the level never falls below) and shifts
    the embedding: genuine probes with 0.5-5 % of full scale that their enrollment lacked were
    refused 34.9 % of the time at ``medium`` (``benchmarks/conditions.py --modality voice
    --unseen``, README). Without it a clip embeds the same whatever offset it was recorded with.
    """
    return samples - np.asarray(samples.mean(dtype=np.float64), samples.dtype)


def frame_levels_dbfs(samples: np.ndarray, frame: int) -> np.ndarray:
    """RMS level of each non-overlapping ``frame``-sample window in dB re full scale."""
    count = max(1, len(samples) // frame)
    padded = np.zeros(count * frame, np.float32)
    padded[: min(len(samples), count * frame)] = samples[: count * frame]
    rms = np.sqrt(np.mean(padded.reshape(count, frame) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def check_not_silent(samples: np.ndarray, config: VoiceFrontEndConfig) -> np.ndarray:
    """Frame levels (dBFS) of the energy detector's frames.

    Raises:
        NoSpeechError: no frame is louder than ``config.silence_dbfs``.
    """
    levels = frame_levels_dbfs(samples, int(config.frame_seconds * config.sample_rate))
    if levels.max() <= config.silence_dbfs:
        raise NoSpeechError(f"the clip is silent (no part louder than {config.silence_dbfs:.0f} dBFS): check that the "
                            "microphone is on and not muted, and speak closer to it")
    return levels


def loud_frames(samples: np.ndarray, config: VoiceFrontEndConfig) -> np.ndarray:
    """Per-frame boolean: louder than ``silence_dbfs`` and within ``dynamic_range_db`` of the loudest.

    Raises:
        NoSpeechError: no frame is louder than ``config.silence_dbfs``.
    """
    levels = check_not_silent(samples, config)
    floor = max(config.silence_dbfs, levels.max() - config.dynamic_range_db)
    return levels > floor


def widened_mask(frames: np.ndarray, frame: int, widen: int, length: int) -> np.ndarray:
    """Per-sample mask of ``length`` from per-frame booleans, each speech frame widened by ``widen`` frames."""
    if widen:
        frames = np.convolve(frames.astype(np.int32), np.ones(2 * widen + 1, np.int32), mode="same") > 0
    mask = np.repeat(frames, frame)[:length]
    return np.pad(mask, (0, length - len(mask)), mode="edge")


def speech_mask(samples: np.ndarray, config: VoiceFrontEndConfig) -> np.ndarray:
    """Per-sample boolean mask of speech: loud frames (energy detector), widened by ``keep_seconds``.

    Raises:
        NoSpeechError: no frame is louder than ``config.silence_dbfs``.
    """
    widen = int(round(config.keep_seconds / config.frame_seconds))
    return widened_mask(loud_frames(samples, config), int(config.frame_seconds * config.sample_rate), widen, len(samples))


@functools.lru_cache(maxsize=1)
def shared_vad() -> SileroVad:
    """One :class:`SileroVad` for the process (it is stateless between calls and thread-safe)."""
    return SileroVad()


def detect_speech(samples: np.ndarray, config: VoiceFrontEndConfig, vad: SileroVad | None = None) -> DetectedSpeech:
    """Find the speech in 16 kHz ``samples`` with ``config.speech_detector``.

    Raises:
        NoSpeechError: the clip is silent.
        ConfigError: unknown ``speech_detector``.
    """
    if config.speech_detector not in SPEECH_DETECTORS:
        raise ConfigError(f"unknown speech detector {config.speech_detector!r}; expected one of {SPEECH_DETECTORS}")
    if config.speech_detector == "energy":
        frame = int(config.frame_seconds * config.sample_rate)
        seconds = min(int(loud_frames(samples, config).sum()) * frame, len(samples)) / config.sample_rate
        return DetectedSpeech(speech_mask(samples, config), seconds, 1.0)
    check_not_silent(samples, config)
    probabilities = (vad or shared_vad()).probabilities(samples)
    frames = speech_frames(probabilities, config.vad_threshold)
    widen = int(round(config.keep_seconds * config.sample_rate / FRAME_SAMPLES))
    seconds = min(int(frames.sum()) * FRAME_SAMPLES, len(samples)) / config.sample_rate
    probability = float(probabilities[frames].mean()) if frames.any() else 0.0
    return DetectedSpeech(widened_mask(frames, FRAME_SAMPLES, widen, len(samples)), seconds, probability)


def prepare_speech(
    samples: np.ndarray,
    rate: int,
    config: VoiceFrontEndConfig = VoiceFrontEndConfig(),
    vad: SileroVad | None = None,
) -> Speech:
    """Turn decoded mono audio into trimmed, level-normalised, measured speech at ``config.sample_rate``.

    Args:
        vad: the Silero detector to use (default: one shared by the process).

    Raises:
        NoSpeechError: the clip is silent or holds less than ``min_speech_seconds`` of speech.
    """
    clipped = clipped_fraction(samples)
    samples = remove_dc_offset(resample(samples, rate, config.sample_rate))
    detected = detect_speech(samples, config, vad)
    if detected.seconds < config.min_speech_seconds:
        clipping = f" (audio is clipped: {clipped:.1%} of samples at full scale)" if clipped > config.max_clipped_fraction else ""
        raise NoSpeechError(
            f"only {detected.seconds:.2f} s of speech found; at least {config.min_speech_seconds:.2f} s is needed{clipping}"
        )
    speech = samples[detected.mask]
    measures = {
        "speech_seconds": detected.seconds,
        "snr_db": snr_db(samples),
        "clipped_fraction": clipped,
        "high_band_db": high_band_db(speech, config.sample_rate, rate),
        "decay_db": decay_db(samples),
        "speech_probability": detected.probability,
    }
    return Speech(normalize_level(speech, config.target_dbfs), quality_issues(measures, config), measures)


def quality_issues(measures: Mapping[str, float], config: VoiceFrontEndConfig) -> tuple[str, ...]:
    """What makes a clip's score unreliable, each with what the speaker can do about it."""
    issues = []
    if measures["speech_seconds"] < config.short_speech_seconds:
        more = max(1, math.ceil(config.recommended_speech_seconds - measures["speech_seconds"]))
        issues.append(f"only {measures['speech_seconds']:.1f} s of speech: speak for {more} s more")
    if measures["snr_db"] < config.min_snr_db:
        issues.append(
            f"too much background noise (the voice is only about {measures['snr_db']:.0f} dB above it): "
            "move somewhere quieter or closer to the microphone"
        )
    if measures["clipped_fraction"] > config.max_clipped_fraction:
        issues.append(f"audio is clipped ({measures['clipped_fraction']:.1%} of samples at full scale)")
    if measures["high_band_db"] < config.min_high_band_db:
        issues.append(BAND_LIMITED)
    if measures["decay_db"] > config.max_decay_db and measures["snr_db"] >= config.min_snr_db:
        issues.append(ECHO)  # noise flattens the decay too: a noisy clip is told about the noise
    return tuple(issues)


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of the whole clip in dB re full scale (-200 for silence)."""
    return 20 * np.log10(max(float(np.sqrt(np.mean(samples**2))), 1e-10))


def normalize_level(samples: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Scale quiet speech up to ``target_dbfs`` RMS; loud speech is left as it is (as Resemblyzer)."""
    gain = float(10 ** ((target_dbfs - level_dbfs(samples)) / 20))  # a Python float keeps float32 samples float32
    return samples * gain if gain > 1 else samples
