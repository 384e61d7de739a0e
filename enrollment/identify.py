"""1:N identification: who, among everyone enrolled, is this sample?

The probe is scored against every template of its modality made by the current model. A name is
given only when the best score is accepted at the security level **and** no other identity
scores within ``margin`` of it (two lookalikes, or one person enrolled twice, must not be
resolved by a coin toss). The default margin is the width of the level's retry band
(``threshold - retry_threshold``): a gap smaller than that is within the scores' noise.

Only candidates scoring at or above the level's retry threshold are returned, and a failed search
names nobody: the answer must not rank strangers against the whole gallery.

The templates come from a :class:`~enrollment.gallery.Gallery`: every one of them while the gallery
is searched exactly (the answers are those of scoring the whole gallery), else a shortlist
retrieved by HNSW. Either way the candidates are then scored by :func:`exact_scores`, the one
scorer of 1:N (the seam where per-template score normalisation plugs in).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from enrollment.errors import UnknownIdentityError
from enrollment.gallery import Gallery, GalleryConfig, GalleryKey
from enrollment.store import TemplateStore
from verify.embedding import Embedding
from verify.errors import ConfigError
from verify.scoring import Decision, l2_normalize
from verify.verifier import Verifier


@dataclass(frozen=True)
class Candidate:
    """One enrolled identity and its cosine score against the probe."""

    identity: str
    score: float


@dataclass(frozen=True)
class Identification:
    """The answer to "who is this?".

    Attributes:
        identity: the recognised person, or ``None`` when nobody can be named.
        decision: the decision for the best candidate (its outcome is ``"accepted"`` only when
            ``identity`` is set; an ambiguous match is ``"retry"``).
        candidates: the identities scoring at least the retry threshold, best first.
        reason: why nobody was named; empty when ``identity`` is set.
        skipped: identities whose template was made by another model (re-enroll them).
    """

    identity: str | None
    decision: Decision
    candidates: tuple[Candidate, ...]
    reason: str = ""
    skipped: tuple[str, ...] = ()


def exact_scores(unit_templates: np.ndarray, probe: Embedding) -> np.ndarray:
    """Scores ``(K,)`` of the probe against L2-normalised templates ``(K, D)``: the verifier's cosine
    similarity, computed as :func:`~verify.scoring.cosine_scores` computes it (the same bits)."""
    return (unit_templates @ l2_normalize(np.atleast_2d(probe.vector)).T)[:, 0]


def identify(
    store: TemplateStore, verifier: Verifier, probe: Embedding, margin: float | None = None, *,
    gallery: Gallery | None = None,
) -> Identification:
    """Best enrolled identity for ``probe`` (embedded by ``verifier.pipeline``), or nobody.

    Args:
        margin: smallest score gap (cosine units) between the best and second-best identity;
            ``None`` uses the width of the security level's retry band.
        gallery: the up-to-date gallery of the pipeline's modality and model (see
            :meth:`Service.gallery <enrollment.service.Service.gallery>`); ``None`` reads every
            template of the store into an exact one.

    Raises:
        UnknownIdentityError: nobody is enrolled for this modality with the current model.
        ConfigError: ``margin`` is negative, or the gallery holds another modality or model.
    """
    pipeline, point = verifier.pipeline, verifier.operating_point
    if margin is None:
        margin = point.threshold - point.retry_threshold
    if not margin >= 0:
        raise ConfigError(f"identification margin must be >= 0, got {margin!r}")
    key = GalleryKey(pipeline.modality, pipeline.model_id, pipeline.model_version)
    if gallery is None:
        gallery = Gallery.build(store, key, GalleryConfig())
    elif gallery.key != key:
        raise ConfigError(f"the gallery holds {gallery.key}, the verifier embeds {key}")
    if not gallery.count:
        raise UnknownIdentityError(
            f"nobody is enrolled for {pipeline.modality} with model {pipeline.model_id} {pipeline.model_version}"
        )
    shortlist = gallery.shortlist(probe.vector)
    scores = exact_scores(shortlist.unit, probe)
    above = np.flatnonzero(scores >= point.retry_threshold)
    candidates = tuple(Candidate(shortlist.identities[i], float(scores[i]))
                       for i in above[np.argsort(-scores[above], kind="stable")])
    first = int(np.argmax(scores))  # the first of equal scores, as a stable sort would rank them
    best, skipped = Candidate(shortlist.identities[first], float(scores[first])), gallery.skipped
    decision = verifier.decide(shortlist.vectors[first], probe)
    if not decision.accepted:
        reason = f"no enrolled {pipeline.modality} matches ({decision.reason})"
        return Identification(None, decision, candidates, reason, skipped)
    runner_up = _runner_up(scores, first, shortlist.identities)
    if runner_up is not None and best.score - runner_up.score < margin:
        reason = (
            f"ambiguous: {best.identity!r} ({best.score:.3f}) and {runner_up.identity!r} "
            f"({runner_up.score:.3f}) are closer than the margin {margin:.3f}"
        )
        ambiguous = Decision("retry", decision.score, decision.threshold, reason)
        return Identification(None, ambiguous, candidates, reason, skipped)
    return Identification(best.identity, decision, candidates, "", skipped)


def _runner_up(scores: np.ndarray, first: int, identities: list[str]) -> Candidate | None:
    """The second-best candidate (the first of equal scores after ``first``), or ``None`` for one template."""
    if len(scores) < 2:
        return None
    rest = scores.copy()
    rest[first] = -np.inf
    second = int(np.argmax(rest))
    return Candidate(identities[second], float(scores[second]))
