"""Matching network with full-context embeddings: attention, class probabilities, verification log-odds."""

from __future__ import annotations

import torch

from training.nets.matching import MatchingNetwork


def make(dim: int = 12) -> MatchingNetwork:
    torch.manual_seed(0)
    return MatchingNetwork(dim, hidden=8, steps=2).eval()


def test_attention_over_the_support_sums_to_one():
    net = make()
    support, query = torch.randn(2, 7, 12), torch.randn(2, 3, 12)
    attention = torch.softmax(net.similarities(query, net.embed_support(support)), dim=-1)
    assert attention.shape == (2, 3, 7)
    torch.testing.assert_close(attention.sum(dim=-1), torch.ones(2, 3))
    labels = torch.tensor([[0, 1, 2, 0, 1, 2, 2], [1, 1, 0, 0, 2, 2, 2]])
    probabilities = net.class_log_probs(query, support, labels, 3).exp()
    torch.testing.assert_close(probabilities.sum(dim=-1), torch.ones(2, 3))
    first_class = (attention * (labels == 0)[:, None]).sum(dim=-1)
    torch.testing.assert_close(probabilities[..., 0], first_class)


def test_full_context_embeddings_depend_on_the_whole_support_set():
    net = make()
    support = torch.randn(1, 5, 12)
    changed = support.clone()
    changed[0, 4] = torch.randn(12)
    embedded, embedded_changed = net.embed_support(support), net.embed_support(changed)
    assert embedded.shape == (1, 5, 8)
    assert not torch.allclose(embedded[0, 0], embedded_changed[0, 0])
    query = torch.randn(1, 2, 12)
    assert not torch.allclose(net.embed_query(query, embedded), net.embed_query(query, embedded_changed))


def test_verification_log_odds_compare_attention_on_the_person_and_on_the_cohort():
    net = make()
    support, query = torch.randn(3, 6, 12), torch.randn(3, 4, 12)
    embedded = net.embed_support(support)
    similarity = net.similarities(query, embedded)
    attention = torch.softmax(similarity, dim=-1)
    log_odds = net.verification_scores(query, embedded, positives=2)
    assert log_odds.shape == (3, 4)
    expected = torch.log(attention[..., :2].sum(-1)) - torch.log(attention[..., 2:].sum(-1))
    torch.testing.assert_close(log_odds, expected, rtol=1e-4, atol=1e-4)
