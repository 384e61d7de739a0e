"""Voices in containers libsndfile cannot read (a phone's M4A memo, a browser's WebM, a 3GP call,
a video's sound track) decode through FFmpeg and verify like the FLAC they were made from."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from enrollment.service import Service
from verify.config import AudioLimits
from verify.errors import DecodeError, InputTooLargeError
from verify.io import decode_audio

SPEAKERS = Path(__file__).resolve().parents[2] / "assets" / "samples" / "voices"

CONTAINERS = {  # name -> (container format, codec, sample rate it is encoded at)
    "m4a": ("ipod", "aac", 44_100),
    "webm": ("webm", "libopus", 48_000),
    "3gp": ("3gp", "libopencore_amrnb", 8_000),
}


def encode(samples: np.ndarray, rate: int, container_format: str, codec: str, video: bool = False) -> bytes:
    """``samples`` (mono float32 at ``rate``) encoded by FFmpeg into an in-memory container."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        if video:
            picture = container.add_stream("mpeg4", rate=10)
            picture.width, picture.height, picture.pix_fmt = 64, 64, "yuv420p"
        if codec:
            stream = container.add_stream(codec, rate=rate)
            stream.layout = "mono"
            resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.time_base, frame.pts = rate, Fraction(1, rate), 0
            for packet in (p for resampled in resampler.resample(frame) for p in stream.encode(resampled)):
                container.mux(packet)
            container.mux(stream.encode(None))
        if video:
            for index in range(5):
                image = av.VideoFrame.from_ndarray(np.full((64, 64, 3), index * 40, np.uint8), format="rgb24")
                container.mux(picture.encode(image))
            container.mux(picture.encode(None))
    return buffer.getvalue()


def resampled(samples: np.ndarray, rate: int, to: int) -> np.ndarray:
    """``samples`` at ``to`` Hz (linear interpolation: enough to feed an encoder)."""
    times = np.arange(int(len(samples) * to / rate)) / to
    return np.interp(times, np.arange(len(samples)) / rate, samples).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    samples, rate = decode_audio(SPEAKERS / "1116" / "1.flac")
    assert rate == 16_000
    return samples


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_a_container_decodes_to_its_sound_at_its_rate(speech: np.ndarray, name: str, tmp_path: Path) -> None:
    container_format, codec, rate = CONTAINERS[name]
    path = tmp_path / f"memo.{name}"
    path.write_bytes(encode(resampled(speech, 16_000, rate), rate, container_format, codec))

    decoded, decoded_rate = decode_audio(path)

    assert decoded_rate == rate
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert abs(len(decoded) / rate - len(speech) / 16_000) < 0.1  # codec padding only
    assert 0.3 < np.sqrt(np.mean(decoded**2)) / np.sqrt(np.mean(speech**2)) < 3.0
    np.testing.assert_array_equal(decode_audio(path.read_bytes())[0], decoded)


def test_a_phone_memo_is_accepted_like_the_recording_it_was_made_from(speech: np.ndarray, voice_pipeline,
                                                                      tmp_path: Path) -> None:
    container_format, codec, rate = CONTAINERS["m4a"]
    memo = tmp_path / "memo.m4a"
    memo.write_bytes(encode(resampled(speech, 16_000, rate), rate, container_format, codec))
    stranger = tmp_path / "stranger.m4a"
    stranger.write_bytes(encode(resampled(decode_audio(SPEAKERS / "103" / "1.flac")[0], 16_000, rate), rate,
                                container_format, codec))

    with Service(tmp_path / "store.db", pipelines={"voice": voice_pipeline}) as service:
        service.enroll("reader", voice=SPEAKERS / "1116" / "0.flac")
        assert service.check("reader", voice=memo).outcome == "accepted"
        assert service.check("reader", voice=stranger).outcome == "rejected"


def test_the_sound_track_of_a_video_is_read(speech: np.ndarray) -> None:
    data = encode(resampled(speech, 16_000, 44_100), 44_100, "mp4", "aac", video=True)

    decoded, rate = decode_audio(data)

    assert rate == 44_100 and abs(len(decoded) / rate - len(speech) / 16_000) < 0.1


def test_a_video_without_sound_is_refused_saying_so() -> None:
    data = encode(np.zeros(0, np.float32), 16_000, "mp4", "", video=True)

    with pytest.raises(DecodeError, match=r"audio buffer is not audio in a supported format .*: no sound track"):
        decode_audio(data)


def test_a_container_longer_than_the_limit_is_refused(speech: np.ndarray) -> None:
    container_format, codec, rate = CONTAINERS["webm"]
    data = encode(resampled(speech, 16_000, rate), rate, container_format, codec)

    with pytest.raises(InputTooLargeError, match=r"audio buffer lasts \d s; the limit is 1 s"):
        decode_audio(data, AudioLimits(max_seconds=1.0))


def test_a_memo_cut_short_is_refused_not_half_read(speech: np.ndarray) -> None:
    container_format, codec, rate = CONTAINERS["m4a"]
    data = encode(resampled(speech, 16_000, rate), rate, container_format, codec)

    with pytest.raises(DecodeError, match="audio buffer is not audio in a supported format"):
        decode_audio(data[: len(data) // 2])


def test_a_stereo_memo_with_one_channel_inverted_decodes_to_the_voice(speech):
    rate = 44_100
    voice = resampled(speech, 16_000, rate)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="ipod") as container:
        stream = container.add_stream("aac", rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([voice, -voice]), format="fltp", layout="stereo")
        frame.sample_rate, frame.time_base, frame.pts = rate, Fraction(1, rate), 0
        for packet in stream.encode(frame):
            container.mux(packet)
        container.mux(stream.encode(None))

    decoded, decoded_rate = decode_audio(buffer.getvalue())

    assert decoded_rate == rate
    common = len(voice) - 4096
    similarity = max(abs(np.corrcoef(decoded[delay : delay + common], voice[:common])[0, 1])
                     for delay in range(0, 4096, 64) if len(decoded) >= delay + common)  # the codec's delay
    assert similarity > 0.9  # the voice, not the silence the two channels' mean would be
