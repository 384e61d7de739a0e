"""Bad inputs end to end: through the real pipelines, enrollment and the CLI.

Every case ends in a specific :class:`VerifyError` or in a decision that is not an accept; none
crashes and none stores anything. Decoder-level details are in ``test_io.py``; these tests follow
each input through detection / speech trimming, embedding, the store and ``verify_cli.main.main``.

Documented behaviour of the odd-but-valid inputs:
- several faces: the largest, most central one is used and a note says so;
- a face of about 10 px: MTCNN cannot find it (``NoFaceError``); 13-23 px: ``FaceTooSmallError``;
- images under 20 px on a side (after downscaling for detection): no face can be searched, so
  ``NoFaceError``;
- a pure tone, clipped noise: the energy detector keeps them as "speech" and they embed, but they
  are never accepted against an enrolled speaker (clipping is flagged and enrollment refuses it).
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from enrollment import InvalidIdentityError, TemplateStore
from enrollment.enroll import check, enroll
from enrollment.ratelimit import NO_LOCKOUT
from verify_cli.main import main
from verify.errors import DecodeError, FaceTooSmallError, InputTooLargeError, NoFaceError, NoSpeechError, QualityError
from verify.io import decode_image
from verify.models import shipped_verifier
from verify.verifier import Verifier

REPO_ROOT = Path(__file__).resolve().parents[1]
FACE = REPO_ROOT / "assets" / "samples" / "faces" / "Andy_Roddick" / "0.jpg"
VOICE = REPO_ROOT / "assets" / "samples" / "voices" / "103" / "0.flac"
RATE = 16_000

pytestmark = pytest.mark.usefixtures("torch_threads")


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def wav(samples: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def face() -> Image.Image:
    return Image.open(FACE).convert("RGB")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    samples, rate = soundfile.read(VOICE, dtype="float32")
    assert rate == RATE
    return samples


def shrunk_face_in_frame(face: Image.Image, face_side: int) -> np.ndarray:
    """The sample photo scaled so its face is about ``face_side`` px, pasted in a 640x480 frame."""
    small = face.resize((face_side * 2, face_side * 2))  # the face fills about half the photo
    frame = Image.new("RGB", (640, 480), (128, 128, 128))
    frame.paste(small, (300, 200))
    return np.asarray(frame)


# --- images -----------------------------------------------------------------------------------
IMAGE_ERRORS = {
    "empty-file": (lambda face, tmp: tmp / "empty.jpg", DecodeError, r"empty\.jpg is empty"),
    "truncated-jpeg": (lambda face, tmp: FACE.read_bytes()[:2000], DecodeError, "truncated or corrupt"),
    "truncated-png": (lambda face, tmp: encode(face, "PNG")[:5000], DecodeError, "truncated or corrupt"),
    "text-as-jpg": (lambda face, tmp: tmp / "text.jpg", DecodeError, "not an image in a supported format"),
    "zero-by-zero": (lambda face, tmp: np.zeros((0, 0, 3), np.uint8), DecodeError, "0x0 pixels, too small"),
    "zero-by-zero-png": (lambda face, tmp: png_claiming(0, 0), DecodeError, "not an image in a supported format"),
    "one-by-one": (lambda face, tmp: encode(Image.new("RGB", (1, 1)), "PNG"), DecodeError, "1x1 pixels, too small"),
    "two-by-two": (lambda face, tmp: np.zeros((2, 2, 3), np.uint8), NoFaceError, "no face"),
    "ten-by-ten-float": (lambda face, tmp: np.full((10, 10), 3.5), NoFaceError, "no face"),
    "thin-strip": (lambda face, tmp: np.full((30, 5000, 3), 90, np.uint8), NoFaceError, "no face"),
    "bomb-30000": (lambda face, tmp: png_claiming(30_000, 30_000), InputTooLargeError, "too large to decode safely"),
    "huge-array": (lambda face, tmp: np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), (9000, 9000, 3), (0, 0, 0)),
                   InputTooLargeError, "9000x9000 pixels; the limit"),
    "all-black": (lambda face, tmp: np.zeros((480, 640, 3), np.uint8), NoFaceError, "no face"),
    "all-white": (lambda face, tmp: np.full((480, 640, 3), 255, np.uint8), NoFaceError, "no face"),
    "noise": (lambda face, tmp: np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8), NoFaceError, "no face"),
    "face-15px": (lambda face, tmp: shrunk_face_in_frame(face, 15), NoFaceError, "no face"),
    "nan-array": (lambda face, tmp: np.full((64, 64, 3), np.nan), DecodeError, "non-finite"),
    "inf-array": (lambda face, tmp: np.full((64, 64), np.inf, np.float32), DecodeError, "non-finite"),
    "complex-array": (lambda face, tmp: np.zeros((64, 64, 3), complex), DecodeError, "non-numeric"),
    "four-d-array": (lambda face, tmp: np.zeros((2, 64, 64, 3), np.uint8), DecodeError, r"has shape \(2, 64, 64, 3\)"),
    "none": (lambda face, tmp: None, DecodeError, "cannot read an image from a NoneType"),
    "integer": (lambda face, tmp: 7, DecodeError, "cannot read an image from a int"),
    "folder": (lambda face, tmp: tmp, DecodeError, "is a folder"),
}


@pytest.mark.parametrize("case", list(IMAGE_ERRORS))
def test_bad_image_gives_its_error_and_enrolls_nothing(case, face, face_pipeline, tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello, not a photo\n", encoding="utf-8")
    make, error, message = IMAGE_ERRORS[case]
    with TemplateStore(tmp_path / "s.db") as store:
        with pytest.raises(error, match=message):
            enroll(store, shipped_verifier(face_pipeline), "Andy", make(face, tmp_path))
        assert store.list_templates() == []


def test_face_under_24_px_is_too_small_and_names_its_size(face, face_pipeline) -> None:
    with pytest.raises(FaceTooSmallError, match=r"the face is 1\d px wide; at least 24 px is needed"):
        face_pipeline.embed(shrunk_face_in_frame(face, 22))


@pytest.mark.parametrize(
    "convert",
    [
        lambda face: encode(Image.fromarray(np.asarray(face.convert("L"), np.uint16) * 257), "PNG"),
        lambda face: encode(face.convert("CMYK"), "JPEG"),
        lambda face: encode(face.convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "PNG"),
        lambda face: encode(face, "GIF", save_all=True, append_images=[Image.new("RGB", face.size)], duration=100, loop=0),
    ],
    ids=["16-bit", "cmyk", "palette", "animated-gif-first-frame"],
)
def test_unusual_but_valid_images_embed_like_the_original(convert, face, face_pipeline, face_embeddings) -> None:
    embedding = face_pipeline.embed(convert(face))
    assert float(np.dot(embedding.vector, face_embeddings[0].vector)) > 0.9


def test_many_faces_use_the_main_one_and_say_so(face, face_pipeline, face_embeddings) -> None:
    width, height = face.size
    crowd = Image.new("RGB", (width * 3, height), (128, 128, 128))
    for column in range(3):
        crowd.paste(face.resize((width // 2, height // 2)) if column != 1 else face, (column * width, height // 4 * (column != 1)))
    embedding = face_pipeline.embed(np.asarray(crowd))
    assert embedding.notes and "faces found; used the largest, most central one" in embedding.notes[0]
    assert float(np.dot(embedding.vector, face_embeddings[0].vector)) > 0.9


# --- audio ------------------------------------------------------------------------------------
def sparse_wav(path: Path, seconds: float, rate: int, subtype: str) -> Path:
    """A WAV whose header is right for ``seconds`` of audio, its data a hole: no disk, no time."""
    header = wav(np.zeros(1, np.float32), rate, subtype)
    frame_bytes = {"PCM_U8": 1, "PCM_16": 2}[subtype]
    data_bytes = int(seconds * rate) * frame_bytes
    header = bytearray(header[:44])
    header[4:8], header[40:44] = struct.pack("<I", 36 + data_bytes), struct.pack("<I", data_bytes)
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(44 + data_bytes)
    return path


AUDIO_ERRORS = {
    "empty-file": (lambda speech, tmp: tmp / "empty.wav", DecodeError, r"empty\.wav is empty"),
    "header-only-wav": (lambda speech, tmp: wav(np.zeros(0, np.float32)), DecodeError, "holds no audio samples"),
    "truncated-flac": (lambda speech, tmp: VOICE.read_bytes()[:3000], DecodeError, "not audio in a supported format"),
    "zero-length-array": (lambda speech, tmp: (np.zeros(0, np.float32), RATE), DecodeError, "expected \\(T,\\)"),
    "ten-ms": (lambda speech, tmp: (speech[8000:8160], RATE), NoSpeechError, "s of speech found"),
    "silence": (lambda speech, tmp: wav(np.zeros(3 * RATE, np.float32)), NoSpeechError, "the clip is silent"),
    "two-hours-16-bit": (lambda speech, tmp: sparse_wav(tmp / "long16.wav", 7200, RATE, "PCM_16"),
                         InputTooLargeError, r"long16\.wav is 219\.7 MiB; the limit is 200 MiB"),
    "two-hours-8-bit": (lambda speech, tmp: sparse_wav(tmp / "long8.wav", 7200, 8000, "PCM_U8"),
                        InputTooLargeError, r"long8\.wav lasts 7200 s; the limit is 600 s"),
    "nan-samples": (lambda speech, tmp: (np.where(np.arange(len(speech)) == 500, np.nan, speech), RATE),
                    DecodeError, "contains NaN or infinite samples"),
    "nan-in-float-wav": (lambda speech, tmp: wav(np.full(RATE, np.nan, np.float32), subtype="FLOAT"),
                         DecodeError, "contains NaN or infinite samples"),
    "rate-zero": (lambda speech, tmp: (speech, 0), DecodeError, "unsupported sample rate 0 Hz"),
    "three-item-tuple": (lambda speech, tmp: (speech, RATE, 1), DecodeError, "must be \\(samples, sample_rate\\)"),
    "none": (lambda speech, tmp: None, DecodeError, "cannot read an audio clip from a NoneType"),
    "image-as-audio": (lambda speech, tmp: FACE, DecodeError, "not audio in a supported format"),
}


@pytest.mark.parametrize("case", list(AUDIO_ERRORS))
def test_bad_audio_gives_its_error_and_enrolls_nothing(case, speech, voice_pipeline, tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    make, error, message = AUDIO_ERRORS[case]
    started = time.monotonic()
    with TemplateStore(tmp_path / "s.db") as store:
        with pytest.raises(error, match=message):
            enroll(store, shipped_verifier(voice_pipeline), "reader", make(speech, tmp_path))
        assert store.list_templates() == []
    assert time.monotonic() - started < 10  # the two-hour files are refused from their size/header


@pytest.fixture(scope="module")
def voice_verifier(voice_pipeline) -> Verifier:
    return shipped_verifier(voice_pipeline, "medium")


def tone(seconds: float, frequency: float = 220.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


@pytest.mark.parametrize(
    "make",
    [
        lambda: (tone(3.0), RATE),
        lambda: (tone(3.0, 1000.0), RATE),
        lambda: (np.clip(np.random.default_rng(1).normal(0, 2, 3 * RATE), -1, 1).astype(np.float32), RATE),
    ],
    ids=["tone-220-hz", "tone-1-khz", "clipped-noise"],
)
def test_non_speech_sounds_are_never_accepted(make, tmp_path: Path, voice_pipeline, voice_verifier) -> None:
    """The voice activity detector finds no speech in them, so they are refused before scoring."""
    with TemplateStore(tmp_path / "s.db") as store:
        enroll(store, shipped_verifier(voice_pipeline), "reader", VOICE)
        with pytest.raises(NoSpeechError, match=r"only 0\.00 s of speech found"):
            check(store, voice_verifier, "reader", make(), policy=NO_LOCKOUT)


def test_clipped_noise_cannot_be_enrolled(tmp_path: Path, voice_pipeline) -> None:
    noise = np.clip(np.random.default_rng(1).normal(0, 2, 3 * RATE), -1, 1).astype(np.float32)
    with TemplateStore(tmp_path / "s.db") as store:
        with pytest.raises(QualityError, match="audio is clipped"):
            enroll(store, shipped_verifier(voice_pipeline), "noise", (noise, RATE))
        assert store.list_templates() == []


@pytest.mark.parametrize(
    "convert",
    [
        lambda s: wav(s, RATE, "PCM_U8"), lambda s: wav(s, RATE, "PCM_16"), lambda s: wav(s, RATE, "PCM_24"),
        lambda s: wav(s, RATE, "PCM_32"), lambda s: wav(s, RATE, "FLOAT"), lambda s: wav(s, RATE, "DOUBLE"),
        lambda s: ((s * 32767).astype(np.int16), RATE), lambda s: (s.astype(np.float64), RATE),
        lambda s: wav(s[::2], 8_000), lambda s: wav(np.interp(np.arange(len(s) * 6) / 6, np.arange(len(s)), s), 96_000),
        lambda s: wav(np.repeat(s[:, None], 6, axis=1)),
    ],
    ids=["u8", "pcm16", "pcm24", "pcm32", "float", "double", "int16-array", "float64-array", "8-khz", "96-khz", "6-channels"],
)
def test_sample_formats_rates_and_channels_embed_like_the_original(convert, speech, voice_pipeline, voice_embeddings) -> None:
    embedding = voice_pipeline.embed(convert(speech))
    assert float(np.dot(embedding.vector, voice_embeddings[0].vector)) > 0.85


# --- names ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "message"),
    [("", "is empty"), ("   ", "is empty"), ("x" * 65, "limit is 64"), ("tab\there", "control character U\\+0009")],
)
def test_bad_names_are_refused_before_the_sample_is_read(name, message, tmp_path: Path, face_pipeline) -> None:
    with TemplateStore(tmp_path / "s.db") as store:
        with pytest.raises(InvalidIdentityError, match=message):
            enroll(store, shipped_verifier(face_pipeline), name, tmp_path / "missing.jpg")  # the name is checked first
        assert store.list_templates() == []


@pytest.mark.parametrize(
    "name",
    ["李小龙", "José Ñúñez", "../x", "../../etc/passwd", "Robert'); DROP TABLE templates;--", "' OR 1=1 --", "x" * 64],
)
def test_odd_names_are_plain_data_through_the_cli(name, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "s.db"
    base = ["--store", str(store), "--device", "cpu"]
    assert main([*base, "enroll", name, "--face", str(FACE)]) == 0
    assert main([*base, "check", name, "--face", str(FACE.with_name("1.jpg"))]) == 0  # FACE itself: a replay
    capsys.readouterr()
    assert main([*base, "list"]) == 0
    assert capsys.readouterr().out.startswith(f"{name}\tface\t1 sample(s)")
    assert {path.name for path in tmp_path.iterdir()} <= {"s.db", "s.db-shm", "s.db-wal"}  # no file named after it


def test_duplicate_enrollment_adds_samples_to_one_identity(tmp_path: Path, face_pipeline) -> None:
    decomposed = "Jose\u0301"  # NFD of José
    with TemplateStore(tmp_path / "s.db") as store:
        enroll(store, shipped_verifier(face_pipeline), "José", FACE)
        assert enroll(store, shipped_verifier(face_pipeline), f"  {decomposed} ", FACE).template.sample_count == 2
        assert [t.identity for t in store.list_templates()] == ["José"]


def test_cli_bad_inputs_exit_2_and_store_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = tmp_path / "s.db"
    base = ["--store", str(store), "--device", "cpu"]
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(30_000, 30_000))
    blank = tmp_path / "blank.png"
    blank.write_bytes(encode(Image.new("RGB", (320, 240), "white"), "PNG"))
    quiet = tmp_path / "quiet.wav"
    quiet.write_bytes(wav(np.zeros(RATE, np.float32)))
    for modality, path, message in (("--face", bomb, "too large to decode safely"), ("--face", blank, "no face found"),
                                    ("--voice", quiet, "the clip is silent")):  # fmt: skip
        assert main([*base, "enroll", "x", modality, str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert main([*base, "list", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


def test_decode_image_of_a_many_megapixel_header_does_not_allocate(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(InputTooLargeError):
        decode_image(png_claiming(30_000, 30_000))
    assert time.monotonic() - started < 1.0
    assert os.path.getsize(FACE) < 100_000
