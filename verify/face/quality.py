"""Image quality measures of an aligned face crop."""

from __future__ import annotations

import cv2
import numpy as np

from verify.config import FaceFrontEndConfig


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the grey crop; low values mean blur."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def brightness(crop: np.ndarray) -> float:
    """Mean grey level (0..255) of the central half of the crop, where the face is."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    return float(grey[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4].mean())


def face_quality_issues(crop: np.ndarray, config: FaceFrontEndConfig) -> tuple[str, ...]:
    """Human-readable quality problems of an aligned ``(H, W, 3)`` RGB crop; empty if none."""
    issues = []
    measured_sharpness = sharpness(crop)
    if measured_sharpness < config.min_sharpness:
        issues.append(f"face is blurry (sharpness {measured_sharpness:.0f} < {config.min_sharpness:.0f})")
    level = brightness(crop)
    low, high = config.brightness_range
    if level < low:
        issues.append(f"face is too dark (brightness {level:.0f} < {low:.0f})")
    elif level > high:
        issues.append(f"face is too bright (brightness {level:.0f} > {high:.0f})")
    return tuple(issues)
