"""Siamese network over backbone embeddings: shared-weight embedding head + contrastive loss.

Hadsell, Chopra and LeCun (2006), "Dimensionality reduction by learning an invariant mapping":
both samples of a pair go through the same network ``G_W``; the energy is the Euclidean distance
``D = ||G_W(x1) - G_W(x2)||``; the loss pulls genuine pairs together and pushes impostor pairs
apart up to a margin ``m``:  ``L = same * D^2 / 2 + (1 - same) * max(0, m - D)^2 / 2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EmbeddingHead(nn.Module):
    """Residual MLP on ``(N, D)`` unit embeddings: ``normalise(x + MLP(x))``, ``(N, D)`` unit vectors.

    The last layer starts at zero, so an untrained head is the identity on unit vectors: training
    can only move the embedding away from the backbone's where the loss asks for it.
    """

    def __init__(self, dim: int = 256, hidden: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return F.normalize(vectors + self.mlp(vectors), dim=-1)


def euclidean_distance(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Row-wise Euclidean distance of two ``(N, D)`` batches: ``(N,)``."""
    if first.shape != second.shape:
        raise ValueError(f"pair batches differ in shape: {tuple(first.shape)} vs {tuple(second.shape)}")
    return (first - second).pow(2).sum(dim=-1).clamp_min(1e-12).sqrt()


def contrastive_loss(distance: torch.Tensor, same: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean contrastive loss of Hadsell et al. (2006) over ``(N,)`` distances and ``(N,)`` bool labels."""
    same = same.to(distance.dtype)
    genuine = same * distance.pow(2) / 2
    impostor = (1 - same) * F.relu(margin - distance).pow(2) / 2
    return (genuine + impostor).mean()


class SiameseNetwork(nn.Module):
    """Two-branch network with shared weights; the energy of a pair is the Euclidean distance."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Energies ``(N,)`` of pairs ``(N, D)``, ``(N, D)``."""
        return euclidean_distance(self.head(first), self.head(second))
