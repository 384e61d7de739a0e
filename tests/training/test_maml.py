"""Exact gradients of training.maml on a linear model with quadratic losses, derived by hand.

Model ``w`` (d,), support loss ``L_s(w) = 0.5 |A w - y|^2`` (Hessian ``H = A^T A``), query loss
``L_q(w) = 0.5 |B w - z|^2``. One inner step gives ``w' = w - a (A^T (A w - y))``, so
``dw'/dw = I - a H`` and the MAML meta-gradient is ``(I - a H) B^T (B w' - z)``; first-order MAML
drops ``a H``; Meta-SGD's step sizes get ``-g * B^T (B w' - z)`` with ``g = A^T (A w - y)``.
"""

from __future__ import annotations

import pytest
import torch

from verify.errors import ConfigError
from training.maml import MetaConfig, MetaLearner, adapt, meta_gradient, task_objective

D, M, N, K = 4, 6, 5, 7


def support_loss(params, task):
    return 0.5 * ((task["A"] @ params["w"] - task["y"]) ** 2).sum()


def query_loss(params, task):
    return 0.5 * ((task["B"] @ params["w"] - task["z"]) ** 2).sum()


def entropy(params, task):
    q = torch.sigmoid(task["x"] @ params["w"])
    return -(q * torch.log(q) + (1 - q) * torch.log(1 - q)).mean()


def make_tasks(count: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64) * 0.5

    return {"A": rand(count, M, D), "y": rand(count, M), "B": rand(count, N, D), "z": rand(count, N),
            "x": rand(count, K, D)}


def one(tasks, index):
    return {name: value[index] for name, value in tasks.items()}


def inner_step(w, task, lr):
    return w - lr * task["A"].T @ (task["A"] @ w - task["y"])


def query_residual_gradient(w_adapted, task):
    return task["B"].T @ (task["B"] @ w_adapted - task["z"])


def entropy_gradient(w, task):
    q = torch.sigmoid(task["x"] @ w)
    return (torch.log((1 - q) / q) * q * (1 - q)) @ task["x"] / task["x"].shape[0]


@pytest.fixture
def setup():
    w = torch.randn(D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return w, make_tasks(3)


def test_adapt_is_gradient_descent_and_lowers_the_support_loss(setup):
    w, tasks = setup
    task = one(tasks, 0)
    adapted = adapt({"w": w}, lambda p: support_loss(p, task), steps=2, lr=0.05)
    expected = inner_step(inner_step(w, task, 0.05), task, 0.05)
    torch.testing.assert_close(adapted["w"], expected, rtol=0, atol=1e-12)
    assert support_loss(adapted, task) < support_loss({"w": w}, task)


@pytest.mark.parametrize("steps", [1, 2])
def test_maml_meta_gradient_matches_hand_derivation(setup, steps):
    w, tasks = setup
    lr = 0.1
    config = MetaConfig("maml", inner_steps=steps, inner_lr=lr)
    loss, gradients = meta_gradient({"init": {"w": w}}, tasks, support_loss, query_loss, config)
    expected, expected_loss = torch.zeros(D, dtype=torch.float64), 0.0
    for index in range(3):
        task = one(tasks, index)
        adapted = w
        for _ in range(steps):
            adapted = inner_step(adapted, task, lr)
        jacobian = torch.linalg.matrix_power(torch.eye(D, dtype=torch.float64) - lr * task["A"].T @ task["A"], steps)
        expected += jacobian.T @ query_residual_gradient(adapted, task) / 3
        expected_loss += float(query_loss({"w": adapted}, task)) / 3
    torch.testing.assert_close(gradients["init"]["w"], expected, rtol=0, atol=1e-12)
    assert float(loss) == pytest.approx(expected_loss, abs=1e-12)


def test_first_order_drops_exactly_the_hessian_term(setup):
    w, tasks = setup
    lr = 0.1
    meta = {"init": {"w": w}}
    _, second = meta_gradient(meta, tasks, support_loss, query_loss, MetaConfig("maml", inner_steps=1, inner_lr=lr))
    _, first = meta_gradient(meta, tasks, support_loss, query_loss, MetaConfig("fomaml", inner_steps=1, inner_lr=lr))
    hessian_term = torch.zeros(D, dtype=torch.float64)
    first_expected = torch.zeros(D, dtype=torch.float64)
    for index in range(3):
        task = one(tasks, index)
        residual = query_residual_gradient(inner_step(w, task, lr), task)
        first_expected += residual / 3
        hessian_term += lr * task["A"].T @ task["A"] @ residual / 3
    torch.testing.assert_close(first["init"]["w"], first_expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(first["init"]["w"] - second["init"]["w"], hessian_term, rtol=0, atol=1e-12)
    assert hessian_term.abs().max() > 1e-3  # the two really differ


def test_metasgd_step_sizes_get_the_hand_derived_gradient(setup):
    w, tasks = setup
    task = {name: value[:1] for name, value in tasks.items()}
    step_sizes = torch.tensor([0.05, 0.1, 0.15, 0.2], dtype=torch.float64)
    config = MetaConfig("metasgd", inner_steps=1)
    _, gradients = meta_gradient({"init": {"w": w}, "lr": {"w": step_sizes}}, task, support_loss, query_loss, config)
    single = one(task, 0)
    inner_gradient = single["A"].T @ (single["A"] @ w - single["y"])
    adapted = w - step_sizes * inner_gradient
    residual = query_residual_gradient(adapted, single)
    hessian = single["A"].T @ single["A"]
    torch.testing.assert_close(gradients["lr"]["w"], -inner_gradient * residual, rtol=0, atol=1e-12)
    torch.testing.assert_close(gradients["init"]["w"], (torch.eye(D, dtype=torch.float64) - hessian * step_sizes) @ residual,
                               rtol=0, atol=1e-12)


def test_metasgd_learner_changes_its_step_sizes(setup):
    w, tasks = setup
    learner = MetaLearner({"w": w}, support_loss, query_loss, MetaConfig("metasgd", inner_steps=1, inner_lr=0.1, meta_lr=0.01))
    before = learner.step_sizes["w"].clone()
    losses = [learner.meta_step(tasks) for _ in range(20)]
    assert learner.meta_params["lr"]["w"].grad is not None
    assert (learner.step_sizes["w"] - before).abs().min() > 1e-3
    assert losses[-1] < losses[0]


def test_taml_adds_the_hand_derived_entropy_gradient(setup):
    w, tasks = setup
    lr, weight = 0.1, 0.3
    meta = {"init": {"w": w}}
    _, maml = meta_gradient(meta, tasks, support_loss, query_loss, MetaConfig("maml", inner_steps=1, inner_lr=lr))
    _, taml = meta_gradient(meta, tasks, support_loss, query_loss,
                            MetaConfig("taml", inner_steps=1, inner_lr=lr, taml_weight=weight), entropy)
    expected = torch.zeros(D, dtype=torch.float64)
    for index in range(3):
        task = one(tasks, index)
        jacobian = torch.eye(D, dtype=torch.float64) - lr * task["A"].T @ task["A"]
        adapted = inner_step(w, task, lr)
        expected += weight * (jacobian.T @ entropy_gradient(adapted, task) - entropy_gradient(w, task)) / 3
    torch.testing.assert_close(taml["init"]["w"] - maml["init"]["w"], expected, rtol=0, atol=1e-12)
    objective = task_objective(meta, one(tasks, 0), support_loss, query_loss, MetaConfig("taml", inner_steps=1, inner_lr=lr,
                                                                                            taml_weight=weight), entropy)
    adapted = {"w": inner_step(w, one(tasks, 0), lr)}
    by_hand = query_loss(adapted, one(tasks, 0)) + weight * (entropy(adapted, one(tasks, 0)) - entropy({"w": w}, one(tasks, 0)))
    assert float(objective) == pytest.approx(float(by_hand), abs=1e-12)


def test_reptile_moves_the_initialisation_to_the_mean_adapted_parameters(setup):
    w, tasks = setup
    lr = 0.1
    _, direction = meta_gradient({"init": {"w": w}}, tasks, support_loss, query_loss,
                                 MetaConfig("reptile", inner_steps=2, inner_lr=lr))
    adapted = torch.stack([inner_step(inner_step(w, one(tasks, i), lr), one(tasks, i), lr) for i in range(3)])
    torch.testing.assert_close(direction["init"]["w"], w - adapted.mean(dim=0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["maml", "fomaml", "reptile", "metasgd", "taml"])
def test_every_method_lowers_the_query_loss(setup, method):
    w, tasks = setup
    learner = MetaLearner({"w": w}, support_loss, query_loss,
                          MetaConfig(method, inner_steps=1, inner_lr=0.05, meta_lr=0.05, taml_weight=0.01), entropy)
    losses = [learner.meta_step(tasks) for _ in range(30)]
    assert losses[-1] < losses[0]


def test_bad_configuration_raises():
    with pytest.raises(ConfigError, match="unknown meta-learning method 'sgd'"):
        MetaConfig("sgd")
    with pytest.raises(ConfigError, match="inner_steps must be >= 1"):
        MetaConfig(inner_steps=0)
    with pytest.raises(ConfigError, match="step sizes must be positive"):
        MetaConfig(inner_lr=-1.0)
    with pytest.raises(ConfigError, match="needs an entropy function"):
        MetaLearner({"w": torch.zeros(2)}, support_loss, query_loss, MetaConfig("taml"))
