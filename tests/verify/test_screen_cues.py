"""Passive screen/print cues: what each measures, and the shipped (measured) selection."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from verify.errors import InputError, WeightsError
from verify.screen_cues import ScreenCues, face_region, fine_detail, glare, load_screen_cues, moire_peak


def smooth_face() -> np.ndarray:
    """A smooth, face-like grey gradient with an ellipse: no periodic pattern, no saturation."""
    image = np.tile(np.linspace(60, 180, 200, dtype=np.float32), (200, 1))
    cv2.ellipse(image, (100, 100), (60, 80), 0, 0, 360, 140, -1)
    return cv2.GaussianBlur(image, (0, 0), 2).astype(np.uint8)


def test_a_pixel_grid_makes_a_moire_peak():
    plain = face_region(smooth_face())
    grid = smooth_face().astype(np.float32)
    grid[::3, :] *= 0.6  # a screen's dark lines, every 3 pixels
    assert moire_peak(face_region(grid.astype(np.uint8))) > moire_peak(plain) + 0.5


def test_blur_removes_fine_detail_and_a_reflection_saturates():
    noisy = np.clip(smooth_face() + np.random.default_rng(0).normal(0, 8, (200, 200)), 0, 255).astype(np.uint8)
    assert fine_detail(face_region(cv2.GaussianBlur(noisy, (0, 0), 2))) < fine_detail(face_region(noisy)) / 5
    shiny = smooth_face()
    shiny[80:120, 80:120] = 255
    assert glare(face_region(shiny)) > 0.03 and glare(face_region(smooth_face())) == 0.0


def test_face_regions_are_checked():
    colour = np.zeros((100, 120, 3), np.uint8)
    assert face_region(colour, (10, 10, 60, 70)).shape == (128, 128)
    with pytest.raises(InputError, match="uint8"):
        face_region(np.zeros((10, 10), np.float32))
    with pytest.raises(InputError, match="no usable pixels"):
        face_region(colour, (200, 200, 300, 300))


def test_cues_beyond_their_threshold_are_reported():
    shiny = smooth_face()
    shiny[80:120, 80:120] = 255
    cues = ScreenCues({"glare": 0.01, "fine_detail": 0.5})
    assert cues.suspicious(face_region(shiny)) == [
        f"glare {glare(face_region(shiny)):.3g} > 0.01", f"fine detail {fine_detail(face_region(shiny)):.3g} < 0.5"]
    assert ScreenCues({}).suspicious(face_region(shiny)) == []


def test_the_shipped_selection_follows_its_measurement(tmp_path):
    shipped = load_screen_cues()
    assert shipped.provenance["command"] == "python scripts/measure_screen_cues.py"
    assert "no real screen or print replays were measured" in shipped.provenance["caveat"]
    assert shipped.thresholds == {}  # none separated replays without refusing resized or brighter real photos
    bad = tmp_path / "cues.json"
    bad.write_text(json.dumps({"thresholds": {"sparkle": 1.0}}))
    with pytest.raises(WeightsError, match="unknown screen cues"):
        load_screen_cues(bad)
    with pytest.raises(WeightsError, match="measure_screen_cues.py"):
        load_screen_cues(tmp_path / "missing.json")
