"""Coarse-to-fine detection finds the face a full pyramid would choose, and only pays for the
full pyramid when a smaller face could still matter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import verify.face.detect as detect_module
from verify.face.detect import Detection, box_iou, choose_face, exact_region, face_weight, match_face, merge_detections
from verify.face.mtcnn import detect_faces, pyramid_scales, refine_faces
from verify.io import decode_image


@pytest.fixture()
def pyramids(monkeypatch) -> list[float]:
    """The smallest face (px of the detection image) of every pyramid the detector runs."""
    smallest: list[float] = []

    def recording(images, cascade, scales):
        smallest.append(12 / scales[0])
        return detect_faces(images, cascade, scales)

    monkeypatch.setattr(detect_module, "detect_faces", recording)
    return smallest


def is_coarse(smallest_face: float, shorter_side: int) -> bool:
    """Whether a pyramid's smallest face is the first level of the whole pyramid above an eighth of the side."""
    return shorter_side / 8 <= smallest_face < shorter_side / 8 / 0.709


def frame_with_face(face: np.ndarray, side: int, shape=(480, 640), at=None) -> np.ndarray:
    frame = np.full((*shape, 3), 110, np.uint8)
    top, left = at or ((shape[0] - side) // 2, (shape[1] - side) // 2)
    frame[top : top + side, left : left + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return frame


@pytest.fixture(scope="module")
def face(face_files) -> np.ndarray:
    return decode_image(face_files[0])


def test_a_large_face_is_settled_by_the_coarse_pass(face_pipeline, face, pyramids) -> None:
    frame = frame_with_face(face, 300)
    [found] = face_pipeline.detectors["mtcnn"].detect([frame])
    assert len(pyramids) == 1 and is_coarse(pyramids[0], 480)  # no full pyramid
    full = detect_faces(frame[None], face_pipeline.detectors["mtcnn"].cascade, pyramid_scales(480, 640, 20.0, 0.709))[0]
    best_full = max(full[0], key=lambda box: (box[2] - box[0]) * (box[3] - box[1]))
    np.testing.assert_allclose(choose_face(found, frame.shape).box, best_full[:4], atol=6.0)


def test_a_small_face_needs_the_full_pyramid(face_pipeline, face, pyramids) -> None:
    frame = frame_with_face(face, 90)  # the face inside is about 40 px: below the coarse pass
    [found] = face_pipeline.detectors["mtcnn"].detect([frame])
    assert len(pyramids) == 2 and is_coarse(pyramids[0], 480) and pyramids[1] == pytest.approx(20.0)
    assert len(found) == 1 and 30 < found[0].short_side < 60


def test_a_mid_sized_face_is_not_settled_if_a_smaller_one_could_outweigh_it(face_pipeline, face, pyramids) -> None:
    # a 100 px face in a corner weighs less than a central face of twice the coarse size could
    frame = frame_with_face(face, 170, at=(0, 0))
    [found] = face_pipeline.detectors["mtcnn"].detect([frame])
    assert len(pyramids) == 2
    assert found and face_weight(choose_face(found, frame.shape), frame.shape) < (1.5 * pyramids[0]) ** 2


def test_images_of_a_batch_are_settled_one_by_one(face_pipeline, face, pyramids) -> None:
    frames = [frame_with_face(face, 300), frame_with_face(face, 90), frame_with_face(face, 300, at=(100, 50))]
    found = face_pipeline.detectors["mtcnn"].detect(frames)
    assert [len(faces) for faces in found] == [1, 1, 1]
    assert len(pyramids) == 2  # one coarse call for all three, one full call for the small face only


def test_face_weight_halves_a_corner_face() -> None:
    centre = Detection(np.array([270, 190, 370, 290], np.float32), np.zeros((5, 2), np.float32), 0.99)
    corner = Detection(np.array([-50, -50, 50, 50], np.float32), np.zeros((5, 2), np.float32), 0.99)
    assert face_weight(centre, (480, 640)) == pytest.approx(100 * 100)
    assert face_weight(corner, (480, 640)) == pytest.approx(100 * 100 / 2)


def box(x1: float, y1: float, x2: float, y2: float, probability: float = 0.99) -> Detection:
    return Detection(np.array([x1, y1, x2, y2], np.float32), np.zeros((5, 2), np.float32), probability)


def test_merging_keeps_a_face_found_by_both_passes_once_with_its_more_confident_box() -> None:
    coarse_face, fine_face = box(100, 100, 200, 220, 0.95), box(104, 98, 198, 215, 0.99)
    other = box(400, 50, 440, 100, 0.97)
    merged = merge_detections([coarse_face], [fine_face, other])
    assert merged == [fine_face, other]


def test_merging_keeps_a_small_face_inside_a_large_box_only_if_it_is_not_covered() -> None:
    large = box(0, 0, 300, 300, 0.99)
    inside = box(100, 100, 140, 140, 0.98)  # fully covered: the same region, an inner false box
    beside = box(280, 280, 340, 340, 0.98)  # a ninth covered: another face
    assert merge_detections([large], [inside, beside]) == [large, beside]


def test_box_iou_by_hand() -> None:
    assert box_iou(box(0, 0, 10, 10), box(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou(box(0, 0, 10, 10), box(0, 0, 10, 10)) == 1.0
    assert box_iou(box(0, 0, 10, 10), box(10, 0, 20, 10)) == 0.0


def test_match_face_takes_the_most_overlapping_box_above_the_threshold() -> None:
    face = box(0, 0, 10, 10)
    near, nearer, far = box(4, 0, 14, 10), box(1, 0, 11, 10), box(50, 50, 60, 60)
    assert match_face(face, [near, far, nearer], 0.5) is nearer
    assert match_face(face, [near, far], 0.5) is None  # IoU 6/14
    assert match_face(face, [], 0.5) is None


def test_refining_a_face_in_a_large_photo_works_on_the_downscaled_copy(face_pipeline, face) -> None:
    mtcnn = face_pipeline.detectors["mtcnn"]
    (searched,) = mtcnn.detect([face])
    large = cv2.resize(face, (1500, 1500), interpolation=cv2.INTER_LINEAR)  # detected at 640 px
    seed = Detection(searched[0].box * 6, searched[0].landmarks * 6, 0.99)
    (refined,) = mtcnn.refine(large, [seed])
    np.testing.assert_allclose(refined.landmarks / 6, searched[0].landmarks, atol=3)
    assert mtcnn.refine(large, []) == []


def test_an_exact_region_downscales_to_the_whole_images_pixels_there() -> None:
    rng, checked = np.random.default_rng(0), 0
    for _ in range(150):
        width, height = int(rng.integers(641, 2200)), int(rng.integers(200, 2200))
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        factor = 640 / max(width, height)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        side = rng.uniform(10, max(11.0, 0.8 * min(size)))
        x, y = rng.uniform(0, size[0] - side / 2), rng.uniform(0, size[1] - side / 2)
        region = exact_region((height, width), (size[1], size[0]), np.array([[x, y, x + side, y + side]]), 0.2)
        if region is None:  # no exact part much smaller than the whole: the whole image is taken
            continue
        (rows, columns), (source_rows, source_columns) = region
        part = cv2.resize(image[source_rows, source_columns], (columns.stop - columns.start, rows.stop - rows.start),
                          interpolation=cv2.INTER_AREA)
        whole = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        assert np.array_equal(part, whole[rows, columns]), (width, height, region)
        checked += 1
    assert checked >= 40


@pytest.mark.parametrize("margin", [detect_module.REGION_MARGIN, -0.3], ids=["shipped margin", "too tight: falls back"])
@pytest.mark.parametrize("size", [(800, 800), (1000, 750), (1280, 720), (1023, 767), (3000, 2000), (500, 400)])
def test_refining_in_a_part_of_the_photo_finds_what_the_whole_photo_gives(face_pipeline, face, size, margin,
                                                                         monkeypatch) -> None:
    monkeypatch.setattr(detect_module, "REGION_MARGIN", margin)
    mtcnn = face_pipeline.detectors["mtcnn"]
    photo = cv2.resize(face, size, interpolation=cv2.INTER_CUBIC)
    scaled, factor = mtcnn._downscale(photo)
    (found,) = mtcnn.detect([photo])
    seeds = [Detection(found[0].box + np.float32([3, -2, 4, 1]), found[0].landmarks, 0.9)]  # another detector's box
    expected = mtcnn._detections(*refine_faces(scaled, np.stack([s.box for s in seeds]) * factor, mtcnn.cascade), factor)
    refined = mtcnn.refine(photo, seeds)
    assert len(refined) == len(expected) == 1
    assert np.array_equal(refined[0].box, expected[0].box) and np.array_equal(refined[0].landmarks, expected[0].landmarks)
