"""App fixtures: a Service on a temporary store sharing the session's CPU pipelines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from enrollment.service import Service


@pytest.fixture
def service(tmp_path: Path, face_pipeline, voice_pipeline):
    shared = Service(tmp_path / "store" / "enrollments.db", device="cpu", caller="test",
                     pipelines={"face": face_pipeline, "voice": voice_pipeline})
    yield shared
    shared.close()


@pytest.fixture
def blank_photo(tmp_path: Path) -> Path:
    """A grey photo with no face in it."""
    path = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(path)
    return path


@pytest.fixture
def silent_clip(tmp_path: Path) -> Path:
    """Two seconds of digital silence, 16 kHz WAV."""
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(32_000, np.float32), 16_000)
    return path


@pytest.fixture
def corrupt_file(tmp_path: Path) -> Path:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return path
