"""Quality measures of a face: of its aligned crop (sharpness, brightness, contrast) and its landmarks (pose)."""

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


def contrast(crop: np.ndarray) -> float:
    """Standard deviation of the grey levels (0..255) of the central half of the crop."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    return float(grey[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4].std())


def yaw_proxy(landmarks: np.ndarray) -> float:
    """Head turn from five landmarks ``(5, 2)`` (MTCNN order): the nose tip's offset from the eyes'
    midpoint along the eye line, over the eye distance.

    About 0 for a frontal face, growing towards +-0.5 as the head turns (sign: towards the image's
    right is positive); in-plane rotation does not change it.
    """
    left_eye, right_eye, nose = (np.asarray(landmarks[i], np.float64) for i in range(3))
    eye_line = right_eye - left_eye
    distance = float(np.hypot(*eye_line))
    if distance == 0.0:
        return 0.0
    return float((nose - (left_eye + right_eye) / 2) @ eye_line / distance**2)


def face_measures(crop: np.ndarray, landmarks: np.ndarray, box: np.ndarray) -> dict[str, float]:
    """Numeric quality measures for calibration: ``face_px`` (shorter box side), ``sharpness``,
    ``brightness``, ``contrast`` (of the aligned ``crop``) and ``yaw`` (:func:`yaw_proxy`)."""
    return {
        "face_px": float(min(box[2] - box[0], box[3] - box[1])),
        "sharpness": sharpness(crop),
        "brightness": brightness(crop),
        "contrast": contrast(crop),
        "yaw": yaw_proxy(landmarks),
    }


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
