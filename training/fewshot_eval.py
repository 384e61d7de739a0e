"""Few-shot and verification figures of any scorer on cached features of held-out identities.

A *pair scorer* maps ``(N, D)`` template and probe backbone embeddings to ``(N,)`` scores; a
*class scorer* maps an episode's support, support labels, query and ``n_way`` to ``(Q, n_way)``
scores. The plain backbone is :func:`cosine_pair_scores` / :func:`nearest_prototype_scores`.
"""

from __future__ import annotations

import csv
import time
from typing import Callable, Sequence

import numpy as np

from training.episodes import EpisodeSampler, rows_by_identity
from training.features import FeatureSet
from verify.metrics import equal_error_rate, tar_at_far

PairScorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
ClassScorer = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


def cosine_pair_scores(templates: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Row-wise cosine of unit vectors ``(N, D)``, ``(N, D)``: ``(N,)``."""
    return np.sum(templates * probes, axis=1).astype(np.float64)


def nearest_prototype_scores(support: np.ndarray, labels: np.ndarray, query: np.ndarray, n_way: int) -> np.ndarray:
    """Negative squared distance of each query to each class mean: ``(Q, n_way)``."""
    centres = np.stack([support[labels == label].mean(axis=0) for label in range(n_way)])
    return -((query[:, None, :] - centres[None]) ** 2).sum(axis=2)


def all_pairs(features: FeatureSet, identities: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered pair of rows of ``identities``: row arrays ``a``, ``b`` and bool ``same``."""
    rows = np.sort(np.concatenate(list(rows_by_identity(features.identities, identities).values())))
    first, second = np.triu_indices(len(rows), 1)
    a, b = rows[first], rows[second]
    return a, b, features.identities[a] == features.identities[b]


def pairs_file_rows(features: FeatureSet, pairs_csv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a pairs CSV's files in ``features`` (``-1`` where the file failed) and ``same``."""
    position = {path: index for index, path in enumerate(features.paths)}
    a, b, same = [], [], []
    with open(pairs_csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            a.append(position.get(row["enroll_path"], -1))
            b.append(position.get(row["probe_path"], -1))
            same.append(row["same"] == "1")
    return np.array(a), np.array(b), np.array(same)


def score_rows(vectors: np.ndarray, a: np.ndarray, b: np.ndarray, scorer: PairScorer, chunk: int = 65536) -> np.ndarray:
    """Scores of row pairs ``(a, b)`` of ``vectors``; ``-inf`` where a row is ``-1`` (a failed file)."""
    scores = np.full(len(a), -np.inf)
    valid = np.nonzero((a >= 0) & (b >= 0))[0]
    for start in range(0, len(valid), chunk):
        part = valid[start : start + chunk]
        scores[part] = scorer(vectors[a[part]], vectors[b[part]])
    return scores


def verification_figures(scores: np.ndarray, same: np.ndarray) -> dict[str, float]:
    """EER and TAR at FAR 1 % and 0.1 % of scored trials."""
    return {
        "eer": equal_error_rate(scores, same)[0],
        "tar_at_far_1e_2": tar_at_far(scores, same, 1e-2),
        "tar_at_far_1e_3": tar_at_far(scores, same, 1e-3),
        "trials": int(len(same)), "genuine": int(np.sum(same)),
    }


def episode_accuracy(
    features: FeatureSet,
    identities: Sequence[str],
    scorer: ClassScorer,
    episodes: int = 1000,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 1,
    seed: int = 0,
    field: str = "vectors",
) -> dict[str, float]:
    """Mean N-way K-shot query accuracy over seeded episodes, its 95 % confidence half-width, time per user."""
    sampler = EpisodeSampler(features, identities, n_way, k_shot, n_query, seed, field=field)
    accuracies, seconds = np.empty(episodes), 0.0
    for index in range(episodes):
        episode = sampler.sample()
        start = time.perf_counter()
        scores = scorer(episode.support, episode.support_labels, episode.query, n_way)
        seconds += time.perf_counter() - start
        accuracies[index] = np.mean(np.argmax(scores, axis=1) == episode.query_labels)
    return {
        "accuracy": float(accuracies.mean()),
        "ci95": float(1.96 * accuracies.std(ddof=1) / np.sqrt(episodes)),
        "episodes": episodes, "n_way": n_way, "k_shot": k_shot, "n_query": n_query,
        "seconds_per_episode": seconds / episodes,
    }
