"""Face alignment: the similarity transform and the warp onto the landmark template."""

from __future__ import annotations

import numpy as np
import pytest

from verify.face.align import align_face, similarity_transform
from verify.face.reid import FACE_REID_INPUT_SIZE, REID_LANDMARK_TEMPLATE

TEMPLATE = np.asarray(REID_LANDMARK_TEMPLATE, dtype=np.float64)
LANDMARK_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    """The ``(2, 3)`` matrix of ``x -> scale * R(degrees) x + shift``."""
    angle = np.radians(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([scale * rotation, np.array(shift)[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``(K, 2)`` points through a ``(2, 3)`` affine matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


# --- similarity_transform -----------------------------------------------------------------------
def test_hand_computed_quarter_turn_double_scale_and_shift():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    # x -> 2 R(90) x + (1, 1): (x, y) -> (1 - 2y, 1 + 2x)
    target = np.array([[1.0, 1.0], [1.0, 3.0], [-1.0, 3.0], [-1.0, 1.0]])

    matrix = similarity_transform(square, target)

    np.testing.assert_allclose(matrix, [[0.0, -2.0, 1.0], [2.0, 0.0, 1.0]], atol=1e-12)


@pytest.mark.parametrize(
    ("scale", "degrees", "shift"),
    [
        (1.0, 0.0, (0.0, 0.0)),
        (0.8, -40.0, (3.0, -7.0)),
        (2.5, 170.0, (-120.5, 64.25)),
        (0.01, 89.0, (0.5, 0.5)),
    ],
)
def test_recovers_a_known_rotation_scale_and_shift_exactly(scale, degrees, shift):
    source = np.random.default_rng(0).uniform(-50, 150, size=(5, 2))
    expected = similarity(scale, degrees, shift)

    matrix = similarity_transform(source, apply(expected, source))

    np.testing.assert_allclose(matrix, expected, atol=1e-9)


def test_accepts_lists_and_float32_points():
    source = np.float32([[0, 0], [10, 0], [0, 10]])
    target = apply(similarity(3.0, 30.0, (1.0, 2.0)), source.astype(np.float64))

    matrix = similarity_transform(source.tolist(), target.astype(np.float32))

    assert matrix.shape == (2, 3) and matrix.dtype == np.float64
    np.testing.assert_allclose(matrix, similarity(3.0, 30.0, (1.0, 2.0)), atol=1e-4)


def test_mirrored_target_gives_a_proper_rotation_not_a_reflection():
    source = np.random.default_rng(1).normal(size=(5, 2))
    mirrored = source * [-1.0, 1.0]

    matrix = similarity_transform(source, mirrored)

    linear = matrix[:, :2]
    assert np.linalg.det(linear) > 0
    np.testing.assert_allclose(linear @ linear.T, np.eye(2) * np.linalg.det(linear), atol=1e-12)


def test_noisy_points_give_the_least_squares_fit():
    rng = np.random.default_rng(2)
    source = rng.uniform(0, 100, size=(5, 2))
    target = apply(similarity(1.3, 15.0, (5.0, -3.0)), source) + rng.normal(0, 2.0, size=(5, 2))

    matrix = similarity_transform(source, target)

    def residual(candidate: np.ndarray) -> float:
        return float(np.sum((apply(candidate, source) - target) ** 2))

    # the centroid maps onto the centroid, and no nearby similarity fits better
    np.testing.assert_allclose(apply(matrix, source.mean(axis=0, keepdims=True))[0], target.mean(axis=0))
    best = residual(matrix)
    scale = np.sqrt(np.linalg.det(matrix[:, :2]))
    degrees = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
    for d_scale, d_degrees, d_x, d_y in rng.normal(0, [0.01, 0.5, 0.5, 0.5], size=(50, 4)):
        nearby = similarity(scale + d_scale, degrees + d_degrees, (matrix[0, 2] + d_x, matrix[1, 2] + d_y))
        assert residual(nearby) >= best - 1e-9


# --- align_face ---------------------------------------------------------------------------------
@pytest.fixture
def marked_face() -> tuple[np.ndarray, np.ndarray]:
    """A 400 x 360 grey image with a coloured 9 x 9 square on each of five landmarks ``(5, 2)``.

    The landmarks are the template (in 128-px crop units) scaled by 1.7, turned by 25 degrees and
    shifted, so a perfect alignment exists.
    """
    landmarks = apply(similarity(1.7, 25.0, (150.0, 60.0)), TEMPLATE * FACE_REID_INPUT_SIZE)
    image = np.full((360, 400, 3), 128, np.uint8)
    for (x, y), colour in zip(np.round(landmarks).astype(int), LANDMARK_COLOURS):
        image[y - 4 : y + 5, x - 4 : x + 5] = colour
    return image, landmarks


def test_align_face_transform_maps_landmarks_onto_the_template(marked_face):
    _, landmarks = marked_face
    template_px = TEMPLATE * FACE_REID_INPUT_SIZE

    matrix = similarity_transform(landmarks, template_px)

    np.testing.assert_allclose(apply(matrix, landmarks), template_px, atol=1e-9)


def test_align_face_puts_each_landmark_at_its_template_position(marked_face):
    image, landmarks = marked_face

    crop = align_face(image, landmarks, REID_LANDMARK_TEMPLATE, FACE_REID_INPUT_SIZE)

    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    for (x, y), colour in zip(np.round(TEMPLATE * FACE_REID_INPUT_SIZE).astype(int), LANDMARK_COLOURS):
        np.testing.assert_array_equal(crop[y, x], colour)
    # away from the landmarks the crop shows the grey background
    np.testing.assert_array_equal(crop[5, 5], (128, 128, 128))


def test_align_face_with_a_numpy_template_and_another_size(marked_face):
    image, landmarks = marked_face
    size = 64

    crop = align_face(image, landmarks, TEMPLATE, size)

    assert crop.shape == (size, size, 3)
    for (x, y), colour in zip(np.round(TEMPLATE * size).astype(int), LANDMARK_COLOURS):
        np.testing.assert_array_equal(crop[y, x], colour)


def test_already_aligned_face_is_copied_unchanged():
    pixels = np.random.default_rng(3).integers(0, 256, (128, 128, 3), dtype=np.uint8)

    crop = align_face(pixels, TEMPLATE * 128, TEMPLATE, 128)

    np.testing.assert_array_equal(crop, pixels)


def test_crop_reaching_outside_the_image_replicates_the_border():
    # landmarks near the top-left corner: most of the crop lies outside the image
    image = np.zeros((100, 100, 3), np.uint8)
    image[:, 0] = (10, 20, 30)  # left column
    image[0, :] = (10, 20, 30)  # top row
    landmarks = TEMPLATE * 128 * 0.3 - 10

    crop = align_face(image, landmarks, TEMPLATE, 128)

    np.testing.assert_array_equal(crop[0, 0], (10, 20, 30))
    assert not np.any(np.all(crop[:8, :8] == 0, axis=-1))  # no black fill
