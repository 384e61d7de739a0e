"""Voice pipeline: decode -> resample -> find speech (Silero VAD) -> quality -> GE2E embedding, batched."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from verify.config import AudioLimits, VoiceFrontEndConfig
from verify.device import Device, DeviceSpec, select_device
from verify.embedding import BatchedPipeline, Embedding, name_source
from verify.errors import ConfigError, VerifyError
from verify.io import AudioSource, decode_audio
from verify.narrowband import narrowband_copy
from verify.runtime import CPU_RUNTIMES
from verify.voice.encoder import GE2E_WEIGHTS, HOP_SAMPLES, PARTIAL_FRAMES, CpuSpeakerEncoder, partial_window_starts
from verify.voice.frontend import Speech, prepare_speech
from verify.voice.vad import SileroVad

VOICE_MODEL_ID = "ge2e-robust"


class VoicePipeline(BatchedPipeline):
    """Embeds speech with the GE2E speaker encoder (Resemblyzer's, fine-tuned for noisy speech)."""

    modality = "voice"
    model_id = VOICE_MODEL_ID
    model_version = GE2E_WEIGHTS.sha256[:12]
    front_end_revision = 2  # 2: the DC offset removed

    def __init__(
        self,
        device: DeviceSpec = "auto",
        config: VoiceFrontEndConfig = VoiceFrontEndConfig(),
        limits: AudioLimits = AudioLimits(),
        batch_size: int = 16,
        cpu_threads: int | None = None,
        cpu_runtime: str = "openvino",
    ) -> None:
        """Load the encoder and its features on ``device``.

        Args:
            batch_size: clips decoded, trimmed and embedded together.
            cpu_threads: the encoder's threads on the CPU; ``None`` uses every core.
            cpu_runtime: ``"openvino"`` (NumPy features and the shipped IR, no torch) or
                ``"torch"`` (:mod:`verify.voice.ge2e`); only used on the CPU.

        Raises:
            ConfigError: unknown ``cpu_runtime``.
        """
        if cpu_runtime not in CPU_RUNTIMES:
            raise ConfigError(f"unknown CPU runtime {cpu_runtime!r}: use one of {', '.join(CPU_RUNTIMES)}")
        self.device: Device = select_device(device)
        self.config = config
        self.limits = limits
        self.batch_size = batch_size
        if self.device.type == "cpu" and cpu_runtime == "openvino":
            self.encoder = CpuSpeakerEncoder(cpu_threads)
        else:
            from verify.voice.ge2e import TorchSpeakerEncoder

            self.encoder = TorchSpeakerEncoder(self.device, cpu_threads)
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
        from verify.voice.degrade import enrollment_copies  # SciPy: only for enrollments

        return self.embed_speech(enrollment_copies(speech, seed))

    def embed_narrowband(self, speech: np.ndarray) -> np.ndarray:
        """``(256,)`` embedding of the narrowband copy of prepared speech (an :class:`Embedding`'s
        ``preview``, :func:`verify.narrowband.narrowband_copy`): what a voice enrollment keeps for
        band-limited probes."""
        return self.embed_speech([narrowband_copy(speech)])[0]

    def embed_speech(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Embed prepared 16 kHz speech clips: ``(N, 256)`` float32 unit vectors.

        Each clip is first repeated up to the end of its last partial window (:func:`wrap_to_windows`).
        """
        return self.encoder([wrap_to_windows(np.ascontiguousarray(clip, np.float32)) for clip in clips])


def wrap_to_windows(samples: np.ndarray) -> np.ndarray:
    """``(T,)`` speech repeated cyclically up to the end of its last GE2E partial window.

    The encoder would otherwise read zeros at the end of a clip shorter than one 1.6 s window,
    or past the end of the last window it keeps; repeating the speech there instead lowers the
    EER of 1-2 s probes from 4.7 to 3.7 % and leaves longer clips as they were (calibration half
    of ``benchmarks/voice_conditions.py``).
    """
    end = partial_window_starts(len(samples))[-1] * HOP_SAMPLES + PARTIAL_FRAMES * HOP_SAMPLES
    return np.resize(samples, end) if end > len(samples) else samples
