"""Evaluate per-user adaptation against the plain backbone on the same trials.

``score_pairs_adapted`` is the adapted counterpart of :func:`verify.evaluation.score_pairs`
(pairs files, ``evaluate --adapt METHOD``); ``evaluate_adaptation`` is the feature-level
benchmark on test identities (verification pairs and 5-way 1-shot episodes).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from verify.embedding import Pipeline
from verify.errors import VerifyError, WeightsError
from verify.evaluation import Pair, embed_pair_files
from verify.adaptation import Adapter
from training.episodes import EpisodeSampler, sample_pairs, split_identities
from training.features import REPO_ROOT, load_features
from training.fewshot_eval import verification_figures
from verify.metrics import min_dcf
from verify.weights import MODELS_DIR

TRAIN_DIR = REPO_ROOT / "runs" / "meta"  # the default --out of ``python -m verify train``
MODALITY_DATASETS = {"face": "lfw_gray", "voice": "librispeech"}


def checkpoint_path(modality: str, method: str) -> Path:
    """The shipped checkpoint (``assets/models``) if present, else the one trained into ``runs/meta``.

    Raises:
        WeightsError: neither exists; names both paths and the training command.
    """
    name = f"adapt-{modality}-{method}.pt"
    candidates = [MODELS_DIR / name, TRAIN_DIR / name]
    for path in candidates:
        if path.is_file():
            return path
    raise WeightsError(
        f"no {method} adaptation checkpoint for {modality}: searched {', '.join(map(str, candidates))}. "
        f"Train one with: python -m verify train --modality {modality} --method {method} (from the repository root)"
    )


def pair_scores(adapter: Adapter, vectors: np.ndarray, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Adapted scores of trials (enroll row ``first[i]``, probe row ``second[i]``) and whether the guard kept each.

    Every distinct enrollment row is adapted once, in one batch.
    """
    enrolled, inverse = np.unique(first, return_inverse=True)
    params, records = adapter.adapt_many(vectors[enrolled])
    kept = np.array([record.kept for record in records])
    scores = np.empty(len(first))
    for slot, row in enumerate(enrolled):
        trials = np.nonzero(inverse == slot)[0]
        scores[trials] = adapter.score(params[slot], vectors[row], vectors[second[trials]])
    return scores, kept[inverse]


def score_pairs_adapted(
    pipeline: Pipeline,
    pairs: Sequence[Pair],
    root: Path,
    method: str,
    checkpoint: Path | None = None,
    progress: Callable[[int], None] = lambda done: None,
) -> tuple[np.ndarray, dict[str, VerifyError]]:
    """Adapted score of every pair (``-inf`` where a file failed) and the error of each failed file.

    Same contract as :func:`verify.evaluation.score_pairs`: each pair enrolls from its first file
    (one sample, adapted with ``method``) and scores its second.

    Raises:
        WeightsError: no checkpoint, or one made for another backbone.
    """
    adapter = Adapter.load(checkpoint or checkpoint_path(pipeline.modality, method))
    if (adapter.model_id, adapter.model_version) != (pipeline.model_id, pipeline.model_version):
        raise WeightsError(
            f"adaptation checkpoint was trained on {adapter.model_id} {adapter.model_version} embeddings, "
            f"not {pipeline.model_id} {pipeline.model_version}"
        )
    embeddings, errors = embed_pair_files(pipeline, pairs, Path(root), progress)
    vectors = {name: embedding.vector for name, embedding in embeddings.items()}
    usable = [i for i, pair in enumerate(pairs) if pair.enroll_path in vectors and pair.probe_path in vectors]
    scores = np.full(len(pairs), -np.inf)
    if usable:
        names = sorted(vectors)
        index = {name: i for i, name in enumerate(names)}
        matrix = np.stack([vectors[name] for name in names])
        first = np.array([index[pairs[i].enroll_path] for i in usable])
        second = np.array([index[pairs[i].probe_path] for i in usable])
        scores[usable] = pair_scores(adapter, matrix, first, second)[0]
    return scores, errors


def adapt_milliseconds(adapter: Adapter, template: np.ndarray, repeats: int = 30) -> float:
    """Median wall time (ms) of adapting to one template, guard included, after one warm-up call."""
    adapter.adapt(template)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        adapter.adapt(template)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def _episode_accuracy(adapter: Adapter | None, sampler: EpisodeSampler, episodes: int) -> np.ndarray:
    accuracies = np.empty(episodes)
    for index in range(episodes):
        episode = sampler.sample()
        if adapter is None:
            logits = episode.query @ episode.support.T
        else:
            params, _ = adapter.adapt_many(episode.support)
            logits = np.stack([adapter.score(p, s, episode.query) for p, s in zip(params, episode.support)], axis=1)
        accuracies[index] = np.mean(np.argmax(logits, axis=1) == episode.query_labels)
    return accuracies


def _trial_figures(scores: np.ndarray, same: np.ndarray) -> dict[str, float]:
    return {**verification_figures(scores, same), "min_dcf": min_dcf(scores, same)}


def _episode_figures(adapter: Adapter | None, sampler: EpisodeSampler, episodes: int) -> dict[str, float]:
    accuracy = _episode_accuracy(adapter, sampler, episodes)
    return {"acc_5way1shot": float(accuracy.mean()), "acc_ci95": float(1.96 * accuracy.std(ddof=1) / np.sqrt(episodes))}


def evaluate_adaptation(
    modality: str,
    method: str,
    data_root: Path,
    seed: int = 0,
    checkpoint: Path | None = None,
    n_pairs: int = 20000,
    episodes: int = 600,
    n_query: int = 2,
) -> dict:
    """One-shot figures of ``method`` on the TEST identities, and of the plain backbone on the same trials.

    Returns ``eer``, ``tar_at_far_1e_2``, ``tar_at_far_1e_3``, ``min_dcf`` (P_target 0.01; pairs from
    :func:`sample_pairs`, half genuine), ``acc_5way1shot`` and
    ``acc_ci95`` (mean and 95 % half-width over ``episodes`` 5-way 1-shot episodes),
    ``adapt_ms_per_user`` (one template, guard included, 1 CPU thread), ``episodes``,
    ``guard_kept`` (fraction of enrollments whose adaptation the guard kept), and ``plain``: the
    same figures for cosine scoring of the backbone embeddings.
    """
    adapter = Adapter.load(checkpoint or checkpoint_path(modality, method))
    dataset = adapter.info.get("dataset", MODALITY_DATASETS[modality])
    features = load_features(dataset, data_root)
    test = list(split_identities(dataset, seed).test)
    first, second, same = sample_pairs(features, test, n_pairs, seed)
    adapted, kept = pair_scores(adapter, features.vectors, first, second)
    plain = np.sum(features.vectors[first] * features.vectors[second], axis=1)
    results = {
        name: {
            **_trial_figures(scores, same),
            **_episode_figures(model, EpisodeSampler(features, test, 5, 1, n_query, seed), episodes),
        }
        for name, model, scores in (("adapted", adapter, adapted), ("plain", None, plain))
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        milliseconds = adapt_milliseconds(adapter, features.vectors[first[0]])
    finally:
        torch.set_num_threads(threads)
    return {
        **results["adapted"],
        "adapt_ms_per_user": milliseconds,
        "episodes": episodes,
        "pairs": int(len(same)),
        "guard_kept": float(np.mean(kept)),
        "method": method,
        "dataset": dataset,
        "plain": results["plain"],
    }
