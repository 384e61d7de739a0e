"""Landmarks of a 3-D head turning and of a flat photo of it turned, as a camera sees them (test helper).

Turning a head moves its nose tip, which stands out of the face, across the eyes' axis; turning a
photo moves all five points as one plane.
"""

from __future__ import annotations

import numpy as np

# A generic head in millimetres (x to the image's right, y down, z towards the camera): eye centres,
# nose tip, mouth corners. The nose tip stands 25 mm in front of the eyes, as on a real face.
HEAD = np.array([[-32.0, -33, -26], [32, -33, -26], [0, 0, 0], [-27, 29, -24], [27, 29, -24]])
PIVOT = np.array([0.0, 0, -100])  # heads turn about the neck, behind the face
CAMERA_MM, FOCAL_PX = 500.0, 700.0


def rotation(yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> np.ndarray:
    """Turn to the person's left by ``yaw_deg`` (nose towards +x), look down by ``pitch_deg`` (nose to +y)."""
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    nod = np.array([[1, 0, 0], [0, np.cos(b), np.sin(b)], [0, -np.sin(b), np.cos(b)]])
    return turn @ nod


def project(points: np.ndarray, distance: float = CAMERA_MM) -> np.ndarray:
    """Pinhole projection of ``(5, 3)`` points (mm, camera ``distance`` in front of z = 0) to pixels."""
    depth = distance - points[:, 2]
    return np.column_stack([320 + FOCAL_PX * points[:, 0] / depth, 240 + FOCAL_PX * points[:, 1] / depth])


def real_head(yaw: float = 0.0, pitch: float = 0.0, closer_mm: float = 0.0) -> np.ndarray:
    """Landmarks of the 3-D head turned and nodded about its neck, ``closer_mm`` nearer the camera."""
    moved = (HEAD - PIVOT) @ rotation(yaw, pitch).T + PIVOT
    return project(moved, CAMERA_MM - closer_mm)


def flat_photo(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, distance: float = 350.0) -> np.ndarray:
    """Landmarks of a printed frontal photo of the head (all points on one plane), turned, tilted and
    rolled about its own centre, held ``distance`` mm from the camera."""
    printed = np.column_stack([HEAD[:, :2], np.zeros(5)])  # the photo flattens the face
    c, s = np.cos(np.radians(roll)), np.sin(np.radians(roll))
    printed = printed @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
    return project(printed @ rotation(yaw, pitch).T, distance)
