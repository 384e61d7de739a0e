"""Voice pipeline: decode -> resample -> find speech (Silero VAD) -> quality -> GE2E embedding, batched."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from verify.config import AudioLimits, VoiceFrontEndConfig
from verify.device import prepare_device
from verify.embedding import BatchedPipeline, Embedding, name_source
from verify.errors import VerifyError
from verify.io import AudioSource, decode_audio
from verify.voice.degrade import enrollment_copies
from verify.voice.frontend import Speech, prepare_speech
from verify.voice.ge2e import (
    GE2E_WEIGHTS,
    HOP_SAMPLES,
    PARTIAL_FRAMES,
    MelPowerSpectrogram,
    SpeakerEncoder,
    embed_utterances,
    partial_window_starts,
)
from verify.voice.vad import SileroVad
from verify.weights import load_into

VOICE_MODEL_ID = "ge2e-resemblyzer"


class VoicePipeline(BatchedPipeline):
    """Embeds speech with the GE2E speaker encoder (Resemblyzer's weights) on torchaudio features."""

    modality = "voice"
    model_id = VOICE_MODEL_ID
    model_version = GE2E_WEIGHTS.sha256[:12]

    def __init__(
        self,
        device: str | torch.device = "auto",
        config: VoiceFrontEndConfig = VoiceFrontEndConfig(),
        limits: AudioLimits = AudioLimits(),
        batch_size: int = 16,
        cpu_threads: int | None = None,
    ) -> None:
        """Load the encoder and the feature front end on ``device``.

        Args:
            batch_size: clips decoded, trimmed and embedded together.
            cpu_threads: torch intra-op threads on the CPU (see :func:`prepare_device`).
        """
        self.device = prepare_device(device, cpu_threads)
        self.config = config
        self.limits = limits
        self.batch_size = batch_size
        self.encoder = load_into(SpeakerEncoder(), GE2E_WEIGHTS).to(self.device)
        self.features = MelPowerSpectrogram().to(self.device)
        self.vad = SileroVad() if config.speech_detector == "silero" else None

    def _embed_chunk(self, sources: Sequence[AudioSource]) -> list[Embedding | VerifyError]:
        prepared: list[Speech | VerifyError] = []
        for source in sources:
            try:
                samples, rate = decode_audio(source, self.limits)
                prepared.append(prepare_speech(samples, rate, self.config, self.vad))
            except VerifyError as error:
                prepared.append(name_source(error, source))
        speeches = [item for item in prepared if isinstance(item, Speech)]
        vectors = iter(self.embed_speech([speech.samples for speech in speeches])) if speeches else iter(())
        return [
            item if isinstance(item, VerifyError)
            else Embedding(next(vectors), item.quality_issues, (), item.samples, item.measures)
            for item in prepared
        ]

    def embed_condition_copies(self, speech: np.ndarray, seed: int = 0) -> np.ndarray:
        """``(3, 256)`` embeddings of condition copies of prepared speech (an :class:`Embedding`'s
        ``preview``): pink noise, reverberation, 8 kHz band (:func:`~verify.voice.degrade.enrollment_copies`).

        An enrollment keeps them beside the sample's own embedding; a probe's score is the best of
        its (normalised) scores against all of them.
        """
        return self.embed_speech(enrollment_copies(speech, seed))

    def embed_speech(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Embed prepared 16 kHz speech clips: ``(N, 256)`` float32 unit vectors.

        Each clip is first repeated up to the end of its last partial window (:func:`wrap_to_windows`).
        """
        waveforms = [torch.from_numpy(wrap_to_windows(np.ascontiguousarray(clip, np.float32))).to(self.device)
                     for clip in clips]  # fmt: skip
        embeddings = embed_utterances(self.encoder, self.features, waveforms)
        return embeddings.cpu().numpy().astype(np.float32)


def wrap_to_windows(samples: np.ndarray) -> np.ndarray:
    """``(T,)`` speech repeated cyclically up to the end of its last GE2E partial window.

    The encoder would otherwise read zeros at the end of a clip shorter than one 1.6 s window,
    or past the end of the last window it keeps; repeating the speech there instead lowers the
    EER of 1-2 s probes from 4.7 to 3.7 % and leaves longer clips as they were (calibration half
    of ``benchmarks/voice_conditions.py``).
    """
    end = partial_window_starts(len(samples))[-1] * HOP_SAMPLES + PARTIAL_FRAMES * HOP_SAMPLES
    return np.resize(samples, end) if end > len(samples) else samples
