"""Fuzzing decode -> front end -> embedding -> decision for both modalities with hypothesis.

Inputs: random bytes, the shipped samples with random byte edits and cuts, and random arrays of
any shape, dtype and value (NaN, inf, huge). The only allowed outcomes are a :class:`Decision` or
a :class:`VerifyError` subclass; any other exception fails the test with the input that caused it.

The budget is fixed so CI stays around 30 s: ``FUZZ_EXAMPLES`` examples per test (default 40),
derandomised by default; set ``FUZZ_SEED`` (and a larger ``FUZZ_EXAMPLES``) to explore further.
The number of inputs tried and their outcomes are printed after the module's tests.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from verify.errors import VerifyError
from verify.models import shipped_verifier
from verify.scoring import Decision
from verify.verifier import Verifier

REPO_ROOT = Path(__file__).resolve().parents[2]
FACE_BYTES = (REPO_ROOT / "assets" / "samples" / "faces" / "Andy_Roddick" / "0.jpg").read_bytes()
VOICE_BYTES = (REPO_ROOT / "assets" / "samples" / "voices" / "103" / "0.flac").read_bytes()[:60_000]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "0"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=FUZZ_SEED == 0, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)  # fmt: skip
TRIED: Counter = Counter()
OUTCOMES: Counter = Counter()

pytestmark = pytest.mark.usefixtures("torch_threads")


@pytest.fixture(scope="module", autouse=True)
def report_counts(request: pytest.FixtureRequest):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and TRIED:
        outcomes = ", ".join(f"{count} {name}" for name, count in sorted(OUTCOMES.items()))
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n[fuzz] {sum(TRIED.values())} inputs tried ({dict(TRIED)}); outcomes: {outcomes}")


@pytest.fixture(scope="module")
def face_verifier(face_pipeline) -> Verifier:
    return shipped_verifier(face_pipeline)


@pytest.fixture(scope="module")
def voice_verifier(voice_pipeline) -> Verifier:
    return shipped_verifier(voice_pipeline)


def run_one(verifier: Verifier, template: np.ndarray, source, kind: str) -> None:
    """Check ``source``: a Decision or a VerifyError pass; anything else propagates and fails."""
    TRIED[kind] += 1
    try:
        decision = verifier.check(template, source)
    except VerifyError as error:
        OUTCOMES[type(error).__name__] += 1
        return
    assert isinstance(decision, Decision) and np.isfinite(decision.score)
    OUTCOMES[decision.outcome] += 1


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """``original`` with a few bytes overwritten, a run inserted or deleted, and maybe cut short."""
    data = bytearray(original)
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        start = draw(st.integers(0, len(data)))
        data[start:start] = draw(st.binary(max_size=64))
    if draw(st.booleans()):
        start = draw(st.integers(0, len(data) - 1))
        del data[start : start + draw(st.integers(1, 4096))]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


IMAGE_DTYPES = st.sampled_from([np.uint8, np.uint16, np.int8, np.int64, np.float16, np.float32, np.float64, np.bool_])
AUDIO_DTYPES = st.sampled_from([np.float32, np.float64, np.int16, np.int32, np.uint8, np.int8, np.float16])


@st.composite
def image_arrays(draw) -> np.ndarray:
    height, width = draw(st.integers(0, 200)), draw(st.integers(0, 200))
    channels = draw(st.sampled_from([(), (1,), (3,), (4,), (2,), (3, 2)]))
    dtype = draw(IMAGE_DTYPES)
    fill = draw(hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True))
    array = np.full((height, width, *channels), fill, dtype=dtype)
    if array.size and draw(st.booleans()):
        noise = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, 256, array.shape)
        array = noise.astype(dtype)
    return array


@st.composite
def audio_arrays(draw) -> tuple[np.ndarray, int]:
    rate = draw(st.sampled_from([0, 999, 1000, 8000, 16_000, 44_100, 96_000, 384_001]))
    length = draw(st.integers(0, 16_000))
    channels = draw(st.sampled_from([(), (1,), (2,), (6,), (2, 2)]))
    dtype = draw(AUDIO_DTYPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["noise", "tone", "fill"]))
    if kind == "fill":
        samples = np.full((length, *channels), draw(hnp.from_dtype(np.dtype(dtype), allow_nan=True)), dtype=dtype)
    else:
        base = rng.normal(0, draw(st.floats(0, 10)), (length, *channels))
        if kind == "tone":
            base = np.sin(np.arange(length) * draw(st.floats(0.001, 3.0))).reshape((length,) + (1,) * len(channels)) * np.ones((1, *channels))
        with np.errstate(invalid="ignore", over="ignore"):
            samples = (base * (np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1)).astype(dtype)
    return samples, rate


def wav_bytes(samples: np.ndarray, rate: int, subtype: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


# --- face ---------------------------------------------------------------------------------------
@FUZZ
@seed(FUZZ_SEED)
@given(data=st.one_of(st.binary(max_size=4096), mutated(FACE_BYTES)))
def test_face_bytes(face_verifier, face_embeddings, data: bytes) -> None:
    run_one(face_verifier, face_embeddings[0].vector, data, "face bytes")


@FUZZ
@seed(FUZZ_SEED)
@given(array=image_arrays())
def test_face_arrays(face_verifier, face_embeddings, array: np.ndarray) -> None:
    run_one(face_verifier, face_embeddings[0].vector, array, "face arrays")


# --- voice --------------------------------------------------------------------------------------
@FUZZ
@seed(FUZZ_SEED)
@given(data=st.one_of(st.binary(max_size=4096), mutated(VOICE_BYTES),
                      mutated(wav_bytes(np.sin(np.arange(8000) / 3.0) * 0.5, 16_000, "PCM_16"))))  # fmt: skip
def test_voice_bytes(voice_verifier, voice_embeddings, data: bytes) -> None:
    run_one(voice_verifier, voice_embeddings[0].vector, data, "voice bytes")


@FUZZ
@seed(FUZZ_SEED)
@given(clip=audio_arrays())
def test_voice_arrays(voice_verifier, voice_embeddings, clip: tuple[np.ndarray, int]) -> None:
    run_one(voice_verifier, voice_embeddings[0].vector, clip, "voice arrays")


def test_wrong_source_types_are_decode_errors(face_verifier, voice_verifier, face_embeddings, voice_embeddings) -> None:
    for source in (None, 3, 2.5, ["a"], {"x": 1}, object(), (np.zeros(10),), (np.zeros(10), 16_000, 0)):
        run_one(face_verifier, face_embeddings[0].vector, source, "face other types")
        run_one(voice_verifier, voice_embeddings[0].vector, source, "voice other types")
