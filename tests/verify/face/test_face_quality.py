"""Quality measures of aligned face crops: sharpness, brightness and the issues they raise."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from verify.config import FaceFrontEndConfig
from verify.face.quality import brightness, contrast, face_measures, face_quality_issues, sharpness, yaw_proxy
from verify.io import decode_image

CONFIG = FaceFrontEndConfig()
FACES = Path(__file__).resolve().parents[3] / "assets" / "samples" / "faces"


@pytest.fixture(scope="module")
def face_crop() -> np.ndarray:
    """The central 128 x 128 of a real (greyscale LFW) face photo, as RGB uint8."""
    return decode_image(FACES / "Andy_Roddick" / "0.jpg")[61:189, 61:189].copy()


# --- sharpness ----------------------------------------------------------------------------------
def test_sharpness_of_a_single_bright_pixel_hand_computed():
    # Laplacian kernel [[0,1,0],[1,-4,1],[0,1,0]]: -1020 at the pixel, 255 at its 4 neighbours, 0
    # elsewhere in 81 pixels; mean 0, so variance = (1020^2 + 4 * 255^2) / 81
    crop = np.zeros((9, 9, 3), np.uint8)
    crop[4, 4] = 255

    assert sharpness(crop) == pytest.approx((1020**2 + 4 * 255**2) / 81)


def test_flat_image_has_zero_sharpness():
    assert sharpness(np.full((32, 32, 3), 90, np.uint8)) == 0.0


def test_blurring_a_real_face_lowers_its_sharpness(face_crop):
    blurred = cv2.GaussianBlur(face_crop, (0, 0), 2.0)
    more_blurred = cv2.GaussianBlur(face_crop, (0, 0), 4.0)

    assert sharpness(face_crop) > 5 * sharpness(blurred) > 5 * sharpness(more_blurred)


@pytest.mark.parametrize("sigma", [0.8, 1.5, 3.0])
def test_blurring_noise_lowers_its_sharpness(sigma):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)

    assert sharpness(cv2.GaussianBlur(noise, (0, 0), sigma)) < sharpness(noise)


# --- brightness ---------------------------------------------------------------------------------
def test_brightness_averages_only_the_central_half():
    crop = np.full((8, 8, 3), 255, np.uint8)
    crop[2:6, 2:6] = 100

    assert brightness(crop) == 100.0


def test_brightness_uses_luma_weights():
    # 0.299 * 255 = 76.2 -> 76 for pure red
    assert brightness(np.full((8, 8, 3), (255, 0, 0), np.uint8)) == 76.0
    assert brightness(np.full((8, 8, 3), (0, 255, 0), np.uint8)) == 150.0


# --- face_quality_issues ------------------------------------------------------------------------
def test_real_face_has_no_quality_issues(face_crop):
    assert face_quality_issues(face_crop, CONFIG) == ()


def test_blurred_real_face_is_flagged_blurry(face_crop):
    blurred = cv2.GaussianBlur(face_crop, (0, 0), 2.0)

    issues = face_quality_issues(blurred, CONFIG)

    assert len(issues) == 1
    assert issues[0].startswith("face is blurry (sharpness ") and issues[0].endswith(" < 15)")


def test_dark_real_face_is_flagged_too_dark(face_crop):
    dark = (face_crop * 0.15).astype(np.uint8)

    issues = face_quality_issues(dark, replace(CONFIG, min_sharpness=0.0))

    assert issues == (f"face is too dark (brightness {brightness(dark):.0f} < 35)",)


def test_dark_flat_image_is_both_blurry_and_too_dark():
    issues = face_quality_issues(np.full((32, 32, 3), 20, np.uint8), CONFIG)

    assert issues == ("face is blurry (sharpness 0 < 15)", "face is too dark (brightness 20 < 35)")


def test_bright_image_is_flagged_too_bright():
    crop = np.full((32, 32, 3), 240, np.uint8)
    crop[::2, ::2] = 250  # texture, so it is not also blurry

    issues = face_quality_issues(crop, CONFIG)

    assert issues == (f"face is too bright (brightness {brightness(crop):.0f} > 225)",)


def test_limits_are_inclusive(face_crop):
    level, measured = brightness(face_crop), sharpness(face_crop)

    at_limits = replace(CONFIG, min_sharpness=measured, brightness_range=(level, level))
    assert face_quality_issues(face_crop, at_limits) == ()
    just_over = replace(CONFIG, min_sharpness=measured + 1e-6, brightness_range=(level + 1e-6, 255.0))
    assert len(face_quality_issues(face_crop, just_over)) == 2


# --- contrast, pose and the measures for calibration --------------------------------------------
def test_contrast_is_the_spread_of_the_central_half():
    crop = np.full((8, 8, 3), 0, np.uint8)
    crop[2:6, 2:6] = 100
    crop[2:4, 2:6] = 200  # centre: half 100, half 200 -> standard deviation 50
    assert contrast(crop) == 50.0


FRONTAL = np.array([[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]])


def test_yaw_is_zero_for_a_frontal_face_and_the_nose_offset_over_the_eye_distance():
    assert yaw_proxy(FRONTAL) == 0.0
    turned = FRONTAL.copy()
    turned[2, 0] += 8.0  # nose 8 px towards the image's right, eyes 40 px apart
    assert yaw_proxy(turned) == pytest.approx(0.2)


def test_yaw_ignores_in_plane_rotation_and_scale():
    turned = FRONTAL.copy()
    turned[2, 0] -= 6.0
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    assert yaw_proxy(2.5 * turned @ rotation.T + 7) == pytest.approx(yaw_proxy(turned)) == pytest.approx(-0.15)


def test_face_measures_name_every_measure(face_crop):
    measures = face_measures(face_crop, FRONTAL, np.array([10.0, 20.0, 110.0, 140.0]))
    assert measures == {"face_px": 100.0, "sharpness": sharpness(face_crop), "brightness": brightness(face_crop),
                        "contrast": contrast(face_crop), "yaw": 0.0}
