"""Voice front end: speech detection (Silero VAD, energy), trimming, minimum speech, quality, resampling, level.

The exact trimming tests use the energy detector, whose frames can be computed by hand, with the
"short" and "noisy" flags off; the Silero tests use real speech.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from verify.config import VoiceFrontEndConfig
from verify.errors import ConfigError, NoSpeechError
from verify.voice import degrade
from verify.io import decode_audio
from verify.voice.frontend import (
    BAND_LIMITED,
    ECHO,
    MEASURE_NAMES,
    Speech,
    clipped_fraction,
    frame_levels_dbfs,
    normalize_level,
    prepare_speech,
    remove_dc_offset,
    resample,
    speech_mask,
)

# synthetic bursts never fade (no echo either): only the check under test flags them
CONFIG = VoiceFrontEndConfig(speech_detector="energy", short_speech_seconds=0.0, min_snr_db=-100.0,
                             max_decay_db=float("inf"))
SILERO = VoiceFrontEndConfig()
RATE = CONFIG.sample_rate
FRAME = 480  # 30 ms at 16 kHz
MARGIN_FRAMES = 5  # keep_seconds 0.15 s / 30 ms
VOICE_FLAC = Path(__file__).resolve().parents[3] / "assets" / "samples" / "voices" / "1081" / "0.flac"


def burst(samples: int, rate: int = RATE, peak: float = 0.3, seed: int = 0) -> np.ndarray:
    """Speech-like ``(samples,)`` float32: a 150 Hz harmonic series plus noise, modulated at 4 Hz."""
    rng = np.random.default_rng(seed)
    time = np.arange(samples) / rate
    voiced = sum(np.sin(2 * np.pi * 150 * k * time) / k for k in range(1, 6))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * time)
    signal = envelope * (voiced / 2.3 + 0.2 * rng.standard_normal(samples))
    return (peak * signal / np.abs(signal).max()).astype(np.float32)


def rms_dbfs(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))))


def padded(speech: np.ndarray, before: int, after: int, noise: float = 0.0) -> np.ndarray:
    """``speech`` with ``before`` and ``after`` samples of silence (or faint noise) around it."""
    rng = np.random.default_rng(1)
    clip = np.concatenate([np.zeros(before), speech, np.zeros(after)]).astype(np.float32)
    return clip + (noise * rng.standard_normal(clip.size)).astype(np.float32)


# --- silence and too little speech --------------------------------------------------------------
@pytest.mark.parametrize("noise", [0.0, 1e-4], ids=["digital-zero", "noise-at-minus-80-dBFS"])
def test_silence_is_refused_as_silent(noise):
    clip = padded(np.zeros(0, np.float32), 2 * RATE, 0, noise)

    with pytest.raises(NoSpeechError, match=r"the clip is silent \(no part louder than -55 dBFS\)"):
        prepare_speech(clip, RATE, CONFIG)


def test_ten_millisecond_clip_is_too_short():
    with pytest.raises(NoSpeechError, match=r"only 0.01 s of speech found; at least 0.15 s is needed"):
        prepare_speech(burst(160), RATE, CONFIG)


def test_ten_millisecond_click_in_silence_is_not_enough_speech():
    # The click fills one 30 ms frame; its 0.15 s margins must not count as speech.
    clip = padded(burst(160), 20 * FRAME, 20 * FRAME)

    with pytest.raises(NoSpeechError, match=r"only 0.03 s of speech found"):
        prepare_speech(clip, RATE, CONFIG)


def test_speech_just_under_the_minimum_is_refused_and_just_over_is_kept():
    short = padded(burst(4 * FRAME), 20 * FRAME, 20 * FRAME)  # 0.12 s
    enough = padded(burst(5 * FRAME), 20 * FRAME, 20 * FRAME)  # 0.15 s

    with pytest.raises(NoSpeechError, match=r"only 0.12 s of speech found; at least 0.15 s"):
        prepare_speech(short, RATE, CONFIG)
    assert len(prepare_speech(enough, RATE, CONFIG).samples) == (5 + 2 * MARGIN_FRAMES) * FRAME


def test_minimum_speech_comes_from_the_config():
    clip = padded(burst(10 * FRAME), 20 * FRAME, 20 * FRAME)  # 0.3 s

    with pytest.raises(NoSpeechError, match=r"only 0.30 s of speech found; at least 0.50 s is needed"):
        prepare_speech(clip, RATE, replace(CONFIG, min_speech_seconds=0.5))


# --- trimming -----------------------------------------------------------------------------------
def test_frame_aligned_burst_is_cut_out_with_exact_margins():
    # 34 silent frames, 34 frames of speech, 34 silent frames: speech frames 34..67 widened by
    # 5 frames each side -> frames 29..72, i.e. samples 29*480 .. 73*480, left unscaled (loud).
    clip = padded(burst(34 * FRAME), 34 * FRAME, 34 * FRAME)

    speech = prepare_speech(clip, RATE, CONFIG)

    assert isinstance(speech, Speech)
    np.testing.assert_array_equal(speech.samples, remove_dc_offset(clip)[29 * FRAME : 73 * FRAME])
    assert speech.quality_issues == ()


def test_one_second_of_speech_in_two_seconds_of_silence_keeps_about_one_second_plus_margins():
    clip = padded(burst(RATE), RATE, RATE, noise=1e-4)

    speech = prepare_speech(clip, RATE, CONFIG)

    expected = 1.0 + 2 * CONFIG.keep_seconds
    assert len(speech.samples) / RATE == pytest.approx(expected, abs=2 * CONFIG.frame_seconds)


def test_background_far_below_the_loudest_frame_is_trimmed():
    clip = padded(burst(34 * FRAME, peak=0.9), 34 * FRAME, 34 * FRAME, noise=0.0022)
    levels = frame_levels_dbfs(clip, FRAME)
    background, loudest = levels[:30].max(), levels.max()
    # the background is above silence_dbfs, so only the dynamic range can exclude it
    assert CONFIG.silence_dbfs < background < loudest - CONFIG.dynamic_range_db

    speech = prepare_speech(clip, RATE, CONFIG)

    assert len(speech.samples) == (34 + 2 * MARGIN_FRAMES) * FRAME


def test_speech_at_both_ends_is_kept_whole_including_a_partial_last_frame():
    clip = burst(RATE + 123)

    mask = speech_mask(clip, CONFIG)

    assert mask.shape == clip.shape and mask.all()
    assert len(prepare_speech(clip, RATE, CONFIG).samples) == RATE + 123


def test_gap_shorter_than_two_margins_is_bridged():
    # 8 silent frames between two bursts: each side's 5-frame margin covers them
    speech_frames = burst(20 * FRAME)
    gap = np.zeros(8 * FRAME, np.float32)
    clip = np.concatenate([speech_frames[: 10 * FRAME], gap, speech_frames[10 * FRAME :]])

    assert speech_mask(clip, CONFIG).all()


def test_gap_longer_than_two_margins_is_removed():
    speech_frames = burst(20 * FRAME)
    gap = np.zeros(30 * FRAME, np.float32)
    clip = np.concatenate([speech_frames[: 10 * FRAME], gap, speech_frames[10 * FRAME :]])

    mask = speech_mask(clip, CONFIG)

    assert mask.sum() == (20 + 2 * MARGIN_FRAMES) * FRAME
    assert not mask[(10 + MARGIN_FRAMES) * FRAME : (40 - MARGIN_FRAMES) * FRAME].any()


# --- clipping -----------------------------------------------------------------------------------
def test_clipped_fraction_counts_samples_within_a_thousandth_of_full_scale():
    assert clipped_fraction(np.array([1.0, -0.999, 0.998, 0.0], np.float32)) == 0.5


def test_clipping_is_flagged_as_a_quality_issue_not_an_error():
    clip = burst(RATE)
    clip[::20] = 1.0  # 5 % of samples at full scale

    speech = prepare_speech(clip, RATE, CONFIG)

    assert speech.quality_issues == ("audio is clipped (5.0% of samples at full scale)",)


def test_clipping_at_or_below_the_allowed_fraction_is_not_flagged():
    clip = burst(RATE)
    clip[::100] = -1.0  # exactly 1 %

    assert prepare_speech(clip, RATE, CONFIG).quality_issues == ()


# --- resampling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [8_000, 44_100, 48_000])
def test_resampling_to_16_khz_keeps_duration(rate):
    speech = prepare_speech(burst(rate, rate=rate), rate, CONFIG)

    assert len(speech.samples) == RATE  # one second, all speech


@pytest.mark.parametrize("rate", [8_000, 44_100, 48_000])
def test_resampling_keeps_the_pitch_of_a_tone(rate):
    time = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * time)).astype(np.float32)

    resampled = resample(tone, rate, RATE)

    spectrum = np.abs(np.fft.rfft(resampled))
    peak_hz = np.argmax(spectrum) * RATE / len(resampled)
    assert len(resampled) == RATE
    assert peak_hz == pytest.approx(440, abs=1.5)
    assert np.abs(resampled[1000:-1000]).max() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("rate", [8_000, 11_025, 22_050, 44_100, 48_000])
def test_resampling_equals_torchaudios(rate):
    torchaudio = pytest.importorskip("torchaudio")
    import torch

    samples = np.random.default_rng(rate).uniform(-1, 1, rate // 3 + 7).astype(np.float32)

    expected = torchaudio.functional.resample(torch.from_numpy(samples), rate, RATE).numpy()

    np.testing.assert_allclose(resample(samples, rate, RATE), expected, rtol=0, atol=2e-6)


def test_resample_at_the_same_rate_returns_the_input():
    samples = burst(100)

    assert resample(samples, RATE, RATE) is samples


# --- level --------------------------------------------------------------------------------------
def test_frame_levels_hand_computed():
    samples = np.concatenate([np.full(FRAME, 0.1), np.zeros(FRAME), np.tile([1.0, -1.0], FRAME // 2)])

    levels = frame_levels_dbfs(samples.astype(np.float32), FRAME)

    np.testing.assert_allclose(levels, [-20.0, -200.0, 0.0], atol=1e-5)


def test_frame_level_of_a_clip_shorter_than_a_frame_is_zero_padded():
    # 240 samples of 1.0 in a 480-sample frame: RMS sqrt(1/2) -> -3.01 dB
    assert frame_levels_dbfs(np.ones(240, np.float32), FRAME) == pytest.approx([-3.0103], abs=1e-4)


def test_normalize_level_hand_computed():
    quiet = np.full(100, 0.01, np.float32)  # -40 dBFS

    np.testing.assert_allclose(normalize_level(quiet, -30.0), 10 ** (-30 / 20), rtol=1e-5)
    loud = np.full(100, 0.1, np.float32)  # -20 dBFS
    assert normalize_level(loud, -30.0) is loud


def test_quiet_speech_is_scaled_up_to_the_target_level():
    quiet = burst(RATE, peak=0.01)
    assert rms_dbfs(quiet) < -45

    speech = prepare_speech(quiet, RATE, CONFIG)

    assert rms_dbfs(speech.samples) == pytest.approx(CONFIG.target_dbfs, abs=0.01)
    assert speech.samples.dtype == np.float32


def test_loud_speech_is_not_scaled_down():
    loud = burst(RATE, peak=0.9)
    assert rms_dbfs(loud) > -15

    speech = prepare_speech(loud, RATE, CONFIG)

    np.testing.assert_array_equal(speech.samples, remove_dc_offset(loud))


def test_target_level_comes_from_the_config():
    speech = prepare_speech(burst(RATE, peak=0.01), RATE, replace(CONFIG, target_dbfs=-20.0))

    assert rms_dbfs(speech.samples) == pytest.approx(-20.0, abs=0.01)


# --- real speech --------------------------------------------------------------------------------
def test_real_librispeech_clip_keeps_its_speech_without_issues():
    samples, rate = decode_audio(VOICE_FLAC)

    speech = prepare_speech(samples, rate)

    assert speech.quality_issues == ()
    assert 2.0 < len(speech.samples) / RATE <= len(samples) / rate
    assert rms_dbfs(speech.samples) >= CONFIG.target_dbfs - 0.01


@pytest.mark.parametrize("rate", [8_000, 16_000], ids=["8-kHz-file", "telephone-band-at-16-kHz"])
def test_band_limited_speech_is_flagged_with_what_to_do(rate):
    samples, _ = decode_audio(VOICE_FLAC)
    narrow = degrade.telephone(samples, np.random.default_rng(0), mu_law_probability=0.0)
    if rate == 8_000:
        narrow = resample(narrow, RATE, rate)

    speech = prepare_speech(narrow, rate)

    assert speech.measures["high_band_db"] < SILERO.min_high_band_db
    assert speech.quality_issues == (BAND_LIMITED,)
    assert "band-limited" in BAND_LIMITED and "microphone" in BAND_LIMITED


def test_speech_in_an_echoing_room_is_flagged_with_what_to_do():
    samples, rate = decode_audio(VOICE_FLAC)
    room = degrade.reverberate(samples, np.random.default_rng(0), (0.8, 0.8))

    assert prepare_speech(samples, rate).quality_issues == ()
    speech = prepare_speech(room, rate)
    assert speech.measures["decay_db"] > SILERO.max_decay_db
    assert speech.quality_issues == (ECHO,) and "echo" in ECHO


def test_a_noisy_clip_is_told_about_the_noise_not_an_echo():
    samples, rate = decode_audio(VOICE_FLAC)
    noisy = degrade.add_noise(samples, np.random.default_rng(0), "white", (3.0, 3.0))

    speech = prepare_speech(noisy, rate)

    assert speech.measures["decay_db"] > SILERO.max_decay_db  # its floor stops the fall too
    assert len(speech.quality_issues) == 1 and "background noise" in speech.quality_issues[0]


# --- Silero VAD (the default) -------------------------------------------------------------------
def real_speech() -> np.ndarray:
    samples, rate = decode_audio(VOICE_FLAC)
    assert rate == RATE
    return samples


def test_silero_is_the_default_detector_and_trims_room_noise_around_speech():
    speech = real_speech()
    room = padded(speech, RATE, RATE, noise=1e-3)  # a second of -60 dBFS noise on each side

    trimmed = prepare_speech(room, RATE)

    assert SILERO.speech_detector == "silero"
    # the speech and its margins, not the two seconds of room noise
    assert len(speech) / RATE - 0.8 < len(trimmed.samples) / RATE < len(speech) / RATE + 2 * SILERO.keep_seconds + 0.1
    assert trimmed.quality_issues == ()


def test_every_measure_is_there_with_plausible_values():
    measures = prepare_speech(real_speech(), RATE).measures

    assert tuple(measures) == MEASURE_NAMES
    assert 2.0 < measures["speech_seconds"] <= len(real_speech()) / RATE
    assert measures["snr_db"] > 15 and measures["clipped_fraction"] == 0.0
    assert -35 < measures["high_band_db"] < -5 and 0.9 < measures["speech_probability"] <= 1.0


@pytest.mark.parametrize("make", [lambda rng: 0.1 * rng.standard_normal(3 * RATE),
                                  lambda rng: 0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * RATE) / RATE)],
                         ids=["white-noise", "tone"])  # fmt: skip
def test_noise_or_a_tone_is_no_speech(make):
    clip = make(np.random.default_rng(0)).astype(np.float32)

    with pytest.raises(NoSpeechError, match=r"^only 0\.00 s of speech found; at least 0\.15 s is needed$"):
        prepare_speech(clip, RATE)


def test_clipped_noise_is_no_speech_and_says_it_is_clipped():
    clip = np.clip(np.random.default_rng(1).normal(0, 2, 3 * RATE), -1, 1).astype(np.float32)

    with pytest.raises(NoSpeechError, match=r"only 0\.00 s of speech found; .* \(audio is clipped: 6\d\.\d% of samples"):
        prepare_speech(clip, RATE)


def test_silence_is_refused_as_silent_before_the_vad_runs():
    with pytest.raises(NoSpeechError, match=r"the clip is silent \(no part louder than -55 dBFS\)"):
        prepare_speech(np.zeros(2 * RATE, np.float32), RATE)


def test_short_speech_asks_for_more():
    short = real_speech()[RATE : RATE + int(1.2 * RATE)]

    speech = prepare_speech(short, RATE)

    assert speech.measures["speech_seconds"] < SILERO.short_speech_seconds
    assert speech.quality_issues == (f"only {speech.measures['speech_seconds']:.1f} s of speech: speak for 2 s more",)


def test_how_much_more_speech_to_ask_for_comes_from_the_config():
    short = real_speech()[RATE : RATE + int(1.2 * RATE)]

    speech = prepare_speech(short, RATE, replace(SILERO, recommended_speech_seconds=5.0))

    assert speech.quality_issues[0].endswith("speak for 4 s more")


def test_noisy_speech_is_flagged_with_what_to_do():
    noisy = degrade.add_noise(real_speech(), np.random.default_rng(2), "white", (0.0, 0.0))

    speech = prepare_speech(noisy, RATE)

    assert speech.measures["snr_db"] < SILERO.min_snr_db
    assert speech.quality_issues == (
        f"too much background noise (the voice is only about {speech.measures['snr_db']:.0f} dB above it): "
        "move somewhere quieter or closer to the microphone",
    )


def test_the_energy_detector_reports_the_same_measures():
    measures = prepare_speech(real_speech(), RATE, replace(SILERO, speech_detector="energy")).measures

    assert tuple(measures) == MEASURE_NAMES and measures["speech_probability"] == 1.0


def test_an_unknown_detector_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown speech detector 'webrtc'; expected one of \('silero', 'energy'\)"):
        prepare_speech(real_speech(), RATE, replace(SILERO, speech_detector="webrtc"))


# --- DC offset ------------------------------------------------------------------------------------
def test_remove_dc_offset_hand_computed():
    samples = np.array([0.5, 0.1, 0.3], np.float32)

    np.testing.assert_allclose(remove_dc_offset(samples), [0.2, -0.2, 0.0], atol=1e-7)
    assert remove_dc_offset(samples).dtype == np.float32


@pytest.mark.parametrize("offset", [0.02, -0.1, 0.25])
def test_a_recording_with_a_dc_offset_is_prepared_as_without(offset):
    samples, rate = decode_audio(VOICE_FLAC)
    samples = samples / 2  # room for the offset: nothing is clipped
    plain = prepare_speech(samples, rate, SILERO)

    shifted = prepare_speech(samples + offset, rate, SILERO)

    np.testing.assert_allclose(shifted.samples, plain.samples, atol=2e-5)
    assert shifted.quality_issues == plain.quality_issues == ()
    for name in ("speech_seconds", "snr_db", "decay_db", "high_band_db"):
        assert shifted.measures[name] == pytest.approx(plain.measures[name], abs=0.01), name
