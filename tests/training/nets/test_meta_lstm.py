"""The coordinate-wise LSTM meta-learner: gradient preprocessing, update shapes, its untrained start."""

from __future__ import annotations

import math

import torch

from training.nets.meta_lstm import MetaLSTM, preprocess


def test_preprocessing_splits_magnitude_and_sign_and_keeps_tiny_values_linear():
    values = torch.tensor([1.0, -math.exp(-2.0), 1e-6, 0.0])
    out = preprocess(values, p=10.0)
    assert out.shape == (4, 2)
    torch.testing.assert_close(out[0], torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(out[1], torch.tensor([-0.2, -1.0]))
    torch.testing.assert_close(out[2], torch.tensor([-1.0, 1e-6 * math.exp(10.0)]))
    torch.testing.assert_close(out[3], torch.tensor([-1.0, 0.0]))


def test_one_update_keeps_shapes_and_carries_the_state():
    optimizer = MetaLSTM(hidden=6)
    theta, gradient = torch.randn(50), torch.randn(50)
    state = optimizer.initial_state(50, theta)
    updated, state = optimizer.step(theta, gradient, torch.tensor(0.7), state)
    assert updated.shape == (50,) and state.hidden.shape == (50, 6) and state.cell.shape == (50, 6)
    assert state.forget.shape == (50,) and state.input.shape == (50,)
    again, _ = optimizer.step(updated, gradient, torch.full((50,), 0.6), state)
    assert again.shape == (50,)


def test_untrained_optimiser_is_gradient_descent_with_the_initial_step_size():
    optimizer = MetaLSTM(hidden=6, step_size=0.05, forget_bias=5.0)
    theta, gradient = torch.randn(30), torch.randn(30)
    updated, state = optimizer.step(theta, gradient, torch.tensor(1.0), optimizer.initial_state(30, theta))
    torch.testing.assert_close(state.input, torch.full((30,), 0.05), atol=0.01, rtol=0)
    torch.testing.assert_close(updated, torch.sigmoid(torch.tensor(5.0)) * theta - 0.05 * gradient, atol=0.03, rtol=0)


def test_the_update_is_differentiable_in_the_optimiser_but_not_through_the_gradient():
    optimizer = MetaLSTM(hidden=4)
    theta = torch.randn(10, requires_grad=True)
    gradient = (theta ** 2).detach().requires_grad_(True)
    updated, _ = optimizer.step(theta, gradient, torch.tensor(1.0), optimizer.initial_state(10, theta))
    updated.sum().backward()
    assert optimizer.input_gate.bias.grad is not None and theta.grad is not None
    assert gradient.grad is None
