"""Evaluate one-shot verification on a pairs file: each pair enrolls from one sample, scores another.

Two kinds of figures: threshold-free ones on the raw cosine (EER, TAR at FAR, minDCF), and what a
person meets at each shipped security level with the shipped scoring (S-norm, quality-aware
calibration, retry answers): FAR, FRR and the retry rate (:func:`level_outcomes`).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from verify.config import SECURITY_LEVELS
from verify.embedding import Embedding, Pipeline
from verify.errors import ConfigError, VerifyError
from verify.metrics import DEFAULT_P_TARGET, equal_error_rate, levels_report, min_dcf, tar_at_far
from verify.scorer import Scorer
from verify.scoring import cosine_scores
from verify.verifier import Verifier

PAIR_COLUMNS = ("enroll_path", "probe_path", "same")


@dataclass(frozen=True)
class Pair:
    """One trial: enroll from ``enroll_path``, probe with ``probe_path``; ``same`` = same identity."""

    enroll_path: str
    probe_path: str
    same: bool


@dataclass(frozen=True)
class EvaluationReport:
    """Standard metrics of a pairs file; failed pairs are scored ``-inf`` (rejected), not dropped."""

    pairs: int
    genuine: int
    impostor: int
    failed_pairs: int
    failed_genuine: int
    failed_files: dict[str, int]
    eer: float
    eer_threshold: float
    tar_at_far_1e_2: float
    tar_at_far_1e_3: float
    min_dcf: float
    p_target: float
    levels: dict[str, dict[str, float | int]] | None = None

    def as_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


def read_pairs(path: Path) -> list[Pair]:
    """Read a pairs CSV with columns ``enroll_path,probe_path,same`` (same is 1 or 0)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = set(PAIR_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise ConfigError(f"{path} lacks column(s) {', '.join(sorted(missing))}; expected {','.join(PAIR_COLUMNS)}")
            pairs = []
            for line, row in enumerate(reader, start=2):
                if row["same"] not in ("0", "1"):
                    raise ConfigError(f"{path}:{line}: 'same' must be 1 or 0, got {row['same']!r}")
                pairs.append(Pair(row["enroll_path"], row["probe_path"], row["same"] == "1"))
    except OSError as error:
        raise ConfigError(f"cannot read pairs file {path}: {error.strerror or error}") from None
    if not pairs:
        raise ConfigError(f"{path} holds no pairs")
    return pairs


def embed_pair_files(
    pipeline: Pipeline,
    pairs: Sequence[Pair],
    root: Path,
    progress: Callable[[int], None] = lambda done: None,
) -> tuple[dict[str, Embedding], dict[str, VerifyError]]:
    """Each distinct file of ``pairs`` embedded once, in batches: embeddings and errors by file name."""
    files = sorted({pair.enroll_path for pair in pairs} | {pair.probe_path for pair in pairs})
    embeddings: dict[str, Embedding] = {}
    errors: dict[str, VerifyError] = {}
    chunk = 64
    for start in range(0, len(files), chunk):
        names = files[start : start + chunk]
        for name, result in zip(names, pipeline.embed_many([Path(root) / name for name in names])):
            if isinstance(result, VerifyError):
                errors[name] = result
            else:
                embeddings[name] = result
        progress(len(names))
    return embeddings, errors


def pair_cosines(pairs: Sequence[Pair], embeddings: Mapping[str, Embedding]) -> np.ndarray:
    """Cosine score of every pair, ``-inf`` where a file failed.

    A one-sample template is the L2-normalised embedding of its file, so scoring embeddings of
    distinct files equals enrolling and checking pair by pair.
    """
    scores = np.full(len(pairs), -np.inf)
    for index, pair in enumerate(pairs):
        if pair.enroll_path in embeddings and pair.probe_path in embeddings:
            scores[index] = cosine_scores(embeddings[pair.enroll_path].vector, embeddings[pair.probe_path].vector)[0, 0]
    return scores


def score_pairs(
    pipeline: Pipeline,
    pairs: Sequence[Pair],
    root: Path,
    progress: Callable[[int], None] = lambda done: None,
) -> tuple[np.ndarray, dict[str, VerifyError]]:
    """Cosine score of every pair (``-inf`` where a file failed) and the error of each failed file."""
    embeddings, errors = embed_pair_files(pipeline, pairs, root, progress)
    return pair_cosines(pairs, embeddings), errors


def level_outcomes(pairs: Sequence[Pair], embeddings: Mapping[str, Embedding], pipeline: Pipeline, scorer: Scorer,
                   levels: Sequence[str] = tuple(SECURITY_LEVELS)) -> dict[str, np.ndarray]:
    """The product's answer to every pair at each level: ``(N,)`` arrays of ``"accepted"``,
    ``"retry"``, ``"rejected"``; a pair whose file failed is ``"error"`` (never accepted).

    Each enrolled file is a template as an enrollment keeps it (with its narrowband copy, made by
    ``pipeline``), and each pair is decided as :meth:`verify.verifier.Verifier.decide` decides a check.
    """
    verifiers = {level: Verifier(pipeline, scorer, level) for level in levels}
    enrolled = {pair.enroll_path for pair in pairs} & set(embeddings)
    stats = {name: scorer.template_stats(embeddings[name].vector) for name in enrolled}
    copies = {name: verifiers[levels[0]].narrowband_copy(embeddings[name]) for name in sorted(enrolled)}
    copy_stats = {name: None if copy is None else scorer.template_stats(copy) for name, copy in copies.items()}
    outcomes = {level: np.full(len(pairs), "error", dtype=object) for level in levels}
    for index, pair in enumerate(pairs):
        if pair.enroll_path not in embeddings or pair.probe_path not in embeddings:
            continue
        template, name = embeddings[pair.enroll_path].vector, pair.enroll_path
        for level, verifier in verifiers.items():
            outcomes[level][index] = verifier.decide(template, embeddings[pair.probe_path], stats[name], copies[name],
                                                     copy_stats[name]).outcome
    return outcomes


def summarize(pairs: Sequence[Pair], scores: np.ndarray, errors: dict[str, VerifyError],
              outcomes: Mapping[str, np.ndarray] | None = None,
              thresholds: Mapping[str, float] | None = None) -> EvaluationReport:
    """Metrics of scored pairs (EER, TAR at FAR 1 % and 0.1 %, minDCF at P_target 0.01), and, given
    the product's ``outcomes`` per level with the levels' ``thresholds``, FAR / FRR / retry there."""
    labels = np.array([pair.same for pair in pairs])
    failed = ~np.isfinite(scores)
    kinds: dict[str, int] = {}
    for error in errors.values():
        kinds[type(error).__name__] = kinds.get(type(error).__name__, 0) + 1
    eer, eer_threshold = equal_error_rate(scores, labels)
    return EvaluationReport(
        pairs=len(pairs),
        genuine=int(labels.sum()),
        impostor=int((~labels).sum()),
        failed_pairs=int(failed.sum()),
        failed_genuine=int((failed & labels).sum()),
        failed_files=kinds,
        eer=eer,
        eer_threshold=eer_threshold,
        tar_at_far_1e_2=tar_at_far(scores, labels, 1e-2),
        tar_at_far_1e_3=tar_at_far(scores, labels, 1e-3),
        min_dcf=min_dcf(scores, labels, DEFAULT_P_TARGET),
        p_target=DEFAULT_P_TARGET,
        levels=None if outcomes is None else levels_report(labels, outcomes, thresholds or {}),
    )
