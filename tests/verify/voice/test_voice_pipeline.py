"""Behaviour of the shipped voice pipeline on the shipped samples and on re-encoded copies of them."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torchaudio.functional

from verify.errors import DecodeError, NoSpeechError
from verify.models import shipped_verifier
from verify.scoring import cosine_scores
from verify.voice.pipeline import wrap_to_windows


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(cosine_scores(a, b)[0, 0])


def speaker(path: Path) -> str:
    return path.parent.name


def wav_bytes(samples: np.ndarray, rate: int, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt)
    return buffer.getvalue()


# 1081/0.flac: its 8 kHz copy keeps cosine 0.94 (the narrowest-band copy of 103/2.flac drops to
# 0.89: half the mel bands are empty at 8 kHz, so "> 0.9" is not true of every clip).
@pytest.fixture(scope="module")
def clip_index(voice_files) -> int:
    index = [f"{speaker(p)}/{p.name}" for p in voice_files].index("1081/0.flac")
    return index


@pytest.fixture(scope="module")
def clip(voice_files, clip_index) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(voice_files[clip_index], dtype="float32")
    assert rate == 16_000 and samples.ndim == 1
    return samples, rate


# --- the shipped samples ----------------------------------------------------------------------
def test_embeddings_are_unit_vectors(voice_embeddings) -> None:
    for embedding in voice_embeddings:
        assert embedding.vector.shape == (256,) and embedding.vector.dtype == np.float32
        assert np.linalg.norm(embedding.vector) == pytest.approx(1.0, abs=1e-5)
        assert embedding.quality_issues == ()
        assert embedding.preview.ndim == 1 and len(embedding.preview) > 16_000  # trimmed 16 kHz speech


def test_every_genuine_pair_scores_above_every_impostor_pair(voice_files, voice_embeddings) -> None:
    vectors = np.stack([e.vector for e in voice_embeddings])
    scores = cosine_scores(vectors, vectors)
    people = np.array([speaker(path) for path in voice_files])
    same = people[:, None] == people[None, :]
    genuine, impostor = scores[same & ~np.eye(len(people), dtype=bool)], scores[~same]
    assert len(genuine) == 18 and len(impostor) == 54
    assert genuine.min() - impostor.max() > 0.1, (genuine.min(), impostor.max())


def test_medium_level_accepts_genuine_and_rejects_impostors(voice_pipeline, voice_files, voice_embeddings) -> None:
    """Enroll each speaker from clip 0, probe with clips 1 and 2 of everyone (as ``verify demo``)."""
    verifier = shipped_verifier(voice_pipeline, "medium")
    templates = {speaker(path): e.vector for path, e in zip(voice_files, voice_embeddings) if path.stem == "0"}
    probes = [(path, e) for path, e in zip(voice_files, voice_embeddings) if path.stem != "0"]
    for claimed, template in templates.items():
        for path, probe in probes:
            decision = verifier.decide(template, probe)
            expected = "accepted" if speaker(path) == claimed else "rejected"
            assert decision.outcome == expected, (claimed, str(path), decision)


def test_batch_equals_one_at_a_time(voice_pipeline, voice_files, voice_embeddings) -> None:
    for path, batched in zip(voice_files, voice_embeddings):
        np.testing.assert_allclose(voice_pipeline.embed(path).vector, batched.vector, atol=1e-5)


def test_bytes_and_array_sources_embed_like_the_file(voice_pipeline, voice_files, voice_embeddings, clip, clip_index) -> None:
    reference = voice_embeddings[clip_index].vector
    np.testing.assert_allclose(voice_pipeline.embed(voice_files[clip_index].read_bytes()).vector, reference, atol=1e-5)
    np.testing.assert_allclose(voice_pipeline.embed(clip).vector, reference, atol=1e-5)


# --- other rates and channel layouts ----------------------------------------------------------
@pytest.mark.parametrize("rate", [8_000, 44_100])
def test_resampled_copy_embeds_close_to_the_original(voice_pipeline, voice_embeddings, clip, clip_index, rate) -> None:
    samples, original_rate = clip
    resampled = torchaudio.functional.resample(torch.from_numpy(samples), original_rate, rate).numpy()
    embedding = voice_pipeline.embed(wav_bytes(resampled, rate))
    assert cosine(embedding.vector, voice_embeddings[clip_index].vector) > 0.9


def test_stereo_copy_embeds_close_to_the_original(voice_pipeline, voice_embeddings, clip, clip_index) -> None:
    samples, rate = clip
    stereo = np.stack([samples, 0.5 * samples], axis=1)
    embedding = voice_pipeline.embed(wav_bytes(stereo, rate, "FLAC"))
    assert cosine(embedding.vector, voice_embeddings[clip_index].vector) > 0.9


# --- no speech and broken files ---------------------------------------------------------------
def test_silence_has_no_speech(voice_pipeline) -> None:
    with pytest.raises(NoSpeechError, match="the clip is silent"):
        voice_pipeline.embed(wav_bytes(np.zeros(32_000, np.float32), 16_000))


def test_a_10_ms_clip_has_too_little_speech(voice_pipeline, clip) -> None:
    samples, rate = clip
    loudest = int(np.argmax(np.abs(samples)))
    start = min(loudest, len(samples) - rate // 100)
    # Silero VAD sees 10 ms (one zero-padded 32 ms frame) as no speech at all
    with pytest.raises(NoSpeechError, match=r"only 0\.00 s of speech found; at least 0\.15 s is needed"):
        voice_pipeline.embed(wav_bytes(samples[start : start + rate // 100], rate))


def test_a_corrupt_file_in_a_batch_yields_only_its_error(voice_pipeline, voice_files, voice_embeddings, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + bytes(range(256)) * 8)
    results = voice_pipeline.embed_many([voice_files[0], corrupt, voice_files[5]])
    assert isinstance(results[1], DecodeError) and "not audio in a supported format" in str(results[1])
    np.testing.assert_allclose(results[0].vector, voice_embeddings[0].vector, atol=1e-5)
    np.testing.assert_allclose(results[2].vector, voice_embeddings[5].vector, atol=1e-5)
    with pytest.raises(DecodeError, match=re.escape(str(corrupt))):
        voice_pipeline.embed(corrupt)


# --- what the encoder reads --------------------------------------------------------------------
@pytest.mark.parametrize(("length", "wrapped"), [(100, 25_600), (16_000, 25_600), (25_600, 25_600), (30_000, 30_000)])
def test_speech_is_repeated_to_the_end_of_its_last_window(length, wrapped) -> None:
    # one 1.6 s window (25,600 samples) for anything up to 1.97 s; 30,000 samples keep only that one
    samples = np.arange(length, dtype=np.float32)

    out = wrap_to_windows(samples)

    assert len(out) == wrapped
    np.testing.assert_array_equal(out, np.resize(samples, wrapped))


def test_a_kept_last_window_is_filled_with_the_start_of_the_speech() -> None:
    samples = np.arange(60_000, dtype=np.float32)  # windows start at 0, 1.232, 2.464, 3.696 s; the last ends at 3.91 s

    out = wrap_to_windows(samples)

    assert len(out) == 62_560 and out[60_000] == 0.0 and out[-1] == 2_559.0


def test_condition_copies_of_an_enrollment_stay_near_its_embedding(voice_pipeline, voice_embeddings) -> None:
    embedding = voice_embeddings[0]

    copies = voice_pipeline.embed_condition_copies(embedding.preview)

    assert copies.shape == (3, 256) and copies.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(copies, axis=1), 1.0, atol=1e-5)
    assert (copies @ embedding.vector > 0.6).all() and (copies @ embedding.vector < 0.99).all()
    np.testing.assert_array_equal(copies, voice_pipeline.embed_condition_copies(embedding.preview))
