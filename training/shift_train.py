"""Meta-train the per-user scorer (:class:`verify.adaptation.Adapter`) on condition-shift episodes.

MAML, first-order MAML, Reptile, Meta-SGD and TAML (:mod:`training.maml`) learn the scorer's
initialisation (and Meta-SGD its step sizes) so that a few gradient steps on one clean
enrollment, its condition copies and feature-space augmentations against the cohort make a
scorer that separates the person's *degraded* probes from other people's
(:mod:`training.shift_episodes`). The snapshot with the lowest held-out-people minDCF wins;
step 0 (the cosine-equivalent start, adapted but not meta-trained) competes too.

    setup = build_setup(samples, "face", split_identities("lfw_gray"))
    path = train_shift_adapter(setup, "metasgd", ShiftOptions(), Path("runs/shift"), "face")
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from training.adapt_train import prediction_entropy
from training.maml import METHODS, MetaConfig, MetaLearner
from training.shift_episodes import ShiftShape, ShiftTaskSampler
from training.shift_setup import ShiftSetup, selection_cost
from verify.adaptation import Adapter, AugmentConfig, binary_loss, initial_params
from verify.errors import ConfigError

log = logging.getLogger(__name__)

BASELINE = "adapt0"  # the cosine-equivalent start, adapted per user but never meta-trained


@dataclass(frozen=True)
class ShiftOptions:
    """Meta-training settings shared by every condition-shift method.

    Attributes:
        meta_steps: outer updates.
        tasks_per_step: tasks (people) per outer update.
        inner_steps, inner_lr: the per-user gradient steps (their count and initial size).
        meta_lr: Adam step size of the outer update.
        taml_weight: weight of TAML's entropy term.
        query_positives, query_negatives: queries per task (see :class:`ShiftShape`).
        selection_every: outer steps between selection checks.
        threads: torch CPU threads.
    """

    meta_steps: int = 300
    tasks_per_step: int = 16
    inner_steps: int = 3
    inner_lr: float = 0.05
    meta_lr: float = 1e-3
    taml_weight: float = 0.05
    query_positives: int = 4
    query_negatives: int = 32
    selection_every: int = 50
    threads: int = 1

    @property
    def shape(self) -> ShiftShape:
        """Query sizes of one task."""
        return ShiftShape(self.query_positives, self.query_negatives)


@dataclass(frozen=True)
class LinearUsers:
    """Adapted linear scorers of E users, folded: ``score = <weights[u], x> + bias[u]``."""

    weights: np.ndarray
    bias: np.ndarray

    @classmethod
    def of(cls, flat: np.ndarray, templates: np.ndarray) -> LinearUsers:
        """Fold ``(E, 2 D + 2)`` flat parameters (:func:`verify.adaptation.flatten_params`) of ``(E, D)`` templates."""
        dim = templates.shape[1]
        units = templates / np.linalg.norm(templates, axis=1, keepdims=True)
        scale = np.exp(flat[:, 2 * dim])[:, None]
        return cls(scale * (flat[:, :dim] * units + flat[:, dim : 2 * dim]), flat[:, 2 * dim + 1].astype(np.float64))

    def score(self, users: np.ndarray, probes: np.ndarray) -> np.ndarray:
        """``(N,)`` scores of probes against users."""
        return np.einsum("ij,ij->i", self.weights[users], probes).astype(np.float64) + self.bias[users]


class AdapterScorer:
    """An :class:`Adapter` as a :class:`~training.shift_setup.UserScorer` (copies used when it takes them)."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter

    def enroll(self, templates: np.ndarray, copies: np.ndarray) -> LinearUsers:
        adapter = self.adapter
        flat, _ = adapter.adapt_many(templates, copies[:, : adapter.copies] if adapter.copies else None)
        return LinearUsers.of(flat, templates)

    def score(self, state: LinearUsers, users: np.ndarray, probes: np.ndarray) -> np.ndarray:
        return state.score(users, probes)


def shift_losses(cohort: torch.Tensor):
    """``(support_loss, query_loss, entropy)`` of ``(params, task)`` for :class:`MetaLearner`."""

    def positives(task):
        return torch.cat([task["template"][None], task["copies"], task["fit"]])

    def support(params, task):
        return binary_loss(params, task["template"], positives(task), cohort)

    def query(params, task):
        return binary_loss(params, task["template"], task["query_pos"], task["query_neg"])

    def entropy(params, task):
        return prediction_entropy(params, task["template"], torch.cat([positives(task), cohort]))

    return support, query, entropy


def train_shift_adapter(setup: ShiftSetup, method: str, options: ShiftOptions, out_dir: Path, modality: str,
                        seed: int = 0, augment_config: AugmentConfig = AugmentConfig()) -> Path:
    """Meta-train ``method`` (or :data:`BASELINE`: no meta-training) on ``setup``; returns the checkpoint
    ``<out_dir>/shift-<modality>-<method>.pt`` (its ``info`` holds history, selection figures, time)."""
    if method not in METHODS + (BASELINE,):
        raise ConfigError(f"unknown adaptation method {method!r}: choose one of {', '.join(METHODS + (BASELINE,))}")
    from training.features import backbone_key

    torch.set_num_threads(options.threads)
    torch.manual_seed(seed)
    started = time.perf_counter()
    copies = setup.tasks.copy_count
    config = MetaConfig("maml" if method == BASELINE else method, options.inner_steps, options.inner_lr,
                        options.meta_lr, options.taml_weight)
    support, query, entropy = shift_losses(setup.cohort_fit)
    init = initial_params(setup.dim, threshold=setup.threshold)
    learner = MetaLearner(init, support, query, config, entropy, frozen_init=("offset",))
    sampler = ShiftTaskSampler(setup.tasks, setup.cohort_fit, augment_config, options.shape, seed)
    model_id, model_version = backbone_key(modality)
    selection = setup.held_out_trials()

    def snapshot() -> Adapter:
        step_sizes = learner.step_sizes
        if isinstance(step_sizes, dict):
            step_sizes = {name: value.clone() for name, value in step_sizes.items()}
        return Adapter({name: value.clone() for name, value in learner.init.items()}, step_sizes,
                       options.inner_steps, setup.cohort_fit, setup.cohort_guard, augment_config,
                       method, modality, model_id, model_version, seed=seed, copies=copies)

    steps = 0 if method == BASELINE else options.meta_steps
    best, best_cost, history = snapshot(), np.inf, []
    for step in range(steps + 1):
        if step % options.selection_every == 0 or step == steps:
            figures = selection_cost(AdapterScorer(snapshot()), setup, selection)
            history.append({"step": step, **figures})
            log.info("%s %s step %d: selection %s", modality, method, step, figures)
            if figures["min_dcf"] < best_cost:
                best_cost, best = figures["min_dcf"], snapshot()
                best.info = {"selected_step": step}
        if step < steps:
            learner.meta_step(sampler.sample(options.tasks_per_step))
    best.info.update({"episodes": "condition shift", "history": history, "options": asdict(options),
                      "train_seconds": round(time.perf_counter() - started, 1), "people": {
                          role: len(names) for role, names in setup.groups.items()}})
    return best.save(Path(out_dir) / f"shift-{modality}-{method}.pt")
