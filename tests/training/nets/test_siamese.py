"""Siamese network: contrastive loss by hand, shared weights, identity start of the residual head."""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = pytest.mark.usefixtures("torch_threads")

from training.nets.siamese import EmbeddingHead, SiameseNetwork, contrastive_loss, euclidean_distance


def test_contrastive_loss_matches_hand_values():
    distance = torch.tensor([0.5, 0.3, 1.5])
    same = torch.tensor([True, False, False])
    # genuine 0.5^2/2 = 0.125; impostor inside the margin (1-0.3)^2/2 = 0.245; beyond the margin 0
    assert contrastive_loss(distance, same, margin=1.0).item() == pytest.approx((0.125 + 0.245 + 0.0) / 3)


def test_contrastive_loss_margin_changes_only_impostors():
    distance = torch.tensor([0.4, 0.4])
    same = torch.tensor([True, False])
    assert contrastive_loss(distance, same, margin=2.0).item() == pytest.approx((0.08 + 1.6**2 / 2) / 2)


def test_euclidean_distance_by_hand_and_shape_check():
    first = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    second = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    assert euclidean_distance(first, second)[0].item() == pytest.approx(5.0)
    assert euclidean_distance(first, second)[1].item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        euclidean_distance(first, second[:1])


def test_untrained_head_is_identity_on_unit_vectors():
    torch.manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    assert torch.allclose(EmbeddingHead(8, 16)(vectors), vectors, atol=1e-6)


def test_siamese_branches_share_weights_and_distance_is_symmetric():
    torch.manual_seed(0)
    head = EmbeddingHead(8, 16)
    torch.nn.init.normal_(head.mlp[-1].weight)
    network = SiameseNetwork(head).eval()
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    assert torch.allclose(network(a, b), network(b, a))
    assert torch.allclose(network(a, a), torch.zeros(4), atol=1e-5)
    assert len(list(network.parameters())) == 4  # one MLP, used by both branches
    assert math.isfinite(network(a, b).sum().item())
