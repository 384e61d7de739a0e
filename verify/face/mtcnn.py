"""MTCNN's three-stage cascade (facenet-pytorch's ``detect_face``) in NumPy, with faster resampling.

The P/R/O-nets, thresholds and every step are facenet-pytorch 2.5.3's (MIT licence,
``facenet_pytorch/models/utils/detect_face.py``), and so is the box arithmetic, ported from torch
to NumPy in the same float32 operations; the non-maximum suppressions are torchvision's
``batched_nms`` and facenet-pytorch's ``batched_nms_numpy``. ``tests/verify/face/test_mtcnn.py``
checks the detections against facenet-pytorch's. So the CPU path needs no torch: the networks run
from their shipped IRs (:data:`PNET`, :data:`RNET`, :data:`ONET`, exported from
:mod:`verify.face.mtcnn_torch`), on CUDA in PyTorch.

Resampling: facenet-pytorch calls ``interpolate(mode="area")`` (adaptive average pooling) once
per level and once per candidate box, which on the CPU costs as much as the networks.
:class:`IntegralSampler` computes the same bin means from one integral image per frame, every
level in one gather and every box's crop in one vectorised gather; the results agree with
facenet-pytorch's to float32 rounding. On CUDA the original resampling is kept (it is fast there).
The networks take raw 0..255 pixels (the scaling is folded into them); which pyramid levels to
search is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from verify.device import Device
from verify.runtime import LazyNetwork, Network, NetworkSpec, load_network

MTCNN_SOURCE = "facenet-pytorch==2.5.3"
"""The package (and version) whose MTCNN networks and weights the shipped IRs were exported from."""

PNET_WINDOW = 12
"""Side (px) of the P-net's window: a face of ``min_face_size`` px is scaled to this size."""

THRESHOLDS = (0.6, 0.7, 0.7)
"""facenet-pytorch's default face probability thresholds of the three stages."""

SCALE_FACTOR = 0.709
"""facenet-pytorch's default ratio between pyramid levels."""

PNET = NetworkSpec(
    name="mtcnn-pnet",
    graph_sha256="e5ba648069b4c67473f8c4b4473664619232a176007713a061a0d4e5b55fdffa",
    weights_sha256="6bd660780a994372710fd4f8feeac68002f0c0a4e87a16ade7ff636287e12c24",
    module="verify.face.mtcnn_torch:pnet",
    example_shape=(1, 3, 2 * PNET_WINDOW, 2 * PNET_WINDOW),
    dynamic_dims=(0, 2, 3),
)
RNET = NetworkSpec(
    name="mtcnn-rnet",
    graph_sha256="2a165bfa96cfecdb89b57876abc17ac47dd96a227f5eddcda3cb5cfbfdbc7ac0",
    weights_sha256="82e1d2b065c312ce4e740a451d655d0a16e7b410807af7293428cd2061276f6f",
    module="verify.face.mtcnn_torch:rnet",
    example_shape=(1, 3, 24, 24),
    dynamic_dims=(0,),
)
ONET = NetworkSpec(
    name="mtcnn-onet",
    graph_sha256="a7108ba2c0260eb3cf3cf68d533064b54314c6784455e678cf652199ccc64185",
    weights_sha256="644c7b4e5e3e97e82cdbe8721b0dca57a4510316e8696d56717f644b33bc50da",
    module="verify.face.mtcnn_torch:onet",
    example_shape=(1, 3, 48, 48),
    dynamic_dims=(0,),
)

STAGE_BATCH = 512
"""Crops per R-net or O-net call (facenet-pytorch's ``fixed_batch_process``)."""

TORCHVISION_VANILLA_NMS = 4000
"""torchvision's ``batched_nms`` on the CPU suppresses class by class above this many box
coordinates, else in one pass over boxes shifted apart by class; both are reproduced."""


def _bins(starts: np.ndarray, lengths: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive-pooling bins ``[floor(i L / size), ceil((i + 1) L / size))`` of K ranges: ``(K, size)`` each."""
    index = np.arange(size)
    first = starts[:, None] + (index * lengths[:, None]) // size
    last = starts[:, None] + ((index + 1) * lengths[:, None] + size - 1) // size
    return first, last


class OutsideRegion(Exception):
    """A crop reaches beyond the part of the image a sampler holds."""


class IntegralSampler:
    """Area resampling of ``(N, H, W, 3)`` uint8 images (and of regions of them) via integral images.

    The images may be a part of larger ones whose first pixel is at ``origin`` ``(row, column)``:
    crops are then asked for in the larger images' pixels, and one reaching beyond the part held
    raises :class:`OutsideRegion`. Sums are exact integers, so a crop is the same, bit for bit,
    from any part that holds it.
    """

    def __init__(self, images: np.ndarray, origin: tuple[int, int] = (0, 0)) -> None:
        # exact integer sums; 32 bits hold them for images up to 8.4 million pixels
        depth = cv2.CV_32S if images.shape[1] * images.shape[2] * 255 < 2**31 else cv2.CV_64F
        sums = [cv2.integral(image, sdepth=depth) for image in images]
        self.sums = sums[0][None] if len(sums) == 1 else np.stack(sums)  # (N, H+1, W+1, 3)
        self.count, self.height, self.width = len(images), images.shape[1], images.shape[2]
        self.origin = origin

    def resize(self, size: tuple[int, int]) -> np.ndarray:
        """Every image area-resized to ``size``: ``(N, 3, h, w)`` float32 (a channels-last view)."""
        (row_first, row_last), (col_first, col_last) = (
            _bins(np.zeros(1, np.int64), np.array([length]), side) for length, side in zip((self.height, self.width), size)
        )
        rows = self.sums.take(row_last[0], axis=1) - self.sums.take(row_first[0], axis=1)  # (N, h, W + 1, 3)
        totals = rows.take(col_last[0], axis=2) - rows.take(col_first[0], axis=2)
        areas = (row_last[0] - row_first[0])[:, None] * (col_last[0] - col_first[0])[None, :]
        return (totals / areas[None, :, :, None]).astype(np.float32).transpose(0, 3, 1, 2)

    def crops(self, image_inds: np.ndarray, top: np.ndarray, bottom: np.ndarray, left: np.ndarray, right: np.ndarray,
              side: int) -> np.ndarray:
        """Regions ``[top, bottom) x [left, right)`` of the given images area-resized to ``side`` px:
        ``(K, 3, side, side)`` float32.

        Raises:
            OutsideRegion: a region reaches beyond the part of the images held (see the class).
        """
        top, bottom = top - self.origin[0], bottom - self.origin[0]
        left, right = left - self.origin[1], right - self.origin[1]
        if len(top) and (min(top.min(), left.min()) < 0 or bottom.max() > self.height or right.max() > self.width):
            raise OutsideRegion(f"a crop reaches beyond the {self.height}x{self.width} part sampled")
        (row_first, row_last), (col_first, col_last) = _bins(top, bottom - top, side), _bins(left, right - left, side)
        _, rows_total, cols_total, channels = self.sums.shape
        flat = self.sums.reshape(-1, channels)  # one gather by flat index is 3x faster than by (n, y, x)
        image_rows = image_inds[:, None] * rows_total

        def corner(r: np.ndarray, c: np.ndarray) -> np.ndarray:
            return flat.take(((image_rows + r) * cols_total)[:, :, None] + c[:, None, :], axis=0)

        totals = corner(row_last, col_last) - corner(row_first, col_last) - corner(row_last, col_first)
        totals += corner(row_first, col_first)
        areas = (row_last - row_first)[:, :, None] * (col_last - col_first)[:, None, :]
        return (totals / areas[..., None]).astype(np.float32).transpose(0, 3, 1, 2)


@dataclass(frozen=True)
class Cascade:
    """MTCNN's three networks loaded for one device, with facenet-pytorch's thresholds and factor."""

    pnet: Network
    rnet: Network
    onet: Network
    device: Device
    thresholds: tuple[float, float, float] = THRESHOLDS
    factor: float = SCALE_FACTOR

    @classmethod
    def load(cls, device: Device, cpu_runtime: str = "openvino", cpu_threads: int | None = None) -> Cascade:
        """The networks where :func:`verify.runtime.load_network` puts them; the P-net on its
        first use (only :func:`detect_faces` needs it, :func:`refine_faces` does not)."""
        rnet, onet = (load_network(spec, device, cpu_runtime, cpu_threads) for spec in (RNET, ONET))
        return cls(LazyNetwork(PNET, device, cpu_runtime, cpu_threads), rnet, onet, device)

    def sampler(self, images: np.ndarray, origin: tuple[int, int] = (0, 0)) -> Any:
        """The resampler of ``(N, H, W, 3)`` uint8 images for this device (a part at ``origin`` of
        larger images: on the CPU only, see :class:`IntegralSampler`)."""
        if self.device.type == "cpu":
            return IntegralSampler(images, origin)
        if origin != (0, 0):
            raise ValueError("only the CPU sampler takes a part of an image")
        from verify.face.mtcnn_torch import TorchSampler

        return TorchSampler(images, self.device.torch())


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """Scales of the pyramid: the first maps ``min_face_size`` px to the P-net's 12 px window."""
    scale = PNET_WINDOW / min_face_size
    shorter = min(height, width) * scale
    scales = []
    while shorter >= PNET_WINDOW:
        scales.append(scale)
        scale *= factor
        shorter *= factor
    return scales


# --- facenet-pytorch's box arithmetic, in float32 as torch computes it --------------------------------------

def generate_bounding_boxes(reg: np.ndarray, probs: np.ndarray, scale: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """P-net windows of probability ``probs`` ``(N, H, W)`` at least ``threshold``: boxes ``(K, 9)``
    (x1, y1, x2, y2, probability, 4 offsets from ``reg`` ``(N, 4, H, W)``) in image pixels, and
    the image index of each."""
    mask = probs >= threshold
    image_inds, rows, cols = np.nonzero(mask)
    offsets = reg.transpose(0, 2, 3, 1)[mask]
    corner = np.stack([cols, rows], axis=1).astype(np.float32)
    first = np.floor((2 * corner + 1) / np.float32(scale))
    last = np.floor((2 * corner + PNET_WINDOW) / np.float32(scale))
    return np.concatenate([first, last, probs[mask][:, None], offsets], axis=1), image_inds


def square_boxes(boxes: np.ndarray) -> np.ndarray:
    """Boxes ``(K, >=4)`` made square around their centres, side the longer one (``rerec``)."""
    boxes = boxes.copy()
    height, width = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    side = np.maximum(width, height)
    boxes[:, 0] = boxes[:, 0] + width * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + height * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side[:, None]
    return boxes


def regress_boxes(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Boxes moved by the networks' offsets ``reg`` ``(K, 4)``, in units of the box size (``bbreg``)."""
    boxes = boxes.copy()
    width = boxes[:, 2] - boxes[:, 0] + 1
    height = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] = np.stack([boxes[:, 0] + reg[:, 0] * width, boxes[:, 1] + reg[:, 1] * height,
                             boxes[:, 2] + reg[:, 2] * width, boxes[:, 3] + reg[:, 3] * height], axis=1)
    return boxes


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Truncated box corners clipped to the image, 1-based: ``y, ey, x, ex`` (``pad``)."""
    corners = np.trunc(boxes[:, :4]).astype(np.int32)
    x, y = np.maximum(corners[:, 0], 1), np.maximum(corners[:, 1], 1)
    ex, ey = np.minimum(corners[:, 2], width), np.minimum(corners[:, 3], height)
    return y, ey, x, ex


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """torchvision's ``nms`` on the CPU: indices of the boxes kept, by decreasing score (ties in
    index order)."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        keep.append(i)
        width = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        height = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = width * height
        order = rest[~(inter / (areas[i] + areas[rest] - inter) > iou_threshold)]  # NaN overlaps stay, as in torchvision
    return np.asarray(keep, np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, iou_threshold: float) -> np.ndarray:
    """torchvision's ``batched_nms`` on the CPU: :func:`nms` within each image index of ``idxs``."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if boxes.size <= TORCHVISION_VANILLA_NMS:
        shifted = boxes + (idxs.astype(np.float32) * (boxes.max() + np.float32(1)))[:, None]
        return nms(shifted, scores, iou_threshold)
    keep = np.zeros(len(boxes), bool)
    for image in np.unique(idxs):
        members = np.nonzero(idxs == image)[0]
        keep[members[nms(boxes[members], scores[members], iou_threshold)]] = True
    kept = np.nonzero(keep)[0]
    return kept[np.argsort(-scores[kept], kind="stable")]


def nms_min(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, threshold: float) -> np.ndarray:
    """facenet-pytorch's ``batched_nms_numpy(..., "Min")``: overlap over the smaller box, 1-pixel inclusive."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    shifted = boxes + (idxs.astype(np.float32) * (boxes.max() + 1))[:, None]
    x1, y1, x2, y2 = (shifted[:, k].copy() for k in range(4))
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size > 0:
        i, rest = order[-1], order[:-1]
        keep.append(i)
        width = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        height = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[np.nonzero(width * height / np.minimum(areas[i], areas[rest]) <= threshold)]
    return np.asarray(keep, np.int64)


# --- the three stages ------------------------------------------------------------------------------------

def _propose(sampler, shape: tuple[int, int], cascade: Cascade, scales: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1: P-net over every pyramid level; candidate boxes ``(K, 5)`` and their image indices."""
    height, width = shape
    boxes, image_inds, picks, offset = [], [], [], 0
    for scale in scales:
        reg, probs = cascade.pnet(sampler.resize((int(height * scale + 1), int(width * scale + 1))))
        level_boxes, level_inds = generate_bounding_boxes(reg, probs[:, 1], scale, cascade.thresholds[0])
        boxes.append(level_boxes)
        image_inds.append(level_inds)
        picks.append(batched_nms(level_boxes[:, :4], level_boxes[:, 4], level_inds, 0.5) + offset)
        offset += len(level_boxes)
    pick = np.concatenate(picks)
    boxes, image_inds = np.concatenate(boxes)[pick], np.concatenate(image_inds)[pick]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    corners = [boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
               boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh]  # fmt: skip
    return square_boxes(np.stack([*corners, boxes[:, 4]], axis=1)), image_inds


def _crops(sampler, shape: tuple[int, int], boxes: np.ndarray, image_inds: np.ndarray, side: int):
    """``(K, 3, side, side)`` crops of the boxes clipped to the image, as facenet-pytorch cuts them."""
    y, ey, x, ex = clip_boxes(boxes, shape[1], shape[0])
    valid = (ey > y - 1) & (ex > x - 1)
    y, ey, x, ex = (np.asarray(v[valid], np.int64) for v in (y, ey, x, ex))
    return sampler.crops(image_inds[valid], y - 1, ey, x - 1, ex, side)


def _stage(network: Network, crops) -> tuple[np.ndarray, ...]:
    """``network``'s outputs for every crop, :data:`STAGE_BATCH` at a time."""
    parts = [network(crops[start : start + STAGE_BATCH]) for start in range(0, len(crops), STAGE_BATCH)]
    return tuple(np.concatenate(outputs) for outputs in zip(*parts))


def _refine(sampler, shape, boxes: np.ndarray, image_inds: np.ndarray, cascade: Cascade):
    """Stage 2: R-net rescoring and box regression."""
    reg, scores = _stage(cascade.rnet, _crops(sampler, shape, boxes, image_inds, 24))
    score = scores[:, 1]
    keep = score > cascade.thresholds[1]
    boxes = np.concatenate([boxes[keep, :4], score[keep][:, None]], axis=1)
    image_inds, reg = image_inds[keep], reg[keep]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    return square_boxes(regress_boxes(boxes[pick], reg[pick])), image_inds[pick]


def _output(sampler, shape, boxes: np.ndarray, image_inds: np.ndarray, cascade: Cascade):
    """Stage 3: O-net scores, boxes and five landmarks ``(K, 5, 2)``."""
    reg, points, scores = _stage(cascade.onet, _crops(sampler, shape, boxes, image_inds, 48))
    score = scores[:, 1]
    keep = score > cascade.thresholds[2]
    points = points[keep].T
    boxes = np.concatenate([boxes[keep, :4], score[keep][:, None]], axis=1)
    image_inds, reg = image_inds[keep], reg[keep]
    widths, heights = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    points_x = widths[None, :] * points[:5, :] + boxes[None, :, 0] - 1
    points_y = heights[None, :] * points[5:10, :] + boxes[None, :, 1] - 1
    points = np.stack((points_x, points_y)).transpose(2, 1, 0)
    boxes = regress_boxes(boxes, reg)
    pick = nms_min(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    return boxes[pick], image_inds[pick], points[pick]


def detect_faces(images: np.ndarray, cascade: Cascade, scales: list[float]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Faces in ``(N, H, W, 3)`` uint8 RGB images, searched at the given pyramid ``scales``.

    Returns, per image, boxes ``(K, 5)`` (x1, y1, x2, y2, probability) and landmarks ``(K, 5, 2)``,
    as facenet-pytorch's ``MTCNN.detect`` finds them with the pyramid of :func:`pyramid_scales`.
    """
    shape = images.shape[1:3]
    sampler = cascade.sampler(images)
    boxes, image_inds = _propose(sampler, shape, cascade, scales)
    points = np.zeros((0, 5, 2), np.float32)
    if len(boxes) > 0:
        boxes, image_inds = _refine(sampler, shape, boxes, image_inds, cascade)
    if len(boxes) > 0:
        boxes, image_inds, points = _output(sampler, shape, boxes, image_inds, cascade)
    return [(boxes[image_inds == i], points[image_inds == i]) for i in range(len(images))]


def refine_faces(image: np.ndarray, boxes: np.ndarray, cascade: Cascade, whole_shape: tuple[int, int] | None = None,
                 origin: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """MTCNN's R-net and O-net stages seeded with ``boxes`` ``(K, 4)`` (x1, y1, x2, y2) from another
    detector instead of the P-net's proposals, in one ``(H, W, 3)`` uint8 RGB image, or in a part
    of it at ``origin`` (row, column) of an image of ``whole_shape`` (boxes and results in the whole
    image's pixels).

    Returns the faces both stages accept: boxes ``(K', 5)`` with probabilities and landmarks
    ``(K', 5, 2)``, as :func:`detect_faces` returns them.

    Raises:
        OutsideRegion: a part of the image was given and a crop reaches beyond it.
    """
    sampler = cascade.sampler(image[None], origin)
    shape = whole_shape or image.shape[:2]
    seeds = np.hstack([boxes, np.ones((len(boxes), 1))]).astype(np.float32)
    found, image_inds = _refine(sampler, shape, square_boxes(seeds), np.zeros(len(boxes), np.int64), cascade)
    points = np.zeros((0, 5, 2), np.float32)
    if len(found) > 0:
        found, image_inds, points = _output(sampler, shape, found, image_inds, cascade)
    return found, points
