"""Face detection with facenet-pytorch's MTCNN networks, batched over images of equal size.

Large frames are downscaled before detection (MTCNN's cost grows with the pixel count); boxes
and landmarks are mapped back to the original pixels. The cascade runs in
:mod:`verify.face.mtcnn` (facenet-pytorch's in NumPy, with faster resampling on the CPU and the
networks where :mod:`verify.runtime` puts them).

Coarse to fine: the first pass runs only the pyramid levels that look for faces of at least an
eighth of the image's shorter side, a third of the whole pyramid's time at 640x480
(``benchmarks/levers.py``). When it finds a face big enough that no smaller face could be chosen
over it (:func:`choose_face` weighs faces by area), the image is done; otherwise the finer levels
run too, down to facenet-pytorch's default smallest face of 20 px, and the faces of both passes
are merged (a face both found is kept once). So an image costs at most one whole pyramid plus a
second R/O-net cascade, and faces far smaller than the main face may be left out of the results.
The first pass uses the whole pyramid's own levels: a pyramid of other scales can miss a face
the whole one finds.

Starting the whole pyramid at ``min_face_px`` (24 px) instead of 20 px made 640x480 detection
1.18x faster but moves every pyramid level, and on the LFW evaluation pairs it missed 8 instead
of 4 of 2,889 faces (EER 1.16 % instead of 1.11 %), so it is not done.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from verify.config import FaceFrontEndConfig
from verify.device import Device
from verify.face.mtcnn import PNET_WINDOW, Cascade, OutsideRegion, detect_faces, pyramid_scales, refine_faces, square_boxes

CPU_DETECTION_BATCH = 4
"""Frames per MTCNN call on the CPU: larger batches gain nothing there and spill the caches."""

MTCNN_MIN_FACE_PX = 20.0
"""Smallest face MTCNN looks for, in pixels of the (downscaled) detection image."""

COARSE_FRACTION = 8
"""The first pass runs the levels looking for faces of at least ``1 / COARSE_FRACTION`` of the
image's shorter side."""

DUPLICATE_OVERLAP = 0.7
"""Faces of the two passes are one face when their intersection covers this fraction of the
smaller box: the criterion of MTCNN's last non-maximum suppression."""

SETTLING_MARGIN = 1.5
"""A first-pass face settles the image when its weight is at least that of a square face this
many times the first pass's smallest face: any face only the finer levels find is smaller."""


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
    """Batched MTCNN detector returning the confident faces of each image, coarse to fine."""

    def __init__(
        self,
        device: Device,
        config: FaceFrontEndConfig = FaceFrontEndConfig(),
        cpu_runtime: str = "openvino",
        cpu_threads: int | None = None,
    ) -> None:
        """Load the cascade on ``device`` (see :func:`verify.runtime.load_network` for the runtime)."""
        self.config = config
        self.device = device
        self.cascade = Cascade.load(device, cpu_runtime, cpu_threads)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect faces in ``(H, W, 3)`` uint8 RGB images; one list of detections per image.

        Every face that :func:`choose_face` could pick is found; faces far smaller than the
        chosen one may be missing.
        """
        scaled = [self._downscale(image) for image in images]
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, (image, _) in enumerate(scaled):
            groups[image.shape].append(index)
        results: list[list[Detection]] = [[] for _ in images]
        for shape, indices in groups.items():
            if min(shape[:2]) < MTCNN_MIN_FACE_PX:  # MTCNN's smallest window does not fit
                continue
            pyramid = pyramid_scales(shape[0], shape[1], MTCNN_MIN_FACE_PX, self.cascade.factor)
            coarse = [scale for scale in pyramid if PNET_WINDOW / scale >= min(shape[:2]) / COARSE_FRACTION]
            self._detect_group(scaled, indices, coarse, results)  # never empty: the last level sees the whole image
            if len(coarse) == len(pyramid):
                continue
            smallest_coarse_face = PNET_WINDOW / coarse[0]  # scales run from the smallest face up
            unsettled = [i for i in indices if not _settled(results[i], images[i].shape, smallest_coarse_face / scaled[i][1])]
            if unsettled:
                first_pass = {i: results[i] for i in unsettled}
                self._detect_group(scaled, unsettled, pyramid[: len(pyramid) - len(coarse)], results)
                for i in unsettled:
                    results[i] = merge_detections(first_pass[i], results[i])
        return results

    def refine(self, image: np.ndarray, seeds: Sequence[Detection]) -> list[Detection]:
        """MTCNN's faces in an ``(H, W, 3)`` uint8 RGB image found by its last two stages from
        another detector's ``seeds`` instead of its pyramid (two small networks on one box each).

        The stages see the image downscaled as for the pyramid (large photos would cost a lot).
        On the CPU only the part around the seeds is downscaled when a part can be, bit for bit,
        what the whole image's downscale holds there (:func:`exact_region`): the same crops, a
        fraction of the pixels.
        """
        if not seeds:
            return []
        boxes = np.stack([seed.box for seed in seeds])
        factor, (width, height) = self._scale_of(image.shape)
        cpu = self.device.type == "cpu"
        region = exact_region(image.shape[:2], (height, width), boxes * factor, REGION_MARGIN) if cpu else None
        if region is not None:
            (rows, columns), (source_rows, source_columns) = region
            part = image[source_rows, source_columns]
            if factor < 1.0:
                part = cv2.resize(part, (columns.stop - columns.start, rows.stop - rows.start), interpolation=cv2.INTER_AREA)
            try:
                found = refine_faces(part, boxes * factor, self.cascade, (height, width), (rows.start, columns.start))
                return self._detections(*found, factor)
            except OutsideRegion:  # a regressed box left the part: the whole image, as below
                pass
        scaled, factor = self._downscale(image)
        found = refine_faces(scaled, boxes * factor, self.cascade)
        return self._detections(*found, factor)

    def _detect_group(self, scaled, indices: list[int], scales: list[float], results: list[list[Detection]]) -> None:
        """Detections at the pyramid ``scales`` in the equal-sized images ``indices``."""
        step = len(indices) if self.device.type == "cuda" else CPU_DETECTION_BATCH
        for start in range(0, len(indices), step):
            chunk = indices[start : start + step]
            found = detect_faces(np.stack([scaled[i][0] for i in chunk]), self.cascade, scales)
            for i, (boxes, points) in zip(chunk, found):
                results[i] = self._detections(boxes, points, scaled[i][1])

    def _scale_of(self, shape: tuple[int, ...]) -> tuple[float, tuple[int, int]]:
        """The factor that brings an image's longer side to at most ``detection_max_side``, and
        its size ``(width, height)`` after."""
        factor = min(1.0, self.config.detection_max_side / max(shape[:2]))
        if factor == 1.0:
            return 1.0, (shape[1], shape[0])
        return factor, (max(1, round(shape[1] * factor)), max(1, round(shape[0] * factor)))

    def _downscale(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Image resized so its longer side is at most ``detection_max_side``, and the factor."""
        factor, size = self._scale_of(image.shape)
        if factor == 1.0:
            return image, 1.0
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor

    def _detections(self, boxes: np.ndarray, points: np.ndarray, factor: float) -> list[Detection]:
        """Confident detections from boxes ``(K, 5)`` with probabilities and landmarks ``(K, 5, 2)``."""
        return [
            Detection(np.asarray(box[:4], np.float32) / factor, np.asarray(point, np.float32) / factor, float(box[4]))
            for box, point in zip(boxes, points)
            if box[4] >= self.config.min_detection_probability
        ]


REGION_MARGIN = 0.2
"""Margin around the squared seed boxes, in box sides, of the part :meth:`FaceDetector.refine`
downscales: room for the networks' box regression (a crop beyond it falls back to the whole).
On the 100 photos of 800 px of ``speed.py``'s batch none fell back and the refinement took
3.2 ms a photo instead of 4.5; a 4000 x 3000 photo 2.8 ms instead of 28.0 (``python
benchmarks/refine_region.py``, ``benchmarks/results/refine_region_cpu.json``)."""

REGION_MAX_SHARE = 0.75
"""A part larger than this share of the downscaled image is not worth cutting: the whole is taken."""


def exact_region(source: tuple[int, int], scaled: tuple[int, int], boxes: np.ndarray,
                 margin: float) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """A part around ``boxes`` ``(K, >=4)`` (x1, y1, x2, y2 in the downscaled image's pixels; squared,
    then widened by ``margin`` box sides on every side) of an image of ``source`` ``(height,
    width)`` area-downscaled to ``scaled`` ``(height, width)``, whose own area downscale equals, bit
    for bit, that part of the whole image's: ``((rows, columns), (source rows, source columns))``,
    or ``None`` when no such part is much smaller than the whole.

    Along an axis of ``L`` pixels downscaled to ``l``, OpenCV's area weights repeat every
    ``L / gcd(L, l)`` source pixels (``l / gcd(L, l)`` downscaled ones), so a part cut at those
    steps meets the same weights in the same order (checked against the whole image's downscale on
    random sizes by ``tests/verify/face/test_detect.py``).
    """
    squared = square_boxes(np.asarray(boxes, np.float64))
    sides = squared[:, 2] - squared[:, 0]
    low = np.min(squared[:, [1, 0]] - margin * sides[:, None], axis=0)  # (row, column)
    high = np.max(squared[:, [3, 2]] + margin * sides[:, None], axis=0)
    part, source_part = [], []
    for axis in (0, 1):
        length, scaled_length = source[axis], scaled[axis]
        common = math.gcd(length, scaled_length)
        step, scaled_step = length // common, scaled_length // common
        first = max(0, int(np.floor(low[axis] / scaled_step)) * scaled_step)
        last = min(scaled_length, int(np.ceil(high[axis] / scaled_step)) * scaled_step)
        if last <= first:
            return None
        part.append(slice(first, last))
        source_part.append(slice(first // scaled_step * step, last // scaled_step * step))
    rows, columns = part
    if (rows.stop - rows.start) * (columns.stop - columns.start) > REGION_MAX_SHARE * scaled[0] * scaled[1]:
        return None
    return (rows, columns), (source_part[0], source_part[1])


def _settled(detections: Sequence[Detection], image_shape: tuple[int, ...], smallest_coarse_face: float) -> bool:
    """Whether a face found by the first pass outweighs any face the rest of the pyramid could add."""
    smallest_winner = (SETTLING_MARGIN * smallest_coarse_face) ** 2
    return any(face_weight(detection, image_shape) >= smallest_winner for detection in detections)


def merge_detections(first: Sequence[Detection], second: Sequence[Detection]) -> list[Detection]:
    """The faces of both passes, a face that both found kept once (its more confident box)."""
    kept: list[Detection] = []
    for face in sorted([*first, *second], key=lambda detection: -detection.probability):
        if all(_overlap(face, other) <= DUPLICATE_OVERLAP for other in kept):
            kept.append(face)
    return kept


def _overlap(a: Detection, b: Detection) -> float:
    """Intersection of two boxes over the area of the smaller one."""
    width = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    height = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    if width <= 0 or height <= 0:
        return 0.0
    areas = [(box[2] - box[0]) * (box[3] - box[1]) for box in (a.box, b.box)]
    return float(width * height / min(areas))


def face_weight(detection: Detection, image_shape: tuple[int, ...]) -> float:
    """Box area discounted by distance from the image centre: a corner face counts half."""
    height, width = image_shape[:2]
    x1, y1, x2, y2 = (float(v) for v in detection.box)
    offset = np.hypot((x1 + x2 - width) / 2, (y1 + y2 - height) / 2) / (np.hypot(width, height) / 2)
    return (x2 - x1) * (y2 - y1) * (1.0 - 0.5 * min(float(offset), 1.0))


def choose_face(detections: Sequence[Detection], image_shape: tuple[int, ...]) -> Detection:
    """The largest, most central face: the one of highest :func:`face_weight`."""
    return max(detections, key=lambda detection: face_weight(detection, image_shape))


def box_iou(a: Detection, b: Detection) -> float:
    """Intersection over union of two detections' boxes."""
    width = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    height = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    if width <= 0 or height <= 0:
        return 0.0
    intersection = width * height
    areas = [(box[2] - box[0]) * (box[3] - box[1]) for box in (a.box, b.box)]
    return float(intersection / (areas[0] + areas[1] - intersection))


def match_face(face: Detection, candidates: Sequence[Detection], min_iou: float) -> Detection | None:
    """The candidate whose box overlaps ``face``'s most, if their IoU reaches ``min_iou``; else ``None``."""
    best = max(candidates, key=lambda candidate: box_iou(face, candidate), default=None)
    return best if best is not None and box_iou(face, best) >= min_iou else None
