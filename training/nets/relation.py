"""Relation network (Sung et al., 2018) as a head on backbone embeddings.

An embedding head ``f`` maps samples; a relation module ``g`` scores the concatenation
``[f(prototype sample), f(query)]`` in ``[0, 1]``; training regresses the scores of an episode
onto the one-hot class of each query with a mean squared error, as in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RelationModule(nn.Module):
    """``g([a, b]) -> [0, 1]`` on concatenated ``(N, D)`` embedding pairs; symmetric by averaging orders."""

    def __init__(self, dim: int = 256, hidden: int = 256) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.mlp = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden // 4), nn.ReLU(),
                                 nn.Linear(hidden // 4, 1))

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Relation scores ``(N,)`` of pairs ``(N, D)``, ``(N, D)``."""
        # unit vectors have components of about 1/sqrt(D): scale them to about 1 for the MLP
        scale = self.dim**0.5
        forward = self.mlp(scale * torch.cat([first, second], dim=-1))
        backward = self.mlp(scale * torch.cat([second, first], dim=-1))
        return torch.sigmoid((forward + backward).squeeze(-1) / 2)


def relation_scores(module: RelationModule, centres: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """``(Q, C)`` relation scores of every ``(Q, D)`` query with every ``(C, D)`` class representative."""
    n_query, n_class = query.shape[0], centres.shape[0]
    left = centres[None, :, :].expand(n_query, n_class, -1).reshape(n_query * n_class, -1)
    right = query[:, None, :].expand(n_query, n_class, -1).reshape(n_query * n_class, -1)
    return module(left, right).reshape(n_query, n_class)


def relation_loss(scores: torch.Tensor, query_labels: torch.Tensor) -> torch.Tensor:
    """Mean squared error of ``(Q, C)`` scores against one-hot ``(Q,)`` labels (Sung et al., eq. 3)."""
    target = F.one_hot(query_labels.long(), scores.shape[1]).to(scores.dtype)
    return F.mse_loss(scores, target)
