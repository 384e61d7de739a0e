"""The per-user scorer adapted by a learned optimiser (:class:`training.nets.meta_lstm.MetaLSTM`).

Same per-user model, support, guard and episodes as the MAML family (:mod:`training.shift_train`):
a linear scorer ``exp(log_scale) * <gain * t + offset, x> + bias`` over embeddings, adapted on
one clean enrollment, its condition copies and feature-space augmentations against the cohort.
Instead of gradient descent the updates come from the coordinate-wise LSTM of Ravi & Larochelle
(2017), meta-trained together with the initial parameters (the LSTM's initial cell state) by
back-propagating the degraded queries' loss through the unrolled updates.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from training.nets.meta_lstm import MetaLSTM
from training.shift_episodes import ShiftShape, ShiftTaskSampler
from training.shift_setup import ShiftSetup, selection_cost
from training.shift_train import LinearUsers
from verify.adaptation import AugmentConfig, augment, flatten_params, initial_params
from verify.errors import WeightsError

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "verify-meta-lstm/1"


@dataclass(frozen=True)
class MetaLSTMOptions:
    """Learned-optimiser training settings."""

    hidden: int = 20
    inner_steps: int = 5
    step_size: float = 0.05
    meta_lr: float = 1e-3
    train_steps: int = 300
    tasks_per_step: int = 16
    query_positives: int = 4
    query_negatives: int = 32
    selection_every: int = 50
    threads: int = 1


def batch_scores(theta: Tensor, templates: Tensor, probes: Tensor) -> Tensor:
    """``(T, K)`` scores of ``(T, K, D)`` probes under ``(T, 2 D + 2)`` flat parameters of ``(T, D)`` templates."""
    dim = templates.shape[-1]
    weights = theta[:, :dim] * templates + theta[:, dim : 2 * dim]
    return torch.exp(theta[:, 2 * dim, None]) * torch.einsum("tkd,td->tk", probes, weights) + theta[:, 2 * dim + 1, None]


def batch_loss(theta: Tensor, templates: Tensor, positives: Tensor, negatives: Tensor) -> Tensor:
    """``(T,)`` class-balanced logistic losses (:func:`verify.adaptation.binary_loss`, per task)."""
    return (F.softplus(-batch_scores(theta, templates, positives)).mean(dim=1)
            + F.softplus(batch_scores(theta, templates, negatives)).mean(dim=1))


def batch_margin(theta: Tensor, templates: Tensor, positives: Tensor, negatives: Tensor) -> Tensor:
    """``(T,)`` :func:`verify.adaptation.separation_margin` per task."""
    negative = batch_scores(theta, templates, negatives)
    return (batch_scores(theta, templates, positives).mean(dim=1) - negative.mean(dim=1)) / negative.std(dim=1).clamp_min(1e-6)


@dataclass
class LSTMAdapter:
    """Initial parameters + learned optimiser + cohort: one enrollment -> adapted scorer (a :class:`UserScorer`).

    The guard of :class:`verify.adaptation.Adapter` applies: an adaptation that does not raise the
    held-out margin falls back to the initial parameters.
    """

    optimizer: MetaLSTM
    theta: Tensor
    steps: int
    cohort_fit: Tensor
    cohort_guard: Tensor
    augment_config: AugmentConfig
    copies: int
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def support(self, templates: Tensor, copies: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(positives (E, 1 + C + A, D), held-out augmentations (E, H, D))`` of each enrollment."""
        held = self.augment_config.count - self.augment_config.holdout
        augmented = augment(templates, self.cohort_fit, self.augment_config, generator)
        positives = torch.cat([templates[:, None], copies[:, : self.copies], augmented[:, :held]], dim=1)
        return positives, augmented[:, held:]

    def unroll(self, theta: Tensor, templates: Tensor, positives: Tensor) -> Tensor:
        """``(E, P)`` parameters after :attr:`steps` learned updates from ``theta`` ``(P,)`` (differentiable)."""
        count, size = len(templates), theta.shape[0]
        current = theta.expand(count, size)
        state = self.optimizer.initial_state(count * size, theta)
        negatives = self.cohort_fit.expand(count, *self.cohort_fit.shape)
        for _ in range(self.steps):
            probe = current.detach().requires_grad_(True)
            with torch.enable_grad():
                losses = batch_loss(probe, templates, positives, negatives)
                (gradient,) = torch.autograd.grad(losses.sum(), probe)
            flat, state = self.optimizer.step(current.reshape(-1), gradient.reshape(-1),
                                              losses.detach()[:, None].expand(count, size).reshape(-1), state)
            current = flat.reshape(count, size)
        return current

    @torch.no_grad()
    def adapt_many(self, templates: np.ndarray, copies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(E, 2 D + 2)`` adapted flat parameters (guard applied) and whether the guard kept each."""
        units = torch.nn.functional.normalize(torch.as_tensor(templates, dtype=torch.float32), dim=1)
        generator = torch.Generator().manual_seed(self.seed)
        positives, holdout = self.support(units, torch.as_tensor(copies, dtype=torch.float32), generator)
        adapted = self.unroll(self.theta, units, positives)
        guard = self.cohort_guard.expand(len(units), *self.cohort_guard.shape)
        initial = self.theta.expand_as(adapted)
        kept = batch_margin(adapted, units, holdout, guard) > batch_margin(initial, units, holdout, guard)
        return torch.where(kept[:, None], adapted, initial).numpy(), kept.numpy()

    def enroll(self, templates: np.ndarray, copies: np.ndarray) -> LinearUsers:
        return LinearUsers.of(self.adapt_many(templates, copies)[0], templates)

    def score(self, state: LinearUsers, users: np.ndarray, probes: np.ndarray) -> np.ndarray:
        return state.score(users, probes)

    def save(self, path: Path) -> Path:
        """Write a checkpoint readable with ``torch.load(weights_only=True)``."""
        document = {"format": CHECKPOINT_FORMAT, "state": self.optimizer.state_dict(), "hidden": self.optimizer.hidden,
                    "theta": self.theta.detach().clone(), "steps": self.steps, "cohort_fit": self.cohort_fit.clone(),
                    "cohort_guard": self.cohort_guard.clone(), "augment": asdict(self.augment_config),
                    "copies": self.copies, "seed": self.seed, "info": self.info}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(document, path)
        return path

    @classmethod
    def load(cls, path: Path) -> LSTMAdapter:
        """Read :meth:`save`'s checkpoint.

        Raises:
            WeightsError: missing, unreadable or of another format.
        """
        try:
            document = torch.load(Path(path), map_location="cpu", weights_only=True)
            if document.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format {document.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
            optimizer = MetaLSTM(int(document["hidden"]))
            optimizer.load_state_dict(document["state"], strict=True)
            return cls(optimizer.eval(), document["theta"], int(document["steps"]), document["cohort_fit"],
                       document["cohort_guard"], AugmentConfig(**document["augment"]), int(document["copies"]),
                       int(document["seed"]), dict(document["info"]))
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as error:
            raise WeightsError(f"cannot read learned-optimiser checkpoint {path}: {error}") from error


def query_loss(adapter: LSTMAdapter, theta: Tensor, tasks: dict[str, Tensor]) -> Tensor:
    """Mean degraded-query loss of a batch of tasks after the learned updates (differentiable)."""
    positives = torch.cat([tasks["template"][:, None], tasks["copies"][:, : adapter.copies], tasks["fit"]], dim=1)
    adapted = adapter.unroll(theta, tasks["template"], positives)
    return batch_loss(adapted, tasks["template"], tasks["query_pos"], tasks["query_neg"]).mean()


def train_meta_lstm(setup: ShiftSetup, options: MetaLSTMOptions, out_dir: Path, modality: str, seed: int = 0,
                    augment_config: AugmentConfig = AugmentConfig()) -> Path:
    """Meta-train the optimiser and initial parameters; returns ``<out_dir>/shift-<modality>-metalstm.pt``.

    The ``offset`` part of the initial parameters stays 0 (as for the MAML family); the snapshot
    with the lowest held-out-people minDCF wins (step 0: the untrained optimiser).
    """
    torch.set_num_threads(options.threads)
    torch.manual_seed(seed)
    started = time.perf_counter()
    dim = setup.dim
    theta = torch.from_numpy(flatten_params(initial_params(dim, threshold=setup.threshold))).requires_grad_(True)
    frozen = torch.zeros_like(theta, dtype=torch.bool)
    frozen[dim : 2 * dim] = True
    optimizer = MetaLSTM(options.hidden, options.step_size)
    adapter = LSTMAdapter(optimizer, theta, options.inner_steps, setup.cohort_fit, setup.cohort_guard, augment_config,
                          setup.tasks.copy_count, seed)
    meta_optimizer = torch.optim.Adam([*optimizer.parameters(), theta], lr=options.meta_lr)
    sampler = ShiftTaskSampler(setup.tasks, setup.cohort_fit, augment_config,
                               ShiftShape(options.query_positives, options.query_negatives), seed)
    selection = setup.held_out_trials()
    best_cost, best, history = np.inf, None, []
    for step in range(options.train_steps + 1):
        if step % options.selection_every == 0 or step == options.train_steps:
            snapshot = LSTMAdapter(MetaLSTM(options.hidden), theta.detach().clone(), options.inner_steps,
                                   setup.cohort_fit, setup.cohort_guard, augment_config, setup.tasks.copy_count, seed)
            snapshot.optimizer.load_state_dict(optimizer.state_dict())
            figures = selection_cost(snapshot, setup, selection)
            history.append({"step": step, **figures})
            log.info("%s metalstm step %d: selection %s", modality, step, figures)
            if figures["min_dcf"] < best_cost:
                best_cost, best = figures["min_dcf"], snapshot
                best.info = {"selected_step": step}
        if step < options.train_steps:
            loss = query_loss(adapter, theta, sampler.sample(options.tasks_per_step))
            meta_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            theta.grad[frozen] = 0.0
            meta_optimizer.step()
    best.info.update({"episodes": "condition shift", "history": history, "options": asdict(options),
                      "train_seconds": round(time.perf_counter() - started, 1),
                      "people": {role: len(names) for role, names in setup.groups.items()}})
    return best.save(Path(out_dir) / f"shift-{modality}-metalstm.pt")
