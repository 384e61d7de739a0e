"""A noise-robust GE2E speaker encoder by teacher-student fine-tuning, without speaker labels.

Resemblyzer's GE2E puts a clean utterance and the same voice in babble, noise or a telephone
band far apart, so a one-shot enrollment made at home does not match a probe made elsewhere.
Here the shipped network is the frozen *teacher*; a copy of it, the *student*, is trained so
that a 1.6 s window of *degraded* speech lands where the teacher puts the whole *clean*
utterance (loss ``1 - cosine``). Degradations are the broad random families of
:mod:`verify.conditions` (stationary white or pink noise, babble of other speakers, reverberation,
telephone band, level changes, short cuts), drawn afresh every epoch and passed through the
product's own front end (Silero VAD, level normalisation), so the student learns what the
product will feed it. A share of clean windows keeps clean speech where it was.

No speaker labels enter the loss: the target of a clip is its own clean teacher embedding, so
the student keeps the teacher's space (enrollments, cohorts and calibrations stay comparable in
kind) and cannot learn the training speakers' identities as classes.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from verify.conditions import any_voice
from verify.errors import VerifyError
from verify.voice.encoder import HOP_SAMPLES, PARTIAL_FRAMES, SAMPLE_RATE
from verify.voice.frontend import prepare_speech
from verify.voice.ge2e import MelPowerSpectrogram, SpeakerEncoder, embed_utterances
from verify.voice.pipeline import wrap_to_windows
from verify.voice.vad import SileroVad

WINDOW_SAMPLES = PARTIAL_FRAMES * HOP_SAMPLES
BABBLE_SOURCES = 8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudentConfig:
    """How the student is trained.

    Attributes:
        epochs: passes over the clips, each with fresh degradations.
        learning_rate: Adam's step size (every parameter is trained).
        clips_per_step: clips per optimiser step.
        windows_per_clip: random 1.6 s windows taken from each clip per step.
        clean_fraction: share of clips seen clean rather than degraded.
        seed: seeds the clip order, the degradations and the windows.
    """

    epochs: int = 8
    learning_rate: float = 1e-4
    clips_per_step: int = 16
    windows_per_clip: int = 2
    clean_fraction: float = 0.2
    seed: int = 0


@dataclass(frozen=True)
class TrainingClips:
    """Decoded 16 kHz clips of several speakers, with the front end's clean speech of each.

    Attributes:
        raw: decoded clips as recorded (what degradations start from).
        speakers: ``(N,)`` speaker of each clip (only to draw babble from *other* speakers).
        clean: the front end's trimmed, level-normalised speech of each clip.
    """

    raw: list[np.ndarray]
    speakers: np.ndarray
    clean: list[np.ndarray]


def prepared(samples: np.ndarray, vad: SileroVad) -> np.ndarray | None:
    """The product front end's speech of a 16 kHz clip, or ``None`` where it finds too little."""
    try:
        return prepare_speech(samples, SAMPLE_RATE, vad=vad).samples
    except VerifyError:
        return None


def training_clips(raw: Sequence[np.ndarray], speakers: Sequence[str], vad: SileroVad) -> TrainingClips:
    """The clips the front end finds enough speech in, with their clean speech."""
    kept = [(clip, speaker, prepared(clip, vad)) for clip, speaker in zip(raw, speakers)]
    kept = [item for item in kept if item[2] is not None]
    return TrainingClips([item[0] for item in kept], np.array([item[1] for item in kept]),
                         [item[2] for item in kept])


def embed_clips(encoder: SpeakerEncoder, features: MelPowerSpectrogram, clips: Sequence[np.ndarray],
                batch: int = 32) -> np.ndarray:
    """``(N, 256)`` utterance embeddings of prepared clips, as the product makes them."""
    encoder.eval()
    parts = [embed_utterances(encoder, features, [torch.from_numpy(wrap_to_windows(np.ascontiguousarray(clip, np.float32)))
                                                  for clip in clips[start : start + batch]])
             for start in range(0, len(clips), batch)]
    return torch.cat(parts).numpy()


def train_student(
    teacher: SpeakerEncoder,
    clips: TrainingClips,
    config: StudentConfig = StudentConfig(),
    vad: SileroVad | None = None,
    on_epoch: Callable[[int, float, SpeakerEncoder], None] = lambda epoch, loss, student: None,
) -> SpeakerEncoder:
    """Fine-tune a copy of ``teacher`` to embed degraded windows like the clean utterance.

    Args:
        on_epoch: called after every epoch with its index, mean loss and the student (in train mode).

    Returns:
        The student, in eval mode.
    """
    vad = vad or SileroVad()
    features = MelPowerSpectrogram()
    targets = torch.from_numpy(embed_clips(teacher, features, clips.clean))
    student = copy.deepcopy(teacher)
    optimiser = torch.optim.Adam(student.parameters(), lr=config.learning_rate)
    rng = np.random.default_rng(config.seed)
    for epoch in range(config.epochs):
        started, losses = time.time(), []
        student.train()
        order = rng.permutation(len(clips.clean))
        for first in range(0, len(order), config.clips_per_step):
            windows, wanted = _step_windows(clips, order[first : first + config.clips_per_step], config, rng, vad)
            with torch.no_grad():
                mel = features(torch.from_numpy(np.stack(windows)))[:, :PARTIAL_FRAMES]
            loss = (1 - (student(mel) * targets[wanted]).sum(dim=1)).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        log.info("epoch %d: loss %.4f (%.0f s)", epoch, np.mean(losses), time.time() - started)
        on_epoch(epoch, float(np.mean(losses)), student)
    return student.eval()


def _step_windows(clips: TrainingClips, chosen: np.ndarray, config: StudentConfig, rng: np.random.Generator,
                  vad: SileroVad) -> tuple[list[np.ndarray], list[int]]:
    """Random windows of the chosen clips, degraded or clean, and the clip each came from."""
    windows, wanted = [], []
    for index in chosen:
        speech = clips.clean[index]
        if rng.random() >= config.clean_fraction:
            others = _other_speakers_clips(clips, index, rng)
            speech = prepared(any_voice(clips.raw[index], rng, others), vad)
            if speech is None:
                continue
        speech = wrap_to_windows(np.ascontiguousarray(speech, np.float32))
        for _ in range(config.windows_per_clip):
            start = int(rng.integers(0, len(speech) - WINDOW_SAMPLES + 1))
            windows.append(speech[start : start + WINDOW_SAMPLES])
            wanted.append(int(index))
    return windows, wanted


def _other_speakers_clips(clips: TrainingClips, index: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to :data:`BABBLE_SOURCES` different clips of speakers other than clip ``index``'s (babble)."""
    candidates = np.flatnonzero(clips.speakers != clips.speakers[index])
    chosen = rng.choice(candidates, min(BABBLE_SOURCES, len(candidates)), replace=False)
    return [clips.raw[other] for other in chosen]
