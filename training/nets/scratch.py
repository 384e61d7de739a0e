"""Small encoders trained from scratch on raw front-end outputs (the classic few-shot baselines).

* :class:`FaceCNN`: ``(N, 1, 64, 64)`` greyscale aligned faces, pixel values in ``[0, 1]``.
* :class:`VoiceTDNN`: ``(N, 40, T)`` log-mel frames (10 ms hop), statistics pooling over time.

Both return ``(N, dim)`` L2-normalised embeddings, so the Siamese (contrastive) and prototypical
losses of :mod:`training.nets.siamese` and :mod:`training.nets.protonet` apply unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FACE_SIDE = 64  # pixels
VOICE_BANDS = 40  # mel bands
VOICE_CROP_FRAMES = 160  # frames per training crop (1.6 s)


def _conv_block(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class FaceCNN(nn.Module):
    """Four conv blocks (64 -> 4 px) and a linear layer: ``(N, 1, 64, 64)`` -> ``(N, dim)`` unit vectors."""

    def __init__(self, dim: int = 128, width: int = 16) -> None:
        super().__init__()
        self.dim, self.width = dim, width
        self.features = nn.Sequential(
            _conv_block(1, width), _conv_block(width, 2 * width), _conv_block(2 * width, 3 * width),
            _conv_block(3 * width, 4 * width),
        )
        self.project = nn.Linear(4 * width, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 1:
            raise ValueError(f"expected (N, 1, H, W) greyscale images, got {tuple(images.shape)}")
        normalised = (images - 0.5) / 0.25
        pooled = self.features(normalised).mean(dim=(2, 3))
        return F.normalize(self.project(pooled), dim=-1)


class VoiceTDNN(nn.Module):
    """Dilated 1-D convolutions over log-mel frames, mean+std pooling: ``(N, 40, T)`` -> ``(N, dim)``."""

    def __init__(self, dim: int = 128, width: int = 128) -> None:
        super().__init__()
        self.dim, self.width = dim, width
        layers: list[nn.Module] = []
        channels = VOICE_BANDS
        for kernel, dilation in ((5, 1), (3, 2), (3, 3), (1, 1)):
            layers += [nn.Conv1d(channels, width, kernel, dilation=dilation), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            channels = width
        self.frames = nn.Sequential(*layers)
        self.project = nn.Linear(2 * width, dim)

    def forward(self, log_mels: torch.Tensor) -> torch.Tensor:
        if log_mels.dim() != 3 or log_mels.shape[1] != VOICE_BANDS:
            raise ValueError(f"expected (N, {VOICE_BANDS}, T) log-mel frames, got {tuple(log_mels.shape)}")
        hidden = self.frames(log_mels)
        pooled = torch.cat([hidden.mean(dim=2), hidden.std(dim=2)], dim=1)
        return F.normalize(self.project(pooled), dim=-1)


def scratch_encoder(modality: str, dim: int = 128) -> nn.Module:
    """The from-scratch encoder of a modality (``"face"`` or ``"voice"``)."""
    if modality == "face":
        return FaceCNN(dim)
    if modality == "voice":
        return VoiceTDNN(dim)
    raise ValueError(f"unknown modality {modality!r}: use 'face' or 'voice'")
