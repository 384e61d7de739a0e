"""Prototypical networks (Snell, Swersky and Zemel, 2017).

A class is represented by the mean embedding of its support samples (its prototype); a query is
classified by a softmax over negative squared Euclidean distances to the prototypes, and the
episode loss is the cross-entropy of that softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def prototypes(support: torch.Tensor, labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """Mean of the ``(S, D)`` support embeddings of each class ``0..n_way-1``: ``(n_way, D)``."""
    if support.shape[0] != labels.shape[0]:
        raise ValueError(f"{support.shape[0]} support embeddings but {labels.shape[0]} labels")
    one_hot = F.one_hot(labels.long(), n_way).to(support.dtype)  # (S, n_way)
    counts = one_hot.sum(dim=0)
    if (counts == 0).any():
        raise ValueError(f"class(es) {torch.nonzero(counts == 0).flatten().tolist()} have no support sample")
    return (one_hot.T @ support) / counts[:, None]


def squared_distances(query: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``(Q, C)`` squared Euclidean distances between ``(Q, D)`` queries and ``(C, D)`` centres."""
    return (query[:, None, :] - centres[None, :, :]).pow(2).sum(dim=-1)


def prototypical_logits(query: torch.Tensor, centres: torch.Tensor, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Logits ``-scale * d^2`` of ``(Q, D)`` queries against ``(C, D)`` prototypes: ``(Q, C)``."""
    return -scale * squared_distances(query, centres)


def prototypical_loss(
    support: torch.Tensor,
    support_labels: torch.Tensor,
    query: torch.Tensor,
    query_labels: torch.Tensor,
    n_way: int,
    scale: float | torch.Tensor = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Episode loss (cross-entropy over ``-scale * d^2``) and query accuracy, from embedded samples."""
    logits = prototypical_logits(query, prototypes(support, support_labels, n_way), scale)
    loss = F.cross_entropy(logits, query_labels.long())
    accuracy = (logits.argmax(dim=1) == query_labels).float().mean()
    return loss, accuracy
