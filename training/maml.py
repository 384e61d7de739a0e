"""Gradient-based meta-learning with ``torch.func``: MAML, first-order MAML, Reptile, Meta-SGD, TAML.

Parameters are plain ``dict[str, Tensor]`` and models are pure functions of them, so the inner
loop is ``torch.func.grad`` applied to a loss of the parameters and the outer (meta) gradient is
``torch.func.grad`` of the loss after adaptation, differentiated *through* the inner loop. Tasks
come as a dict of tensors with a leading task axis and are processed with ``torch.func.vmap``.

The API follows learn2learn's ``MAML.clone().adapt(loss)``, functionally:

    adapted = adapt(params, lambda p: support_loss(p, task), steps=3, lr=0.1)
    learner = MetaLearner(init, support_loss, query_loss, MetaConfig("maml"))
    learner.meta_step(tasks)                       # one outer update from a batch of tasks

Methods (``MetaConfig.method``):
    maml     second order: the meta-gradient keeps the Hessian of the support loss
             (``d adapted / d params = I - lr * H``), Finn et al. 2017.
    fomaml   first order: inner gradients are treated as constants (``d adapted / d params = I``).
    reptile  no outer differentiation: the update direction is ``params - adapted`` (Nichol 2018).
    metasgd  MAML with a learned step size per parameter element, meta-trained with the
             initialisation ("learning the optimiser", Li et al. 2017).
    taml     MAML plus the entropy-maximisation term of task-agnostic meta-learning (Jamal & Qi
             2019): ``loss + w * (H(adapted) - H(initial))``, i.e. predictions before adaptation
             are pushed towards maximal entropy (no task bias) and after adaptation towards
             confident ones. ``H`` is an entropy function of the parameters and the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import Tensor
from torch.func import grad, vmap

from verify.adaptation import Params, StepSize, adapt
from verify.errors import ConfigError

Task = Mapping[str, Tensor]
TaskLoss = Callable[[Params, Task], Tensor]

METHODS = ("maml", "fomaml", "reptile", "metasgd", "taml")


@dataclass(frozen=True)
class MetaConfig:
    """How to meta-train.

    Attributes:
        method: one of :data:`METHODS`.
        inner_steps: gradient steps of the inner loop (per task).
        inner_lr: inner step size (the initial per-element step size for ``metasgd``).
        meta_lr: Adam step size of the outer update.
        taml_weight: weight ``w`` of the TAML entropy term (only for ``taml``).
    """

    method: str = "maml"
    inner_steps: int = 3
    inner_lr: float = 0.1
    meta_lr: float = 1e-3
    taml_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown meta-learning method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.inner_steps < 1:
            raise ConfigError(f"inner_steps must be >= 1, got {self.inner_steps}")
        if not self.inner_lr > 0 or not self.meta_lr > 0:
            raise ConfigError(f"step sizes must be positive, got inner {self.inner_lr}, meta {self.meta_lr}")


def task_objective(
    meta_params: Mapping[str, Params],
    task: Task,
    support_loss: TaskLoss,
    query_loss: TaskLoss,
    config: MetaConfig,
    entropy: TaskLoss | None = None,
) -> Tensor:
    """Query loss of one task after adapting ``meta_params["init"]`` on its support set.

    ``meta_params`` holds ``"init"`` and, for ``metasgd``, ``"lr"`` (step sizes shaped like init).
    For ``taml`` the entropy term ``taml_weight * (H(adapted) - H(init))`` is added.
    """
    init = meta_params["init"]
    lr: StepSize = meta_params["lr"] if config.method == "metasgd" else config.inner_lr
    adapted = adapt(
        init, lambda p: support_loss(p, task), config.inner_steps, lr, first_order=config.method == "fomaml"
    )
    loss = query_loss(adapted, task)
    if config.method == "taml":
        if entropy is None:
            raise ConfigError("method 'taml' needs an entropy function")
        loss = loss + config.taml_weight * (entropy(adapted, task) - entropy(init, task))
    return loss


def meta_gradient(
    meta_params: Mapping[str, Params],
    tasks: Task,
    support_loss: TaskLoss,
    query_loss: TaskLoss,
    config: MetaConfig,
    entropy: TaskLoss | None = None,
) -> tuple[Tensor, dict[str, Params]]:
    """Mean task objective over a batch of tasks and its gradient with respect to ``meta_params``.

    ``tasks`` holds tensors with a leading task axis ``(T, ...)``. For ``reptile`` the "gradient"
    is the Reptile direction ``init - mean(adapted)`` (plain SGD with step 1 on it moves the
    initialisation to the mean adapted parameters) and the loss is the mean query loss after
    adaptation, for monitoring.
    """
    if config.method == "reptile":
        return _reptile_direction(meta_params["init"], tasks, support_loss, query_loss, config)

    def batch_objective(params: Mapping[str, Params]) -> tuple[Tensor, Tensor]:
        per_task = vmap(
            lambda task: task_objective(params, task, support_loss, query_loss, config, entropy)
        )(tasks)
        return per_task.mean(), per_task.mean().detach()

    gradients, loss = grad(batch_objective, has_aux=True)(meta_params)
    return loss, gradients


def _reptile_direction(
    init: Params, tasks: Task, support_loss: TaskLoss, query_loss: TaskLoss, config: MetaConfig
) -> tuple[Tensor, dict[str, Params]]:
    def one_task(task: Task) -> tuple[Params, Tensor]:
        adapted = adapt(init, lambda p: support_loss(p, task), config.inner_steps, config.inner_lr, first_order=True)
        return adapted, query_loss(adapted, task)

    init = {name: value.detach() for name, value in init.items()}
    adapted, losses = vmap(one_task)(tasks)
    adapted = {name: value.detach() for name, value in adapted.items()}
    direction = {name: init[name] - adapted[name].mean(dim=0) for name in init}
    return losses.mean(), {"init": direction}


class MetaLearner:
    """Owns meta-parameters (initialisation, Meta-SGD step sizes) and their Adam optimiser.

    Args:
        init: initial parameters of the task model, copied.
        support_loss, query_loss: ``(params, task) -> scalar`` losses of one task.
        config: method and step sizes.
        entropy: ``(params, task) -> scalar`` mean prediction entropy, needed for ``taml``.
        frozen_init: names of parameters whose initialisation stays fixed (still adapted per task,
            and still given learned step sizes by ``metasgd``).
    """

    def __init__(
        self,
        init: Params,
        support_loss: TaskLoss,
        query_loss: TaskLoss,
        config: MetaConfig,
        entropy: TaskLoss | None = None,
        frozen_init: tuple[str, ...] = (),
    ) -> None:
        if config.method == "taml" and entropy is None:
            raise ConfigError("method 'taml' needs an entropy function")
        self.config = config
        self.support_loss, self.query_loss, self.entropy = support_loss, query_loss, entropy
        self.frozen_init = frozenset(frozen_init)
        self.meta_params: dict[str, Params] = {
            "init": {name: value.detach().clone().requires_grad_(True) for name, value in init.items()}
        }
        if config.method == "metasgd":
            self.meta_params["lr"] = {
                name: torch.full_like(value, config.inner_lr).requires_grad_(True) for name, value in init.items()
            }
        leaves = [value for group in self.meta_params.values() for value in group.values()]
        self.optimizer = torch.optim.Adam(leaves, lr=config.meta_lr)

    @property
    def init(self) -> Params:
        """The current initialisation (detached)."""
        return {name: value.detach() for name, value in self.meta_params["init"].items()}

    @property
    def step_sizes(self) -> StepSize:
        """Per-element step sizes (``metasgd``) or the fixed inner step size."""
        if "lr" in self.meta_params:
            return {name: value.detach() for name, value in self.meta_params["lr"].items()}
        return self.config.inner_lr

    def adapt(self, task: Task, steps: int | None = None) -> Params:
        """Adapt the current initialisation to one task's support set (no meta-gradient)."""
        with torch.enable_grad():
            return {
                name: value.detach()
                for name, value in adapt(
                    self.init, lambda p: self.support_loss(p, task), steps or self.config.inner_steps,
                    self.step_sizes, first_order=True,
                ).items()
            }

    def meta_step(self, tasks: Task) -> float:
        """One outer update from a batch of tasks (leading task axis); returns the mean loss."""
        loss, gradients = meta_gradient(
            self.meta_params, tasks, self.support_loss, self.query_loss, self.config, self.entropy
        )
        self.optimizer.zero_grad(set_to_none=True)
        for group, values in gradients.items():
            for name, value in values.items():
                frozen = group == "init" and name in self.frozen_init
                self.meta_params[group][name].grad = torch.zeros_like(value) if frozen else value.detach().clone()
        self.optimizer.step()
        return float(loss)
