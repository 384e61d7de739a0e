"""1:N identification: who, among everyone enrolled, is this sample?

The probe is scored against every template of its modality made by the current model. A name is
given only when the best score is accepted at the security level **and** no other identity
scores within ``margin`` of it (two lookalikes, or one person enrolled twice, must not be
resolved by a coin toss). The default margin is the width of the level's retry band
(``threshold - retry_threshold``): a gap smaller than that is within the scores' noise.

Only candidates scoring at or above the level's retry threshold are returned, and a failed search
names nobody: the answer must not rank strangers against the whole gallery.

The templates come from a :class:`~enrollment.gallery.Gallery`: every one of them while the gallery
is searched exactly, else the shortlist of its PQ scan, re-ranked by cosine. The shortlist's evidence is
computed at once (:meth:`Scorer.evidence_many <verify.scorer.Scorer.evidence_many>`: S-norm with
each template's cohort statistics, then the calibrated LLR), and the contenders (every one within
reach of the retry threshold or of the two best) are decided one by one as the verifier decides a
check, from the same cosines. On an exact gallery the answer is therefore the one of deciding every
template (the best, the runner-up, the candidates, the decision). A voice over a phone line (a
probe the scorer's narrowband route may take) is decided against every stored template one by one,
as a check decides it, so that each template's telephone-band copy counts; on a gallery too large
for exact search it takes the shortlist's plain path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from enrollment.enroll import decide_template
from enrollment.errors import UnknownIdentityError
from enrollment.gallery import Gallery, GalleryConfig, GalleryKey
from enrollment.store import TemplateStore
from verify.embedding import Embedding
from verify.errors import ConfigError
from verify.scorer import evidence
from verify.scoring import Decision, l2_normalize
from verify.verifier import Verifier

SLACK = 1e-6
"""Evidence computed at once may differ from a single decision's in the last bits: rows this close
to a cut are decided too."""


@dataclass(frozen=True)
class Candidate:
    """One enrolled identity and how strongly the probe matches it.

    Attributes:
        identity: the enrolled name.
        score: the decision's score (the normalised score when the scorer calibrates).
        evidence: what the level's thresholds apply to: the calibrated LLR, else the score.
    """

    identity: str
    score: float
    evidence: float


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
    """Cosines ``(K,)`` of the probe against L2-normalised templates ``(K, D)``, computed as
    :func:`~verify.scoring.cosine_scores` computes them (the same bits)."""
    return (unit_templates @ l2_normalize(np.atleast_2d(probe.vector)).T)[:, 0]


def identify(
    store: TemplateStore, verifier: Verifier, probe: Embedding, margin: float | None = None, *,
    gallery: Gallery | None = None,
) -> Identification:
    """Best enrolled identity for ``probe`` (embedded by ``verifier.pipeline``), or nobody.

    Args:
        margin: smallest gap in evidence (the calibrated LLR, or the cosine for an uncalibrated
            scorer) between the best and second-best identity; ``None`` uses the width of the
            security level's retry band.
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
    route = verifier.scorer.narrowband
    if route is not None and gallery.exact and route.takes(probe.measures):
        names, decisions = _decided_one_by_one(store, verifier, probe, key)
    else:
        names, decisions = _decided_from_shortlist(gallery, verifier, verifier.scorer.compensated(probe))
    strength = np.array([evidence(decision) for decision in decisions])
    order = np.argsort(-strength, kind="stable")
    ranked = [Candidate(names[i], decisions[i].score, float(strength[i])) for i in order]
    candidates = tuple(c for c in ranked if c.evidence >= point.retry_threshold)
    best, decision, skipped = ranked[0], decisions[order[0]], gallery.skipped
    if not decision.accepted:
        reason = f"no enrolled {pipeline.modality} matches ({decision.reason})"
        return Identification(None, decision, candidates, reason, skipped)
    if len(ranked) > 1 and best.evidence - ranked[1].evidence < margin:
        runner_up = ranked[1]
        reason = (
            f"ambiguous: {best.identity!r} ({best.evidence:.3f}) and {runner_up.identity!r} "
            f"({runner_up.evidence:.3f}) are closer than the margin {margin:.3f}"
        )
        ambiguous = dataclasses.replace(decision, outcome="retry", reason=reason)
        return Identification(None, ambiguous, candidates, reason, skipped)
    return Identification(best.identity, decision, candidates, "", skipped)


def _decided_from_shortlist(gallery: Gallery, verifier: Verifier, probe: Embedding) -> tuple[list[str], list[Decision]]:
    """The contenders of the gallery's shortlist for ``probe`` (compensated already: see
    :meth:`~verify.scorer.Scorer.compensated`) and their decisions."""
    shortlist, scorer = gallery.shortlist(probe.vector), verifier.scorer
    stats = [found if scorer.usable(found) else scorer.template_stats(row)
             for row, found in zip(shortlist.vectors, shortlist.stats)]  # as Verifier.decide_many
    cosines = exact_scores(shortlist.unit, probe)
    contenders = _contenders(scorer.evidence_many(cosines, probe, stats), verifier.operating_point.retry_threshold)
    decisions = scorer.decide_many(cosines[contenders], verifier.level, probe, [stats[i] for i in contenders])
    return [shortlist.identities[i] for i in contenders], decisions


def _decided_one_by_one(store: TemplateStore, verifier: Verifier, probe: Embedding,
                        key: GalleryKey) -> tuple[list[str], list[Decision]]:
    """Every current template of ``key`` and its decision for ``probe``, each as a check decides it:
    a voice over a phone line against each template's telephone-band copy where the route chooses it."""
    templates = [template for template in store.list_templates()
                 if template.modality == key.modality and key.holds(template)]
    return [template.identity for template in templates], [decide_template(verifier, template, probe)
                                                          for template in templates]


def _contenders(strength: np.ndarray, retry_threshold: float) -> np.ndarray:
    """Rows (ascending) that may be a candidate, the best or the runner-up: at least the two best."""
    second = np.partition(strength, -2)[-2] if len(strength) > 1 else strength[0]
    return np.flatnonzero(strength >= min(retry_threshold, second) - SLACK)
