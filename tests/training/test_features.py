"""Feature cache: round trip on a tiny dataset made of the shipped samples, failures skipped."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from training import features as features_module
from training.features import cache_path, load_features, load_raw_inputs
from verify.embedding import Embedding
from verify.errors import ConfigError, NoFaceError
from verify.models import model_spec


class FakeFacePipeline:
    """Embeds an image as a deterministic unit vector from its bytes; fails on files named 2.jpg."""

    def __init__(self):
        self.calls = 0

    def embed_many(self, sources):
        self.calls += 1
        results = []
        for source in sources:
            if source.name == "2.jpg":
                results.append(NoFaceError(f"{source}: no face found in the image"))
                continue
            seed = sum(source.read_bytes()[:4096]) % 1000
            vector = np.random.default_rng(seed).normal(size=8).astype(np.float32)
            crop = np.full((128, 128, 3), seed % 255, dtype=np.uint8)
            results.append(Embedding(vector / np.linalg.norm(vector), preview=crop))
        return results


@pytest.fixture()
def tiny_faces(tmp_path, face_files):
    """A data root with ``faces/lfw_gray/<person>/{0,1,2}.jpg`` copied from assets/samples."""
    for path in face_files:
        target = tmp_path / "data" / "faces" / "lfw_gray" / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return tmp_path / "data"


def test_cache_round_trip_skips_failures(tiny_faces, tmp_path, monkeypatch):
    fake = FakeFacePipeline()
    monkeypatch.setattr("verify.models.load_pipeline", lambda modality, device="auto": fake)
    cache = tmp_path / "cache"
    first = load_features("lfw_gray", tiny_faces, cache, device="cpu")
    assert cache_path("lfw_gray", cache).is_file()
    assert cache_path("lfw_gray", cache).name.startswith(f"{model_spec('face').model_id}-")
    assert first.vectors.shape == (6, 8) and first.vectors.dtype == np.float32
    assert all(path.startswith("faces/lfw_gray/") and not path.endswith("2.jpg") for path in first.paths)
    assert [path.split("/")[2] for path in first.paths] == list(first.identities)
    assert np.allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-6)
    again = load_features("lfw_gray", tiny_faces, cache, device="cpu")
    assert fake.calls == 1  # second load read the cache
    assert np.array_equal(first.vectors, again.vectors) and first.paths == again.paths
    raw = load_raw_inputs("lfw_gray", tiny_faces, cache)
    assert raw.inputs.shape == (6, 64, 64) and raw.paths == first.paths
    assert fake.calls == 1


def test_unknown_dataset_and_missing_folder_raise(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'"):
        load_features("cifar", tmp_path, tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_features("orl_att", tmp_path / "nowhere", tmp_path / "cache")


def test_voice_raw_input_is_log_mel():
    frames, length = features_module.log_mel(np.random.default_rng(0).normal(size=16000).astype(np.float32) * 0.1)
    assert frames.shape == (40, 400) and length == 101
    assert np.all(frames[:, length:] == 0)


@pytest.mark.data
def test_real_orl_features_cover_all_people(shared_data):
    orl = load_features("orl_att", shared_data)
    assert orl.vectors.shape == (400, 384)  # the fused face embedding
    assert len(set(orl.identities)) == 40
    assert np.allclose(np.linalg.norm(orl.vectors, axis=1), 1.0, atol=1e-4)
