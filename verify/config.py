"""Frozen configuration: front-end settings and security levels.

Thresholds are not configuration: they are calibrated per model and ship beside its weights
(see :mod:`verify.calibration`).
"""

from __future__ import annotations

from dataclasses import dataclass

from verify.errors import ConfigError

MODALITIES = ("face", "voice")

# Security level -> target false accept rate. A level's retry band starts at the threshold of
# the next looser target (ten times the FAR), so borderline scores ask for another sample.
SECURITY_LEVELS: dict[str, float] = {"low": 1e-2, "medium": 1e-3, "high": 1e-4}
DEFAULT_SECURITY_LEVEL = "medium"
RETRY_FAR_FACTOR = 10.0


def check_modality(modality: str) -> str:
    """Return ``modality`` if it is ``"face"`` or ``"voice"``, else raise :class:`ConfigError`."""
    if modality not in MODALITIES:
        raise ConfigError(f"unknown modality {modality!r}: choose one of {', '.join(MODALITIES)}")
    return modality


def target_far(level: str) -> float:
    """Target false accept rate of a security level name."""
    try:
        return SECURITY_LEVELS[level]
    except KeyError:
        choices = ", ".join(f"{name} (FAR {far:g})" for name, far in SECURITY_LEVELS.items())
        raise ConfigError(f"unknown security level {level!r}: choose one of {choices}") from None


@dataclass(frozen=True)
class ImageLimits:
    """Limits applied while decoding images, against huge files and decompression bombs."""

    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 50_000_000


@dataclass(frozen=True)
class AudioLimits:
    """Limits applied while decoding audio."""

    max_bytes: int = 200 * 1024 * 1024
    max_seconds: float = 600.0


@dataclass(frozen=True)
class FaceFrontEndConfig:
    """Face detection, alignment and quality settings.

    Attributes:
        detection_max_side: larger frames are downscaled to this longer side (px) before
            detection; landmarks are mapped back and alignment uses the full-resolution image.
        min_face_px: shorter side of the face box (px, original image) below which the face is
            refused as too small.
        min_detection_probability: MTCNN confidence below which a box is ignored.
        yunet_max_side: larger frames are downscaled to this longer side (px) before YuNet
            detection; landmarks are mapped back as for MTCNN.
        min_yunet_score: YuNet confidence below which a box is ignored.
        min_sharpness: variance of the Laplacian of the aligned grey crop below which the face is
            flagged as blurry.
        brightness_range: mean grey level (0..255) of the aligned crop outside which the face
            is flagged as too dark or too bright.
    """

    detection_max_side: int = 640
    min_face_px: int = 24
    min_detection_probability: float = 0.90
    yunet_max_side: int = 320
    min_yunet_score: float = 0.7
    min_sharpness: float = 15.0
    brightness_range: tuple[float, float] = (35.0, 225.0)


FACE_DETECTORS = ("mtcnn", "yunet")
FACE_NETWORKS = ("reid", "sface")


@dataclass(frozen=True)
class FaceFusionConfig:
    """Which detectors align the face and which embedding networks embed it.

    The defaults are the shipped recipe, the most accurate within twice the former check time
    (``python benchmarks/face_variants.py``): YuNet chooses the face, MTCNN's last two stages
    refine it, and both networks embed both alignments.

    Attributes:
        detectors: each detector's five landmarks give one alignment of the face; the first
            detector that finds a face chooses it and the others' faces are matched to it by box
            overlap. Names from :data:`FACE_DETECTORS`.
        networks: each network embeds every alignment; their scores are fused with equal
            weights (:mod:`verify.face.pipeline`). Names from :data:`FACE_NETWORKS`.
        mirror: also embed each crop flipped left to right and average it in.
        mtcnn_refines: when MTCNN follows a detector that found the face, only MTCNN's last two
            stages (R-net, O-net) run, on that face's box, instead of its whole pyramid; they give
            MTCNN's landmarks at a fraction of the cost. MTCNN searches the whole image when the
            detectors before it found nothing.
    """

    detectors: tuple[str, ...] = ("yunet", "mtcnn")
    networks: tuple[str, ...] = ("reid", "sface")
    mirror: bool = False
    mtcnn_refines: bool = True

    def __post_init__(self) -> None:
        for field_name, names, known in (("detectors", self.detectors, FACE_DETECTORS),
                                         ("networks", self.networks, FACE_NETWORKS)):
            unknown = [name for name in names if name not in known]
            if not names or unknown or len(set(names)) != len(names):
                raise ConfigError(
                    f"face {field_name} {tuple(names)!r} invalid: name each of {', '.join(known)} at most once, at least one"
                )


@dataclass(frozen=True)
class VoiceFrontEndConfig:
    """Voice front-end settings: resampling, speech detection, trimming and quality checks.

    Attributes:
        sample_rate: rate the encoder expects (Hz).
        speech_detector: ``"silero"`` (Silero VAD, :mod:`verify.voice.vad`) or ``"energy"``
            (frames within ``dynamic_range_db`` of the loudest one).
        vad_threshold: speech probability from which a Silero frame is speech; frames down to
            ``vad_threshold - 0.15`` join a speech run that reaches it.
        frame_seconds: analysis frame of the energy detector (s).
        silence_dbfs: frames quieter than this (dB relative to full scale) are never speech;
            a clip with no louder frame is refused as silent.
        dynamic_range_db: energy detector: frames more than this below the loudest frame are silence.
        keep_seconds: speech frames are widened by this on both sides before trimming (s).
        min_speech_seconds: clips with less detected speech are refused.
        short_speech_seconds: clips with less detected speech are flagged (answer "retry").
        recommended_speech_seconds: how much speech the "too short" message asks for.
        min_snr_db: clips with a lower estimated signal-to-noise ratio are flagged as noisy.
        max_clipped_fraction: fraction of samples at full scale above which the clip is flagged.
        min_high_band_db: speech with less of its power above 4.5 kHz (dB) is flagged as
            band-limited: clean microphone speech measured -35 dB at the lowest, telephone-band
            speech -39 dB at the highest (``high_band_db``).
        max_decay_db: a clip whose level cannot fall faster than this over 50 ms (``decay_db``)
            is flagged as echoing, unless it is flagged as noisy: 1 % of clean LibriSpeech clips
            exceed -8 dB, most clips in rooms of RT60 0.4-0.9 s do.
        target_dbfs: speech is scaled up (never down) to this RMS level, as in Resemblyzer.
    """

    sample_rate: int = 16_000
    speech_detector: str = "silero"
    vad_threshold: float = 0.5
    frame_seconds: float = 0.03
    silence_dbfs: float = -55.0
    dynamic_range_db: float = 40.0
    keep_seconds: float = 0.15
    min_speech_seconds: float = 0.15
    short_speech_seconds: float = 2.0
    recommended_speech_seconds: float = 3.0
    min_snr_db: float = 10.0
    max_clipped_fraction: float = 0.01
    min_high_band_db: float = -45.0
    max_decay_db: float = -8.0
    target_dbfs: float = -30.0
