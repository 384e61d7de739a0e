"""YuNet finds the shipped faces, with landmarks in MTCNN's order and in original-image pixels."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

import verify.face.yunet as yunet_module
from verify.config import FaceFrontEndConfig
from verify.errors import WeightsError
from verify.face.detect import FaceDetector, box_iou, choose_face
from verify.face.yunet import YuNetDetector
from verify.io import decode_image
from verify.weights import WeightsFile


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return YuNetDetector()


@pytest.fixture(scope="module")
def images(face_files) -> list[np.ndarray]:
    return [decode_image(path) for path in face_files]


def test_finds_every_shipped_face_with_landmarks_in_mtcnn_order(yunet, images, torch_threads) -> None:
    mtcnn = FaceDetector(torch.device("cpu"))
    for image, yunet_found, mtcnn_found in zip(images, yunet.detect(images), mtcnn.detect(images)):
        ours, theirs = choose_face(yunet_found, image.shape), choose_face(mtcnn_found, image.shape)
        assert ours.probability >= FaceFrontEndConfig().min_yunet_score
        assert box_iou(ours, theirs) > 0.7
        eye_distance = np.linalg.norm(theirs.landmarks[1] - theirs.landmarks[0])
        # same points in the same order: each within a fifth of the eye distance of MTCNN's
        assert np.linalg.norm(ours.landmarks - theirs.landmarks, axis=1).max() < 0.2 * eye_distance
        left_eye, right_eye, nose, left_mouth, right_mouth = ours.landmarks
        assert left_eye[0] < right_eye[0] and left_mouth[0] < right_mouth[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1])


def test_a_downscaled_detection_maps_back_to_original_pixels(yunet, images) -> None:
    image = images[0]
    large = cv2.resize(image, (1000, 1000), interpolation=cv2.INTER_LINEAR)  # 4x; detected at 320 px
    (small_face,) = yunet.detect([image])[0]
    large_face = choose_face(yunet.detect([large])[0], large.shape)
    np.testing.assert_allclose(large_face.box / 4, small_face.box, atol=4)
    np.testing.assert_allclose(large_face.landmarks / 4, small_face.landmarks, atol=4)


def test_a_blank_image_has_no_face(yunet) -> None:
    assert yunet.detect([np.full((480, 640, 3), 128, np.uint8)]) == [[]]


def test_a_stricter_score_drops_faces(images) -> None:
    strict = YuNetDetector(replace(FaceFrontEndConfig(), min_yunet_score=0.999))
    assert strict.detect([images[0]]) == [[]]


def test_the_detector_follows_the_image_size_between_calls(yunet, images) -> None:
    framed = cv2.copyMakeBorder(images[0], 0, 0, 30, 30, cv2.BORDER_REPLICATE)  # 310 x 250: not downscaled
    (in_frame,) = yunet.detect([framed])[0]
    (alone,) = yunet.detect([images[0]])[0]
    np.testing.assert_allclose(in_frame.landmarks - [30, 0], alone.landmarks, atol=2)


def test_a_corrupt_model_is_refused(monkeypatch) -> None:
    wrong = WeightsFile(yunet_module.YUNET_WEIGHTS.filename, "0" * 64, "cp ...")
    monkeypatch.setattr(yunet_module, "YUNET_WEIGHTS", wrong)
    with pytest.raises(WeightsError, match="face_detection_yunet_2023mar_int8bq.onnx.*sha256"):
        YuNetDetector()
