"""Relation network: shapes, symmetry, MSE to one-hot by hand."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.usefixtures("torch_threads")

from training.nets.relation import RelationModule, relation_loss, relation_scores


def test_relation_loss_is_mse_to_one_hot():
    scores = torch.tensor([[0.8, 0.3], [0.1, 0.6]])
    # ((0.2^2 + 0.3^2) + (0.1^2 + 0.4^2)) / 4
    assert relation_loss(scores, torch.tensor([0, 1])).item() == pytest.approx((0.04 + 0.09 + 0.01 + 0.16) / 4)


def test_relation_scores_shape_range_and_symmetry():
    torch.manual_seed(0)
    module = RelationModule(8, 16)
    centres, query = torch.randn(5, 8), torch.randn(3, 8)
    scores = relation_scores(module, centres, query)
    assert scores.shape == (3, 5)
    assert ((scores > 0) & (scores < 1)).all()
    assert torch.allclose(module(centres[:3], query), module(query, centres[:3]))
    assert scores[1, 2].item() == pytest.approx(module(centres[2:3], query[1:2]).item(), rel=1e-5)
