"""A real person making head moves, assembled from real photos of one person at different poses (test helper).

ORL (../shared/data/faces/orl_att) photographs each of 40 people ten times, with head turns and
nods. :func:`pick_poses` measures every photo of one person with the face pipeline and picks, for
each move, the photo that makes it most clearly relative to a frontal photo (the neutral pose);
:func:`webcam_frame` places a photo in a 640x480 webcam frame with its eyes where the neutral
photo's eyes are and at the neutral eye distance (1.4 times it to come closer), with a little
jitter so that no two frames are identical. Only photos the face pipeline measures are used: the
moves are the measured ones, not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from verify.challenge import ChallengeConfig, head_pose
from verify.io import decode_image

FRAME_SHAPE = (480, 640)
EYES_AT = (320.0, 200.0)
EYE_DISTANCE_PX = 95.0
CLOSER = 1.4
BACKGROUND = 90


@dataclass(frozen=True)
class Photo:
    """One photo and its measured landmarks ``(5, 2)`` (pixels of the photo)."""

    image: np.ndarray
    landmarks: np.ndarray
    name: str


def measure(pipeline, folder: Path) -> dict[str, Photo]:
    """Every photo of one person whose face the pipeline finds, by file name."""
    photos = {}
    for path in sorted(folder.iterdir()):
        image = decode_image(path)
        big = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)  # MTCNN likes faces above 60 px
        try:
            sample = pipeline.embed(big)
        except Exception:  # noqa: BLE001 - a photo without a usable face is not used
            continue
        photos[path.name] = Photo(big, np.asarray(sample.landmarks, np.float64), path.name)
    return photos


def pick_poses(photos: dict[str, Photo], neutral: str, moves: tuple[str, ...],
               config: ChallengeConfig = ChallengeConfig()) -> dict[str, Photo]:
    """``{"neutral": photo, move: photo, ...}``: for each move the photo making it most clearly.

    A turn or nod must pass its threshold by 25 % while the other axis stays under half its
    threshold; coming closer is the neutral photo shown larger.

    Raises:
        LookupError: no photo of this person makes one of the moves.
    """
    base = head_pose(photos[neutral].landmarks)
    chosen = {"neutral": photos[neutral]}
    for move in moves:
        if move == "come_closer":
            chosen[move] = photos[neutral]
            continue
        best, best_margin = None, 1.25
        for photo in photos.values():
            pose = head_pose(photo.landmarks)
            yaw, pitch = (pose.yaw - base.yaw) / config.turn, (pose.pitch - base.pitch) / config.tilt
            along, across = {"turn_left": (yaw, pitch), "turn_right": (-yaw, pitch), "look_up": (-pitch, yaw),
                             "look_down": (pitch, yaw)}[move]
            if along >= best_margin and abs(across) < 0.5:
                best, best_margin = photo, along
        if best is None:
            raise LookupError(f"no photo makes the move {move}")
        chosen[move] = best
    return chosen


def webcam_frame(photo: Photo, closer: bool = False, jitter: int = 0) -> np.ndarray:
    """``photo`` in a 640x480 RGB frame, its eyes at :data:`EYES_AT`, eye distance fixed (x1.4 closer)."""
    left, right = photo.landmarks[0], photo.landmarks[1]
    scale = EYE_DISTANCE_PX * (CLOSER if closer else 1.0) / np.linalg.norm(right - left)
    middle = (left + right) / 2
    rng = np.random.default_rng(jitter)
    shift = rng.integers(-2, 3, size=2) if jitter else np.zeros(2)
    matrix = np.array([[scale, 0, EYES_AT[0] + shift[0] - scale * middle[0]],
                       [0, scale, EYES_AT[1] + shift[1] - scale * middle[1]]])
    frame = cv2.warpAffine(photo.image, matrix, FRAME_SHAPE[::-1], flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(BACKGROUND,) * 3)
    brightness = int(rng.integers(-4, 5)) if jitter else 0
    return np.clip(frame.astype(int) + brightness, 0, 255).astype(np.uint8)


def segments(poses: dict[str, Photo], moves: tuple[str, ...], neutral_s: float, move_s: float, back_s: float,
             fps: int) -> list[np.ndarray]:
    """Frames at ``fps``: the neutral pose for ``neutral_s``, then each move for ``move_s`` and back for ``back_s``."""
    plan = [("neutral", neutral_s)] + [item for move in moves for item in ((move, move_s), ("neutral", back_s))]
    frames = []
    for pose, seconds in plan:
        for _ in range(round(seconds * fps)):
            frames.append(webcam_frame(poses[pose], closer=pose == "come_closer", jitter=len(frames) + 1))
    return frames
