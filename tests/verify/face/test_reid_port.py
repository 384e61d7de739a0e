"""The PyTorch port of face-reidentification-retail-0095 against the original OpenVINO IR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from verify.face.reid import FACE_REID_INPUT_SIZE, FACE_REID_WEIGHTS, REID_LANDMARK_TEMPLATE
from verify.face.reid_net import FaceReidNet
from verify.weights import load_into

SHARED_DIR = Path(__file__).resolve().parents[3].parent / "shared"
IR_XML = SHARED_DIR / "weights" / "face-reidentification-retail-0095" / "face-reidentification-retail-0095.xml"
FACES_DIR = SHARED_DIR / "data" / "faces"
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def port() -> FaceReidNet:
    """The port with the shipped weights, in eval mode."""
    return load_into(FaceReidNet(), FACE_REID_WEIGHTS)


@pytest.fixture(scope="module")
def run_ir():
    """A function running the original IR on ``(N, 3, 128, 128)`` float32 input in fp32."""
    openvino = pytest.importorskip("openvino")
    if not IR_XML.is_file():
        pytest.skip(f"source IR not found at {IR_XML}")
    core = openvino.Core()
    model = core.read_model(str(IR_XML))
    model.reshape([-1, 3, FACE_REID_INPUT_SIZE, FACE_REID_INPUT_SIZE])
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def run(batch: np.ndarray) -> np.ndarray:
        return compiled(batch)[0].reshape(len(batch), -1)

    return run


def _grey_crop(path: Path, crop_fraction: float) -> np.ndarray:
    """Centre square crop (``crop_fraction`` of the short side), resized to 128, as ``(3, 128, 128)``."""
    image = Image.open(path).convert("L")
    side = round(min(image.size) * crop_fraction)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    image = image.resize((FACE_REID_INPUT_SIZE, FACE_REID_INPUT_SIZE), Image.Resampling.BILINEAR)
    return np.repeat(np.asarray(image, dtype=np.float32)[None], 3, axis=0)


def _real_faces() -> np.ndarray:
    """16 greyscale face crops, ``(16, 3, 128, 128)`` BGR 0..255: LFW (tight crop) and ORL."""
    lfw = sorted((FACES_DIR / "lfw_gray").glob("*/*.jpg"))[::97][:10]
    orl = sorted((FACES_DIR / "orl_att").glob("*/*.png"))[::53][:6]
    if len(lfw) < 10 or len(orl) < 6:
        pytest.skip(f"face images not found under {FACES_DIR}")
    crops = [_grey_crop(path, 0.56) for path in lfw] + [_grey_crop(path, 1.0) for path in orl]
    return np.stack(crops)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(N, D)`` arrays."""
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _embed(port: FaceReidNet, batch: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return port(torch.from_numpy(batch)).numpy()


def test_port_matches_ir_on_real_faces(port: FaceReidNet, run_ir) -> None:
    faces = _real_faces()
    cosine = _cosine(_embed(port, faces), run_ir(faces))
    assert cosine.min() > MIN_COSINE, cosine


def test_port_matches_ir_on_noise(port: FaceReidNet, run_ir) -> None:
    noise = np.random.default_rng(0).uniform(0.0, 255.0, size=(4, 3, 128, 128)).astype(np.float32)
    cosine = _cosine(_embed(port, noise), run_ir(noise))
    assert cosine.min() > MIN_COSINE, cosine


def test_shipped_weights_load_strictly_and_embed_to_256(port: FaceReidNet) -> None:
    batch = torch.rand(3, 3, FACE_REID_INPUT_SIZE, FACE_REID_INPUT_SIZE) * 255.0
    with torch.inference_mode():
        embeddings = port(batch)
    assert embeddings.shape == (3, 256)
    assert embeddings.dtype == torch.float32
    assert torch.isfinite(embeddings).all()
    assert not torch.equal(port.input_scale, torch.ones_like(port.input_scale))  # loaded, not default


def test_rejects_wrong_input_shape(port: FaceReidNet) -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, 128, 128\), got \(2, 3, 112, 112\)"):
        port(torch.zeros(2, 3, 112, 112))


def test_landmark_template_is_five_points_in_unit_square() -> None:
    assert REID_LANDMARK_TEMPLATE.shape == (5, 2)
    assert ((REID_LANDMARK_TEMPLATE > 0) & (REID_LANDMARK_TEMPLATE < 1)).all()
