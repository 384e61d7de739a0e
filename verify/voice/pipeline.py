"""Voice pipeline: decode -> resample -> trim silence -> quality -> GE2E embedding, batched."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from verify.config import AudioLimits, VoiceFrontEndConfig
from verify.device import prepare_device
from verify.embedding import BatchedPipeline, Embedding, name_source
from verify.errors import VerifyError
from verify.io import AudioSource, decode_audio
from verify.voice.frontend import Speech, prepare_speech
from verify.voice.ge2e import GE2E_WEIGHTS, MelPowerSpectrogram, SpeakerEncoder, embed_utterances
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

    def _embed_chunk(self, sources: Sequence[AudioSource]) -> list[Embedding | VerifyError]:
        prepared: list[Speech | VerifyError] = []
        for source in sources:
            try:
                samples, rate = decode_audio(source, self.limits)
                prepared.append(prepare_speech(samples, rate, self.config))
            except VerifyError as error:
                prepared.append(name_source(error, source))
        speeches = [item for item in prepared if isinstance(item, Speech)]
        vectors = iter(self.embed_speech([speech.samples for speech in speeches])) if speeches else iter(())
        return [
            item if isinstance(item, VerifyError) else Embedding(next(vectors), item.quality_issues, (), item.samples)
            for item in prepared
        ]

    def embed_speech(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Embed prepared 16 kHz speech clips: ``(N, 256)`` float32 unit vectors."""
        waveforms = [torch.from_numpy(np.ascontiguousarray(clip, np.float32)).to(self.device) for clip in clips]
        embeddings = embed_utterances(self.encoder, self.features, waveforms)
        return embeddings.cpu().numpy().astype(np.float32)
