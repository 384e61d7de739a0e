"""What every condition-shift method trains and is selected on: people, cohort, episodes, trials.

The train people of :func:`training.episodes.split_identities` are divided into *cohort* people
(their clean and degraded embeddings are the impostor cohort every per-user method adapts
against, as the shipped cohort is for S-norm), *task* people (the episodes) and *held-out*
people (checkpoint selection on the training probe conditions, and the trials each method's
score calibration is fitted on, in every degraded condition: scores of the people a method was
trained on would be over-confident). Validation and test
people are never read here.

A method is a :class:`UserScorer`: ``enroll(templates, copies)`` makes per-user state once,
``score(state, users, probes)`` scores probes against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import torch

from training.condition_sets import COPY_PREFIX, is_probe_condition, is_training_probe_condition
from training.episodes import IdentitySplit
from training.shift_episodes import PeopleRows, enrollment_rows
from verify.conditions import EmbeddedSamples
from verify.errors import ConfigError
from verify.metrics import equal_error_rate, min_dcf

COHORT_FRACTION = 0.3  # of the train people
HELD_OUT_FRACTION = 0.25  # of the remaining train people


class UserScorer(Protocol):
    """Per-user scoring of a method: enroll once, then score probes, as the product does."""

    def enroll(self, templates: np.ndarray, copies: np.ndarray) -> Any:
        """Per-user state of ``(E, D)`` clean enrollments with their ``(E, C, D)`` condition copies."""

    def score(self, state: Any, users: np.ndarray, probes: np.ndarray) -> np.ndarray:
        """``(N,)`` scores of probes ``(N, D)`` against the enrollments ``users`` ``(N,)`` of ``state``."""


def copy_table(samples: EmbeddedSamples) -> np.ndarray:
    """``(M, C)`` rows of the condition copies of each clean row of ``samples`` (-1 for other rows)."""
    clean, copies = enrollment_rows(samples)
    table = np.full((len(samples.vectors), copies.shape[1]), -1, dtype=np.int64)
    table[clean] = copies
    return table


@dataclass(frozen=True, eq=False)
class TrialList:
    """Trials over the rows of one embedded set: clean enrollment row, probe row, genuine or not."""

    enroll: np.ndarray
    probe: np.ndarray
    labels: np.ndarray

    @classmethod
    def of_people(cls, samples: EmbeddedSamples, people: PeopleRows) -> TrialList:
        """Every enrollment of ``people`` against every probe of theirs from another file."""
        enroll, probe = np.concatenate(people.enroll), np.concatenate(people.probes)
        first, second = (grid.ravel() for grid in np.meshgrid(enroll, probe, indexing="ij"))
        keep = samples.files[first] != samples.files[second]
        first, second = first[keep], second[keep]
        return cls(first, second, samples.people[first] == samples.people[second])

    def __len__(self) -> int:
        return len(self.labels)


def score_trials(scorer: UserScorer, samples: EmbeddedSamples, copies: np.ndarray, trials: TrialList,
                 chunk: int = 262_144) -> np.ndarray:
    """``(N,)`` scores of ``trials``: each distinct enrollment enrolled once (with its ``copies`` rows
    from :func:`copy_table`), then its probes scored."""
    users, index = np.unique(trials.enroll, return_inverse=True)
    if np.any(copies[users] < 0):
        raise ConfigError("an enrollment row of the trials is not a clean sample")
    state = scorer.enroll(samples.vectors[users], samples.vectors[copies[users]])
    scores = np.empty(len(trials))
    for start in range(0, len(trials), chunk):
        part = slice(start, start + chunk)
        scores[part] = scorer.score(state, index[part], samples.vectors[trials.probe[part]])
    return scores


@dataclass(frozen=True, eq=False)
class ShiftSetup:
    """Training material of one modality (see the module docstring).

    Attributes:
        samples: the calibration people's embedded samples (clean, degraded, copies).
        tasks: episodes' people; ``held_out``: selection and score-calibration people.
        cohort_fit: ``(C, D)`` cohort embeddings methods adapt against; ``cohort_guard``: held out for the guard.
        threshold: cosine EER threshold on the task people's trials (the cosine-equivalent start).
        groups: people of each role (``cohort``, ``task``, ``held_out``).
    """

    samples: EmbeddedSamples
    tasks: PeopleRows
    held_out: PeopleRows
    cohort_fit: torch.Tensor
    cohort_guard: torch.Tensor
    threshold: float
    groups: dict[str, tuple[str, ...]]

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.samples.vectors.shape[1])

    @cached_property
    def copies(self) -> np.ndarray:
        """:func:`copy_table` of :attr:`samples`."""
        return copy_table(self.samples)

    def held_out_trials(self) -> TrialList:
        """Trials among the held-out people in the training probe conditions (checkpoint selection)."""
        return TrialList.of_people(self.samples, self.held_out)

    def calibration_trials(self) -> TrialList:
        """Trials among the held-out people in every degraded condition (a method's score calibration:
        the training conditions alone give too few impostor trials for FAR 0.01 % on voices)."""
        people = PeopleRows.build(self.samples, self.groups["held_out"], is_probe_condition)
        return TrialList.of_people(self.samples, people)

    def scores(self, scorer: UserScorer, trials: TrialList) -> np.ndarray:
        """:func:`score_trials` over :attr:`samples`."""
        return score_trials(scorer, self.samples, self.copies, trials)


def build_setup(samples: EmbeddedSamples, modality: str, split: IdentitySplit, seed: int = 0,
                cohort_size: int = 256, guard_cohort_size: int = 128) -> ShiftSetup:
    """Divide the train people, draw the cohort, index the episodes (see the module docstring).

    Raises:
        ConfigError: too few train people in ``samples``.
    """
    rng = np.random.default_rng(seed)
    present = set(map(str, samples.people))
    train = [str(name) for name in rng.permutation(sorted(set(split.train) & present))]
    if len(train) < 8:
        raise ConfigError(f"condition-shift training needs >= 8 train people in the embedded set, got {len(train)}")
    n_cohort = max(2, int(len(train) * COHORT_FRACTION))
    n_held = max(2, int((len(train) - n_cohort) * HELD_OUT_FRACTION))
    cohort_people, held_people = train[:n_cohort], train[n_cohort:n_cohort + n_held]
    task_people = train[n_cohort + n_held:]
    probe_of = lambda name: is_training_probe_condition(modality, name)  # noqa: E731
    usable = np.isin(samples.people, cohort_people) & np.array(
        [not str(name).startswith(COPY_PREFIX) for name in samples.conditions])
    rows = np.nonzero(usable)[0]
    chosen = rng.choice(rows, size=min(cohort_size + guard_cohort_size, len(rows)), replace=False)
    cohort = torch.from_numpy(samples.vectors[np.sort(chosen)].astype(np.float32))
    order = torch.from_numpy(rng.permutation(len(cohort)))
    n_guard = max(2, min(guard_cohort_size, len(cohort) // 3))
    tasks = PeopleRows.build(samples, task_people, probe_of)
    trials = TrialList.of_people(samples, tasks)
    cosine = np.einsum("ij,ij->i", samples.vectors[trials.enroll], samples.vectors[trials.probe])
    return ShiftSetup(
        samples, tasks, PeopleRows.build(samples, held_people, probe_of),
        cohort[order[n_guard:]], cohort[order[:n_guard]], float(equal_error_rate(cosine, trials.labels)[1]),
        {"cohort": tuple(sorted(cohort_people)), "task": tuple(sorted(task_people)),
         "held_out": tuple(sorted(held_people))},
    )


def validation_people(samples: EmbeddedSamples, split: IdentitySplit, modality: str) -> PeopleRows:
    """The validation people of ``samples``, probed in every degraded condition (named ones included)."""
    return PeopleRows.build(samples, list(split.validation), is_probe_condition)


def selection_cost(scorer: UserScorer, setup: ShiftSetup, trials: TrialList | None = None) -> dict[str, float]:
    """minDCF (P_target 0.01) and EER of ``scorer`` on the held-out people's trials."""
    trials = trials or setup.held_out_trials()
    scores, labels = setup.scores(scorer, trials), trials.labels
    return {"min_dcf": float(min_dcf(scores, labels)), "eer": float(equal_error_rate(scores, labels)[0])}


class CosineScorer:
    """The plain template: cosine of enrollment and probe (copies ignored)."""

    def enroll(self, templates: np.ndarray, copies: np.ndarray) -> np.ndarray:
        return templates

    def score(self, state: np.ndarray, users: np.ndarray, probes: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", state[users], probes).astype(np.float64)
