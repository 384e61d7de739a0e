"""The faster MTCNN resampling agrees with facenet-pytorch's, and so do the detections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import imresample

from verify.face.mtcnn import Cascade, IntegralSampler, TorchSampler, detect_faces, pyramid_scales
from verify.io import decode_image

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (2, 61, 83, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(31, 42), (24, 24), (7, 5), (61, 83), (90, 120)])
def test_integral_resize_equals_area_interpolation(frames, size) -> None:
    expected = imresample(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), size)
    resized = IntegralSampler(frames).resize(size)
    assert resized.shape == expected.shape
    assert resized.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(resized, expected, rtol=0, atol=1e-4)


def test_integral_crops_equal_area_interpolation_of_slices(frames) -> None:
    inds, top, bottom, left, right = (np.array(v) for v in ([0, 1, 1], [0, 5, 30], [61, 20, 33], [0, 7, 80], [83, 40, 83]))
    crops = IntegralSampler(frames).crops(inds, top, bottom, left, right, 24)
    expected = TorchSampler(torch.from_numpy(frames)).crops(inds, top, bottom, left, right, 24)
    torch.testing.assert_close(crops, expected, rtol=0, atol=1e-4)


def test_pyramid_starts_where_the_smallest_face_fills_the_window() -> None:
    scales = pyramid_scales(480, 640, 24.0, 0.709)
    assert scales[0] == pytest.approx(0.5)
    assert min(480, 640) * scales[-1] >= 12 > min(480, 640) * scales[-1] * 0.709


@pytest.fixture(scope="module", params=["torch", "openvino"])
def cascade(request, torch_threads) -> Cascade:
    return Cascade.load(CPU, cpu_runtime=request.param)


@pytest.mark.parametrize("min_face_size", [20.0, 24.0])
def test_detections_match_facenet_pytorch(cascade, face_files, min_face_size) -> None:
    mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device=CPU)
    images = np.stack([decode_image(path) for path in face_files[:2]])
    boxes, probs, points = mtcnn.detect(images, landmarks=True)
    found = detect_faces(images, cascade, pyramid_scales(*images.shape[1:3], min_face_size, mtcnn.factor))
    for (ours_boxes, ours_points), their_boxes, their_probs, their_points in zip(found, boxes, probs, points):
        np.testing.assert_allclose(ours_boxes[:, :4], np.asarray(their_boxes, np.float32), atol=1e-3)
        np.testing.assert_allclose(ours_boxes[:, 4], np.asarray(their_probs, np.float32), atol=1e-5)
        np.testing.assert_allclose(ours_points, np.asarray(their_points, np.float32), atol=1e-3)


def test_cascade_keeps_facenet_pytorchs_thresholds_and_factor(cascade) -> None:
    mtcnn = MTCNN(device=CPU)
    assert cascade.thresholds == tuple(mtcnn.thresholds)
    assert cascade.factor == mtcnn.factor
