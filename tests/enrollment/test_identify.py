"""1:N identification: best identity, below-threshold refusal, lookalike margin, model filter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from enrollment import TemplateStore, UnknownIdentityError
from enrollment.identify import identify
from verify.calibration import Thresholds
from verify.embedding import Embedding
from verify.errors import ConfigError
from verify.models import shipped_verifier
from verify.scorer import CosineScorer
from verify.verifier import Verifier

# medium: accept at 0.6, retry band from 0.5 -> default margin 0.1
THRESHOLDS = Thresholds("toy", {1e-1: 0.4, 1e-2: 0.5, 1e-3: 0.6, 1e-4: 0.7})


@dataclass
class ToyPipeline:
    modality: str = "face"
    model_id: str = "toy"
    model_version: str = "v1"


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def at_angle(cosine: float) -> np.ndarray:
    """A unit vector whose cosine with (1, 0, 0) is ``cosine``."""
    return unit(cosine, np.sqrt(1 - cosine**2), 0.0)


@pytest.fixture
def store(tmp_path: Path):
    with TemplateStore(tmp_path / "store.db") as opened:
        yield opened


@pytest.fixture
def verifier() -> Verifier:
    return Verifier(ToyPipeline(), CosineScorer(THRESHOLDS), "medium")


def enroll_vector(store, identity, vector, modality="face", version="v1") -> None:
    store.add_sample(identity, modality, vector, "toy", version)


def test_names_the_best_identity_above_threshold(store, verifier):
    enroll_vector(store, "alice", unit(1, 0, 0))
    enroll_vector(store, "bob", unit(0, 1, 0))
    result = identify(store, verifier, Embedding(at_angle(0.9)))
    assert result.identity == "alice" and result.decision.accepted and result.reason == ""
    assert [c.identity for c in result.candidates] == ["alice"]  # bob scores below the retry band: not shown
    assert result.candidates[0].score == pytest.approx(0.9, abs=1e-5)


def test_nobody_when_the_best_is_below_threshold(store, verifier):
    enroll_vector(store, "alice", unit(1, 0, 0))
    result = identify(store, verifier, Embedding(at_angle(0.3)))
    assert result.identity is None and result.decision.outcome == "rejected"
    assert "no enrolled face matches" in result.reason


def test_nobody_when_two_lookalikes_are_within_the_margin(store, verifier):
    enroll_vector(store, "alice", unit(1, 0, 0))
    enroll_vector(store, "alice twin", unit(0.97, 0.243, 0))
    probe = Embedding(unit(1, 0.1, 0))
    result = identify(store, verifier, probe)
    assert result.identity is None and result.decision.outcome == "retry"
    assert "ambiguous" in result.reason and "alice twin" in result.reason
    # a zero margin accepts the (slightly) better one
    assert identify(store, verifier, probe, margin=0.0).identity == "alice"


def test_only_the_probe_modality_and_current_model_are_scored(store, verifier):
    enroll_vector(store, "voice only", unit(1, 0, 0), modality="voice")
    enroll_vector(store, "old model", unit(1, 0, 0), version="v0")
    enroll_vector(store, "bob", unit(0, 1, 0))
    result = identify(store, verifier, Embedding(unit(1, 0, 0)))
    assert result.candidates == ()  # bob (score 0) is the only one scored, and far below the retry band
    assert result.identity is None and result.skipped == ("old model",)
    assert "bob" not in result.reason


def test_empty_gallery_is_an_error(store, verifier):
    enroll_vector(store, "voice only", unit(1, 0, 0), modality="voice")
    with pytest.raises(UnknownIdentityError, match="nobody is enrolled for face"):
        identify(store, verifier, Embedding(unit(1, 0, 0)))


def test_negative_margin_is_refused(store, verifier):
    enroll_vector(store, "alice", unit(1, 0, 0))
    with pytest.raises(ConfigError, match="margin must be >= 0"):
        identify(store, verifier, Embedding(unit(1, 0, 0)), margin=-0.1)


def test_real_faces_are_identified(store, face_pipeline, face_embeddings):
    """One shipped photo per person enrolled; every other photo names its owner."""
    verifier = shipped_verifier(face_pipeline, "medium")
    people = ["Andy_Roddick", "Angela_Bassett", "Antonio_Banderas"]
    for index, person in enumerate(people):
        vector = face_embeddings[3 * index].vector
        store.add_sample(person, "face", vector, face_pipeline.model_id, face_pipeline.model_version)
    for index, embedding in enumerate(face_embeddings):
        if index % 3:
            assert identify(store, verifier, embedding).identity == people[index // 3]


def test_a_voice_over_a_phone_line_is_identified_against_the_telephone_band_copies(store, voice_pipeline, voice_files):
    """One clip per speaker enrolled with its copy; their other clips, through a telephone channel."""
    from enrollment.enroll import enroll
    from tests.enrollment.test_enroll import phone_line

    verifier = shipped_verifier(voice_pipeline, "medium")
    route = verifier.scorer.narrowband
    for path in voice_files[::3]:
        enroll(store, verifier, path.parent.name, path)
    for path in voice_files:
        if path.stem == "0":
            continue
        probe = voice_pipeline.embed(phone_line(path))
        found = identify(store, verifier, probe)
        assert found.identity == path.parent.name, (path, found.reason)
        assert found.decision.llr_threshold == route.thresholds.operating_point("medium").threshold
    wide = identify(store, verifier, voice_pipeline.embed(voice_files[1]))
    assert wide.identity == "103" and wide.decision.llr_threshold == verifier.operating_point.threshold
