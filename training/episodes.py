"""Identity splits and few-shot samplers: N-way K-shot episodes and verification pairs.

Splits never mix people: ``test`` is the ``evaluation`` half of ``benchmarks/pairs/splits.json``
(the people behind the README figures); ``train`` and ``validation`` divide the ``calibration``
half 80 / 20. ORL has no calibration half: its 40 people are split 25 / 5 / 10 (the classic
held-out-people setting). Every sampler draws only from the identities it is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from verify.errors import ConfigError
from training.features import REPO_ROOT, FeatureSet

SPLITS_FILE = REPO_ROOT / "benchmarks" / "pairs" / "splits.json"
TRAIN_FRACTION = 0.8
ORL_SPLIT = (25, 5, 10)  # train, validation, test people


@dataclass(frozen=True)
class IdentitySplit:
    """Disjoint lists of identity names."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]


@dataclass(frozen=True)
class Episode:
    """One N-way K-shot task.

    Attributes:
        support: ``(n_way * k_shot, D)`` support vectors (or raw inputs), class-major order.
        support_labels: ``(n_way * k_shot,)`` int64 labels in ``0..n_way-1``.
        query: ``(n_way * n_query, D)`` query vectors, class-major order.
        query_labels: ``(n_way * n_query,)`` int64 labels.
        identities: the ``n_way`` identity names, label ``i`` is ``identities[i]``.
        support_indices, query_indices: rows of the source arrays.
    """

    support: np.ndarray
    support_labels: np.ndarray
    query: np.ndarray
    query_labels: np.ndarray
    identities: tuple[str, ...] = ()
    support_indices: np.ndarray | None = None
    query_indices: np.ndarray | None = None


def split_identities(dataset: str, seed: int = 0, splits_file: Path = SPLITS_FILE) -> IdentitySplit:
    """Train / validation / test identities of ``dataset`` (see the module docstring)."""
    splits = json.loads(Path(splits_file).read_text(encoding="utf-8"))
    if dataset not in splits:
        raise ConfigError(f"dataset {dataset!r} is not in {splits_file}; known: {sorted(splits)}")
    calibration = sorted(splits[dataset]["calibration"])
    evaluation = sorted(splits[dataset]["evaluation"])
    rng = np.random.default_rng(seed)
    if not calibration:
        people = [evaluation[i] for i in rng.permutation(len(evaluation))]
        n_train, n_validation, n_test = _scaled_orl_split(len(people))
        return IdentitySplit(
            tuple(sorted(people[:n_train])),
            tuple(sorted(people[n_train : n_train + n_validation])),
            tuple(sorted(people[n_train + n_validation : n_train + n_validation + n_test])),
        )
    shuffled = [calibration[i] for i in rng.permutation(len(calibration))]
    n_train = int(round(TRAIN_FRACTION * len(shuffled)))
    return IdentitySplit(tuple(sorted(shuffled[:n_train])), tuple(sorted(shuffled[n_train:])), tuple(evaluation))


def _scaled_orl_split(count: int) -> tuple[int, int, int]:
    if count == sum(ORL_SPLIT):
        return ORL_SPLIT
    n_test = max(1, round(count * ORL_SPLIT[2] / sum(ORL_SPLIT)))
    n_validation = max(1, round(count * ORL_SPLIT[1] / sum(ORL_SPLIT)))
    return count - n_test - n_validation, n_validation, n_test


def rows_by_identity(labels: np.ndarray, identities: Sequence[str], minimum: int = 1) -> dict[str, np.ndarray]:
    """Row indices of each of ``identities`` that has at least ``minimum`` rows in ``labels``."""
    labels = np.asarray(labels).astype(str)
    wanted = set(identities)
    order = np.argsort(labels, kind="stable")
    names, starts = np.unique(labels[order], return_index=True)
    groups = np.split(order, starts[1:])
    return {str(name): rows for name, rows in zip(names, groups) if name in wanted and len(rows) >= minimum}


class EpisodeSampler:
    """Seeded N-way K-shot episodes with query sets, drawn only from ``identities``.

    ``data`` is a :class:`FeatureSet` (episodes hold vectors) or any object with ``identities``
    and an array attribute named by ``field`` (e.g. raw inputs for the from-scratch baselines).
    Identities with fewer than ``k_shot + n_query`` samples are never drawn.
    """

    def __init__(
        self,
        features: FeatureSet,
        identities: Sequence[str],
        n_way: int,
        k_shot: int,
        n_query: int,
        seed: int,
        field: str = "vectors",
    ) -> None:
        if n_way < 2 or k_shot < 1 or n_query < 1:
            raise ConfigError(f"need n_way >= 2, k_shot >= 1, n_query >= 1; got {n_way}, {k_shot}, {n_query}")
        self.data = getattr(features, field)
        self.groups = rows_by_identity(features.identities, identities, k_shot + n_query)
        self.names = sorted(self.groups)
        if len(self.names) < n_way:
            raise ConfigError(
                f"{n_way}-way {k_shot}-shot episodes with {n_query} queries need {n_way} identities with "
                f">= {k_shot + n_query} samples; only {len(self.names)} of the {len(identities)} given have them"
            )
        self.n_way, self.k_shot, self.n_query = n_way, k_shot, n_query
        self.rng = np.random.default_rng(seed)

    def sample(self) -> Episode:
        """Draw the next episode."""
        chosen = self.rng.choice(len(self.names), size=self.n_way, replace=False)
        support, query = [], []
        for label in chosen:
            rows = self.rng.permutation(self.groups[self.names[label]])[: self.k_shot + self.n_query]
            support.append(rows[: self.k_shot])
            query.append(rows[self.k_shot :])
        support_rows, query_rows = np.concatenate(support), np.concatenate(query)
        return Episode(
            support=self.data[support_rows],
            support_labels=np.repeat(np.arange(self.n_way), self.k_shot),
            query=self.data[query_rows],
            query_labels=np.repeat(np.arange(self.n_way), self.n_query),
            identities=tuple(self.names[i] for i in chosen),
            support_indices=support_rows,
            query_indices=query_rows,
        )

    def __iter__(self):
        while True:
            yield self.sample()


def sample_pairs(
    features: FeatureSet, identities: Sequence[str], n_pairs: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_pairs`` seeded verification trials among ``identities``: row arrays ``a``, ``b`` and bool ``same``.

    Trials come shuffled; ``n_pairs // 2`` are genuine (two different samples of one
    person with >= 2 samples), the rest impostor (samples of two different people).
    """
    if n_pairs < 2:
        raise ConfigError(f"n_pairs must be at least 2, got {n_pairs}")
    groups = rows_by_identity(features.identities, identities, 1)
    names = sorted(groups)
    repeated = [name for name in names if len(groups[name]) >= 2]
    if not repeated or len(names) < 2:
        raise ConfigError(
            f"pairs need one identity with >= 2 samples and two identities; got {len(names)} identities, "
            f"{len(repeated)} with >= 2 samples"
        )
    rng = np.random.default_rng(seed)
    n_genuine = n_pairs // 2
    first, second = [], []
    for name in rng.choice(repeated, size=n_genuine):
        a, b = rng.choice(groups[name], size=2, replace=False)
        first.append(a)
        second.append(b)
    for _ in range(n_pairs - n_genuine):
        left, right = rng.choice(len(names), size=2, replace=False)
        first.append(rng.choice(groups[names[left]]))
        second.append(rng.choice(groups[names[right]]))
    same = np.arange(n_pairs) < n_genuine
    order = rng.permutation(n_pairs)
    return np.array(first, np.int64)[order], np.array(second, np.int64)[order], same[order]
