"""Face detection with YuNet (OpenCV Zoo, MIT licence) through ``cv2.FaceDetectorYN``.

YuNet returns a box and five landmarks per face in the same order as MTCNN (the eye on the
image's left first, then the other eye, the nose tip, the mouth corner on the image's left and
the other one), so its :class:`~verify.face.detect.Detection` works with
:func:`~verify.face.detect.choose_face` and :func:`~verify.face.align.align_face` unchanged.
Large frames are downscaled to ``FaceFrontEndConfig.yunet_max_side`` before detection (its cost
grows with the pixel count) and the results mapped back to the original pixels.

OpenCV's detector objects are not thread-safe: each calling thread gets its own. YuNet runs on
the CPU even when the rest of the pipeline runs on CUDA.
"""

from __future__ import annotations

import threading
from typing import Sequence

import cv2
import numpy as np

from verify.config import FaceFrontEndConfig
from verify.errors import WeightsError
from verify.face.detect import Detection
from verify.weights import WeightsFile, locate

YUNET_WEIGHTS = WeightsFile(
    filename="face_detection_yunet_2023mar_int8bq.onnx",
    sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    rebuild_command="cp ../shared/weights/face_detection_yunet_2023mar/face_detection_yunet_2023mar_int8bq.onnx assets/models/",
)

YUNET_NMS_THRESHOLD = 0.3
"""Overlap (IoU) above which YuNet's non-maximum suppression keeps only the more confident box."""

YUNET_STRIDE = 32
"""YuNet's coarsest feature stride (pixels of the image it searches): a region cut at multiples of it
keeps every anchor where the whole image's search has it."""

YUNET_TOP_K = 5000
"""Candidates YuNet keeps before non-maximum suppression (OpenCV Zoo's setting)."""


class YuNetDetector:
    """YuNet on the CPU, returning the confident faces of each image."""

    def __init__(self, config: FaceFrontEndConfig = FaceFrontEndConfig(), cpu_threads: int | None = None) -> None:
        """Locate and hash-check the shipped model.

        Args:
            cpu_threads: OpenCV's threads (process-wide); ``None`` keeps OpenCV's default.

        Raises:
            WeightsError: the model is missing, corrupt or cannot be read by OpenCV.
        """
        self.config = config
        self.path = str(locate(YUNET_WEIGHTS))
        if cpu_threads is not None:
            cv2.setNumThreads(cpu_threads)
        self._local = threading.local()
        self._instance((320, 320))  # fail here, not on the first image, if OpenCV cannot read it

    def _instance(self, size: tuple[int, int]) -> cv2.FaceDetectorYN:
        """This thread's detector, set for images of ``size`` ``(width, height)``."""
        detector = getattr(self._local, "detector", None)
        if detector is None:
            level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV 5 warns it ignores a target
            try:
                detector = cv2.FaceDetectorYN.create(
                    self.path, "", size, self.config.min_yunet_score, YUNET_NMS_THRESHOLD, YUNET_TOP_K
                )
            except cv2.error as error:
                raise WeightsError(f"OpenCV cannot load YuNet from {self.path}: {error}") from error
            finally:
                cv2.utils.logging.setLogLevel(level)
            self._local.detector, self._local.size = detector, size
        if self._local.size != size:
            detector.setInputSize(size)
            self._local.size = size
        return detector

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect faces in ``(H, W, 3)`` uint8 RGB images; one list of detections per image."""
        return [self._detect_one(image) for image in images]

    def detect_region(self, image: np.ndarray, region: tuple[int, int, int, int]) -> list[Detection]:
        """Faces inside ``region`` ``(x1, y1, x2, y2)`` (pixels) of an ``(H, W, 3)`` uint8 RGB image,
        in the whole image's pixels.

        The region is cut from the image as the whole-image search sees it (downscaled the same
        way) and widened to YuNet's coarsest stride, so a face in it meets the same pixels and
        anchors as in a search of the whole image, for a fraction of the pixels.
        """
        bgr, factor = self._search_image(image)
        x1, y1 = (int(value * factor) // YUNET_STRIDE * YUNET_STRIDE for value in region[:2])
        x2, y2 = min(bgr.shape[1], int(np.ceil(region[2] * factor))), min(bgr.shape[0], int(np.ceil(region[3] * factor)))
        return self._detect_scaled(np.ascontiguousarray(bgr[y1:y2, x1:x2]), factor, (x1, y1))

    def _detect_one(self, image: np.ndarray) -> list[Detection]:
        bgr, factor = self._search_image(image)
        return self._detect_scaled(bgr, factor, (0, 0))

    def _search_image(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The BGR image YuNet searches (downscaled to ``yunet_max_side``) and its scale factor."""
        factor = min(1.0, self.config.yunet_max_side / max(image.shape[:2]))
        if factor < 1.0:  # channels are resized independently: resizing first swaps them on fewer pixels
            size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR), factor  # 0.15 ms where NumPy's strided copy took 2.7 (640x480)

    def _detect_scaled(self, bgr: np.ndarray, factor: float, offset: tuple[int, int]) -> list[Detection]:
        """Faces of ``bgr``, a part at ``offset`` (pixels) of an image scaled by ``factor``, in the
        original image's pixels."""
        _, rows = self._instance((bgr.shape[1], bgr.shape[0])).detect(bgr)
        if rows is None:
            return []
        return [_detection(row, factor, offset) for row in rows if row[2] > 1 and row[3] > 1]


def _detection(row: np.ndarray, factor: float, offset: tuple[int, int] = (0, 0)) -> Detection:
    """A detection from one YuNet row ``x, y, w, h, 5 x (x, y), score`` found at ``factor`` scale in a
    part of the scaled image at ``offset``."""
    x, y = (float(row[0]) + offset[0]) / factor, (float(row[1]) + offset[1]) / factor
    width, height = float(row[2]) / factor, float(row[3]) / factor
    box = np.array([x, y, x + width, y + height], np.float32)
    landmarks = ((np.asarray(row[4:14], np.float32).reshape(5, 2) + np.array(offset, np.float32)) / factor).astype(np.float32)
    return Detection(box, landmarks, float(row[14]))
