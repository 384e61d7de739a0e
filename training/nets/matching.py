"""Matching network (Vinyals et al. 2016) over backbone embeddings, with full-context embeddings.

A query ``x`` is classified by attention over a labelled support set ``S = {(s_i, y_i)}``:
``P(y | x, S) = sum_i softmax_i(tau * cos(f(x, S), g(s_i, S))) y_i``.

Full-context embeddings (FCE):

* ``g``: a bidirectional LSTM reads the projected support ``g'(s_i)`` in order;
  ``g(s_i, S) = g'(s_i) + h_fwd_i + h_bwd_i``.
* ``f``: an attention LSTM refines the projected query ``f'(x)`` over ``K`` read steps:
  ``h_k, c_k = LSTM([f'(x), r_{k-1}], (h_{k-1}, c_{k-1}))``, ``h_k += f'(x)``,
  ``r_k = sum_i softmax_i(<h_k, g(s_i)>) g(s_i)`` (the read vector enters as input rather than
  concatenated to the state, an equivalent common variant); ``f(x, S) = h_K``.

For verification the support is one person's samples (label 1) followed by impostor cohort
samples (label 0), and the score is the log-odds of the attention mass on the person:
``logsumexp(tau * cos over positives) - logsumexp(tau * cos over negatives)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MatchingNetwork(nn.Module):
    """Projections, the support BiLSTM (``g``) and the query attention LSTM (``f``).

    Args:
        dim: backbone embedding dimension.
        hidden: width of the projections and LSTMs.
        steps: read steps ``K`` of the attention LSTM.
        temperature: initial ``tau`` (learned, as its log).
    """

    def __init__(self, dim: int, hidden: int = 128, steps: int = 3, temperature: float = 10.0) -> None:
        super().__init__()
        self.dim, self.hidden, self.steps = dim, hidden, steps
        self.project_support = nn.Linear(dim, hidden)
        self.project_query = nn.Linear(dim, hidden)
        self.support_lstm = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)
        self.query_cell = nn.LSTMCell(2 * hidden, hidden)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    def embed_support(self, support: Tensor) -> Tensor:
        """``g``: ``(B, S, D)`` support embeddings -> ``(B, S, H)`` full-context embeddings."""
        projected = self.project_support(support)
        context, _ = self.support_lstm(projected)
        return projected + context[..., : self.hidden] + context[..., self.hidden :]

    def embed_query(self, query: Tensor, support: Tensor) -> Tensor:
        """``f``: ``(B, Q, D)`` queries read ``(B, S, H)`` embedded support -> ``(B, Q, H)``."""
        batch, count, _ = query.shape
        projected = self.project_query(query).reshape(batch * count, self.hidden)
        memory = support[:, None].expand(batch, count, *support.shape[1:]).reshape(batch * count, *support.shape[1:])
        state = (projected, torch.zeros_like(projected))
        read = torch.zeros_like(projected)
        for _ in range(self.steps):
            hidden, cell = self.query_cell(torch.cat([projected, read], dim=-1), state)
            hidden = hidden + projected
            attention = torch.softmax(torch.einsum("nh,nsh->ns", hidden, memory), dim=-1)
            read = torch.einsum("ns,nsh->nh", attention, memory)
            state = (hidden, cell)
        return state[0].reshape(batch, count, self.hidden)

    def similarities(self, query: Tensor, embedded_support: Tensor) -> Tensor:
        """``(B, Q, S)`` ``tau * cos(f(x, S), g(s_i, S))`` of raw queries against an embedded support."""
        refined = F.normalize(self.embed_query(query, embedded_support), dim=-1)
        keys = F.normalize(embedded_support, dim=-1)
        return self.log_temperature.exp() * torch.einsum("bqh,bsh->bqs", refined, keys)

    def class_log_probs(self, query: Tensor, support: Tensor, labels: Tensor, classes: int) -> Tensor:
        """``(B, Q, classes)`` log ``P(y | x, S)`` for ``(B, S)`` integer support labels."""
        attention = torch.log_softmax(self.similarities(query, self.embed_support(support)), dim=-1)
        one_hot = F.one_hot(labels, classes).to(attention.dtype)  # (B, S, classes)
        masked = attention[..., None] + torch.log(one_hot.clamp_min(1e-30))[:, None]
        return torch.logsumexp(masked, dim=2)

    def verification_scores(self, query: Tensor, embedded_support: Tensor, positives: int) -> Tensor:
        """``(B, Q)`` log-odds that queries are the person whose samples are the first ``positives``
        of the embedded support (the rest: impostors)."""
        similarity = self.similarities(query, embedded_support)
        return (torch.logsumexp(similarity[..., :positives], dim=-1)
                - torch.logsumexp(similarity[..., positives:], dim=-1))
