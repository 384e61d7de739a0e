"""MTCNN's PyTorch side: facenet-pytorch's networks with the pixel scaling folded in, and the
resampling that runs on CUDA tensors.

The networks' weights ship inside facenet-pytorch (nothing is downloaded). On the CPU they run
from the IRs exported from these modules (:mod:`verify.face.mtcnn`), so this module is imported
only on CUDA, with ``cpu_runtime="torch"``, and by the export script and the tests.
"""

from __future__ import annotations

import numpy as np
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import imresample


class Normalised(torch.nn.Module):
    """An MTCNN network taking raw 0..255 pixels: facenet-pytorch's scaling runs inside it."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor):
        return self.net((pixels - 127.5) * 0.0078125)


def pnet() -> Normalised:
    """facenet-pytorch's P-net on raw pixels."""
    return Normalised(MTCNN(device="cpu").pnet).eval()


def rnet() -> Normalised:
    """facenet-pytorch's R-net on raw pixels."""
    return Normalised(MTCNN(device="cpu").rnet).eval()


def onet() -> Normalised:
    """facenet-pytorch's O-net on raw pixels."""
    return Normalised(MTCNN(device="cpu").onet).eval()


class TorchSampler:
    """facenet-pytorch's own resampling (``interpolate(mode="area")``) of ``(N, H, W, 3)`` images on
    their device, for CUDA: the same interface as :class:`verify.face.mtcnn.IntegralSampler`."""

    def __init__(self, images: np.ndarray, device: torch.device) -> None:
        pixels = torch.as_tensor(images if images.flags.writeable else images.copy(), device=device)
        self.images = pixels.permute(0, 3, 1, 2).float()

    def resize(self, size: tuple[int, int]) -> torch.Tensor:
        """Every image area-resized to ``size``: ``(N, 3, h, w)`` float32 on the device."""
        return imresample(self.images, size)

    def crops(self, image_inds: np.ndarray, top: np.ndarray, bottom: np.ndarray, left: np.ndarray,
              right: np.ndarray, side: int) -> torch.Tensor:
        """Regions ``[top, bottom) x [left, right)`` of the given images area-resized to ``side`` px."""
        return torch.cat([
            imresample(self.images[image_inds[k], :, top[k] : bottom[k], left[k] : right[k]].unsqueeze(0), (side, side))
            for k in range(len(image_inds))
        ])  # fmt: skip
