"""Seeded degradations: deterministic under a seed, at the requested SNR, band and level."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from scipy import signal

from verify.errors import ConfigError
from verify.voice import degrade

RATE = degrade.SAMPLE_RATE


def speech_like(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Voiced harmonics at 120 Hz with a 4 Hz syllable envelope and a little noise, peak 0.5."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * RATE)) / RATE
    voiced = sum(np.sin(2 * np.pi * 120 * k * time) / k for k in range(1, 30))
    clip = (0.2 + np.abs(np.sin(2 * np.pi * 2 * time))) * voiced + 0.05 * rng.standard_normal(len(time))
    return (0.5 * clip / np.abs(clip).max()).astype(np.float32)


def snr_of(clean: np.ndarray, mixed: np.ndarray) -> float:
    return 10 * np.log10(degrade.power(clean) / degrade.power(mixed - clean))


OTHERS = [speech_like(2.5, seed) * (seed + 1) for seed in range(1, 8)]
DEGRADATIONS = {
    "cut": degrade.cut,
    "white": partial(degrade.add_noise, kind="white"),
    "pink": partial(degrade.add_noise, kind="pink"),
    "babble": partial(degrade.add_babble, others=OTHERS),
    "telephone": degrade.telephone,
    "level": degrade.change_level,
    "reverb": degrade.reverberate,
    "codec": degrade.codec,
    "microphone": degrade.microphone,
    "dc_offset": degrade.dc_offset,
    "composed": degrade.compose(degrade.cut, partial(degrade.add_babble, others=OTHERS), degrade.telephone),
}


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_same_seed_same_output_other_seed_other_output(name):
    clip, degradation = speech_like(), DEGRADATIONS[name]

    first = degradation(clip, np.random.default_rng(7))
    again = degradation(clip, np.random.default_rng(7))
    other = degradation(clip, np.random.default_rng(8))

    assert first.dtype == np.float32 and first.ndim == 1
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)


@pytest.mark.parametrize("name", ["white", "pink", "babble", "telephone", "level", "reverb"])
def test_degradations_keep_the_length_and_leave_the_input_alone(name):
    clip = speech_like()
    before = clip.copy()

    assert len(DEGRADATIONS[name](clip, np.random.default_rng(0))) == len(clip)
    np.testing.assert_array_equal(clip, before)


@pytest.mark.parametrize("kind", ["white", "pink"])
@pytest.mark.parametrize("snr", [0.0, 7.5, 15.0])
def test_noise_is_added_at_the_requested_snr(kind, snr):
    clip = speech_like()

    mixed = degrade.add_noise(clip, np.random.default_rng(1), kind, (snr, snr))

    assert snr_of(clip, mixed) == pytest.approx(snr, abs=0.01)


def test_snr_is_drawn_inside_the_range():
    clip = speech_like()
    snrs = [snr_of(clip, degrade.add_noise(clip, np.random.default_rng(seed), "white", (0.0, 15.0))) for seed in range(40)]

    assert 0.0 <= min(snrs) < 3.0 and 12.0 < max(snrs) <= 15.0


def test_pink_noise_falls_3_db_per_octave():
    noise = degrade.pink_noise(2**18, np.random.default_rng(0))
    frequencies, density = signal.welch(noise, RATE, nperseg=4096)

    def band(low: float) -> float:
        return float(np.mean(density[(frequencies >= low) & (frequencies < 2 * low)]))

    assert 10 * np.log10(band(500) / band(1000)) == pytest.approx(3.0, abs=0.5)


@pytest.mark.parametrize("snr", [5.0, 10.0])
def test_babble_is_added_at_the_requested_snr_from_the_other_clips_only(snr):
    clip = speech_like()

    mixed = degrade.add_babble(clip, np.random.default_rng(2), OTHERS, talkers=(3, 3), snr_db=(snr, snr))

    assert snr_of(clip, mixed) == pytest.approx(snr, abs=0.01)
    # the babble is a mix of the given clips: silent "others" give an error, not the speech itself
    with pytest.raises(ConfigError, match="babble of 3 talkers needs as many non-silent clips, got 2"):
        degrade.add_babble(clip, np.random.default_rng(2), OTHERS[:2] + [np.zeros(100)], talkers=(3, 3))


def test_babble_uses_the_requested_number_of_distinct_talkers():
    # each "talker" is a constant of a different value, so the babble's values tell who is in it
    constants = [np.full(1000, float(2**k)) for k in range(8)]

    babble = degrade.babble_noise(500, np.random.default_rng(3), constants, talkers=4)

    assert np.allclose(babble, 4.0)  # four unit-power constants, each scaled to 1


def test_cut_takes_a_window_of_the_drawn_length_from_the_clip():
    clip = np.arange(4 * RATE, dtype=np.float32)

    for seed in range(20):
        excerpt = degrade.cut(clip, np.random.default_rng(seed), (1.0, 2.0))
        assert RATE <= len(excerpt) <= 2 * RATE
        np.testing.assert_array_equal(excerpt, np.arange(excerpt[0], excerpt[0] + len(excerpt)))


def test_cut_of_a_shorter_clip_keeps_it_whole():
    clip = speech_like(0.5)

    np.testing.assert_array_equal(degrade.cut(clip, np.random.default_rng(0), (1.0, 3.0)), clip)


def test_telephone_band_removes_what_lies_outside_300_to_3400_hz():
    time = np.arange(2 * RATE) / RATE
    tones = {hz: np.sin(2 * np.pi * hz * time).astype(np.float32) * 0.3 for hz in (100, 1000, 6000)}

    kept = {hz: degrade.power(degrade.telephone(tone, np.random.default_rng(0), 0.0)[RATE // 2 : -RATE // 2])
            / degrade.power(tone) for hz, tone in tones.items()}  # fmt: skip

    assert kept[1000] == pytest.approx(1.0, abs=0.05)
    assert kept[100] < 0.01 and kept[6000] < 1e-4


def test_other_phone_channels_vary_and_keep_only_the_phone_band():
    time = np.arange(2 * RATE) / RATE
    tones = {hz: np.sin(2 * np.pi * hz * time).astype(np.float32) * 0.3 for hz in (60, 1000, 6000)}

    for seed in range(4):
        kept = {hz: degrade.power(degrade.phone_channel(tone, np.random.default_rng(seed))[RATE // 2 : -RATE // 2])
                / degrade.power(tone) for hz, tone in tones.items()}  # fmt: skip
        assert kept[1000] == pytest.approx(1.0, abs=0.1)
        assert kept[60] < 0.05 and kept[6000] < 1e-3  # line noise aside, nothing outside the band
    clip = speech_like()
    channels = [degrade.phone_channel(clip, np.random.default_rng(seed)) for seed in range(3)]
    assert len({channel.tobytes() for channel in channels}) == 3
    np.testing.assert_array_equal(channels[0], degrade.phone_channel(clip, np.random.default_rng(0)))


def test_another_microphone_reshapes_the_spectrum_and_keeps_the_power():
    time = np.arange(2 * RATE) / RATE
    clip = sum(np.sin(2 * np.pi * hz * time) for hz in (50, 1000, 2000, 3000, 4000, 5000, 7500)).astype(np.float32) * 0.1

    def levels(**gains: tuple[float, float]) -> dict[int, float]:
        """Each tone's level in dB against the 1 kHz tone's, through one seeded microphone."""
        settings = {"high_pass_hz": (250.0, 250.0), "low_shelf_db": (0.0, 0.0), "high_shelf_db": (0.0, 0.0),
                    "presence_db": (0.0, 0.0)} | gains
        coloured = degrade.microphone(clip, np.random.default_rng(0), **settings)
        assert degrade.power(coloured) == pytest.approx(degrade.power(clip), rel=1e-3)
        spectrum = np.abs(np.fft.rfft(coloured[RATE // 2 :]))  # 1.5 s: every tone falls on a bin
        return {hz: 20 * np.log10(spectrum[int(hz * 1.5)] / spectrum[1500]) for hz in (50, 2000, 3000, 4000, 5000, 7500)}

    flat = levels()
    assert flat[50] < -20 and abs(flat[7500]) < 1  # under the high-pass corner; above it, flat
    presence = levels(presence_db=(8.0, 8.0))
    assert max(presence[hz] - flat[hz] for hz in (2000, 3000, 4000, 5000)) > 3  # the peak, 2-5 kHz
    assert levels(high_shelf_db=(-10.0, -10.0))[7500] < flat[7500] - 7
    clip = speech_like()
    microphones = [degrade.microphone(clip, np.random.default_rng(seed)) for seed in range(3)]
    assert len({microphone.tobytes() for microphone in microphones}) == 3


def test_a_dc_offset_shifts_every_sample_by_one_drawn_amount_of_either_sign():
    clip = speech_like()
    shifts = []
    for seed in range(20):
        shifted = degrade.dc_offset(clip, np.random.default_rng(seed), offset=(0.01, 0.04))
        difference = shifted.astype(np.float64) - clip
        assert np.ptp(difference) < 1e-6  # one constant, the speech itself untouched
        shifts.append(float(difference.mean()))
    assert all(0.01 - 1e-6 <= abs(shift) <= 0.04 + 1e-6 for shift in shifts)
    assert min(shifts) < 0 < max(shifts)
    loud = np.full(100, 0.99, np.float32)
    assert degrade.dc_offset(loud, np.random.default_rng(0), offset=(0.5, 0.5)).max() <= 1.0  # clipped like a converter


def test_mu_law_round_trip_keeps_the_signal_to_8_bit_precision():
    samples = np.linspace(-1, 1, 1001)

    decoded = degrade.mu_law_round_trip(samples)

    assert np.max(np.abs(decoded - samples)) < 0.025  # half the coarsest step (0.044, near full scale)
    assert np.max(np.abs(decoded[480:521] - samples[480:521])) < 0.001  # fine steps near zero


def test_level_change_scales_and_clips_at_full_scale():
    clip = speech_like()

    quiet = degrade.change_level(clip, np.random.default_rng(0), (-20.0, -20.0))
    loud = degrade.change_level(clip, np.random.default_rng(0), (20.0, 20.0))

    np.testing.assert_allclose(quiet, clip * 0.1, rtol=1e-5)
    assert np.abs(loud).max() == 1.0 and np.mean(np.abs(loud) == 1.0) > 0.1


def test_reverberation_keeps_the_power_and_smears_a_click():
    click = np.zeros(RATE, np.float32)
    click[100] = 1.0

    wet = degrade.reverberate(click, np.random.default_rng(0), (0.5, 0.5))

    assert degrade.power(wet) == pytest.approx(degrade.power(click), rel=1e-4)
    tail = wet[100 + RATE // 10 : 100 + RATE // 5]  # 100-200 ms after the click
    assert np.abs(tail).max() > 0.01 * np.abs(wet).max()


def test_compose_applies_the_steps_in_order():
    add_one = lambda samples, rng: samples + 1  # noqa: E731
    double = lambda samples, rng: samples * 2  # noqa: E731

    assert degrade.compose(add_one, double)(np.zeros(2), np.random.default_rng(0)).tolist() == [2.0, 2.0]


def test_random_degradation_is_seeded():
    clip = speech_like()

    first = degrade.random_degradation(np.random.default_rng(5))
    second = degrade.random_degradation(np.random.default_rng(5))

    np.testing.assert_array_equal(first(clip, np.random.default_rng(1)), second(clip, np.random.default_rng(1)))


def test_bad_arguments_are_config_errors():
    clip = speech_like(0.1)
    with pytest.raises(ConfigError, match=r"range \(5.0, 1.0\) has its high end below its low end"):
        degrade.cut(clip, np.random.default_rng(0), (5.0, 1.0))
    with pytest.raises(ConfigError, match="unknown noise kind 'brown'"):
        degrade.add_noise(clip, np.random.default_rng(0), "brown")
    with pytest.raises(ConfigError, match="cannot set an SNR with silent speech"):
        degrade.add_noise(np.zeros(100, np.float32), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="noise has 3 samples but the speech has 1600"):
        degrade.mix_at_snr(clip, np.ones(3), 0.0)


def test_enrollment_copies_are_reproducible_and_one_per_condition():
    clip = speech_like()

    copies = degrade.enrollment_copies(clip)

    assert len(copies) == len(degrade.ENROLLMENT_COPIES) == 3
    for copy, again in zip(copies, degrade.enrollment_copies(clip)):
        np.testing.assert_array_equal(copy, again)
    assert not np.array_equal(copies[0], degrade.enrollment_copies(clip, seed=1)[0])
    assert 10 <= snr_of(clip, copies[0]) <= 20  # pink noise at 10-20 dB


@pytest.mark.parametrize("compression, kind", [((0.98, 0.98), "lowest MP3 or Opus"), ((0.85, 0.85), "higher rate")])
def test_codec_keeps_the_speech_but_not_every_detail(compression, kind):
    clip = speech_like()
    coded = [degrade.codec(clip, np.random.default_rng(seed), compression) for seed in range(6)]
    for out in coded:
        assert out.dtype == np.float32 and len(out) == len(clip)
        assert 0.3 < degrade.power(out) / degrade.power(clip) < 1.5  # the speech comes through
        assert not np.allclose(out, clip, atol=1e-3)  # lossy
    assert len({out.tobytes() for out in coded}) > 1  # MP3 and Opus both drawn
