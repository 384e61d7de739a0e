"""PyTorch port of Intel's ``face-reidentification-retail-0095`` face embedding network.

Contract (same as the OpenVINO IR it was converted from):

- Input: ``(N, 3, 128, 128)`` float32, **BGR** channel order, raw pixel values 0..255 (no mean/std
  normalisation by the caller; the per-channel scale and shift live inside the module as buffers).
  The face must be aligned by a similarity transform of five landmarks onto
  :data:`REID_LANDMARK_TEMPLATE`. Greyscale faces work when replicated to three channels.
- Output: ``(N, 256)`` raw, un-normalised embeddings; L2-normalise them and compare with cosine
  similarity.

Architecture: a MobileNetV2-style backbone of 3x3 inverted residual blocks (1x1 expand, 3x3
depthwise, 1x1 linear projection) with squeeze-excitation on the projected output and single-slope
PReLU activations, then a global depthwise 8x8 convolution and a 1x1 convolution to 256-d. Batch
norm is already folded into the convolution weights and biases of the source IR.

Weights: Apache-2.0, Intel Corporation, converted to PyTorch by ``scripts/convert_face_reid.py``
(licence in ``assets/models/face-reidentification-retail-0095.LICENSE``). On the CPU the network
runs from its OpenVINO IR, exported from this module (:mod:`verify.face.reid`); this module runs
it on CUDA.
"""

from __future__ import annotations

import torch
from torch import nn

from verify.face.reid import FACE_REID_EMBEDDING_DIM, FACE_REID_INPUT_SIZE, FACE_REID_WEIGHTS
from verify.weights import load_into

# (expanded channels, output channels, stride) of each inverted residual block, in order.
_BLOCKS: tuple[tuple[int, int, int], ...] = (
    (128, 64, 2), (128, 64, 1), (128, 64, 1), (128, 64, 1), (128, 64, 1),  # 64 -> 32 px
    (256, 128, 2), (256, 128, 1), (256, 128, 1), (256, 128, 1), (256, 128, 1), (256, 128, 1),
    (256, 128, 1),  # 32 -> 16 px
    (512, 128, 2), (256, 128, 1), (256, 128, 1),  # 16 -> 8 px
)  # fmt: skip
_STEM_CHANNELS = 64
_HEAD_CHANNELS = 512
_SE_REDUCTION = 8


class ConvPReLU(nn.Sequential):
    """Convolution with bias (batch norm folded in) followed by a single-slope PReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1
    ) -> None:
        """Build the layer; padding keeps the spatial size for stride 1 (``kernel_size // 2``)."""
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups
        )
        self.act = nn.PReLU(num_parameters=1)


class SqueezeExcitation(nn.Module):
    """Channel gating: global average pool, 1x1 reduce, PReLU, 1x1 expand, sigmoid, rescale."""

    def __init__(self, channels: int, reduction: int = _SE_REDUCTION) -> None:
        """Build the gate for ``channels`` channels squeezed by ``reduction``."""
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // reduction, 1)
        self.act = nn.PReLU(num_parameters=1)
        self.expand = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rescale each channel of ``x`` ``(N, C, H, W)`` by its gate in (0, 1)."""
        gate = x.mean(dim=(2, 3), keepdim=True)
        gate = torch.sigmoid(self.expand(self.act(self.reduce(gate))))
        return x * gate


class InvertedResidual(nn.Module):
    """1x1 expand + PReLU, 3x3 depthwise + PReLU, 1x1 linear projection, squeeze-excitation.

    The identity shortcut is used when the block keeps both stride and channel count.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, stride: int) -> None:
        """Build one block; ``stride`` (1 or 2) is applied by the depthwise convolution."""
        super().__init__()
        self.expand = ConvPReLU(in_channels, hidden_channels, 1)
        self.depthwise = ConvPReLU(hidden_channels, hidden_channels, 3, stride=stride, groups=hidden_channels)
        self.project = nn.Conv2d(hidden_channels, out_channels, 1)
        self.se = SqueezeExcitation(out_channels)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, C_in, H, W)`` to ``(N, C_out, H / stride, W / stride)``."""
        out = self.se(self.project(self.depthwise(self.expand(x))))
        return x + out if self.use_residual else out


class FaceReidNet(nn.Module):
    """face-reidentification-retail-0095 as an explicit module (about 1.1 M parameters).

    Load the shipped weights with
    ``verify.weights.load_into(FaceReidNet(), FACE_REID_WEIGHTS)``.
    """

    def __init__(self) -> None:
        """Build the network with random weights; load the shipped ones with ``load_into``."""
        super().__init__()
        # Per-channel input scaling of the IR: x * scale + shift, for BGR 0..255 pixels.
        self.register_buffer("input_scale", torch.ones(1, 3, 1, 1))
        self.register_buffer("input_shift", torch.zeros(1, 3, 1, 1))
        self.stem = ConvPReLU(3, _STEM_CHANNELS, 3, stride=2)
        self.stem_depthwise = ConvPReLU(_STEM_CHANNELS, _STEM_CHANNELS, 3, groups=_STEM_CHANNELS)
        blocks = []
        in_channels = _STEM_CHANNELS
        for hidden_channels, out_channels, stride in _BLOCKS:
            blocks.append(InvertedResidual(in_channels, hidden_channels, out_channels, stride))
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head_expand = ConvPReLU(in_channels, _HEAD_CHANNELS, 1)
        final_side = FACE_REID_INPUT_SIZE // 16
        # Global depthwise convolution: one 8x8 kernel per channel, no activation after it.
        self.global_depthwise = nn.Conv2d(_HEAD_CHANNELS, _HEAD_CHANNELS, final_side, groups=_HEAD_CHANNELS)
        self.embedding = nn.Conv2d(_HEAD_CHANNELS, FACE_REID_EMBEDDING_DIM, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed aligned faces.

        Args:
            x: ``(N, 3, 128, 128)`` float32, BGR, pixel values 0..255.

        Returns:
            ``(N, 256)`` raw (un-normalised) embeddings.

        Raises:
            ValueError: ``x`` does not have shape ``(N, 3, 128, 128)``.
        """
        expected = (3, FACE_REID_INPUT_SIZE, FACE_REID_INPUT_SIZE)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"FaceReidNet expects input of shape (N, 3, 128, 128), got {tuple(x.shape)}")
        x = x * self.input_scale + self.input_shift
        x = self.blocks(self.stem_depthwise(self.stem(x)))
        x = self.global_depthwise(self.head_expand(x))
        return self.embedding(x).flatten(1)


def shipped_reid_net() -> FaceReidNet:
    """The network with the shipped weights, in eval mode."""
    return load_into(FaceReidNet(), FACE_REID_WEIGHTS)
