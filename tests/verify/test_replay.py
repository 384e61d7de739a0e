"""Replay detection: sample digests, near-identical embeddings, the shipped thresholds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from verify.errors import WeightsError
from verify.models import model_spec
from verify.replay import (
    RememberedSample,
    ReplayThreshold,
    find_replay,
    load_replay_threshold,
    sample_digest,
    save_replay_threshold,
)


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, np.float32)
    return vector / np.linalg.norm(vector)


def test_digests_follow_the_content_not_the_container(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"same bytes")
    assert sample_digest(path) == sample_digest(str(path)) == sample_digest(b"same bytes") == sample_digest(bytearray(b"same bytes"))
    image = np.zeros((2, 3, 3), np.uint8)
    assert sample_digest(image) == sample_digest(image.copy()) != sample_digest(image.reshape(3, 2, 3))
    audio = np.zeros(16, np.float32)
    assert sample_digest((audio, 16_000)) != sample_digest((audio, 8_000))
    assert sample_digest(tmp_path / "missing") is None and sample_digest(42) is None


def test_a_byte_identical_probe_is_a_replay_whatever_its_embedding():
    kept = [RememberedSample(b"d" * 32, unit(1, 0), "enrolled"), RememberedSample(None, unit(0, 1), "accepted")]
    assert find_replay(b"d" * 32, unit(-1, 0), kept, 0.99) == (
        "replay suspected: a byte-identical copy of an enrollment sample")
    assert find_replay(b"x" * 32, unit(-1, 0), kept, 0.99) is None


def test_a_near_identical_embedding_is_a_replay_from_the_threshold_up():
    kept = [RememberedSample(None, unit(1, 0), "enrolled"), RememberedSample(b"a" * 32, unit(0, 1), "accepted")]
    close = unit(0.1, 1)  # cosine 0.995 with the accepted sample
    assert find_replay(None, close, kept, 0.99).startswith(
        "replay suspected: a near-identical copy of a recently accepted sample (cosine 0.9950 >= 0.9900)")
    assert find_replay(None, close, kept, 0.996) is None
    assert find_replay(None, unit(1, 0, 0), kept, 0.5) is None  # another dimension: never compared
    assert find_replay(None, close, [], 0.5) is None


@pytest.mark.parametrize("modality", ["face", "voice"])
def test_the_shipped_thresholds_were_measured_for_the_shipped_models(modality):
    spec = model_spec(modality)
    threshold = load_replay_threshold(spec.model_id)
    measured = threshold.provenance
    assert measured["largest_calibration_cosine"] < threshold.cosine < 1.0
    assert measured["command"] == f"python scripts/replay_threshold.py --modality {modality}"
    for check in measured["evaluation_check"].values():  # never fired on two genuine samples of test people
        assert check["pairs_at_or_above_threshold"] == 0 and check["genuine_pairs"] > 300


def test_a_missing_or_foreign_threshold_file_names_the_command(tmp_path):
    with pytest.raises(WeightsError, match="scripts/replay_threshold.py"):
        load_replay_threshold("m", tmp_path / "missing.json")
    path = tmp_path / "other.json"
    save_replay_threshold(path, ReplayThreshold("other", 0.99, {"rows": 1}))
    assert json.loads(path.read_text())["near_identical_cosine"] == 0.99
    with pytest.raises(WeightsError, match="measured for other, not m"):
        load_replay_threshold("m", path)
    assert load_replay_threshold("other", path) == ReplayThreshold("other", 0.99, {"rows": 1})
