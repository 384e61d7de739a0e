"""MTCNN's three-stage cascade (facenet-pytorch's ``detect_face``) with faster resampling on the CPU.

The P/R/O-nets, thresholds and every step are facenet-pytorch 2.5.3's (MIT licence,
``facenet_pytorch/models/utils/detect_face.py``); only how the pyramid levels and the R/O-net
crops are resampled differs. facenet-pytorch calls ``interpolate(mode="area")`` (adaptive average
pooling) once per level and once per candidate box, which on the CPU costs as much as the networks.
:class:`IntegralSampler` computes the same bin means from one integral image per frame, every
level in one gather and every box's crop in one vectorised gather; the results agree with
facenet-pytorch's to float32 rounding. On CUDA the original resampling is kept (it is fast there).
The networks run where :mod:`verify.runtime` puts them (OpenVINO on the CPU), with the pixel
scaling folded into them (:class:`Normalised`); which pyramid levels to search is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import (
    batched_nms_numpy,
    bbreg,
    fixed_batch_process,
    generateBoundingBox,
    imresample,
    pad,
    rerec,
)
from torchvision.ops.boxes import batched_nms

from verify.runtime import Network, compile_network

PNET_WINDOW = 12
"""Side (px) of the P-net's window: a face of ``min_face_size`` px is scaled to this size."""


def _bins(starts: np.ndarray, lengths: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive-pooling bins ``[floor(i L / size), ceil((i + 1) L / size))`` of K ranges: ``(K, size)`` each."""
    index = np.arange(size)
    first = starts[:, None] + (index * lengths[:, None]) // size
    last = starts[:, None] + ((index + 1) * lengths[:, None] + size - 1) // size
    return first, last


class IntegralSampler:
    """Area resampling of ``(N, H, W, 3)`` uint8 images (and of regions of them) via integral images."""

    def __init__(self, images: np.ndarray) -> None:
        # exact integer sums; 32 bits hold them for images up to 8.4 million pixels
        depth = cv2.CV_32S if images.shape[1] * images.shape[2] * 255 < 2**31 else cv2.CV_64F
        sums = [cv2.integral(image, sdepth=depth) for image in images]
        self.sums = sums[0][None] if len(sums) == 1 else np.stack(sums)  # (N, H+1, W+1, 3)
        self.count, self.height, self.width = len(images), images.shape[1], images.shape[2]

    def resize(self, size: tuple[int, int]) -> torch.Tensor:
        """Every image area-resized to ``size``: ``(N, 3, h, w)`` float32, channels-last memory order."""
        (row_first, row_last), (col_first, col_last) = (
            _bins(np.zeros(1, np.int64), np.array([length]), side) for length, side in zip((self.height, self.width), size)
        )
        rows = self.sums.take(row_last[0], axis=1) - self.sums.take(row_first[0], axis=1)  # (N, h, W + 1, 3)
        totals = rows.take(col_last[0], axis=2) - rows.take(col_first[0], axis=2)
        areas = (row_last[0] - row_first[0])[:, None] * (col_last[0] - col_first[0])[None, :]
        return torch.from_numpy((totals / areas[None, :, :, None]).astype(np.float32)).permute(0, 3, 1, 2)

    def crops(self, image_inds: np.ndarray, top: np.ndarray, bottom: np.ndarray, left: np.ndarray, right: np.ndarray,
              side: int) -> torch.Tensor:
        """Regions ``[top, bottom) x [left, right)`` of the given images area-resized to ``side`` px."""
        rows = _bins(top, bottom - top, side)
        cols = _bins(left, right - left, side)
        return self._means(image_inds, rows, cols)

    def _means(self, image_inds: np.ndarray, rows, cols) -> torch.Tensor:
        (row_first, row_last), (col_first, col_last) = rows, cols
        _, rows_total, cols_total, channels = self.sums.shape
        flat = self.sums.reshape(-1, channels)  # one gather by flat index is 3x faster than by (n, y, x)
        image_rows = image_inds[:, None] * rows_total

        def corner(r: np.ndarray, c: np.ndarray) -> np.ndarray:
            return flat.take(((image_rows + r) * cols_total)[:, :, None] + c[:, None, :], axis=0)

        totals = corner(row_last, col_last) - corner(row_first, col_last) - corner(row_last, col_first)
        totals += corner(row_first, col_first)
        areas = (row_last - row_first)[:, :, None] * (col_last - col_first)[:, None, :]
        means = (totals / areas[..., None]).astype(np.float32)
        return torch.from_numpy(means).permute(0, 3, 1, 2)


class TorchSampler:
    """facenet-pytorch's own resampling (``interpolate(mode="area")``), for CUDA tensors."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images.permute(0, 3, 1, 2).float()

    def resize(self, size: tuple[int, int]) -> torch.Tensor:
        return imresample(self.images, size)

    def crops(self, image_inds, top, bottom, left, right, side: int) -> torch.Tensor:
        return torch.cat([
            imresample(self.images[image_inds[k], :, top[k] : bottom[k], left[k] : right[k]].unsqueeze(0), (side, side))
            for k in range(len(image_inds))
        ])  # fmt: skip


class Normalised(torch.nn.Module):
    """An MTCNN network taking raw 0..255 pixels: facenet-pytorch's scaling runs inside it."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor):
        return self.net((pixels - 127.5) * 0.0078125)


@dataclass(frozen=True)
class Cascade:
    """MTCNN's three networks compiled for one device, with facenet-pytorch's thresholds and factor."""

    pnet: Network
    rnet: Network
    onet: Network
    thresholds: tuple[float, float, float]
    factor: float
    device: torch.device

    @classmethod
    def load(cls, device: torch.device, cpu_runtime: str = "openvino", cpu_threads: int | None = None) -> "Cascade":
        """facenet-pytorch's MTCNN networks (their weights ship inside the package: nothing is downloaded)."""
        mtcnn = MTCNN(device=device)

        def compiled(net: torch.nn.Module, side: int, dynamic_dims: tuple[int, ...]) -> Network:
            example = torch.zeros(1, 3, side, side, device=device)
            return compile_network(Normalised(net), example, dynamic_dims, device, cpu_runtime, cpu_threads)

        return cls(
            pnet=compiled(mtcnn.pnet, PNET_WINDOW * 2, (0, 2, 3)),
            rnet=compiled(mtcnn.rnet, 24, (0,)),
            onet=compiled(mtcnn.onet, 48, (0,)),
            thresholds=tuple(mtcnn.thresholds),
            factor=mtcnn.factor,
            device=device,
        )


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


def _propose(sampler, shape: tuple[int, int], cascade: Cascade, scales: list[float]):
    """Stage 1: P-net over every pyramid level; candidate boxes ``(K, 5)`` and their image indices."""
    height, width = shape
    boxes, image_inds, picks, offset = [], [], [], 0
    for scale in scales:
        level = sampler.resize((int(height * scale + 1), int(width * scale + 1)))
        reg, probs = cascade.pnet(level.to(cascade.device))
        level_boxes, level_inds = generateBoundingBox(reg, probs[:, 1], scale, cascade.thresholds[0])
        boxes.append(level_boxes)
        image_inds.append(level_inds)
        picks.append(batched_nms(level_boxes[:, :4], level_boxes[:, 4], level_inds, 0.5) + offset)
        offset += level_boxes.shape[0]
    pick = torch.cat(picks)
    boxes, image_inds = torch.cat(boxes)[pick], torch.cat(image_inds)[pick]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    corners = [boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
               boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh]  # fmt: skip
    return rerec(torch.stack([*corners, boxes[:, 4]]).permute(1, 0)), image_inds


def _crops(sampler, shape: tuple[int, int], boxes: torch.Tensor, image_inds: torch.Tensor, side: int) -> torch.Tensor:
    """``(K, 3, side, side)`` crops of the boxes clipped to the image, as facenet-pytorch cuts them."""
    y, ey, x, ex = pad(boxes, shape[1], shape[0])
    valid = (ey > y - 1) & (ex > x - 1)
    inds = image_inds.cpu().numpy()[valid]
    y, ey, x, ex = (np.asarray(v[valid], np.int64) for v in (y, ey, x, ex))
    return sampler.crops(inds, y - 1, ey, x - 1, ex, side).to(boxes.device)


def _refine(sampler, shape, boxes, image_inds, cascade: Cascade):
    """Stage 2: R-net rescoring and box regression."""
    reg, scores = fixed_batch_process(_crops(sampler, shape, boxes, image_inds, 24), cascade.rnet)
    score = scores[:, 1]
    keep = score > cascade.thresholds[1]
    boxes = torch.cat((boxes[keep, :4], score[keep].unsqueeze(1)), dim=1)
    image_inds, reg = image_inds[keep], reg[keep]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    return rerec(bbreg(boxes[pick], reg[pick])), image_inds[pick]


def _output(sampler, shape, boxes, image_inds, cascade: Cascade):
    """Stage 3: O-net scores, boxes and five landmarks ``(K, 5, 2)``."""
    reg, points, scores = fixed_batch_process(_crops(sampler, shape, boxes, image_inds, 48), cascade.onet)
    score = scores[:, 1]
    keep = score > cascade.thresholds[2]
    points = points[keep].permute(1, 0)
    boxes = torch.cat((boxes[keep, :4], score[keep].unsqueeze(1)), dim=1)
    image_inds, reg = image_inds[keep], reg[keep]
    widths, heights = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    points_x = widths.repeat(5, 1) * points[:5, :] + boxes[:, 0].repeat(5, 1) - 1
    points_y = heights.repeat(5, 1) * points[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
    points = torch.stack((points_x, points_y)).permute(2, 1, 0)
    boxes = bbreg(boxes, reg)
    pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
    return boxes[pick], image_inds[pick], points[pick]


@torch.inference_mode()
def detect_faces(
    images: np.ndarray, cascade: Cascade, scales: list[float]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Faces in ``(N, H, W, 3)`` uint8 RGB images, searched at the given pyramid ``scales``.

    Returns, per image, boxes ``(K, 5)`` (x1, y1, x2, y2, probability) and landmarks ``(K, 5, 2)``,
    as facenet-pytorch's ``MTCNN.detect`` finds them with the pyramid of :func:`pyramid_scales`.
    """
    shape = images.shape[1:3]
    device = cascade.device
    if device.type == "cpu":
        sampler = IntegralSampler(images)
    else:
        sampler = TorchSampler(torch.as_tensor(images if images.flags.writeable else images.copy(), device=device))
    boxes, image_inds = _propose(sampler, shape, cascade, scales)
    points = torch.zeros(0, 5, 2, device=device)
    if len(boxes) > 0:
        boxes, image_inds = _refine(sampler, shape, boxes, image_inds, cascade)
    if len(boxes) > 0:
        boxes, image_inds, points = _output(sampler, shape, boxes, image_inds, cascade)
    boxes, points, image_inds = boxes.cpu().numpy(), points.cpu().numpy(), image_inds.cpu().numpy()
    return [(boxes[image_inds == i], points[image_inds == i]) for i in range(len(images))]


@torch.inference_mode()
def refine_faces(image: np.ndarray, boxes: np.ndarray, cascade: Cascade) -> tuple[np.ndarray, np.ndarray]:
    """MTCNN's R-net and O-net stages seeded with ``boxes`` ``(K, 4)`` (x1, y1, x2, y2) from another
    detector instead of the P-net's proposals, in one ``(H, W, 3)`` uint8 RGB image.

    Returns the faces both stages accept: boxes ``(K', 5)`` with probabilities and landmarks
    ``(K', 5, 2)``, as :func:`detect_faces` returns them.
    """
    device = cascade.device
    if device.type == "cpu":
        sampler = IntegralSampler(image[None])
    else:
        sampler = TorchSampler(torch.as_tensor(image[None] if image.flags.writeable else image[None].copy(), device=device))
    seeds = torch.as_tensor(np.hstack([boxes, np.ones((len(boxes), 1))]), dtype=torch.float32, device=device)
    boxes_t, image_inds = _refine(sampler, image.shape[:2], rerec(seeds), torch.zeros(len(boxes), dtype=torch.int64, device=device), cascade)
    points = torch.zeros(0, 5, 2, device=device)
    if len(boxes_t) > 0:
        boxes_t, image_inds, points = _output(sampler, image.shape[:2], boxes_t, image_inds, cascade)
    return boxes_t.cpu().numpy(), points.cpu().numpy()
