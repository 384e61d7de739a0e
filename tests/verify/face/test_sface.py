"""SFace in OpenVINO reproduces OpenCV's DNN module on the same ONNX file, on real aligned crops."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import verify.face.sface as sface_module
from verify.errors import WeightsError
from verify.face.align import align_face
from verify.face.sface import (
    SFACE_EMBEDDING_DIM,
    SFACE_INPUT_NAME,
    SFACE_INPUT_SIZE,
    SFACE_LANDMARK_TEMPLATE,
    SFaceNetwork,
    dequantized,
)
from verify.face.yunet import YuNetDetector
from verify.io import decode_image
from verify.scoring import l2_normalize
from verify.weights import WeightsFile, locate


@pytest.fixture(scope="module")
def sface() -> SFaceNetwork:
    return SFaceNetwork(cpu_threads=1)


@pytest.fixture(scope="module")
def crops(face_files) -> np.ndarray:
    """The nine shipped faces aligned on the ArcFace template by YuNet's landmarks: (9, 112, 112, 3)."""
    detector = YuNetDetector()
    images = [decode_image(path) for path in face_files]
    return np.stack([align_face(image, found[0].landmarks, SFACE_LANDMARK_TEMPLATE, SFACE_INPUT_SIZE)
                     for image, found in zip(images, detector.detect(images))])  # fmt: skip


def opencv_embeddings(crops: np.ndarray) -> np.ndarray:
    """The reference: OpenCV's DNN module on the shipped file, one BGR crop at a time."""
    net = cv2.dnn.readNetFromONNX(str(locate(sface_module.SFACE_WEIGHTS)))
    vectors = []
    for crop in crops:
        net.setInput(np.ascontiguousarray(crop[None, ..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32), SFACE_INPUT_NAME)
        vectors.append(net.forward().reshape(-1))
    return np.stack(vectors)


def test_matches_opencv_dnn_on_real_aligned_crops(sface, crops) -> None:
    ours = sface(crops)
    assert ours.shape == (9, SFACE_EMBEDDING_DIM) and ours.dtype == np.float32
    cosines = np.sum(l2_normalize(ours) * l2_normalize(opencv_embeddings(crops)), axis=1)
    assert cosines.min() > 0.999, cosines


def test_a_batch_equals_one_crop_at_a_time(sface, crops) -> None:
    singles = np.concatenate([sface(crop[None]) for crop in crops])
    np.testing.assert_allclose(sface(crops), singles, rtol=1e-4, atol=1e-4 * np.abs(singles).max())


def test_separates_the_shipped_people(sface, crops) -> None:
    vectors = l2_normalize(sface(crops))
    scores = vectors @ vectors.T
    person = np.repeat(np.arange(3), 3)
    same, other = person[:, None] == person[None, :], person[:, None] != person[None, :]
    assert scores[same & ~np.eye(9, dtype=bool)].min() > scores[other].max()


def test_the_template_is_arcface_in_units_of_the_crop() -> None:
    assert SFACE_LANDMARK_TEMPLATE.shape == (5, 2)
    np.testing.assert_allclose(SFACE_LANDMARK_TEMPLATE[0] * 112, (38.2946, 51.6963))


def test_a_corrupt_model_is_refused(monkeypatch) -> None:
    wrong = WeightsFile(sface_module.SFACE_WEIGHTS.filename, "f" * 64, "cp ...")
    monkeypatch.setattr(sface_module, "SFACE_WEIGHTS", wrong)
    with pytest.raises(WeightsError, match="face_recognition_sface_2021dec_int8bq.onnx.*sha256"):
        SFaceNetwork()


def test_the_conversion_is_kept_and_the_kept_one_computes_the_same(fresh_core, monkeypatch, crops) -> None:
    first = SFaceNetwork(cpu_threads=1)
    graph = sface_module.converted_graph(locate(sface_module.SFACE_WEIGHTS))
    assert graph.is_file() and graph.is_relative_to(fresh_core)
    assert not list(graph.parent.parent.glob(".writing-*"))  # nothing left half-way

    def unread(path):
        raise AssertionError("the ONNX was read again")

    monkeypatch.setattr(sface_module, "read_converted", unread)  # a later process: the kept IR only
    again = SFaceNetwork(cpu_threads=1)
    np.testing.assert_array_equal(again(crops), first(crops))


def test_a_cache_that_cannot_be_written_converts_in_memory(monkeypatch, tmp_path, sface, crops) -> None:
    from verify.runtime import openvino_core

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("VERIFY_CACHE", str(blocker / "cache"))
    openvino_core.cache_clear()
    try:
        np.testing.assert_array_equal(SFaceNetwork(cpu_threads=1)(crops), sface(crops))
    finally:
        openvino_core.cache_clear()


def test_a_damaged_kept_conversion_is_converted_again(fresh_core, crops, sface) -> None:
    SFaceNetwork(cpu_threads=1)
    graph = sface_module.converted_graph(locate(sface_module.SFACE_WEIGHTS))
    graph.write_text("<net>cut short")

    np.testing.assert_array_equal(SFaceNetwork(cpu_threads=1)(crops), sface(crops))


def onnx_dequantize(quantized, scale, zero_point, axis, block_size) -> np.ndarray:
    """ONNX's DequantizeLinear written out: each parameter repeated to the weights' shape."""
    def spread(parameter: np.ndarray) -> np.ndarray:
        if parameter.ndim == 0:
            return parameter
        if block_size:
            return np.take(np.repeat(parameter, block_size, axis=axis), np.arange(quantized.shape[axis]), axis=axis)
        shape = [1] * quantized.ndim
        shape[axis] = -1
        return parameter.reshape(shape)

    return ((quantized.astype(np.float32) - spread(zero_point)) * spread(scale)).astype(np.float32)


@pytest.mark.parametrize("shape, axis, block_size", [
    ((128, 64), 1, 64), ((10, 7), 1, 3), ((6, 5, 4), 0, 4), ((6, 5, 4), 2, 3), ((9,), 0, 2), ((6, 5), 0, 0), ((4, 3), 1, None)])
def test_dequantization_is_onnxs_bit_for_bit(shape, axis, block_size) -> None:
    rng = np.random.default_rng(0)
    quantized = rng.integers(-128, 128, shape).astype(np.int8)
    if block_size is None:  # per tensor
        parameter_shape, block_size = (), 0
    elif block_size:  # per block along axis, the last one possibly short
        parameter_shape = tuple(-(-size // block_size) if index == axis else size for index, size in enumerate(shape))
    else:  # per axis
        parameter_shape = (shape[axis],)
    scale = rng.uniform(0.001, 0.1, parameter_shape).astype(np.float32)
    zero_point = rng.integers(-8, 8, parameter_shape).astype(np.float32)
    found = dequantized(quantized, scale, zero_point, axis, block_size)
    expected = onnx_dequantize(quantized, scale, zero_point, axis, block_size)
    assert found.dtype == np.float32 and found.shape == shape
    assert np.array_equal(found, expected)
