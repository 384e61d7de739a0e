"""Seeded degradations of 16 kHz speech: short cuts, noise, babble, telephone band, microphones, DC
offsets, level, reverberation, codecs.

Each function takes ``(T,)`` float32 samples at :data:`SAMPLE_RATE` and a ``numpy`` random
generator, and returns new float32 samples at the same rate; the generator is the only source
of randomness, so a seed reproduces every draw. Parameters given as ``(low, high)`` ranges are
drawn uniformly per call. :func:`compose` chains them, :func:`random_degradation` draws one
from a broad family (for training, cohorts and condition-augmented enrollment).

Signal-to-noise ratios are power ratios over the whole clip: ``10 log10(mean(speech²) /
mean(noise²))`` with the noise cut to the speech's length, before any clipping.

Used by ``benchmarks/voice_conditions.py``; babble for an evaluation must come from other
speakers of the same split as the speech, never from the evaluated speaker.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import soundfile
from scipy import signal

from verify.errors import ConfigError

SAMPLE_RATE = 16_000  # Hz
TELEPHONE_RATE = 8_000  # Hz
TELEPHONE_BAND = (300.0, 3400.0)  # Hz
MU = 255  # G.711 mu-law

Degradation = Callable[[np.ndarray, np.random.Generator], np.ndarray]
"""``(samples, rng) -> degraded samples``: a degradation with its parameters bound."""

Range = tuple[float, float]


def draw(rng: np.random.Generator, span: Range) -> float:
    """A uniform draw from ``span = (low, high)`` (``low == high`` gives that value)."""
    low, high = span
    if high < low:
        raise ConfigError(f"range {span!r} has its high end below its low end")
    return float(rng.uniform(low, high)) if high > low else float(low)


def power(samples: np.ndarray) -> float:
    """Mean power ``mean(samples²)`` in float64."""
    return float(np.mean(np.square(samples, dtype=np.float64)))


def cut(samples: np.ndarray, rng: np.random.Generator, seconds: Range = (1.0, 3.0)) -> np.ndarray:
    """A random excerpt of a random duration in ``seconds`` (the whole clip if it is shorter)."""
    length = int(round(draw(rng, seconds) * SAMPLE_RATE))
    if length >= len(samples):
        return samples.astype(np.float32, copy=True)
    start = int(rng.integers(0, len(samples) - length + 1))
    return samples[start : start + length].astype(np.float32, copy=True)


def mix_at_snr(samples: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``samples`` plus ``noise`` (same length) scaled so the clip's SNR is ``snr_db`` dB.

    Raises:
        ConfigError: the lengths differ, or the speech or the noise is all zeros.
    """
    if len(noise) != len(samples):
        raise ConfigError(f"noise has {len(noise)} samples but the speech has {len(samples)}")
    speech_power, noise_power = power(samples), power(noise)
    if speech_power == 0 or noise_power == 0:
        raise ConfigError("cannot set an SNR with silent speech or silent noise")
    gain = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return (samples + gain * noise).astype(np.float32)


def white_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    """``(length,)`` Gaussian white noise, unit variance."""
    return rng.standard_normal(length)


def pink_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    """``(length,)`` noise with a 1/f power spectrum (white noise shaped in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.arange(len(spectrum), dtype=np.float64)
    frequencies[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(frequencies), n=length)


NOISES: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {"white": white_noise, "pink": pink_noise}


def add_noise(
    samples: np.ndarray, rng: np.random.Generator, kind: str = "white", snr_db: Range = (0.0, 15.0)
) -> np.ndarray:
    """Add stationary ``kind`` noise (``"white"`` or ``"pink"``) at an SNR drawn from ``snr_db``."""
    if kind not in NOISES:
        raise ConfigError(f"unknown noise kind {kind!r}; expected one of {sorted(NOISES)}")
    return mix_at_snr(samples, NOISES[kind](len(samples), rng), draw(rng, snr_db))


def babble_noise(length: int, rng: np.random.Generator, others: Sequence[np.ndarray], talkers: int) -> np.ndarray:
    """``talkers`` different clips from ``others``, each looped from a random offset and scaled
    to unit power, summed: ``(length,)`` float64.

    Raises:
        ConfigError: fewer than ``talkers`` non-silent clips in ``others``.
    """
    voiced = [clip for clip in others if len(clip) and power(clip) > 0]
    if len(voiced) < talkers:
        raise ConfigError(f"babble of {talkers} talkers needs as many non-silent clips, got {len(voiced)}")
    babble = np.zeros(length)
    for index in rng.choice(len(voiced), size=talkers, replace=False):
        clip = np.asarray(voiced[index], np.float64)
        start = int(rng.integers(0, len(clip)))
        looped = np.resize(np.roll(clip, -start), length)
        babble += looped / np.sqrt(power(looped) or 1.0)
    return babble


def add_babble(
    samples: np.ndarray,
    rng: np.random.Generator,
    others: Sequence[np.ndarray],
    talkers: tuple[int, int] = (3, 6),
    snr_db: Range = (5.0, 10.0),
) -> np.ndarray:
    """Add the babble of ``talkers = (fewest, most)`` other speakers' clips at an SNR drawn from ``snr_db``.

    ``others`` must not hold the speaker of ``samples`` (the caller knows who is who).
    """
    count = int(rng.integers(talkers[0], talkers[1] + 1))
    return mix_at_snr(samples, babble_noise(len(samples), rng, others, count), draw(rng, snr_db))


def telephone(samples: np.ndarray, rng: np.random.Generator, mu_law_probability: float = 0.5) -> np.ndarray:
    """Telephone channel: 300-3400 Hz band pass, 8 kHz round trip, 8-bit mu-law with the given probability."""
    sos = signal.butter(4, TELEPHONE_BAND, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return through_channel(samples, sos, rng, mu_law_probability)


def phone_channel(
    samples: np.ndarray,
    rng: np.random.Generator,
    low_hz: Range = (150.0, 400.0),
    high_hz: Range = (2800.0, 3800.0),
    orders: tuple[int, int] = (2, 8),
    line_snr_db: Range = (25.0, 45.0),
) -> np.ndarray:
    """A phone channel other than :func:`telephone`'s: a Butterworth band-pass whose edges and order
    are drawn from ``low_hz``, ``high_hz`` and ``orders``, 8 kHz, 8-bit mu-law half the time, and
    pink line noise at an SNR drawn from ``line_snr_db``."""
    order = int(rng.integers(orders[0], orders[1] + 1))
    sos = signal.butter(order, (draw(rng, low_hz), draw(rng, high_hz)), btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return through_channel(samples, sos, rng, 0.5, line_snr_db)


def through_channel(samples: np.ndarray, sos: np.ndarray, rng: np.random.Generator, mu_law_probability: float,
                    line_snr_db: Range | None = None) -> np.ndarray:
    """``samples`` through the band-pass ``sos``, down to 8 kHz (with pink line noise at an SNR drawn
    from ``line_snr_db``, when given), 8-bit mu-law with the given probability, and back to 16 kHz."""
    narrow = signal.resample_poly(signal.sosfilt(sos, samples), TELEPHONE_RATE, SAMPLE_RATE)
    if line_snr_db is not None:
        narrow = mix_at_snr(narrow, pink_noise(len(narrow), rng), draw(rng, line_snr_db))
    if rng.random() < mu_law_probability:
        narrow = mu_law_round_trip(narrow)
    wide = signal.resample_poly(narrow, SAMPLE_RATE, TELEPHONE_RATE)[: len(samples)]
    return np.pad(wide, (0, len(samples) - len(wide))).astype(np.float32)


def microphone(
    samples: np.ndarray,
    rng: np.random.Generator,
    high_pass_hz: Range = (60.0, 250.0),
    low_shelf_db: Range = (-6.0, 6.0),
    high_shelf_db: Range = (-10.0, 4.0),
    presence_db: Range = (2.0, 8.0),
) -> np.ndarray:
    """Another microphone's frequency response, as when one recording is made on a laptop and the
    next on a phone or a headset: a 2nd-order high-pass at a corner drawn from ``high_pass_hz``, a
    low shelf at 200-400 Hz, a high shelf at 3-6 kHz and a presence peak at 2-5 kHz (Q 1-2.5), their
    gains drawn from the ranges; the result keeps the input's power."""
    sections = np.concatenate([
        signal.butter(2, draw(rng, high_pass_hz), btype="highpass", fs=SAMPLE_RATE, output="sos"),
        _biquad("low_shelf", draw(rng, (200.0, 400.0)), draw(rng, low_shelf_db), 0.707)[None],
        _biquad("high_shelf", draw(rng, (3000.0, 6000.0)), draw(rng, high_shelf_db), 0.707)[None],
        _biquad("peak", draw(rng, (2000.0, 5000.0)), draw(rng, presence_db), draw(rng, (1.0, 2.5)))[None],
    ])
    coloured = signal.sosfilt(sections, samples)
    scale = np.sqrt(power(samples) / power(coloured)) if power(coloured) > 0 else 1.0
    return (coloured * scale).astype(np.float32)


def dc_offset(samples: np.ndarray, rng: np.random.Generator, offset: Range = (0.005, 0.05)) -> np.ndarray:
    """A constant offset of either sign, its size drawn from ``offset`` (fractions of full scale),
    as a sound card or a cheap microphone adds (some of LibriSpeech's recordings carry one); clipped
    to [-1, 1]."""
    shift = draw(rng, offset) * (1 if rng.random() < 0.5 else -1)
    return np.clip(samples + shift, -1.0, 1.0).astype(np.float32)


def _biquad(kind: str, centre_hz: float, gain_db: float, q: float) -> np.ndarray:
    """One second-order section ``(b0, b1, b2, 1, a1, a2)`` of the Audio EQ Cookbook (R. Bristow-Johnson):
    ``kind`` is ``"peak"``, ``"low_shelf"`` or ``"high_shelf"``."""
    amplitude = 10 ** (gain_db / 40)
    omega = 2 * np.pi * centre_hz / SAMPLE_RATE
    cos, alpha = np.cos(omega), np.sin(omega) / (2 * q)
    if kind == "peak":
        b = [1 + alpha * amplitude, -2 * cos, 1 - alpha * amplitude]
        a = [1 + alpha / amplitude, -2 * cos, 1 - alpha / amplitude]
    else:
        sign = 1 if kind == "low_shelf" else -1
        root = 2 * np.sqrt(amplitude) * alpha
        plus, minus = amplitude + 1, amplitude - 1
        b = [amplitude * (plus - sign * minus * cos + root), sign * 2 * amplitude * (minus - sign * plus * cos),
             amplitude * (plus - sign * minus * cos - root)]
        a = [plus + sign * minus * cos + root, -sign * 2 * (minus + sign * plus * cos), plus + sign * minus * cos - root]
    return np.array(b + a) / a[0]


def mu_law_round_trip(samples: np.ndarray) -> np.ndarray:
    """Encode to 8-bit mu-law (G.711 curve, samples clipped to [-1, 1]) and decode again."""
    clipped = np.clip(samples, -1.0, 1.0)
    encoded = np.sign(clipped) * np.log1p(MU * np.abs(clipped)) / np.log1p(MU)
    quantised = np.round((encoded + 1) / 2 * MU) / MU * 2 - 1
    return np.sign(quantised) * ((1 + MU) ** np.abs(quantised) - 1) / MU


def change_level(samples: np.ndarray, rng: np.random.Generator, gain_db: Range = (-30.0, 20.0)) -> np.ndarray:
    """Scale by a gain drawn from ``gain_db``, then clip to [-1, 1] as a converter would."""
    return np.clip(samples * 10 ** (draw(rng, gain_db) / 20), -1.0, 1.0).astype(np.float32)


def reverberate(samples: np.ndarray, rng: np.random.Generator, rt60_seconds: Range = (0.2, 0.8)) -> np.ndarray:
    """Convolve with a synthetic room response: a direct path, then Gaussian noise decaying by
    60 dB over an RT60 drawn from ``rt60_seconds``; the result keeps the input's power."""
    rt60 = draw(rng, rt60_seconds)
    time = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    response = rng.standard_normal(len(time)) * 10 ** (-3 * time / rt60) * 0.3
    response[0] = 1.0
    wet = signal.fftconvolve(samples, response)[: len(samples)]
    scale = np.sqrt(power(samples) / power(wet)) if power(wet) > 0 else 1.0
    return (wet * scale).astype(np.float32)


def codec(samples: np.ndarray, rng: np.random.Generator, compression: Range = (0.85, 0.98)) -> np.ndarray:
    """Through a lossy codec and back, as a voice message or a call app sends it: MP3 or Opus (even
    odds) at a libsndfile compression level drawn from ``compression`` (0 best; by default MP3 at
    about 8-33 kbit/s, the lowest without any sound above 4 kHz, and Opus at 12-45 kbit/s), cut or
    padded back to the input's length (MP3 adds its encoder delay)."""
    level = draw(rng, compression)
    encoded = io.BytesIO()
    if rng.random() < 0.5:
        soundfile.write(encoded, samples, SAMPLE_RATE, format="MP3", subtype="MPEG_LAYER_III",
                        compression_level=level, bitrate_mode="CONSTANT")
    else:
        soundfile.write(encoded, samples, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=level)
    encoded.seek(0)
    decoded, _ = soundfile.read(encoded, dtype="float32")
    return np.pad(decoded[: len(samples)], (0, max(0, len(samples) - len(decoded))))


def compose(*steps: Degradation) -> Degradation:
    """One degradation applying ``steps`` in order, all drawing from the same generator."""

    def composed(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for step in steps:
            samples = step(samples, rng)
        return samples

    return composed


ENROLLMENT_COPIES: tuple[Degradation, ...] = (
    partial(add_noise, kind="pink", snr_db=(10.0, 20.0)),
    partial(reverberate, rt60_seconds=(0.3, 0.6)),
    partial(telephone, mu_law_probability=0.0),
)
"""Condition copies of an enrollment sample: pink noise at 10-20 dB, a reverberant room, an 8 kHz
band. Scoring a probe against the best-matching copy (see the voice pipeline's ``embed_condition_copies``)
lowers the EER of noisy, babble and telephone probes without raising that of clean ones."""


def enrollment_copies(samples: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """``samples`` through each of :data:`ENROLLMENT_COPIES`, reproducibly (generator seeded by ``(seed, copy)``)."""
    return [copy(samples, np.random.default_rng([seed, index])) for index, copy in enumerate(ENROLLMENT_COPIES)]


def random_degradation(rng: np.random.Generator) -> Degradation:
    """One degradation drawn from a broad family, parameters bound (babble excluded: it needs clips).

    Stationary white or pink noise at 5-25 dB, reverberation, telephone band or a level change,
    each with probability 1/5; a 1-3 s cut is added in front with probability 1/3.
    """
    choices: list[Degradation] = [
        partial(add_noise, kind="white", snr_db=(5.0, 25.0)),
        partial(add_noise, kind="pink", snr_db=(5.0, 25.0)),
        reverberate,
        telephone,
        change_level,
    ]
    chosen = choices[int(rng.integers(len(choices)))]
    return compose(cut, chosen) if rng.random() < 1 / 3 else chosen
