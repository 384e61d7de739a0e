"""Decode image and audio inputs (paths, bytes or arrays) with clear, specific errors.

Images come out as ``(H, W, 3)`` uint8 RGB; audio as ``(T,)`` float32 mono in [-1, 1] with its
sample rate in Hz. Size limits are checked before pixels or samples are read.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import soundfile
from PIL import Image, ImageOps, UnidentifiedImageError

from verify.config import AudioLimits, ImageLimits
from verify.containers import decode_container
from verify.errors import DecodeError, InputTooLargeError, buffer_label
from verify.voice.quality import snr_db

UNRECOGNISED_FORMAT = 1
"""libsndfile's error code for a file it does not know (``SF_ERR_UNRECOGNISED_FORMAT``): such a file
goes to FFmpeg (:mod:`verify.containers`); a file libsndfile knows but finds broken is refused."""

ImageSource = Union[str, Path, bytes, np.ndarray]
AudioSource = Union[str, Path, bytes, tuple[np.ndarray, int]]


def _check_source_type(source: object, kind: str, allowed: tuple[type, ...], names: str) -> None:
    """Raise :class:`DecodeError` naming the type of a source that is none of ``allowed``."""
    if not isinstance(source, allowed):
        raise DecodeError(f"cannot read an {kind} from a {type(source).__name__}; give {names}")


def _check_file(path: Path, max_bytes: int, kind: str) -> None:
    """Refuse a missing path, a folder or a file over ``max_bytes`` from its metadata alone."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DecodeError(f"{path}: no such file") from None
    except OSError as error:
        raise DecodeError(f"cannot read {path}: {error.strerror or error}") from None
    if path.is_dir():
        raise DecodeError(f"{path} is a folder, not an {kind} file")
    if size > max_bytes:
        raise InputTooLargeError(f"{path} is {size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
    if size == 0:
        raise DecodeError(f"{path} is empty")


def _read_bytes(source: str | Path | bytes, max_bytes: int, kind: str) -> tuple[bytes, str]:
    """Bytes of a path or buffer plus a label naming it in messages."""
    if isinstance(source, bytes):
        data, label = source, buffer_label(kind)
    else:
        path = Path(source)
        label = str(path)
        _check_file(path, max_bytes, kind)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise DecodeError(f"cannot read {label}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise InputTooLargeError(f"{label} is {len(data) / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
    if not data:
        raise DecodeError(f"{label} is empty")
    return data, label


def check_image_array(image: np.ndarray, label: str = "image array") -> np.ndarray:
    """Validate an in-memory image and return it as ``(H, W, 3)`` uint8 RGB.

    Accepts ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` arrays of uint8, or floats
    in 0..255. Raises :class:`DecodeError` for other shapes, empty or non-finite arrays.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        channels = image.shape[2]
    elif image.ndim == 2:
        channels = 1
    else:
        raise DecodeError(f"{label} has shape {image.shape}; expected (H, W) or (H, W, 1|3|4)")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise DecodeError(f"{label} is {image.shape[1]}x{image.shape[0]} pixels, too small to hold a face")
    if image.dtype != np.uint8:
        if image.dtype.kind not in "fiu" or not np.all(np.isfinite(image)):
            raise DecodeError(f"{label} holds non-finite or non-numeric values ({image.dtype})")
        image = np.clip(image, 0, 255).astype(np.uint8)
    if channels == 1:
        image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
    elif channels == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode (greyscale, 16-bit, palette, RGBA, CMYK, float) to 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        high = pixels.max() if pixels.size else 0
        scale = 255.0 / 65535.0 if high > 255 else 1.0
        image = Image.fromarray(np.clip(pixels * scale, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


def read_heif_with_pillow() -> None:
    """Let Pillow open HEIF photos (a phone's HEIC) through pi-heif, in this whole process: what
    :func:`decode_image` does on meeting one, and what the web app does at start, since Gradio opens
    uploaded photos with Pillow before the app sees them."""
    from pi_heif import register_heif_opener  # noqa: PLC0415 (libheif loads only where needed)

    register_heif_opener()


def _open_image(data: bytes) -> Image.Image:
    """PIL's lazy image of ``data``, reading HEIF photos too (:func:`read_heif_with_pillow`)."""
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if data[4:8] != b"ftyp":  # every HEIF file starts with an ISO media 'ftyp' box
            raise
        read_heif_with_pillow()
        return Image.open(io.BytesIO(data))


def decode_image(source: ImageSource, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Decode a path, encoded bytes or an array into ``(H, W, 3)`` uint8 RGB.

    Applies the EXIF orientation, takes the first frame of animations, and refuses images over
    ``limits.max_pixels`` before decoding their pixels.

    Raises:
        DecodeError: missing, empty, corrupt or unsupported file.
        InputTooLargeError: the file or its pixel count is over the limit.
    """
    if isinstance(source, np.ndarray):
        if source.ndim >= 2 and source.shape[0] * source.shape[1] > limits.max_pixels:
            raise InputTooLargeError(
                f"image array is {source.shape[1]}x{source.shape[0]} pixels; the limit is {limits.max_pixels:,} pixels"
            )
        return check_image_array(source)
    _check_source_type(source, "image", (str, Path, bytes), "a path, encoded bytes or an (H, W, 3) array")
    data, label = _read_bytes(source, limits.max_bytes, "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open_image(data) as image:
                width, height = image.size
                if width * height > limits.max_pixels:
                    raise InputTooLargeError(
                        f"{label} is {width}x{height} pixels; the limit is {limits.max_pixels:,} pixels"
                    )
                image.seek(0)
                ImageOps.exif_transpose(image, in_place=True)  # no copy when upright (most photos)
                rgb = np.asarray(_to_rgb(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputTooLargeError(f"{label} is too large to decode safely: {error}") from None
    except UnidentifiedImageError:
        raise DecodeError(f"{label} is not an image in a supported format (JPEG, PNG, WebP, HEIC, AVIF, BMP, GIF, TIFF)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise DecodeError(f"{label} is truncated or corrupt: {error}") from None
    return check_image_array(rgb, label)


MAX_CHANNEL_DELAY = 0.002
"""Seconds one channel may lag another and be aligned before the downmix (:func:`align_channels`):
the sound's path difference between two microphones up to 68 cm apart (a phone's top and bottom
microphones are about 15 cm apart, 0.44 ms)."""

ALIGNMENT_WINDOW = 4.0
"""Seconds of the loudest stretch on which channels' lags are measured (:func:`align_channels`)."""

SAME_SOUND_CORRELATION = 0.5
"""Normalised cross-correlation from which two channels are taken for one sound picked up twice
(and aligned, :func:`align_channels`); two microphones of one voice correlate near 1."""

CLEARER_CHANNEL_DB = 3.0
"""How much higher one channel's estimated SNR must be than the downmix's for that channel to be
used alone (:func:`downmix`): the mean of two equally noisy microphones is 3 dB clearer than
either, so a channel beating the mean by more holds less noise than the mean lets through."""


def check_waveform(samples: np.ndarray, sample_rate: int, label: str = "audio array") -> np.ndarray:
    """Validate in-memory audio and return it as ``(T,)`` float32 mono in [-1, 1].

    Accepts ``(T,)`` or ``(T, C)`` arrays of floats or integers (integers are scaled by their
    type's full scale). Raises :class:`DecodeError` for empty, non-finite or malformed input.
    """
    samples = np.asarray(samples)
    if not isinstance(sample_rate, (int, np.integer)) or not 1000 <= sample_rate <= 384_000:
        raise DecodeError(f"{label} has an unsupported sample rate {sample_rate!r} Hz")
    if samples.ndim not in (1, 2) or samples.size == 0:
        raise DecodeError(f"{label} has shape {samples.shape}; expected (T,) or (T, channels) with T > 0")
    if np.issubdtype(samples.dtype, np.unsignedinteger):  # e.g. 8-bit WAV: silence at mid-scale
        middle = (float(np.iinfo(samples.dtype).max) + 1) / 2
        samples = (samples.astype(np.float32) - middle) / middle
    elif np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max)
    elif np.issubdtype(samples.dtype, np.floating):
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused below
            samples = samples.astype(np.float32)
    else:
        raise DecodeError(f"{label} has non-numeric dtype {samples.dtype}")
    if not np.all(np.isfinite(samples)):
        raise DecodeError(f"{label} contains NaN or infinite samples")
    if samples.ndim == 2:
        samples = downmix(samples, sample_rate)
    return np.clip(samples, -1.0, 1.0)


def downmix(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(T,)`` mono of ``(T, C)`` float32 channels: the mean of those that carry the loudest one's
    sound, aligned, unless one channel alone is clearly clearer.

    Two microphones a few centimetres apart (a phone's, a laptop's array) hear the voice a fraction
    of a millisecond apart; their plain mean is a comb filter that notches the voice's band (with
    a lag of 3 samples at 16 kHz, 22 of 40 genuine voices accepted instead of 37, ``python
    benchmarks/stereo.py``), so each channel is first aligned on the loudest
    (:func:`align_channels`), and a channel wired in opposite polarity (a miswired cable or adapter)
    turned over. A channel carrying another sound (another talker, a dead channel, microphones
    more than 2 ms apart) stays out of the mean. And where one channel's estimated SNR
    (:func:`verify.voice.quality.snr_db`) beats the mean's by :data:`CLEARER_CHANNEL_DB`, that
    channel is used alone: the other is noisy (a covered or rubbing microphone) or holds another
    voice over this one.
    """
    if samples.shape[1] == 1:
        return np.ascontiguousarray(samples[:, 0])
    loudest = int(np.argmax(np.mean(np.square(samples, dtype=np.float64), axis=0)))
    aligned, same_sound = align_channels(samples, loudest, int(MAX_CHANNEL_DELAY * sample_rate),
                                         int(ALIGNMENT_WINDOW * sample_rate))
    mixed = aligned[:, same_sound].mean(axis=1).astype(np.float32)
    frame = max(1, sample_rate // 100)
    clarity = [snr_db(channel, frame) if channel.any() else -np.inf for channel in samples.T]  # a dead one: no SNR
    clearest = int(np.argmax(clarity))
    if clarity[clearest] >= snr_db(mixed, frame) + CLEARER_CHANNEL_DB:
        return np.ascontiguousarray(samples[:, clearest])
    return mixed


def align_channels(samples: np.ndarray, reference: int, max_lag: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """``(T, C)`` channels each shifted (zeros filling in) by the lag, within ``±max_lag`` samples,
    at which it correlates most strongly with channel ``reference``, and turned over where that
    correlation is negative (a channel in opposite polarity); and the ``(C,)`` mask of the channels
    that carry the reference's sound, the reference included. A channel whose normalised
    correlation stays under :data:`SAME_SOUND_CORRELATION` at every lag (another sound, a dead
    channel) is left as it is and out of the mask. The lags are measured on the ``window`` samples
    where the reference is loudest, so a long recording costs no more than a short one."""
    length = len(samples)
    start = _loudest_window(samples[:, reference], window)
    part = samples[start:start + window]
    size = 1 << int(np.ceil(np.log2(2 * len(part))))
    target = np.conj(np.fft.rfft(part[:, reference], size))
    reference_energy = float(np.dot(part[:, reference], part[:, reference]))
    aligned = np.zeros_like(samples)
    same_sound = np.arange(samples.shape[1]) == reference
    lags = np.arange(-max_lag, max_lag + 1)
    for channel in range(samples.shape[1]):
        lag, source = 0, samples[:, channel]
        energy = float(np.dot(part[:, channel], part[:, channel])) * reference_energy
        if channel != reference and energy > 0:
            correlation = np.fft.irfft(np.fft.rfft(part[:, channel], size) * target, size)[lags]  # index -k: a lead of k
            strongest = int(np.argmax(np.abs(correlation)))
            if abs(correlation[strongest]) >= SAME_SOUND_CORRELATION * np.sqrt(energy):
                lag, source = int(lags[strongest]), source * np.sign(correlation[strongest])
                same_sound[channel] = True
        if lag >= 0:
            aligned[:length - lag, channel] = source[lag:]
        else:
            aligned[-lag:, channel] = source[:length + lag]
    return aligned, same_sound


def _loudest_window(samples: np.ndarray, window: int) -> int:
    """Where the ``window`` consecutive samples of highest energy start (0 for a shorter signal)."""
    if len(samples) <= window:
        return 0
    energy = np.concatenate([[0.0], np.cumsum(np.square(samples, dtype=np.float64))])
    return int(np.argmax(energy[window:] - energy[:-window]))


def _decode_with_libsndfile(opened: Path | io.BytesIO, label: str,
                            limits: AudioLimits) -> tuple[np.ndarray, int] | None:
    """``(T, C)`` float32 samples and their rate, or None for a format libsndfile does not know."""
    try:
        with soundfile.SoundFile(opened) as sound:
            rate, frames = sound.samplerate, sound.frames
            if frames > limits.max_seconds * rate:
                raise InputTooLargeError(
                    f"{label} lasts {frames / rate:.0f} s; the limit is {limits.max_seconds:.0f} s"
                )
            return sound.read(dtype="float32", always_2d=True), rate
    except soundfile.LibsndfileError as error:
        if error.code == UNRECOGNISED_FORMAT:
            return None
        raise DecodeError(f"{label} is not audio in a supported format (WAV, FLAC, OGG, MP3): {error.error_string}") from None
    except (RuntimeError, ValueError, TypeError, EOFError, OSError) as error:
        raise DecodeError(f"{label} is truncated or corrupt: {error}") from None


def decode_audio(source: AudioSource, limits: AudioLimits = AudioLimits()) -> tuple[np.ndarray, int]:
    """Decode a path, encoded bytes or a ``(samples, rate)`` pair into mono float32 and its rate.

    Formats are those of libsndfile (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...), then FFmpeg's
    for what libsndfile does not know (M4A/AAC, WebM, MP4, 3GP/AMR: :mod:`verify.containers`);
    channels are averaged (:func:`downmix`). The duration limit is checked from the header before
    samples are read.

    Raises:
        DecodeError: missing, empty, corrupt or unsupported file.
        InputTooLargeError: the file or its duration is over the limit.
    """
    if isinstance(source, tuple):
        if len(source) != 2:
            raise DecodeError(f"audio given as a tuple must be (samples, sample_rate), got {len(source)} items")
        samples, rate = source
        waveform = check_waveform(samples, rate)
        if len(waveform) > limits.max_seconds * rate:
            raise InputTooLargeError(
                f"audio array lasts {len(waveform) / rate:.0f} s; the limit is {limits.max_seconds:.0f} s"
            )
        return waveform, int(rate)
    _check_source_type(source, "audio clip", (str, Path, bytes), "a path, encoded bytes or (samples, rate)")
    if isinstance(source, bytes):
        data, label = _read_bytes(source, limits.max_bytes, "audio")
        opened: io.BytesIO | Path = io.BytesIO(data)
    else:  # a path is opened in place: the duration limit is checked before any sample is read
        opened = Path(source)
        label = str(opened)
        _check_file(opened, limits.max_bytes, "audio")
    decoded = _decode_with_libsndfile(opened, label, limits)
    if decoded is None:
        if isinstance(opened, io.BytesIO):
            opened.seek(0)
        decoded = decode_container(opened, label, limits)
    samples, rate = decoded
    if samples.shape[0] == 0:
        raise DecodeError(f"{label} holds no audio samples")
    return check_waveform(samples, rate, label), rate
