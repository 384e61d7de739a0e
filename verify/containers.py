"""Sound that libsndfile cannot read, decoded by FFmpeg through PyAV.

Phones and browsers record in containers libsndfile does not know: a voice memo is AAC in an
M4A file, a browser's MediaRecorder gives Opus in WebM, a phone call AMR in 3GP, a video its
sound track. :func:`decode_container` reads the first audio stream of such a file as float32
channels at its own rate (:func:`verify.io.check_waveform` mixes them down);
:func:`verify.io.decode_audio` calls it only for what libsndfile refuses, so PyAV is imported
only then.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from verify.config import AudioLimits
from verify.errors import DecodeError, InputTooLargeError

CONTAINER_FORMATS = "M4A/AAC, WebM, MP4, 3GP/AMR"
"""What this module adds to libsndfile's formats, as messages name it."""


def decode_container(opened: Path | io.BytesIO, label: str, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """The first audio stream of ``opened`` as ``(T, C)`` float32 channels and its sample rate.

    The duration limit is checked against the container's header before decoding, and again
    while decoding (a header may leave the duration out or understate it).

    Raises:
        DecodeError: not a container FFmpeg reads, no audio stream, or corrupt data.
        InputTooLargeError: the sound lasts longer than ``limits.max_seconds``.
    """
    import av  # noqa: PLC0415 (FFmpeg's libraries load only for the files that need them)

    try:
        with av.open(opened if isinstance(opened, io.BytesIO) else str(opened), mode="r") as container:
            stream = next((stream for stream in container.streams if stream.type == "audio"), None)
            if stream is None or not stream.rate:
                raise _unsupported(label, "no sound track")
            rate = int(stream.rate)
            if container.duration is not None and container.duration / av.time_base > limits.max_seconds:
                raise _too_long(label, container.duration / av.time_base, limits)
            resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)  # planar: (C, T)
            chunks: list[np.ndarray] = []
            decoded = 0
            for frame in container.decode(stream):
                for planar in resampler.resample(frame):
                    chunks.append(planar.to_ndarray())
                    decoded += chunks[-1].shape[1]
                if decoded > limits.max_seconds * rate:
                    raise _too_long(label, decoded / rate, limits)
            chunks.extend(planar.to_ndarray() for planar in resampler.resample(None))
    except av.FFmpegError as error:
        raise _unsupported(label, error.strerror or str(error)) from None
    if not chunks:
        return np.zeros((0, 1), np.float32), rate  # io refuses it
    return np.concatenate(chunks, axis=1).T.astype(np.float32), rate


def _unsupported(label: str, reason: str) -> DecodeError:
    return DecodeError(f"{label} is not audio in a supported format (WAV, FLAC, OGG, MP3, {CONTAINER_FORMATS}): {reason}")


def _too_long(label: str, seconds: float, limits: AudioLimits) -> InputTooLargeError:
    return InputTooLargeError(f"{label} lasts {seconds:.0f} s; the limit is {limits.max_seconds:.0f} s")
