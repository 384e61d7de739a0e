"""Numeric voice quality measures that predict how far a clip's score can be trusted.

All take float32 samples at 16 kHz and cost well under a millisecond for a few seconds of audio.
How well :func:`snr_db` tracks the true SNR of noisy mixtures is measured by
``python benchmarks/voice_conditions.py`` (section ``snr_tracking``).
"""

from __future__ import annotations

import numpy as np

SNR_FRAME_SAMPLES = 160  # 10 ms at 16 kHz
NOISE_PERCENTILE = 10.0
DIGITAL_SILENCE_POWER = 1e-10  # -100 dBFS: frames this quiet are padding, not a noise floor
SNR_RANGE_DB = (-20.0, 60.0)
DECAY_FRAMES = 5  # 50 ms: how far ahead a frame's level is compared
DECAY_LOUD_DB = 25.0  # frames within this of the loudest one start a decay
DECAY_PERCENTILE = 5.0
HIGH_BAND_HZ = 4500.0
HIGH_BAND_FLOOR_DB = -80.0


def clipped_fraction(samples: np.ndarray) -> float:
    """Fraction of samples at (or within 0.1 % of) full scale."""
    return float(np.mean(np.abs(samples) >= 0.999))


def frame_powers(samples: np.ndarray, frame: int) -> np.ndarray:
    """Mean power of each whole non-overlapping ``frame``-sample window (float64; none for a short clip)."""
    count = len(samples) // frame
    frames = samples[: count * frame].reshape(count, frame).astype(np.float64)
    return np.mean(frames**2, axis=1)


def snr_db(samples: np.ndarray, frame: int = SNR_FRAME_SAMPLES) -> float:
    """Estimated signal-to-noise ratio of a whole clip (before trimming), in dB.

    The noise floor is the 10th percentile of the power of 10 ms frames (frames of digital
    silence excluded): even continuous speech has that many frames between syllables where only
    the noise is left. SNR = ``(mean power - floor) / floor``, clamped to [-20, 60] dB; a clip with
    no noise floor at all gives 60. ``frame``: the samples of 10 ms at the clip's rate.
    """
    powers = frame_powers(samples, frame)
    powers = powers[powers > DIGITAL_SILENCE_POWER]
    low, high = SNR_RANGE_DB
    if len(powers) == 0:
        return high
    floor = float(np.percentile(powers, NOISE_PERCENTILE))
    signal = float(np.mean(powers)) - floor
    if signal <= 0:
        return low
    return float(np.clip(10 * np.log10(signal / floor), low, high))


def high_band_db(speech: np.ndarray, rate: int = 16_000, source_rate: int | None = None) -> float:
    """Share of the speech's power above 4.5 kHz, in dB (at least -80).

    Wide-band microphone speech sits around -15 to -30 dB; telephone-band or 8 kHz audio,
    which has nothing up there, far lower. A mismatch between enrollment and probe predicts a
    lower genuine score. Audio recorded at a ``source_rate`` of 9 kHz or less gives -80: what
    resampling it to ``rate`` leaves above 4.5 kHz is the resampler's images, not speech.
    """
    if source_rate is not None and source_rate <= 2 * HIGH_BAND_HZ:
        return HIGH_BAND_FLOOR_DB
    spectrum = np.abs(np.fft.rfft(speech.astype(np.float64))) ** 2
    total = float(spectrum.sum())
    if total <= 0:
        return HIGH_BAND_FLOOR_DB
    cut = int(round(HIGH_BAND_HZ * len(speech) / rate))
    share = float(spectrum[cut:].sum()) / total
    return float(max(10 * np.log10(max(share, 1e-30)), HIGH_BAND_FLOOR_DB))


def decay_db(samples: np.ndarray) -> float:
    """How fast the clip's level can fall: the 5th percentile of the change in level over 50 ms
    from its loud 10 ms frames (within 25 dB of the loudest), in dB (0 for a clip too short to say).

    A room's reverberation keeps each sound ringing, falling by 60 dB over its RT60, so speech
    recorded far from the microphone in an echoing room cannot fade faster than that: 6 dB per
    50 ms at an RT60 of 0.5 s, while clean speech falls 8 to 32 dB as a syllable ends
    (``python benchmarks/voice_measures.py``). Stationary noise also flattens it (its floor stops
    the fall), so it is read beside ``snr_db``.
    """
    levels = 10 * np.log10(np.maximum(frame_powers(samples, SNR_FRAME_SAMPLES), DIGITAL_SILENCE_POWER))
    if len(levels) <= DECAY_FRAMES:
        return 0.0
    start = levels[:-DECAY_FRAMES]
    loud = start > levels.max() - DECAY_LOUD_DB
    return float(np.percentile(levels[DECAY_FRAMES:][loud] - start[loud], DECAY_PERCENTILE))
