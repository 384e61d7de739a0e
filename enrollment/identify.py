"""1:N identification: who, among everyone enrolled, is this sample?

The probe is scored against every template of its modality made by the current model. A name is
given only when the best score is accepted at the security level **and** no other identity
scores within ``margin`` of it (two lookalikes, or one person enrolled twice, must not be
resolved by a coin toss). The default margin is the width of the level's retry band
(``threshold - retry_threshold``): a gap smaller than that is within the scores' noise.

Only candidates scoring at or above the level's retry threshold are returned, and a failed search
names nobody: the answer must not rank strangers against the whole gallery.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from enrollment.errors import UnknownIdentityError
from enrollment.store import TemplateStore
from verify.embedding import Embedding
from verify.errors import ConfigError
from verify.scorer import evidence
from verify.scoring import Decision
from verify.verifier import Verifier


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


def identify(
    store: TemplateStore, verifier: Verifier, probe: Embedding, margin: float | None = None
) -> Identification:
    """Best enrolled identity for ``probe`` (embedded by ``verifier.pipeline``), or nobody.

    Args:
        margin: smallest gap in evidence (the calibrated LLR, or the cosine for an uncalibrated
            scorer) between the best and second-best identity; ``None`` uses the width of the
            security level's retry band.

    Raises:
        UnknownIdentityError: nobody is enrolled for this modality with the current model.
        ConfigError: ``margin`` is negative.
    """
    pipeline, point = verifier.pipeline, verifier.operating_point
    if margin is None:
        margin = point.threshold - point.retry_threshold
    if not margin >= 0:
        raise ConfigError(f"identification margin must be >= 0, got {margin!r}")
    templates = [t for t in store.list_templates() if t.modality == pipeline.modality]
    current = [t for t in templates if (t.model_id, t.model_version) == (pipeline.model_id, pipeline.model_version)]
    skipped = tuple(t.identity for t in templates if t not in current)
    if not current:
        raise UnknownIdentityError(
            f"nobody is enrolled for {pipeline.modality} with model {pipeline.model_id} {pipeline.model_version}"
        )
    decisions = verifier.decide_many(np.stack([t.embedding for t in current]), probe,
                                     [t.cohort_stats for t in current])
    strength = np.array([evidence(decision) for decision in decisions])
    order = np.argsort(-strength, kind="stable")
    ranked = [Candidate(current[i].identity, decisions[i].score, float(strength[i])) for i in order]
    candidates = tuple(c for c in ranked if c.evidence >= point.retry_threshold)
    best, decision = ranked[0], decisions[order[0]]
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
