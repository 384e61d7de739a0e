"""Train the matching network (:mod:`training.nets.matching`) on condition-shift episodes.

Each task's support is the person's clean enrollment, its condition copies and feature-space
augmentations (label 1) followed by ``cohort_support`` impostor cohort embeddings (label 0);
the loss is the class-balanced logistic loss of the verification log-odds of the task's
degraded queries (:mod:`training.shift_episodes`). At enrollment the support uses a fixed
cohort subset, so a user's state is the embedded support, computed once. The snapshot with the
lowest held-out-people minDCF wins.
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

from training.nets.matching import MatchingNetwork
from training.shift_episodes import ShiftShape, ShiftTaskSampler
from training.shift_setup import ShiftSetup, selection_cost
from verify.adaptation import AugmentConfig, augment
from verify.errors import WeightsError

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "verify-matching/1"


@dataclass(frozen=True)
class MatchingOptions:
    """Matching-network training settings (sizes, steps, optimiser)."""

    hidden: int = 128
    read_steps: int = 3
    cohort_support: int = 64
    train_steps: int = 250
    tasks_per_step: int = 16
    lr: float = 1e-3
    query_positives: int = 4
    query_negatives: int = 32
    selection_every: int = 50
    threads: int = 1


@dataclass
class MatchingVerifier:
    """A trained matching network with the support it verifies against (a :class:`UserScorer`).

    Attributes:
        net: the network (eval mode).
        cohort: ``(K, D)`` impostor embeddings ending every support set.
        augment_config: feature-space augmentations of the enrollment.
        copies: condition copies per enrollment.
        info: training figures and provenance.
    """

    net: MatchingNetwork
    cohort: torch.Tensor
    augment_config: AugmentConfig
    copies: int
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    chunk: int = 4096

    def positives(self, templates: torch.Tensor, copies: torch.Tensor) -> torch.Tensor:
        """``(E, 1 + C + A, D)`` the person's support: template, copies, augmentations (deterministic)."""
        generator = torch.Generator().manual_seed(self.seed)
        held = self.augment_config.count - self.augment_config.holdout
        augmented = augment(templates, self.cohort, self.augment_config, generator)[:, :held]
        return torch.cat([templates[:, None], copies[:, : self.copies], augmented], dim=1)

    @torch.inference_mode()
    def enroll(self, templates: np.ndarray, copies: np.ndarray) -> tuple[torch.Tensor, int]:
        """Embedded support ``(E, S, H)`` of each enrollment and the number of positives in it."""
        self.net.eval()
        positive = self.positives(torch.as_tensor(templates, dtype=torch.float32),
                                  torch.as_tensor(copies, dtype=torch.float32))
        support = torch.cat([positive, self.cohort[None].expand(len(positive), -1, -1)], dim=1)
        return torch.cat([self.net.embed_support(support[i : i + 256]) for i in range(0, len(support), 256)]), \
            positive.shape[1]

    @torch.inference_mode()
    def score(self, state: tuple[torch.Tensor, int], users: np.ndarray, probes: np.ndarray) -> np.ndarray:
        """``(N,)`` verification log-odds of probes against their users' supports."""
        embedded, positives = state
        probes_tensor = torch.as_tensor(probes, dtype=torch.float32)
        users_tensor = torch.as_tensor(users)
        scores = [self.net.verification_scores(probes_tensor[i : i + self.chunk, None],
                                               embedded[users_tensor[i : i + self.chunk]], positives)[:, 0]
                  for i in range(0, len(probes_tensor), self.chunk)]
        return torch.cat(scores).numpy().astype(np.float64)

    def save(self, path: Path) -> Path:
        """Write a checkpoint readable with ``torch.load(weights_only=True)``."""
        document = {"format": CHECKPOINT_FORMAT, "state": self.net.state_dict(), "dim": self.net.dim,
                    "hidden": self.net.hidden, "read_steps": self.net.steps, "cohort": self.cohort.clone(),
                    "augment": asdict(self.augment_config), "copies": self.copies, "seed": self.seed,
                    "info": self.info}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(document, path)
        return path

    @classmethod
    def load(cls, path: Path) -> MatchingVerifier:
        """Read :meth:`save`'s checkpoint.

        Raises:
            WeightsError: missing, unreadable or of another format.
        """
        try:
            document = torch.load(Path(path), map_location="cpu", weights_only=True)
            if document.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format {document.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
            net = MatchingNetwork(int(document["dim"]), int(document["hidden"]), int(document["read_steps"]))
            net.load_state_dict(document["state"], strict=True)
            return cls(net.eval(), document["cohort"], AugmentConfig(**document["augment"]), int(document["copies"]),
                       int(document["seed"]), dict(document["info"]))
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as error:
            raise WeightsError(f"cannot read matching-network checkpoint {path}: {error}") from error


def task_loss(net: MatchingNetwork, tasks: dict[str, torch.Tensor], cohort: torch.Tensor, cohort_support: int,
              generator: torch.Generator) -> torch.Tensor:
    """Class-balanced logistic loss of the verification log-odds of a batch of shift tasks."""
    positives = torch.cat([tasks["template"][:, None], tasks["copies"], tasks["fit"]], dim=1)
    count = len(positives)
    chosen = torch.stack([torch.randperm(len(cohort), generator=generator)[:cohort_support] for _ in range(count)])
    support = torch.cat([positives, cohort[chosen]], dim=1)
    embedded = net.embed_support(support)
    queries = torch.cat([tasks["query_pos"], tasks["query_neg"]], dim=1)
    scores = net.verification_scores(queries, embedded, positives.shape[1])
    n_pos = tasks["query_pos"].shape[1]
    return F.softplus(-scores[:, :n_pos]).mean() + F.softplus(scores[:, n_pos:]).mean()


def train_matching(setup: ShiftSetup, options: MatchingOptions, out_dir: Path, modality: str, seed: int = 0,
                   augment_config: AugmentConfig = AugmentConfig()) -> Path:
    """Train on ``setup``'s episodes; returns the checkpoint ``<out_dir>/shift-<modality>-matching.pt``."""
    torch.set_num_threads(options.threads)
    torch.manual_seed(seed)
    started = time.perf_counter()
    net = MatchingNetwork(setup.dim, options.hidden, options.read_steps)
    optimizer = torch.optim.Adam(net.parameters(), lr=options.lr)
    sampler = ShiftTaskSampler(setup.tasks, setup.cohort_fit, augment_config,
                               ShiftShape(options.query_positives, options.query_negatives), seed)
    generator = torch.Generator().manual_seed(seed + 1)
    fixed = setup.cohort_fit[torch.randperm(len(setup.cohort_fit), generator=generator)[: options.cohort_support]]
    verifier = MatchingVerifier(net, fixed, augment_config, setup.tasks.copy_count, seed)
    selection = setup.held_out_trials()
    best_cost, best_state, history = np.inf, None, []
    for step in range(options.train_steps + 1):
        if step % options.selection_every == 0 or step == options.train_steps:
            figures = selection_cost(verifier, setup, selection)
            history.append({"step": step, **figures})
            log.info("%s matching step %d: selection %s", modality, step, figures)
            if figures["min_dcf"] < best_cost:
                best_cost, best_state = figures["min_dcf"], {k: v.clone() for k, v in net.state_dict().items()}
                selected = step
        if step < options.train_steps:
            net.train()
            loss = task_loss(net, sampler.sample(options.tasks_per_step), setup.cohort_fit, options.cohort_support,
                             generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    net.load_state_dict(best_state)
    verifier.info = {"episodes": "condition shift", "selected_step": selected, "history": history,
                     "options": asdict(options), "train_seconds": round(time.perf_counter() - started, 1),
                     "people": {role: len(names) for role, names in setup.groups.items()}}
    return verifier.save(Path(out_dir) / f"shift-{modality}-matching.pt")
