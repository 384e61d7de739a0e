"""Score normalisation against an impostor cohort (adaptive S-norm).

A raw cosine means different things for different people and recordings: some templates score
high against everybody. S-norm measures each side against a cohort of other people's embeddings:

    s_norm = 0.5 * ((s - mean_t) / std_t + (s - mean_p) / std_p)

where ``mean_t, std_t`` (template) and ``mean_p, std_p`` (probe) are the mean and standard
deviation (ddof 0) of that side's ``top_k`` highest cosine scores against the cohort: adaptive
S-norm, as in WeSpeaker ``wespeaker/bin/score_norm.py``; plain S-norm when ``top_k >= C``.

The template's :class:`CohortStats` are computed once at enrolment and stored with it; the
probe's at check time (one ``(C, D) @ (D,)`` product and a partial sort).

A cohort ships as two files beside the model: ``<model_id>.cohort.npz`` (``vectors``: ``(C, D)``
float32 embeddings of calibration/training people, never raw samples; ``identities``: ``(C,)``
anonymous integer person labels) and ``<model_id>.cohort.json`` (format, model id, sha256 of the
npz, ``top_k``, ``cohort_id``, provenance).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from verify.errors import CalibrationError, CohortMismatchError, WeightsError

COHORT_FORMAT = "verify-impostor-cohort"
COHORT_FORMAT_VERSION = 1
STD_FLOOR = 1e-4  # a cohort of near-duplicates must not divide by ~0
_ROWS_PER_CHUNK = 1024
_PAIRS_PER_CHUNK = 16_384
_UNIT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class CohortStats:
    """One embedding's top-k cohort score statistics.

    Attributes:
        mean: mean of the ``top_k`` highest cosine scores against the cohort.
        std: their standard deviation (ddof 0), at least :data:`STD_FLOOR`.
        top_k: how many cohort scores were used (``min(top_k, C)``).
        cohort_id: :attr:`Cohort.cohort_id` of the cohort they were computed against.
    """

    mean: float
    std: float
    top_k: int
    cohort_id: str

    def to_json(self) -> str:
        """Compact JSON text, e.g. for a TEXT column."""
        return json.dumps(asdict(self), separators=(",", ":"))

    def to_bytes(self) -> bytes:
        """UTF-8 of :meth:`to_json`, e.g. for a BLOB column."""
        return self.to_json().encode("utf-8")

    @classmethod
    def from_json(cls, text: str | bytes) -> CohortStats:
        """Read statistics written by :meth:`to_json` or :meth:`to_bytes`.

        Raises:
            CalibrationError: the text is not such a document or holds impossible values.
        """
        try:
            document = json.loads(text)
            stats = cls(
                float(document["mean"]),
                float(document["std"]),
                int(document["top_k"]),
                str(document["cohort_id"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CalibrationError(f"cannot read cohort statistics {text!r:.80}: {error!r}") from error
        if not (np.isfinite(stats.mean) and np.isfinite(stats.std) and stats.std > 0 and stats.top_k >= 2):
            raise CalibrationError(f"impossible cohort statistics {stats}")
        return stats

    from_bytes = from_json


@dataclass(frozen=True, eq=False)
class Cohort:
    """Impostor embeddings of one model and the ``top_k`` used against them.

    Attributes:
        vectors: ``(C, D)`` embeddings; rows are L2-normalised on construction.
        top_k: cohort scores per embedding that enter its statistics (at least 2).
        model_id: the model that made the embeddings.
        identities: optional ``(C,)`` integer person labels; at calibration time both people of a
            trial are left out of its statistics (:meth:`trial_statistics`).
        provenance: where the embeddings came from (data, identities, command, date).
        cohort_id: sha256 (16 hex digits) of the normalised float32 vectors, set on construction.
    """

    vectors: np.ndarray
    top_k: int
    model_id: str
    identities: np.ndarray | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    cohort_id: str = field(init=False)

    def __post_init__(self) -> None:
        vectors = np.asarray(self.vectors, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] < 2:
            raise CalibrationError(f"a cohort needs a (C, D) array with C >= 2, got shape {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(np.isfinite(vectors)) or np.any(norms == 0):
            raise CalibrationError("cohort vectors must be finite and non-zero")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, (int, np.integer)) or self.top_k < 2:
            raise CalibrationError(f"top_k must be an integer >= 2, got {self.top_k!r}")
        # rows already of unit length (a saved cohort) are kept bit for bit, so the id survives a reload
        norms[np.abs(norms - 1.0) <= _UNIT_TOLERANCE] = 1.0
        vectors = np.ascontiguousarray(vectors / norms, dtype=np.float32)
        if self.identities is not None:
            identities = np.asarray(self.identities)
            if identities.shape != (vectors.shape[0],):
                raise CalibrationError(
                    f"identities {identities.shape} do not match {vectors.shape[0]} vectors"
                )
            object.__setattr__(self, "identities", identities)
        object.__setattr__(self, "vectors", vectors)
        object.__setattr__(self, "top_k", int(self.top_k))
        object.__setattr__(self, "cohort_id", hashlib.sha256(vectors.tobytes()).hexdigest()[:16])

    @property
    def size(self) -> int:
        """Number of cohort embeddings ``C``."""
        return self.vectors.shape[0]

    @property
    def effective_k(self) -> int:
        """``min(top_k, C)``: plain S-norm when the cohort is not larger than ``top_k``."""
        return min(self.top_k, self.size)

    def stats(self, vector: np.ndarray) -> CohortStats:
        """Statistics of one ``(D,)`` embedding (a template at enrolment, a probe at check time)."""
        means, stds = self.statistics(np.asarray(vector)[None, :])
        return CohortStats(float(means[0]), float(stds[0]), self.effective_k, self.cohort_id)

    def statistics(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-k means and stds of many ``(N, D)`` embeddings (rows L2-normalised here): two ``(N,)``
        float64 arrays. Trials among the cohort's own people take :meth:`trial_statistics`.

        Raises:
            CalibrationError: wrong dimension, or a zero or non-finite row.
        """
        vectors = self._unit_rows(vectors)
        means, stds = np.empty(len(vectors)), np.empty(len(vectors))
        for start in range(0, len(vectors), _ROWS_PER_CHUNK):
            rows = slice(start, start + _ROWS_PER_CHUNK)
            means[rows], stds[rows] = _top_k_moments(vectors[rows] @ self.vectors.T, self.effective_k)
        return means, stds

    def s_norm_trials(self, cosines: np.ndarray, vectors: np.ndarray, enroll: np.ndarray, probe: np.ndarray,
                      identities: np.ndarray | None = None) -> np.ndarray:
        """S-normalised ``(N,)`` cosines of trials between samples ``enroll`` and ``probe`` of the
        ``(M, D)`` ``vectors``; with each sample's ``(M,)`` person label in the cohort's label space
        (``identities``: samples of the cohort's own people), both people of a trial are left out
        (:meth:`trial_statistics`)."""
        if identities is None:
            means, stds = self.statistics(vectors)
            return s_norm_many(cosines, means[enroll], stds[enroll], means[probe], stds[probe])
        return s_norm_many(cosines, *self.trial_statistics(vectors, identities, enroll, probe))

    def trial_statistics(
        self, vectors: np.ndarray, identities: np.ndarray, enroll: np.ndarray, probe: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Both sides' statistics of trials among the cohort's own people, with both people left out.

        At run time neither the enrolled person nor the one checking is in the cohort. A
        calibration impostor trial between two cohort people would otherwise keep the other
        person in each side's top-k, most of all for the look-alikes whose scores set the
        thresholds, and lower their normalised score: thresholds set on such trials let about
        twice their FAR through on new people.

        Each sample's cohort scores are ranked once: with both people's rows left out, a side's
        top ``k`` lies among the sample's top ``k`` plus twice the most rows one person has.

        Args:
            vectors: ``(M, D)`` embeddings of the samples.
            identities: ``(M,)`` person label of each sample, in the cohort's label space.
            enroll, probe: ``(N,)`` indices of each trial's template and probe sample.

        Returns:
            ``(template means, template stds, probe means, probe stds)``, each ``(N,)``.

        Raises:
            CalibrationError: a cohort without identities, a wrong dimension, a zero or non-finite row,
                or fewer than 2 cohort rows left for a side.
        """
        if self.identities is None:
            raise CalibrationError("trial statistics need a cohort with identities")
        identities = np.asarray(identities)
        used = np.unique(np.concatenate([enroll, probe]))
        nearest_scores, nearest_people = self._nearest(np.asarray(vectors)[used])
        where = np.zeros(len(identities), np.int64)
        where[used] = np.arange(len(used))
        sides = []
        for rows, others in ((enroll, probe), (probe, enroll)):
            pairs, inverse = np.unique(np.stack([rows, identities[others]], axis=1), axis=0, return_inverse=True)
            means, stds = np.empty(len(pairs)), np.empty(len(pairs))
            for start in range(0, len(pairs), _PAIRS_PER_CHUNK):
                chunk = pairs[start : start + _PAIRS_PER_CHUNK]
                scores = nearest_scores[where[chunk[:, 0]]]  # a copy: fancy indexing
                people = nearest_people[where[chunk[:, 0]]]
                scores[(people == identities[chunk[:, 0], None]) | (people == chunk[:, 1, None])] = -np.inf
                means[start : start + len(chunk)], stds[start : start + len(chunk)] = _top_k_moments(
                    scores, self.effective_k)
            sides += [means[inverse.reshape(-1)], stds[inverse.reshape(-1)]]
        return tuple(sides)

    def _nearest(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's highest cohort scores and their people: enough of them that leaving two people
        out still leaves the top ``k`` (``(N, depth)`` float32 and labels, in no order)."""
        most_rows = int(np.unique(self.identities, return_counts=True)[1].max())
        depth = min(self.size, self.effective_k + 2 * most_rows)
        vectors = self._unit_rows(vectors)
        scores, people = np.empty((len(vectors), depth), np.float32), np.empty((len(vectors), depth), self.identities.dtype)
        for start in range(0, len(vectors), _ROWS_PER_CHUNK):
            rows = slice(start, start + _ROWS_PER_CHUNK)
            found = vectors[rows] @ self.vectors.T
            top = np.argpartition(found, self.size - depth, axis=1)[:, self.size - depth :]
            scores[rows], people[rows] = np.take_along_axis(found, top, axis=1), self.identities[top]
        return scores, people

    def _unit_rows(self, vectors: np.ndarray) -> np.ndarray:
        """``(N, D)`` float32 embeddings of the cohort's dimension, L2-normalised.

        Raises:
            CalibrationError: another dimension, or a zero or non-finite row.
        """
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if vectors.ndim != 2 or vectors.shape[1] != self.vectors.shape[1]:
            raise CalibrationError(
                f"embeddings of shape {vectors.shape} do not match the cohort's dimension "
                f"{self.vectors.shape[1]}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(np.isfinite(vectors)) or np.any(norms == 0):
            raise CalibrationError("cannot normalise an embedding that is zero or not finite")
        return vectors / norms

    def check(self, stats: CohortStats) -> None:
        """Raise :class:`CohortMismatchError` unless ``stats`` were computed against this cohort.

        A template enrolled before the cohort changed needs ``cohort.stats(template_vector)``
        again (and storing).
        """
        if stats.cohort_id != self.cohort_id or stats.top_k != self.effective_k:
            raise CohortMismatchError(
                f"statistics of cohort {stats.cohort_id} (top {stats.top_k}) do not match cohort "
                f"{self.cohort_id} (top {self.effective_k}); recompute them with Cohort.stats"
            )


def _top_k_moments(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof 0) of the ``k`` largest finite entries of each row of ``(N, C)``."""
    if k < scores.shape[1]:
        scores = np.partition(scores, scores.shape[1] - k, axis=1)[:, -k:]
    valid = np.isfinite(scores)
    counts = valid.sum(axis=1)
    if np.any(counts < 2):
        raise CalibrationError("fewer than 2 cohort scores left for an embedding after exclusion")
    top = np.where(valid, scores, 0.0).astype(np.float64)
    means = top.sum(axis=1) / counts
    variances = (np.where(valid, top - means[:, None], 0.0) ** 2).sum(axis=1) / counts
    return means, np.maximum(np.sqrt(variances), STD_FLOOR)


def s_norm(score: float, template: CohortStats, probe: CohortStats) -> float:
    """Symmetric normalised score of one trial (see the module docstring).

    Raises:
        CohortMismatchError: the two statistics come from different cohorts or top-k.
    """
    if (template.cohort_id, template.top_k) != (probe.cohort_id, probe.top_k):
        raise CohortMismatchError(
            f"template statistics (cohort {template.cohort_id}, top {template.top_k}) and probe statistics "
            f"(cohort {probe.cohort_id}, top {probe.top_k}) differ"
        )
    return 0.5 * ((score - template.mean) / template.std + (score - probe.mean) / probe.std)


def s_norm_many(
    scores: np.ndarray,
    template_means: np.ndarray,
    template_stds: np.ndarray,
    probe_means: np.ndarray,
    probe_stds: np.ndarray,
) -> np.ndarray:
    """:func:`s_norm` of many trials at once; every argument is ``(N,)``."""
    scores = np.asarray(scores, dtype=np.float64)
    return 0.5 * ((scores - template_means) / template_stds + (scores - probe_means) / probe_stds)


def save_cohort(manifest_path: Path, cohort: Cohort) -> None:
    """Write ``<stem>.npz`` (vectors, identities) and its JSON manifest at ``manifest_path``."""
    manifest_path = Path(manifest_path)
    vectors_path = manifest_path.with_suffix(".npz")
    arrays = {"vectors": cohort.vectors}
    if cohort.identities is not None:
        arrays["identities"] = cohort.identities.astype(np.int64)
    with open(vectors_path, "wb") as handle:
        np.savez(handle, **arrays)
    manifest = {
        "format": COHORT_FORMAT,
        "format_version": COHORT_FORMAT_VERSION,
        "model_id": cohort.model_id,
        "vectors_file": vectors_path.name,
        "sha256": hashlib.sha256(vectors_path.read_bytes()).hexdigest(),
        "shape": list(cohort.vectors.shape),
        "top_k": cohort.top_k,
        "cohort_id": cohort.cohort_id,
        "provenance": dict(cohort.provenance),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def load_cohort(manifest_path: Path, model_id: str) -> Cohort:
    """Read and verify a cohort written by :func:`save_cohort` for ``model_id``.

    Raises:
        WeightsError: unreadable manifest or npz, another format or model, wrong sha256, shape
            or cohort id.
    """
    manifest_path = Path(manifest_path)
    fix = "Rebuild it with: python scripts/calibrate.py"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != COHORT_FORMAT or manifest.get("format_version") != COHORT_FORMAT_VERSION:
            raise WeightsError(
                f"{manifest_path} is not a {COHORT_FORMAT} v{COHORT_FORMAT_VERSION} manifest. {fix}"
            )
        if manifest["model_id"] != model_id:
            raise WeightsError(
                f"{manifest_path} is the cohort of model {manifest['model_id']!r}, not {model_id!r}"
            )
        vectors_path = manifest_path.parent / manifest["vectors_file"]
        digest = hashlib.sha256(vectors_path.read_bytes()).hexdigest()
        if digest != manifest["sha256"]:
            raise WeightsError(
                f"{vectors_path} has sha256 {digest[:12]}..., expected {manifest['sha256'][:12]}.... {fix}"
            )
        with np.load(vectors_path, allow_pickle=False) as arrays:
            vectors = arrays["vectors"]
            identities = arrays["identities"] if "identities" in arrays.files else None
        cohort = Cohort(vectors, manifest["top_k"], model_id, identities, manifest.get("provenance", {}))
    except WeightsError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, CalibrationError) as error:
        raise WeightsError(f"cannot read cohort {manifest_path}: {error}. {fix}") from error
    if list(cohort.vectors.shape) != manifest["shape"] or cohort.cohort_id != manifest["cohort_id"]:
        raise WeightsError(f"{manifest_path}: vectors do not match the manifest's shape or cohort_id. {fix}")
    return cohort
