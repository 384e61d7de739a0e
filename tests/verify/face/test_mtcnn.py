"""The NumPy MTCNN cascade (faster resampling, the shipped IRs) agrees with facenet-pytorch's:
resampling, box arithmetic, suppression and the detections themselves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import imresample

from verify.device import Device
from verify.face.mtcnn import Cascade, IntegralSampler, detect_faces, pyramid_scales
from verify.face.mtcnn_torch import TorchSampler
from verify.io import decode_image

CPU = Device("cpu")


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (2, 61, 83, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(31, 42), (24, 24), (7, 5), (61, 83), (90, 120)])
def test_integral_resize_equals_area_interpolation(frames, size) -> None:
    expected = imresample(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), size)
    resized = IntegralSampler(frames).resize(size)
    assert resized.shape == expected.shape
    np.testing.assert_allclose(resized, expected.numpy(), rtol=0, atol=1e-4)


def test_integral_crops_equal_area_interpolation_of_slices(frames) -> None:
    inds, top, bottom, left, right = (np.array(v) for v in ([0, 1, 1], [0, 5, 30], [61, 20, 33], [0, 7, 80], [83, 40, 83]))
    crops = IntegralSampler(frames).crops(inds, top, bottom, left, right, 24)
    expected = TorchSampler(frames, torch.device("cpu")).crops(inds, top, bottom, left, right, 24)
    np.testing.assert_allclose(crops, expected.numpy(), rtol=0, atol=1e-4)


def test_pyramid_starts_where_the_smallest_face_fills_the_window() -> None:
    scales = pyramid_scales(480, 640, 24.0, 0.709)
    assert scales[0] == pytest.approx(0.5)
    assert min(480, 640) * scales[-1] >= 12 > min(480, 640) * scales[-1] * 0.709


@pytest.fixture(scope="module", params=["torch", "openvino"])
def cascade(request, torch_threads) -> Cascade:
    return Cascade.load(CPU, cpu_runtime=request.param)


@pytest.mark.parametrize("min_face_size", [20.0, 24.0])
def test_detections_match_facenet_pytorch(cascade, face_files, min_face_size) -> None:
    mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device="cpu")
    images = np.stack([decode_image(path) for path in face_files[:2]])
    boxes, probs, points = mtcnn.detect(images, landmarks=True)
    found = detect_faces(images, cascade, pyramid_scales(*images.shape[1:3], min_face_size, mtcnn.factor))
    for (ours_boxes, ours_points), their_boxes, their_probs, their_points in zip(found, boxes, probs, points):
        np.testing.assert_allclose(ours_boxes[:, :4], np.asarray(their_boxes, np.float32), atol=1e-3)
        np.testing.assert_allclose(ours_boxes[:, 4], np.asarray(their_probs, np.float32), atol=1e-5)
        np.testing.assert_allclose(ours_points, np.asarray(their_points, np.float32), atol=1e-3)


def test_cascade_keeps_facenet_pytorchs_thresholds_and_factor(cascade) -> None:
    mtcnn = MTCNN(device="cpu")
    assert cascade.thresholds == tuple(mtcnn.thresholds)
    assert cascade.factor == mtcnn.factor


def random_boxes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` float32 boxes (x1, y1, x2, y2) in a 200 px frame, their scores and image indices 0..2."""
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 160, (count, 2)).astype(np.float32)
    sides = rng.uniform(4, 40, (count, 2)).astype(np.float32)
    scores = rng.uniform(0, 1, count).astype(np.float32)
    return np.hstack([corners, corners + sides]), scores, rng.integers(0, 3, count)


@pytest.mark.parametrize("count", [0, 1, 60, 1500])  # 1500 boxes: torchvision's class-by-class branch
def test_batched_nms_equals_torchvisions(count) -> None:
    from torchvision.ops.boxes import batched_nms as torchvision_batched_nms

    from verify.face.mtcnn import batched_nms

    boxes, scores, inds = random_boxes(count, count)
    expected = torchvision_batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(inds), 0.5)
    np.testing.assert_array_equal(batched_nms(boxes, scores, inds, 0.5), expected.numpy())


def test_box_arithmetic_and_min_suppression_equal_facenet_pytorchs() -> None:
    from facenet_pytorch.models.utils.detect_face import batched_nms_numpy, bbreg, generateBoundingBox, rerec

    from verify.face.mtcnn import generate_bounding_boxes, nms_min, regress_boxes, square_boxes

    rng = np.random.default_rng(3)
    reg = rng.normal(0, 0.1, (2, 4, 9, 11)).astype(np.float32)
    probs = rng.uniform(0, 1, (2, 9, 11)).astype(np.float32)
    ours, our_inds = generate_bounding_boxes(reg, probs, 0.3, 0.6)
    theirs, their_inds = generateBoundingBox(torch.from_numpy(reg), torch.from_numpy(probs), 0.3, 0.6)
    np.testing.assert_array_equal(ours, theirs.numpy())
    np.testing.assert_array_equal(our_inds, their_inds.numpy())

    boxes, scores, inds = random_boxes(50, 4)
    scored = np.hstack([boxes, scores[:, None]])
    offsets = rng.normal(0, 0.1, (50, 4)).astype(np.float32)
    np.testing.assert_array_equal(square_boxes(scored), rerec(torch.from_numpy(scored)).numpy())
    np.testing.assert_array_equal(regress_boxes(scored, offsets), bbreg(torch.from_numpy(scored), torch.from_numpy(offsets)).numpy())
    expected = batched_nms_numpy(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(inds), 0.7, "Min")
    np.testing.assert_array_equal(nms_min(boxes, scores, inds, 0.7), np.asarray(expected))
