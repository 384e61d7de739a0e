"""Teacher-student fine-tuning of the voice encoder on the shipped voice samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.robust_voice import StudentConfig, embed_clips, prepared, train_student, training_clips
from verify.conditions import decode_sample
from verify.voice import degrade
from verify.voice.ge2e import MelPowerSpectrogram, resemblyzer_encoder, shipped_encoder
from verify.voice.vad import SileroVad

VOICES = Path(__file__).resolve().parents[2] / "assets" / "samples" / "voices"


@pytest.fixture(scope="module")
def clips():
    files = sorted(VOICES.glob("*/*.flac"))
    vad = SileroVad()
    return training_clips([decode_sample("voice", path) for path in files], [path.parent.name for path in files], vad), vad


def noisy(clips, vad) -> list[np.ndarray]:
    """The clips in white noise at 5 dB, the same draws every call."""
    return [prepared(degrade.add_noise(raw, np.random.default_rng(index), kind="white", snr_db=(5.0, 5.0)), vad)
            for index, raw in enumerate(clips.raw)]


def test_training_brings_noisy_speech_closer_to_its_clean_embedding(clips):
    clips, vad = clips
    torch.manual_seed(0)
    teacher, features = resemblyzer_encoder(), MelPowerSpectrogram()
    clean = embed_clips(teacher, features, clips.clean)
    degraded = noisy(clips, vad)
    before = np.sum(embed_clips(teacher, features, degraded) * clean, axis=1)

    student = train_student(teacher, clips, StudentConfig(epochs=3, clips_per_step=3, clean_fraction=0.0), vad)
    after = np.sum(embed_clips(student, features, degraded) * clean, axis=1)

    assert not student.training
    assert after.mean() > before.mean() + 0.01, (before, after)
    teacher_again = resemblyzer_encoder()
    for name, value in teacher.state_dict().items():  # the teacher is left as it was
        assert torch.equal(value, teacher_again.state_dict()[name]), name


def test_clean_speech_keeps_its_place(clips):
    """The shipped student embeds clean speech close to where Resemblyzer's own weights do."""
    clips, _ = clips
    features = MelPowerSpectrogram()
    teacher = embed_clips(resemblyzer_encoder(), features, clips.clean)
    student = embed_clips(shipped_encoder(), features, clips.clean)
    assert np.sum(teacher * student, axis=1).min() > 0.8
