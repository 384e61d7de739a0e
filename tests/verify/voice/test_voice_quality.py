"""Voice quality measures: the SNR estimate orders mixtures by their true SNR; clipping; high band; decay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from verify.voice import degrade
from verify.voice.quality import clipped_fraction, decay_db, high_band_db, snr_db

VOICES = Path(__file__).resolve().parents[3] / "assets" / "samples" / "voices"
CLIPS = sorted(VOICES.glob("*/*.flac"))


def load(path: Path) -> np.ndarray:
    samples, _ = soundfile.read(path, dtype="float32")
    return samples


@pytest.mark.parametrize("path", CLIPS[::3], ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("kind", ["white", "pink"])
def test_snr_estimate_orders_noisy_copies_by_their_true_snr(path, kind):
    speech = load(path)
    true = [0.0, 5.0, 10.0, 15.0]

    estimates = [snr_db(degrade.add_noise(speech, np.random.default_rng(0), kind, (snr, snr))) for snr in true]

    assert estimates == sorted(estimates) and estimates[-1] - estimates[0] > 6
    assert estimates[-1] < snr_db(speech)


def test_snr_estimate_of_white_noise_mixtures_is_within_3_db():
    speech = load(VOICES / "1116" / "0.flac")  # a quiet recording: about 50 dB on its own
    for snr in (0.0, 5.0, 10.0, 15.0):
        estimate = snr_db(degrade.add_noise(speech, np.random.default_rng(1), "white", (snr, snr)))
        assert estimate == pytest.approx(snr, abs=3.0)


def test_snr_estimate_orders_babble_mixtures():
    speech, others = load(CLIPS[0]), [load(path) for path in CLIPS[3:]]  # others: two other speakers

    estimates = [snr_db(degrade.add_babble(speech, np.random.default_rng(2), others, (3, 3), (snr, snr)))
                 for snr in (0.0, 10.0, 20.0)]  # fmt: skip

    assert estimates == sorted(estimates)


def test_snr_of_noise_alone_is_low_and_of_a_noiseless_clip_is_the_cap():
    rng = np.random.default_rng(3)

    assert snr_db(0.1 * rng.standard_normal(16_000)) < 1.0
    assert snr_db(np.zeros(16_000)) == 60.0


def test_digital_silence_around_a_noisy_clip_is_not_taken_for_its_noise_floor():
    noisy = degrade.add_noise(load(CLIPS[4]), np.random.default_rng(4), "white", (5.0, 5.0))
    padded = np.concatenate([np.zeros(16_000, np.float32), noisy, np.zeros(16_000, np.float32)])

    assert snr_db(padded) == pytest.approx(snr_db(noisy), abs=0.5)


def test_clipped_fraction_counts_samples_within_a_thousandth_of_full_scale():
    assert clipped_fraction(np.array([1.0, -0.999, 0.998, 0.0], np.float32)) == 0.5


def test_high_band_of_white_noise_is_its_share_of_the_band():
    noise = np.random.default_rng(5).standard_normal(32_000)

    assert high_band_db(noise) == pytest.approx(10 * np.log10((8000 - 4500) / 8000), abs=0.1)


def test_telephone_band_speech_has_almost_nothing_above_4_khz():
    speech = load(CLIPS[0])

    wide, narrow = high_band_db(speech), high_band_db(degrade.telephone(speech, np.random.default_rng(0), 0.0))

    assert -35 < wide < -5 and narrow < wide - 30


def test_high_band_of_silence_is_the_floor():
    assert high_band_db(np.zeros(1000)) == -80.0


def test_the_decay_of_an_exponential_tail_is_its_rt60_slope():
    rate, rt60 = 16_000, 0.5
    time = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 440 * time) * np.where(time < 0.5, 1.0, 10 ** (-3 * (time - 0.5) / rt60))

    assert decay_db(tone.astype(np.float32)) == pytest.approx(-60 * 0.05 / rt60, abs=0.7)


def test_a_sound_that_stops_dead_falls_far_within_50_ms():
    tone = np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000).astype(np.float32)
    tone[8_000:] = 0.0

    assert decay_db(tone) < -60


@pytest.mark.parametrize("path", CLIPS[::3], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_reverberant_room_flattens_the_decay_of_real_speech(path):
    speech = load(path)
    room = degrade.reverberate(speech, np.random.default_rng(0), (0.8, 0.8))

    assert decay_db(speech) < -8 < decay_db(room)


def test_a_clip_shorter_than_the_decay_horizon_measures_zero():
    assert decay_db(np.ones(400, np.float32)) == 0.0
