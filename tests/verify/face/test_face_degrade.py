"""Webcam-like degradations: seeded and deterministic, each doing what it says."""

from __future__ import annotations

import numpy as np
import pytest

from verify.face import degrade
from verify.face.quality import brightness, contrast, sharpness
from verify.io import decode_image

DEGRADATIONS = [
    degrade.downscale, degrade.gaussian_blur, degrade.motion_blur, degrade.exposure, degrade.contrast,
    degrade.sensor_noise, degrade.jpeg, degrade.mirror, degrade.webcam_like, degrade.tilt, degrade.cover,
    degrade.side_light,
]  # fmt: skip


@pytest.fixture(scope="module")
def face(face_files) -> np.ndarray:
    return decode_image(face_files[3])


@pytest.mark.parametrize("function", DEGRADATIONS, ids=lambda function: function.__name__)
def test_the_same_seed_gives_the_same_image(function, face) -> None:
    original = face.copy()
    first = function(face, np.random.default_rng(7))
    again = function(face, np.random.default_rng(7))
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(face, original)  # the input is left alone


def test_webcam_like_differs_between_seeds_and_keys(face) -> None:
    images = [degrade.webcam_like(face, degrade.seeded_rng(0, f"file{i}.jpg")) for i in range(6)]
    distinct = {image.tobytes() for image in images}
    assert len(distinct) == 6


def test_seeded_rng_depends_only_on_seed_and_key() -> None:
    draw = lambda seed, key: degrade.seeded_rng(seed, key).random(3)  # noqa: E731
    np.testing.assert_array_equal(draw(1, "a/b.jpg"), draw(1, "a/b.jpg"))
    assert not np.array_equal(draw(1, "a/b.jpg"), draw(2, "a/b.jpg"))
    assert not np.array_equal(draw(1, "a/b.jpg"), draw(1, "a/c.jpg"))


def test_downscale_keeps_or_shrinks_the_size_as_asked(face) -> None:
    rng = np.random.default_rng(0)
    small = degrade.downscale(face, rng, factor=(0.5, 0.5), restore=False)
    assert small.shape == (125, 125, 3)
    restored = degrade.downscale(face, rng, factor=(0.4, 0.7), restore=True)
    assert restored.shape == face.shape and sharpness(restored) < sharpness(face)


def test_upscale_enlarges_by_a_drawn_factor(face) -> None:
    sides = {degrade.upscale(face, np.random.default_rng(seed)).shape[0] for seed in range(5)}
    assert all(500 <= side <= 1000 for side in sides) and len(sides) > 1  # 250 px, 2-4x
    assert degrade.upscale(face, np.random.default_rng(0), factor=(3.0, 3.0)).shape == (750, 750, 3)


@pytest.mark.parametrize("blur", [degrade.gaussian_blur, degrade.motion_blur], ids=lambda f: f.__name__)
def test_blurs_lower_the_sharpness(blur, face) -> None:
    assert sharpness(blur(face, np.random.default_rng(1))) < 0.7 * sharpness(face)


def test_exposure_and_contrast_change_what_they_say(face) -> None:
    darker = degrade.exposure(face, np.random.default_rng(0), gain=(0.5, 0.5), gamma=(1.0, 1.0))
    assert brightness(darker) == pytest.approx(brightness(face) / 2, abs=1.5)
    flatter = degrade.contrast(face, np.random.default_rng(0), factor=(0.5, 0.5))
    assert contrast(flatter) == pytest.approx(contrast(face) / 2, rel=0.05)


def test_sensor_noise_has_the_drawn_spread() -> None:
    flat = np.full((200, 200, 3), 128, np.uint8)
    noisy = degrade.sensor_noise(flat, np.random.default_rng(0), sigma=(6.0, 6.0))
    assert noisy.astype(float).std() == pytest.approx(6.0, rel=0.05)


def test_jpeg_loses_detail_and_mirror_flips(face) -> None:
    compressed = degrade.jpeg(face, np.random.default_rng(0), quality=(20, 20))
    assert compressed.shape == face.shape and 0 < np.abs(compressed.astype(int) - face).mean() < 10
    np.testing.assert_array_equal(degrade.mirror(face, np.random.default_rng(0))[:, ::-1], face)


def test_tilt_rotates_by_the_drawn_angle_about_the_centre() -> None:
    bar = np.zeros((101, 101, 3), np.uint8)
    bar[48:53, 10:91] = 255  # a horizontal bar through the centre
    tilted = degrade.tilt(bar, np.random.default_rng(0), degrees=(20.0, 20.0))
    rows, columns = np.nonzero(tilted[:, :, 0] > 127)
    slope = np.polyfit(columns, rows, 1)[0]
    assert abs(np.degrees(np.arctan(abs(slope)))) == pytest.approx(20.0, abs=1.0)
    assert tilted[50, 50, 0] == 255 and tilted.shape == bar.shape


def test_cover_hides_one_block_near_the_centre_and_side_light_darkens_one_side(face) -> None:
    covered = degrade.cover(face, np.random.default_rng(3))
    changed = np.any(covered != face, axis=2)
    rows, columns = np.nonzero(changed)
    block = covered[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    assert np.all(block == block[0, 0])  # one grey level
    height, width = face.shape[:2]
    assert 0.15 * height * 0.25 * width * 0.9 <= block.shape[0] * block.shape[1] <= 0.3 * height * 0.45 * width * 1.1
    assert abs((rows.min() + rows.max()) / 2 - height / 2) <= 0.2 * height + 1
    lit = degrade.side_light(face, np.random.default_rng(0), darkest=(0.3, 0.3))
    left, right = lit[:, :10].mean() / face[:, :10].mean(), lit[:, -10:].mean() / face[:, -10:].mean()
    assert sorted([left, right]) == [pytest.approx(0.31, abs=0.03), pytest.approx(1.0, abs=0.03)]
