"""Shared fixtures: the shipped samples and the shipped face/voice pipelines, loaded once on CPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = REPO_ROOT / "assets" / "samples"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def _sample_files(modality: str) -> list[Path]:
    """The shipped samples of a modality, sorted by person then file: 3 people x 3 files."""
    folder = SAMPLES_DIR / f"{modality}s"
    files = sorted(path for person in sorted(folder.iterdir()) if person.is_dir() for path in person.iterdir()
                   if path.suffix in (".jpg", ".flac"))
    assert len(files) == 9, f"expected 3 people x 3 samples under {folder}, found {len(files)} files"
    return files


@pytest.fixture(scope="session", autouse=True)
def network_cache(tmp_path_factory):
    """Compiled networks are cached in a directory of this session, not the user's ``~/.cache``.

    Set in the environment, so CLI and app processes the tests start share it.
    """
    import os

    before = os.environ.get("VERIFY_CACHE")
    os.environ["VERIFY_CACHE"] = str(tmp_path_factory.mktemp("verify-cache"))
    yield
    if before is None:
        del os.environ["VERIFY_CACHE"]
    else:
        os.environ["VERIFY_CACHE"] = before


@pytest.fixture
def fresh_core(monkeypatch, tmp_path):
    """A new process-wide OpenVINO core reading ``$VERIFY_CACHE`` from ``tmp_path / "cache"``; the session's after."""
    from verify.runtime import openvino_core

    monkeypatch.setenv("VERIFY_CACHE", str(tmp_path / "cache"))
    openvino_core.cache_clear()
    yield tmp_path / "cache"
    openvino_core.cache_clear()


@pytest.fixture(scope="session")
def torch_threads():
    """One intra-op thread for the session.

    The models are small; on a busy CPU (CI runners, a background job) OpenMP threads spinning
    against each other make a 128 px face crop take a second instead of ten milliseconds.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The identity-labelled data sets beside the checkout (``../shared/data``); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def face_files() -> list[Path]:
    """``assets/samples/faces/<person>/{0,1,2}.jpg``, sorted."""
    return _sample_files("face")


@pytest.fixture(scope="session")
def voice_files() -> list[Path]:
    """``assets/samples/voices/<speaker>/{0,1,2}.flac``, sorted."""
    return _sample_files("voice")


@pytest.fixture(scope="session")
def face_pipeline(torch_threads):
    from verify.face.pipeline import FacePipeline

    return FacePipeline(device="cpu")


@pytest.fixture(scope="session")
def voice_pipeline(torch_threads):
    from verify.voice.pipeline import VoicePipeline

    return VoicePipeline(device="cpu")


@pytest.fixture(scope="session")
def face_embeddings(face_pipeline, face_files) -> list:
    """``embed_many`` of the nine shipped face samples (every one must embed)."""
    results = face_pipeline.embed_many(face_files)
    failed = {str(path): result for path, result in zip(face_files, results) if isinstance(result, Exception)}
    assert not failed, failed
    return results


@pytest.fixture(scope="session")
def voice_embeddings(voice_pipeline, voice_files) -> list:
    """``embed_many`` of the nine shipped voice samples (every one must embed)."""
    results = voice_pipeline.embed_many(voice_files)
    failed = {str(path): result for path, result in zip(voice_files, results) if isinstance(result, Exception)}
    assert not failed, failed
    return results
