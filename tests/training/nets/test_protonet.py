"""Prototypical networks: prototypes, distances and loss by hand."""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = pytest.mark.usefixtures("torch_threads")
import torch.nn.functional as F

from training.nets.protonet import prototypes, prototypical_logits, prototypical_loss, squared_distances


def test_prototypes_are_class_means():
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 2.0], [6.0, 2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert torch.allclose(prototypes(support, labels, 2), torch.tensor([[1.0, 0.0], [5.0, 2.0]]))


def test_prototypes_reject_missing_class_and_label_mismatch():
    with pytest.raises(ValueError, match="no support sample"):
        prototypes(torch.zeros(2, 3), torch.tensor([0, 0]), 2)
    with pytest.raises(ValueError, match="labels"):
        prototypes(torch.zeros(2, 3), torch.tensor([0]), 2)


def test_squared_distances_by_hand():
    query = torch.tensor([[0.5, 0.0]])
    centres = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    assert torch.allclose(squared_distances(query, centres), torch.tensor([[0.25, 2.25]]))


def test_loss_is_cross_entropy_over_negative_squared_distances():
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    query = torch.tensor([[0.5, 0.0], [1.5, 1.0]])
    loss, accuracy = prototypical_loss(support, torch.tensor([0, 1]), query, torch.tensor([0, 1]), 2)
    # query 0: d2 = (0.25, 2.25) -> -log softmax = log(1 + e^-2); query 1: d2 = (3.25, 1.25) -> log(1 + e^-2)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2.0)), rel=1e-6)
    assert accuracy.item() == 1.0
    logits = prototypical_logits(query, support, scale=3.0)
    expected = F.cross_entropy(logits, torch.tensor([0, 1]))
    assert prototypical_loss(support, torch.tensor([0, 1]), query, torch.tensor([0, 1]), 2, scale=3.0)[0].item() == \
        pytest.approx(expected.item())
