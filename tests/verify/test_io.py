"""Decoding images and audio from paths, bytes and arrays, with specific errors for bad input."""

from __future__ import annotations

import io
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from verify.config import AudioLimits, ImageLimits
from verify.errors import DecodeError, InputError, InputTooLargeError, VerifyError
from verify.io import check_image_array, check_waveform, decode_audio, decode_image

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"
FACE_JPEG = SAMPLES / "faces" / "Andy_Roddick" / "0.jpg"
VOICE_FLAC = SAMPLES / "voices" / "103" / "0.flac"
ORANGE = (200, 100, 50)


def encode_image(image: Image.Image, image_format: str, **options) -> bytes:
    """``image`` encoded in ``image_format`` by PIL."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def encode_audio(samples: np.ndarray, rate: int, audio_format: str, subtype: str | None = None) -> bytes:
    """``samples`` ``(T,)`` or ``(T, C)`` encoded by libsndfile."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=audio_format, subtype=subtype)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels but whose data is a few bytes."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 8))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


def tone(seconds: float = 1.0, rate: int = 16_000, amplitude: float = 0.5) -> np.ndarray:
    """A 440 Hz sine ``(T,)`` float32."""
    time = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 440 * time)).astype(np.float32)


# --- images: formats ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image_format", "options", "tolerance"),
    [
        ("JPEG", {"quality": 95}, 4),
        ("PNG", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("WEBP", {"quality": 90}, 6),
        ("BMP", {}, 0),
        ("GIF", {}, 0),
        ("TIFF", {}, 0),
        ("AVIF", {"quality": 90}, 8),
    ],
    ids=["jpeg", "png", "webp-lossless", "webp-lossy", "bmp", "gif", "tiff", "avif"],
)
def test_every_supported_format_decodes_to_rgb_uint8(image_format, options, tolerance):
    data = encode_image(Image.new("RGB", (8, 6), ORANGE), image_format, **options)

    rgb = decode_image(data)

    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - ORANGE).max() <= tolerance


def test_a_phone_photo_in_heic_decodes_like_the_jpeg_it_was_made_from():
    # Pillow cannot write HEIC; the shipped file is the sample JPEG re-encoded (assets/samples/ATTRIBUTION.md)
    heic = decode_image(SAMPLES / "formats" / "Andy_Roddick_1.heic")
    jpeg = decode_image(SAMPLES / "faces" / "Andy_Roddick" / "1.jpg")

    assert heic.shape == jpeg.shape == (250, 250, 3)
    assert np.abs(heic.astype(int) - jpeg.astype(int)).mean() < 3


def test_a_file_that_only_looks_like_heif_is_refused_as_unsupported():
    with pytest.raises(DecodeError, match=r"image buffer is not an image in a supported format \(JPEG, PNG, WebP, HEIC"):
        decode_image(b"\x00\x00\x00\x18ftypheic" + bytes(200))


def test_decode_from_path_str_and_bytes_give_the_same_pixels(tmp_path: Path):
    path = tmp_path / "face.png"
    path.write_bytes(encode_image(Image.new("RGB", (5, 4), ORANGE), "PNG"))

    from_path, from_str = decode_image(path), decode_image(str(path))
    from_bytes = decode_image(path.read_bytes())

    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_array_equal(from_str, from_bytes)


def test_real_greyscale_lfw_jpeg_decodes_to_three_equal_channels():
    rgb = decode_image(FACE_JPEG)

    assert rgb.shape == (250, 250, 3)
    np.testing.assert_array_equal(rgb[:, :, 0], rgb[:, :, 1])
    np.testing.assert_array_equal(rgb[:, :, 0], rgb[:, :, 2])


def test_greyscale_image_is_replicated_to_three_channels():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20

    rgb = decode_image(encode_image(Image.fromarray(grey, mode="L"), "PNG"))

    np.testing.assert_array_equal(rgb, np.repeat(grey[:, :, None], 3, axis=2))


def test_rgba_is_composited_on_white():
    pixels = np.zeros((2, 2, 4), np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)  # opaque red
    pixels[0, 1] = (255, 0, 0, 0)  # transparent: white
    pixels[1, 0] = (255, 0, 0, 128)  # half: 255 * 127/255 of white into G and B
    pixels[1, 1] = (0, 0, 0, 0)

    rgb = decode_image(encode_image(Image.fromarray(pixels, mode="RGBA"), "PNG"))

    np.testing.assert_array_equal(rgb[0, 0], (255, 0, 0))
    np.testing.assert_array_equal(rgb[0, 1], (255, 255, 255))
    np.testing.assert_allclose(rgb[1, 0], (255, 127, 127), atol=1)
    np.testing.assert_array_equal(rgb[1, 1], (255, 255, 255))


def test_transparent_greyscale_is_composited_on_white():
    rgb = decode_image(encode_image(Image.new("LA", (3, 3), (0, 0)), "PNG"))

    assert np.all(rgb == 255)


def test_palette_image_uses_its_palette_colours():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)

    rgb = decode_image(encode_image(image, "PNG"))

    assert np.all(rgb == (10, 200, 30))


@pytest.mark.parametrize("image_format", ["PNG", "GIF"])
def test_palette_transparency_is_composited_on_white(image_format):
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)

    rgb = decode_image(encode_image(image, image_format, transparency=1))

    assert np.all(rgb == 255)


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    pixels = np.array([[0, 257, 40_000, 65_535]], np.uint16).repeat(2, axis=0)
    data = encode_image(Image.fromarray(pixels), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"

    rgb = decode_image(data)

    # v * 255 / 65535, truncated: 0, 1, 155.6 -> 155, 255
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 1, 155, 255])
    assert np.all(rgb[:, :, 0] == rgb[:, :, 2])


def test_sixteen_bit_png_with_only_eight_bit_values_is_kept_as_is():
    pixels = np.array([[0, 100], [200, 255]], np.uint16)

    rgb = decode_image(encode_image(Image.fromarray(pixels), "PNG"))

    np.testing.assert_array_equal(rgb[:, :, 1], pixels)


def test_float_tiff_is_converted_to_eight_bits():
    rgb = decode_image(encode_image(Image.fromarray(np.full((3, 3), 100.7, np.float32)), "TIFF"))

    assert np.all(rgb == 100)


def test_cmyk_jpeg_is_converted_to_rgb():
    data = encode_image(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"

    rgb = decode_image(data)

    assert np.abs(rgb.astype(int) - (255, 0, 0)).max() <= 4


@pytest.mark.parametrize(
    ("image_format", "options"), [("GIF", {"loop": 0}), ("WEBP", {"lossless": True}), ("TIFF", {})]
)
def test_animated_or_multipage_image_gives_its_first_frame(image_format, options):
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    data = encode_image(red, image_format, save_all=True, append_images=[blue], duration=100, **options)
    assert Image.open(io.BytesIO(data)).n_frames == 2

    rgb = decode_image(data)

    assert np.all(rgb == (255, 0, 0))


def test_exif_orientation_is_applied():
    # 32 wide x 16 high: left half red, right half blue. Orientation 6 means "rotate 90 degrees
    # clockwise to display": the result is 16 wide x 32 high with red on top.
    pixels = np.zeros((16, 32, 3), np.uint8)
    pixels[:, :16] = (255, 0, 0)
    pixels[:, 16:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode_image(Image.fromarray(pixels), "JPEG", exif=exif.tobytes(), quality=95)

    rgb = decode_image(data)

    assert rgb.shape == (32, 16, 3)
    assert np.abs(rgb[4, 8].astype(int) - (255, 0, 0)).max() <= 8
    assert np.abs(rgb[-4, 8].astype(int) - (0, 0, 255)).max() <= 8


def test_image_without_exif_orientation_is_not_rotated():
    data = encode_image(Image.new("RGB", (32, 16), ORANGE), "JPEG")

    assert decode_image(data).shape == (16, 32, 3)


# --- images: bad files --------------------------------------------------------------------------
def test_empty_image_file_is_refused(tmp_path: Path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")

    with pytest.raises(DecodeError, match=r"empty\.jpg is empty"):
        decode_image(path)
    with pytest.raises(DecodeError, match="image buffer is empty"):
        decode_image(b"")


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_image_is_refused(image_format, keep):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode_image(Image.fromarray(noise), image_format)

    with pytest.raises(DecodeError, match="image buffer is truncated or corrupt"):
        decode_image(data[: int(len(data) * keep)])


def test_text_file_renamed_jpg_is_refused_naming_supported_formats(tmp_path: Path):
    path = tmp_path / "photo.jpg"
    path.write_text("this is not really a photo\n", encoding="utf-8")

    with pytest.raises(DecodeError, match=r"photo\.jpg is not an image in a supported format \(JPEG, PNG"):
        decode_image(path)


def test_missing_image_path_is_refused(tmp_path: Path):
    with pytest.raises(DecodeError, match=r"missing\.png: no such file"):
        decode_image(tmp_path / "missing.png")


def test_folder_is_refused_as_an_image(tmp_path: Path):
    with pytest.raises(DecodeError, match="is a folder, not an? image file"):
        decode_image(tmp_path)


def test_image_over_the_pixel_limit_is_refused_before_decoding():
    data = encode_image(Image.new("RGB", (1, 1)), "PNG")

    with pytest.raises(InputTooLargeError, match="image buffer is 1x1 pixels; the limit is 0 pixels"):
        decode_image(data, ImageLimits(max_pixels=0))


def test_image_at_the_pixel_limit_is_accepted():
    data = encode_image(Image.new("RGB", (3, 2)), "PNG")

    assert decode_image(data, ImageLimits(max_pixels=6)).shape == (2, 3, 3)
    with pytest.raises(InputTooLargeError, match="3x2 pixels; the limit is 5 pixels"):
        decode_image(data, ImageLimits(max_pixels=5))


def test_real_large_dimension_png_is_refused_by_the_default_limit():
    # 8000 x 8000 = 64 M pixels of 1-bit black: a few kB on disk, over the 50 M default
    data = encode_image(Image.new("1", (8000, 8000)), "PNG")
    assert len(data) < 100_000

    with pytest.raises(InputTooLargeError, match="8000x8000 pixels; the limit is 50,000,000 pixels"):
        decode_image(data)


@pytest.mark.parametrize("side", [10_000, 100_000], ids=["over-pil-warning", "over-pil-error"])
def test_decompression_bomb_header_is_refused_even_when_the_limit_is_raised(side):
    data = png_header_only(side, side)

    with pytest.raises(InputTooLargeError, match="too large to decode safely"):
        decode_image(data, ImageLimits(max_pixels=10**12))


def test_image_over_the_byte_limit_is_refused(tmp_path: Path):
    data = encode_image(Image.new("RGB", (64, 64)), "BMP")  # 12 kB
    path = tmp_path / "big.bmp"
    path.write_bytes(data)

    with pytest.raises(InputTooLargeError, match=r"image buffer is .* MiB; the limit is"):
        decode_image(data, ImageLimits(max_bytes=1_000))
    with pytest.raises(InputTooLargeError, match=r"big\.bmp is .* MiB; the limit is"):
        decode_image(path, ImageLimits(max_bytes=1_000))
    assert decode_image(path, ImageLimits(max_bytes=len(data))).shape == (64, 64, 3)


def test_one_pixel_image_is_too_small_to_hold_a_face():
    with pytest.raises(DecodeError, match="image buffer is 1x1 pixels, too small to hold a face"):
        decode_image(encode_image(Image.new("RGB", (1, 1)), "PNG"))


def test_decode_errors_are_input_and_verify_errors():
    assert issubclass(DecodeError, InputError) and issubclass(InputTooLargeError, InputError)
    with pytest.raises(VerifyError):
        decode_image(b"garbage")


# --- images: arrays -----------------------------------------------------------------------------
def test_rgb_uint8_array_passes_through_unchanged():
    pixels = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)

    np.testing.assert_array_equal(decode_image(pixels), pixels)


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1)])
def test_greyscale_array_is_replicated(shape):
    grey = np.arange(20, dtype=np.uint8).reshape(shape)

    rgb = decode_image(grey)

    assert rgb.shape == (4, 5, 3)
    np.testing.assert_array_equal(rgb[:, :, 2], grey.reshape(4, 5))


def test_rgba_array_keeps_its_colour_channels():
    pixels = np.zeros((2, 2, 4), np.uint8)
    pixels[..., :3], pixels[..., 3] = ORANGE, 7

    assert np.all(decode_image(pixels) == ORANGE)


def test_float_array_is_clipped_to_0_255_and_truncated():
    pixels = np.array([[-5.0, 0.4], [254.9, 300.0]])

    np.testing.assert_array_equal(decode_image(pixels)[:, :, 0], [[0, 0], [254, 255]])


def test_non_contiguous_array_comes_out_contiguous():
    pixels = np.zeros((6, 8, 3), np.uint8)[::2, ::2]

    assert decode_image(pixels).flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_array_is_refused(bad):
    pixels = np.full((4, 4, 3), 10.0)
    pixels[1, 2, 0] = bad

    with pytest.raises(DecodeError, match=r"image array holds non-finite or non-numeric values \(float64\)"):
        decode_image(pixels)


@pytest.mark.parametrize("dtype", [bool, object, "U1"])
def test_non_numeric_array_is_refused(dtype):
    with pytest.raises(DecodeError, match="non-finite or non-numeric values"):
        decode_image(np.zeros((4, 4, 3), dtype=dtype))


@pytest.mark.parametrize("shape", [(10,), (4, 4, 2), (4, 4, 5), (1, 4, 4, 3), ()])
def test_array_of_wrong_shape_is_refused_naming_it(shape):
    message = f"image array has shape {shape}; expected (H, W) or (H, W, 1|3|4)"
    with pytest.raises(DecodeError, match=re.escape(message)):
        decode_image(np.zeros(shape, np.uint8))


@pytest.mark.parametrize(("shape", "size"), [((1, 5, 3), "5x1"), ((5, 1), "1x5"), ((0, 0, 3), "0x0")])
def test_array_too_small_to_hold_a_face_is_refused(shape, size):
    with pytest.raises(DecodeError, match=f"image array is {size} pixels, too small to hold a face"):
        check_image_array(np.zeros(shape, np.uint8))


# --- audio: formats -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("audio_format", "subtype", "tolerance"),
    [
        ("WAV", "PCM_16", 1 / 32_767),
        ("WAV", "FLOAT", 0.0),
        ("WAV", "PCM_24", 1 / 2**23),
        ("FLAC", "PCM_16", 1 / 32_767),
        ("FLAC", "PCM_24", 1 / 2**23),
    ],
)
def test_lossless_audio_decodes_to_the_same_float32_mono_samples(audio_format, subtype, tolerance):
    samples = tone(0.5)

    decoded, rate = decode_audio(encode_audio(samples, 16_000, audio_format, subtype))

    assert rate == 16_000
    assert decoded.dtype == np.float32 and decoded.shape == samples.shape
    np.testing.assert_allclose(decoded, samples, atol=tolerance + 1e-7)


@pytest.mark.parametrize(
    ("audio_format", "subtype"), [("OGG", "VORBIS"), ("OGG", "OPUS"), ("MP3", "MPEG_LAYER_III")]
)
def test_lossy_audio_decodes_to_a_close_copy(audio_format, subtype):
    formats = soundfile.available_formats()
    if audio_format not in formats or subtype not in soundfile.available_subtypes(audio_format):
        pytest.skip(f"this libsndfile cannot write {audio_format}/{subtype}")
    samples = tone(1.0, 48_000 if subtype == "OPUS" else 16_000)
    rate = 48_000 if subtype == "OPUS" else 16_000

    decoded, decoded_rate = decode_audio(encode_audio(samples, rate, audio_format, subtype))

    assert decoded_rate == rate
    assert abs(len(decoded) - len(samples)) < 0.05 * rate
    common = min(len(decoded), len(samples))
    assert np.corrcoef(decoded[:common], samples[:common])[0, 1] > 0.99


def test_real_librispeech_flac_decodes_at_16_khz():
    decoded, rate = decode_audio(VOICE_FLAC)

    assert rate == 16_000
    assert decoded.ndim == 1 and len(decoded) > rate  # over a second of speech
    assert 0 < np.abs(decoded).max() <= 1.0


def test_six_channels_of_one_sound_are_averaged_and_a_dead_one_left_out():
    channels = np.tile(np.arange(6, dtype=np.float32) * 0.1, (800, 1))  # channel c at 0.1 c, channel 0 dead

    decoded, _ = decode_audio(encode_audio(channels, 16_000, "WAV", "FLOAT"))

    np.testing.assert_allclose(decoded, 0.3, atol=1e-6)


def test_a_channel_in_opposite_polarity_does_not_cancel_the_voice():
    # a miswired cable: the mean of a voice and its inverse is silence; the inverse is turned over
    left = tone(0.1)

    decoded, _ = decode_audio(encode_audio(np.stack([left, -0.9 * left], axis=1), 16_000, "WAV", "FLOAT"))

    np.testing.assert_allclose(decoded, 0.95 * left, atol=1e-6)


@pytest.mark.parametrize("lag", [3, -7, 30])
def test_two_microphones_a_little_apart_are_aligned_before_the_mean(lag):
    # the same voice reaching the second microphone ``lag`` samples later: the plain mean would be a
    # comb filter (a lag of 3 at 16 kHz notches 2.7 kHz); aligned, the mean is the voice itself
    voice = (np.random.default_rng(1).standard_normal(16_000) * 0.1).astype(np.float32)
    later = np.zeros_like(voice)
    later[max(lag, 0):len(voice) + min(lag, 0)] = voice[max(-lag, 0):len(voice) - max(lag, 0)]

    decoded, _ = decode_audio(encode_audio(np.stack([voice, 0.9 * later], axis=1), 16_000, "WAV", "FLOAT"))

    inner = slice(40, -40)  # the lag's edge, where one channel has no sound yet
    np.testing.assert_allclose(decoded[inner], 0.95 * voice[inner], atol=1e-5)
    assert np.corrcoef(voice, np.stack([voice, 0.9 * later], axis=1).mean(axis=1))[0, 1] < 0.995  # what the mean did


def speech() -> np.ndarray:
    """The first 2 s of a real LibriSpeech segment, ``(T,)`` float32 at 16 kHz."""
    return decode_audio(VOICE_FLAC)[0][:32_000]


def test_a_noisy_channel_is_left_for_the_clear_one():
    # a covered or rubbing second microphone: the same voice under noise as loud as it; the mean would
    # halve the noise, the clear channel alone has none
    rng = np.random.default_rng(0)
    voice = speech()
    noisy = voice + (voice.std() * rng.standard_normal(len(voice))).astype(np.float32)

    for channels in (np.stack([voice, noisy], axis=1), np.stack([noisy, voice], axis=1)):
        decoded, _ = decode_audio(encode_audio(channels, 16_000, "WAV", "FLOAT"))
        np.testing.assert_allclose(decoded, voice, atol=1e-6)


def test_another_sound_or_a_dead_channel_stays_out_of_the_mix():
    voice = speech()
    cases = {"dead": np.stack([np.zeros_like(voice), voice], axis=1),
             "hum": np.stack([tone(2.0, amplitude=0.9), voice], axis=1)}  # louder, but no pauses: no SNR to speak of

    for name, channels in cases.items():
        decoded, _ = decode_audio(encode_audio(channels, 16_000, "WAV", "FLOAT"))
        np.testing.assert_allclose(decoded, voice, atol=1e-6, err_msg=name)


def test_two_talkers_on_two_channels_are_not_mixed():
    # an interview recorded one voice per channel: one of them is kept whole, not the two at once
    voice, other = speech(), decode_audio(SAMPLES / "voices" / "1081" / "0.flac")[0][:32_000]
    channels = np.stack([voice, 0.5 * voice.std() / other.std() * other], axis=1)

    decoded, _ = decode_audio(encode_audio(channels, 16_000, "WAV", "FLOAT"))

    assert any(np.allclose(decoded, channel, atol=1e-6) for channel in channels.T)


def test_two_equally_noisy_microphones_are_averaged():
    # independent noise in each: their mean is 3 dB clearer than either, so neither is taken alone
    rng = np.random.default_rng(2)
    voice = speech()
    channels = np.stack([voice + 0.3 * voice.std() * rng.standard_normal(len(voice)),
                         voice + 0.3 * voice.std() * rng.standard_normal(len(voice))], axis=1).astype(np.float32)

    decoded, _ = decode_audio(encode_audio(channels, 16_000, "WAV", "FLOAT"))

    np.testing.assert_allclose(decoded, channels.mean(axis=1), atol=1e-6)
@pytest.mark.parametrize("rate", [8_000, 96_000])
def test_sample_rate_is_reported_unchanged(rate):
    decoded, decoded_rate = decode_audio(encode_audio(tone(0.25, rate), rate, "WAV", "PCM_16"))

    assert decoded_rate == rate
    assert len(decoded) == rate // 4


def test_audio_from_path_matches_audio_from_bytes(tmp_path: Path):
    path = tmp_path / "voice.wav"
    path.write_bytes(encode_audio(tone(0.2), 16_000, "WAV", "PCM_16"))

    from_path, from_bytes = decode_audio(path)[0], decode_audio(path.read_bytes())[0]

    np.testing.assert_array_equal(from_path, from_bytes)


def test_float_samples_beyond_full_scale_are_clipped():
    decoded, _ = decode_audio(encode_audio(np.array([1.5, -2.0, 0.5], np.float32), 16_000, "WAV", "FLOAT"))

    np.testing.assert_array_equal(decoded, [1.0, -1.0, 0.5])


# --- audio: bad files ---------------------------------------------------------------------------
def test_empty_audio_file_is_refused(tmp_path: Path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")

    with pytest.raises(DecodeError, match=r"empty\.wav is empty"):
        decode_audio(path)
    with pytest.raises(DecodeError, match="audio buffer is empty"):
        decode_audio(b"")


def test_header_only_wav_holds_no_samples():
    data = encode_audio(np.zeros(0, np.float32), 16_000, "WAV", "PCM_16")
    assert len(data) == 44

    with pytest.raises(DecodeError, match="audio buffer holds no audio samples"):
        decode_audio(data)


def test_wav_cut_inside_its_header_is_refused():
    data = encode_audio(tone(0.2), 16_000, "WAV", "PCM_16")

    with pytest.raises(DecodeError, match="audio buffer is not audio in a supported format"):
        decode_audio(data[:30])


def test_wav_cut_inside_its_data_gives_the_samples_present():
    # Streamed WAV recordings often carry a wrong data size; libsndfile reads what is there.
    samples = tone(0.2)
    data = encode_audio(samples, 16_000, "WAV", "PCM_16")

    decoded, _ = decode_audio(data[: 44 + 2 * 1000])

    np.testing.assert_allclose(decoded, samples[:1000], atol=1 / 32_767 + 1e-7)


@pytest.mark.parametrize(("audio_format", "subtype"), [("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_truncated_compressed_audio_is_refused(audio_format, subtype):
    data = encode_audio(tone(1.0), 16_000, audio_format, subtype)

    with pytest.raises(DecodeError, match="audio buffer is not audio in a supported format"):
        decode_audio(data[: len(data) // 2])


def test_garbage_bytes_are_refused_naming_supported_formats(tmp_path: Path):
    path = tmp_path / "voice.wav"
    path.write_bytes(bytes(range(256)) * 8)

    message = r"voice\.wav is not audio in a supported format \(WAV, FLAC, OGG, MP3, M4A/AAC, WebM, MP4, 3GP/AMR\)"
    with pytest.raises(DecodeError, match=message):
        decode_audio(path)


def test_image_given_as_audio_is_refused():
    with pytest.raises(DecodeError, match="not audio in a supported format"):
        decode_audio(FACE_JPEG)


def test_missing_audio_path_and_folder_are_refused(tmp_path: Path):
    with pytest.raises(DecodeError, match=r"missing\.flac: no such file"):
        decode_audio(tmp_path / "missing.flac")
    with pytest.raises(DecodeError, match="is a folder, not an? audio file"):
        decode_audio(tmp_path)


def test_audio_longer_than_the_limit_is_refused_from_its_header():
    data = encode_audio(tone(2.0), 16_000, "FLAC")

    with pytest.raises(InputTooLargeError, match="audio buffer lasts 2 s; the limit is 1 s"):
        decode_audio(data, AudioLimits(max_seconds=1.0))
    assert len(decode_audio(data, AudioLimits(max_seconds=2.0))[0]) == 32_000


def test_audio_over_the_byte_limit_is_refused(tmp_path: Path):
    path = tmp_path / "long.wav"
    path.write_bytes(encode_audio(tone(1.0), 16_000, "WAV", "PCM_16"))

    with pytest.raises(InputTooLargeError, match=r"long\.wav is .* MiB; the limit is"):
        decode_audio(path, AudioLimits(max_bytes=10_000))
    with pytest.raises(InputTooLargeError, match=r"audio buffer is .* MiB; the limit is"):
        decode_audio(path.read_bytes(), AudioLimits(max_bytes=10_000))


# --- audio: (samples, rate) arrays -------------------------------------------------------------
def test_float_array_and_rate_pass_through():
    samples = tone(0.1, 8_000).astype(np.float64)

    decoded, rate = decode_audio((samples, 8_000))

    assert rate == 8_000 and decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, samples, atol=1e-7)


@pytest.mark.parametrize(
    ("dtype", "value", "expected"),
    [(np.int16, 16_384, 16_384 / 32_767), (np.int16, -32_768, -1.0), (np.int32, 2**31 - 1, 1.0)],
)
def test_integer_samples_are_scaled_by_their_full_scale(dtype, value, expected):
    decoded, _ = decode_audio((np.array([value, 0], dtype=dtype), 16_000))

    assert decoded[0] == pytest.approx(expected, abs=1e-6)
    assert decoded[1] == 0.0


def test_two_dimensional_array_is_time_by_channels():
    stereo = np.stack([np.full(100, 0.2), np.full(100, 0.6)], axis=1)

    decoded = check_waveform(stereo, 16_000)

    np.testing.assert_allclose(decoded, 0.4, atol=1e-7)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused(bad):
    samples = tone(0.1)
    samples[10] = bad

    with pytest.raises(DecodeError, match="audio array contains NaN or infinite samples"):
        decode_audio((samples, 16_000))


@pytest.mark.parametrize("rate", [0, -16_000, 999, 384_001, 16_000.0, "16000", None])
def test_unsupported_sample_rate_is_refused(rate):
    with pytest.raises(DecodeError, match=rf"audio array has an unsupported sample rate {rate!r} Hz"):
        decode_audio((tone(0.1), rate))


@pytest.mark.parametrize("rate", [1_000, np.int64(384_000)])
def test_sample_rate_limits_are_inclusive(rate):
    assert decode_audio((tone(0.01), rate))[1] == rate


@pytest.mark.parametrize("shape", [(0,), (0, 2), (10, 2, 2), ()])
def test_empty_or_malformed_sample_array_is_refused(shape):
    message = r"audio array has shape .*; expected \(T,\) or \(T, channels\) with T > 0"
    with pytest.raises(DecodeError, match=message):
        decode_audio((np.zeros(shape, np.float32), 16_000))


@pytest.mark.parametrize("dtype", [bool, object, "U3"])
def test_non_numeric_sample_array_is_refused(dtype):
    with pytest.raises(DecodeError, match="audio array has non-numeric dtype"):
        decode_audio((np.zeros(10, dtype=dtype), 16_000))
