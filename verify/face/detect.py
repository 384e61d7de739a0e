"""Face detection with facenet-pytorch's MTCNN networks, batched over images of equal size.

Large frames are downscaled before detection (MTCNN's cost grows with the pixel count); boxes
and landmarks are mapped back to the original pixels. MTCNN's image pyramid starts at the scale
where the smallest face worth finding (``min_face_px``, never under MTCNN's default 20 px in the
detection image) fills its 12-pixel window: smaller faces would be refused as too small anyway.
The cascade itself runs in :mod:`verify.face.mtcnn` (facenet-pytorch's, with a faster pyramid).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN

from verify.config import FaceFrontEndConfig
from verify.face.mtcnn import detect_faces

MTCNN_DEFAULT_MIN_FACE_PX = 20
"""facenet-pytorch's default smallest face (px in the detection image); the pyramid never goes finer."""


@dataclass(frozen=True)
class Detection:
    """One face: box ``(x1, y1, x2, y2)`` and five landmarks ``(5, 2)`` in image pixels.

    Landmarks are ordered left eye, right eye, nose tip, left and right mouth corner.
    """

    box: np.ndarray
    landmarks: np.ndarray
    probability: float

    @property
    def short_side(self) -> float:
        """Shorter side of the box in pixels."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class FaceDetector:
    """Batched MTCNN detector returning every confident face per image."""

    def __init__(self, device: torch.device, config: FaceFrontEndConfig = FaceFrontEndConfig()) -> None:
        self.config = config
        # The P/R/O-net weights ship inside the facenet-pytorch package: nothing is downloaded.
        self.device = device
        self.mtcnn = MTCNN(keep_all=True, select_largest=False, device=device)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect faces in ``(H, W, 3)`` uint8 RGB images; one list of detections per image."""
        scaled = [self._downscale(image) for image in images]
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, (image, _) in enumerate(scaled):
            groups[image.shape].append(index)
        results: list[list[Detection]] = [[] for _ in images]
        for shape, indices in groups.items():
            min_face_size = self._min_face_size(scaled[indices[0]][1])
            if min(shape[:2]) < min_face_size:  # MTCNN's smallest window does not fit
                continue
            batch = np.stack([scaled[i][0] for i in indices])
            found = detect_faces(batch, self.mtcnn, min_face_size, self.device)
            for i, (boxes, points) in zip(indices, found):
                results[i] = self._detections(boxes, points, scaled[i][1])
        return results

    def _min_face_size(self, factor: float) -> float:
        """Smallest face MTCNN looks for, in pixels of an image downscaled by ``factor``."""
        return max(float(MTCNN_DEFAULT_MIN_FACE_PX), self.config.min_face_px * factor)

    def _downscale(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Image resized so its longer side is at most ``detection_max_side``, and the factor."""
        longer = max(image.shape[:2])
        factor = min(1.0, self.config.detection_max_side / longer)
        if factor == 1.0:
            return image, 1.0
        size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor

    def _detections(self, boxes: np.ndarray, points: np.ndarray, factor: float) -> list[Detection]:
        """Confident detections from boxes ``(K, 5)`` with probabilities and landmarks ``(K, 5, 2)``."""
        return [
            Detection(np.asarray(box[:4], np.float32) / factor, np.asarray(point, np.float32) / factor, float(box[4]))
            for box, point in zip(boxes, points)
            if box[4] >= self.config.min_detection_probability
        ]


def choose_face(detections: Sequence[Detection], image_shape: tuple[int, ...]) -> Detection:
    """The largest, most central face: box area discounted by distance from the image centre.

    A face in a corner counts half as much as the same face in the centre.
    """
    height, width = image_shape[:2]
    centre = np.array([width / 2, height / 2])
    half_diagonal = float(np.hypot(width, height) / 2)

    def weight(detection: Detection) -> float:
        x1, y1, x2, y2 = detection.box
        offset = np.hypot(*(np.array([(x1 + x2) / 2, (y1 + y2) / 2]) - centre)) / half_diagonal
        return float((x2 - x1) * (y2 - y1) * (1.0 - 0.5 * min(offset, 1.0)))

    return max(detections, key=weight)
