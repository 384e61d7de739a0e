"""Face detection with facenet-pytorch's MTCNN networks, batched over images of equal size.

Large frames are downscaled before detection (MTCNN's cost grows with the pixel count); boxes
and landmarks are mapped back to the original pixels. The cascade runs in
:mod:`verify.face.mtcnn` (facenet-pytorch's, with faster resampling on the CPU).

The pyramid starts at facenet-pytorch's default smallest face, 20 px in the detection image.
Starting it at ``min_face_px`` (24 px) made 640x480 detection 1.18x faster but moves every
pyramid level, and on the LFW evaluation pairs it missed 8 instead of 4 of 2,889 faces (EER
1.16 % instead of 1.11 %), so it is not done.
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

CPU_DETECTION_BATCH = 4
"""Frames per MTCNN call on the CPU: larger batches gain nothing there and spill the caches."""

MTCNN_MIN_FACE_PX = 20.0
"""Smallest face MTCNN looks for, in pixels of the (downscaled) detection image."""


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
            if min(shape[:2]) < MTCNN_MIN_FACE_PX:  # MTCNN's smallest window does not fit
                continue
            step = len(indices) if self.device.type == "cuda" else CPU_DETECTION_BATCH
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                batch = np.stack([scaled[i][0] for i in chunk])
                found = detect_faces(batch, self.mtcnn, MTCNN_MIN_FACE_PX, self.device)
                for i, (boxes, points) in zip(chunk, found):
                    results[i] = self._detections(boxes, points, scaled[i][1])
        return results

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
