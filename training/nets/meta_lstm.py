"""A learned optimiser: the coordinate-wise LSTM meta-learner of Ravi & Larochelle (2017).

Every coordinate ``j`` of the learner's parameters is updated like an LSTM cell state:

    theta_t = f_t * theta_{t-1} - i_t * grad_t

with the forget gate ``f_t = sigmoid(W_F [h_t, theta_{t-1}, f_{t-1}] + b_F)`` and the input gate
(a learned per-coordinate step size) ``i_t = sigmoid(W_I [h_t, theta_{t-1}, i_{t-1}] + b_I)``,
where ``h_t`` is the hidden state of a small LSTM fed the preprocessed gradient and loss (the
log-magnitude / sign preprocessing of Andrychowicz et al. 2016, appendix A). All coordinates
share the weights. ``b_F`` starts high and ``b_I`` at the inverse sigmoid of a small step size,
so the untrained optimiser is gradient descent with almost no decay. As in the paper, the
gradient fed in is treated as a constant (no second derivatives).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

PREPROCESS_P = 10.0


def preprocess(values: Tensor, p: float = PREPROCESS_P) -> Tensor:
    """``(..., 2)``: ``(log|x| / p, sign x)`` where ``|x| >= e^-p``, else ``(-1, e^p x)``."""
    magnitude = values.abs()
    large = magnitude >= math.exp(-p)
    first = torch.where(large, torch.log(magnitude.clamp_min(1e-38)) / p, torch.full_like(values, -1.0))
    second = torch.where(large, torch.sign(values), values * math.exp(p))
    return torch.stack([first, second], dim=-1)


@dataclass
class OptimizerState:
    """Per-coordinate recurrent state: LSTM ``(hidden, cell)`` and the previous gates."""

    hidden: Tensor
    cell: Tensor
    forget: Tensor
    input: Tensor


class MetaLSTM(nn.Module):
    """The coordinate-wise meta-learner (see the module docstring).

    Args:
        hidden: width of the coordinate LSTM.
        step_size: initial input gate (the untrained optimiser's step size).
        forget_bias: initial forget-gate bias (``sigmoid(5) = 0.993``).
    """

    def __init__(self, hidden: int = 20, step_size: float = 0.05, forget_bias: float = 5.0) -> None:
        super().__init__()
        self.hidden = hidden
        self.lstm = nn.LSTMCell(4, hidden)
        self.forget_gate = nn.Linear(hidden + 2, 1)
        self.input_gate = nn.Linear(hidden + 2, 1)
        with torch.no_grad():
            for gate, bias in ((self.forget_gate, forget_bias), (self.input_gate, math.log(step_size / (1 - step_size)))):
                gate.weight.mul_(0.01)
                gate.bias.fill_(bias)

    def initial_state(self, coordinates: int, like: Tensor) -> OptimizerState:
        """Zero state for ``coordinates`` coordinates; previous gates at their initial values."""
        zeros = like.new_zeros(coordinates, self.hidden)
        start = like.new_zeros(coordinates, self.hidden + 2)
        return OptimizerState(zeros, zeros.clone(), torch.sigmoid(self.forget_gate(start))[:, 0],
                              torch.sigmoid(self.input_gate(start))[:, 0])

    def step(self, theta: Tensor, gradient: Tensor, loss: Tensor, state: OptimizerState) -> tuple[Tensor, OptimizerState]:
        """One update of ``(N,)`` coordinates ``theta`` given their ``(N,)`` gradient and loss (scalar or ``(N,)``)."""
        loss = torch.broadcast_to(loss, theta.shape)
        features = torch.cat([preprocess(gradient.detach()), preprocess(loss.detach())], dim=-1)
        hidden, cell = self.lstm(features, (state.hidden, state.cell))
        forget = torch.sigmoid(self.forget_gate(torch.cat([hidden, theta[:, None], state.forget[:, None]], -1)))[:, 0]
        step = torch.sigmoid(self.input_gate(torch.cat([hidden, theta[:, None], state.input[:, None]], -1)))[:, 0]
        return forget * theta - step * gradient.detach(), OptimizerState(hidden, cell, forget, step)
