"""The ported GE2E encoder against Resemblyzer's own VoiceEncoder, batching, and the shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from verify.errors import ConfigError, InputError, NoSpeechError
from verify.voice.ge2e import (
    GE2E_WEIGHTS,
    RESEMBLYZER_WEIGHTS,
    HOP_SAMPLES,
    PARTIAL_FRAMES,
    SAMPLE_RATE,
    MelPowerSpectrogram,
    SpeakerEncoder,
    embed_utterances,
    partial_window_starts,
    partial_windows,
)
from verify.weights import MODELS_DIR, load_into

VOICES_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "voices"
LIBRISPEECH_SPEAKERS = 8  # first segment of each of the first speakers
FSDD_SPEAKERS = 2
MIN_COSINE = 0.99


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return load_into(SpeakerEncoder(), RESEMBLYZER_WEIGHTS)


@pytest.fixture(scope="module")
def features() -> MelPowerSpectrogram:
    return MelPowerSpectrogram()


@pytest.fixture(scope="module")
def resemblyzer():
    return pytest.importorskip("resemblyzer")


def speech_files() -> list[Path]:
    libri = sorted((VOICES_DIR / "librispeech_tc100_segments").glob("*/0.flac"))[:LIBRISPEECH_SPEAKERS]
    fsdd = sorted((VOICES_DIR / "fsdd").glob("*/0.flac"))[:FSDD_SPEAKERS]
    return libri + fsdd


@pytest.fixture(scope="module")
def speech(resemblyzer) -> list[np.ndarray]:
    """Real clips, preprocessed by Resemblyzer (volume, silence trim) as float32 at 16 kHz."""
    files = speech_files()
    if len(files) < LIBRISPEECH_SPEAKERS + FSDD_SPEAKERS:
        pytest.skip(f"speech data not found under {VOICES_DIR}")
    return [resemblyzer.preprocess_wav(path).astype(np.float32) for path in files]


# --- parity with Resemblyzer -----------------------------------------------------------------
@pytest.mark.data
def test_embeddings_match_resemblyzer(resemblyzer, speech, encoder, features) -> None:
    reference = resemblyzer.VoiceEncoder("cpu", verbose=False)
    ours = embed_utterances(encoder, features, [torch.from_numpy(wave) for wave in speech])
    for index, (wave, embedding) in enumerate(zip(speech, ours)):
        cosine = float(np.dot(reference.embed_utterance(wave), embedding.numpy()))
        seconds = len(wave) / SAMPLE_RATE
        assert cosine > MIN_COSINE, f"clip {index} ({seconds:.2f} s): cosine {cosine:.5f}"


@pytest.mark.data
def test_features_match_librosa_mel(resemblyzer, speech, features) -> None:
    from resemblyzer.audio import wav_to_mel_spectrogram

    wave = speech[0]
    expected = wav_to_mel_spectrogram(wave)
    actual = features(torch.from_numpy(wave)[None])[0].numpy()
    assert actual.shape == expected.shape == (1 + len(wave) // 160, 40)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("rate, min_coverage", [(1.3, 0.75), (0.7, 0.5), (4.0, 1.0)])
def test_partial_windows_match_resemblyzer(resemblyzer, rate, min_coverage) -> None:
    compute_partial_slices = resemblyzer.VoiceEncoder.compute_partial_slices
    for num_samples in range(1, 6 * SAMPLE_RATE, 113):
        _, mel_slices = compute_partial_slices(num_samples, rate, min_coverage)
        expected = [int(window.start) for window in mel_slices]
        assert partial_window_starts(num_samples, rate, min_coverage) == expected, num_samples


# --- batching ----------------------------------------------------------------------------------
def clips_of_mixed_lengths(speech: list[np.ndarray]) -> list[torch.Tensor]:
    """Real clips plus cuts shorter than one window, exactly one window, and just over it."""
    window = PARTIAL_FRAMES * 160
    base = torch.from_numpy(speech[0])
    cuts = [base[:4000], base[:window], base[: window + 1], base[: int(window * 1.6)]]
    return [torch.from_numpy(wave) for wave in speech[1:]] + cuts


@pytest.mark.data
def test_batched_equals_one_at_a_time(speech, encoder, features) -> None:
    clips = clips_of_mixed_lengths(speech)
    batched = embed_utterances(encoder, features, clips)
    single = torch.cat([embed_utterances(encoder, features, [clip]) for clip in clips])
    assert batched.shape == (len(clips), 256)
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-5)
    torch.testing.assert_close(batched.norm(dim=1), torch.ones(len(clips)))


def test_batched_equals_one_at_a_time_on_noise(encoder, features) -> None:
    generator = torch.Generator().manual_seed(0)
    clips = [0.1 * torch.randn(length, generator=generator) for length in (700, 25600, 40000, 71234)]
    batched = embed_utterances(encoder, features, clips)
    single = torch.cat([embed_utterances(encoder, features, [clip]) for clip in clips])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-5)


def test_partial_windows_are_each_utterances_own_frames(features) -> None:
    """Window k of an utterance in a padded batch = its own frames from its k-th start, zeros past its end."""
    generator = torch.Generator().manual_seed(1)
    clips = [0.1 * torch.randn(length, generator=generator) for length in (700, 40000, 71234)]
    windows, utterance_index = partial_windows(features, clips)
    starts = [partial_window_starts(len(clip)) for clip in clips]
    assert utterance_index.tolist() == [index for index, own in enumerate(starts) for _ in own]
    expected = []
    for clip, own in zip(clips, starts):
        padded = torch.nn.functional.pad(clip, (0, max(0, (own[-1] + PARTIAL_FRAMES) * HOP_SAMPLES - len(clip))))
        frames = features(padded[None])[0]
        expected += [frames[start : start + PARTIAL_FRAMES] for start in own]
    torch.testing.assert_close(windows, torch.stack(expected), rtol=1e-4, atol=1e-6)


# --- shipped weights ---------------------------------------------------------------------------
@pytest.mark.parametrize("weights", [GE2E_WEIGHTS, RESEMBLYZER_WEIGHTS], ids=["robust", "resemblyzer"])
def test_shipped_weights_load_strictly(weights) -> None:
    encoder = load_into(SpeakerEncoder(), weights)
    assert not encoder.training
    partials = torch.rand(3, PARTIAL_FRAMES, 40)
    with torch.inference_mode():
        embeddings = encoder(partials)
    assert embeddings.shape == (3, 256)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))


def test_resemblyzer_weights_equal_its_checkpoint(resemblyzer) -> None:
    source = Path(resemblyzer.__file__).parent / "pretrained.pt"
    model_state = torch.load(source, map_location="cpu", weights_only=True)["model_state"]
    shipped = load_file(str(MODELS_DIR / RESEMBLYZER_WEIGHTS.filename))
    assert set(model_state) - set(shipped) == {"similarity_weight", "similarity_bias"}
    for name, tensor in shipped.items():
        assert torch.equal(tensor, model_state[name]), name


# --- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "waveforms, error, message",
    [
        ([], InputError, "no waveforms"),
        ([torch.zeros(2, 16000)], InputError, "waveform 0 must be a 1-D float tensor"),
        ([torch.zeros(16000), torch.zeros(16000, dtype=torch.int16)], InputError, "waveform 1 must be"),
        ([np.zeros(16000, dtype=np.float32)], InputError, "got ndarray"),
        ([torch.zeros(0)], NoSpeechError, "waveform 0 has no samples"),
        ([torch.full((16000,), float("nan"))], InputError, "NaN or infinite"),
    ],
)
def test_bad_waveforms_raise(encoder, features, waveforms, error, message) -> None:
    with pytest.raises(error, match=message):
        embed_utterances(encoder, features, waveforms)


@pytest.mark.parametrize(
    "rate, min_coverage, message",
    [
        (1.3, 0.0, "min_coverage"),
        (1.3, 1.5, "min_coverage"),
        (0.1, 0.75, "rate 0.1"),
        (0.0, 0.75, "rate 0.0"),
        (500.0, 0.75, "rate 500.0"),
    ],
)
def test_bad_window_settings_raise(encoder, features, rate, min_coverage, message) -> None:
    with pytest.raises(ConfigError, match=message):
        embed_utterances(encoder, features, [torch.zeros(16000)], rate=rate, min_coverage=min_coverage)


def test_features_on_another_device_raise(encoder) -> None:
    features_elsewhere = MelPowerSpectrogram().to("meta")
    with pytest.raises(ConfigError, match="features are on meta but the encoder is on cpu"):
        embed_utterances(encoder, features_elsewhere, [torch.zeros(16000)])
