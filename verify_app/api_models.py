"""The REST API's answers: pydantic models (the OpenAPI schema) built from the service's results."""

from __future__ import annotations

import math

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel

from enrollment.results import CheckResult, EnrollResult, IdentifyResult
from enrollment.template import Template
from verify.embedding import Embedding
from verify.scoring import Decision

Outcome = Literal["accepted", "rejected", "retry"]


class ErrorAnswer(BaseModel):
    """Every error: the typed error's class name and its message."""

    error: str
    message: str


class ModalityDecision(BaseModel):
    """One modality's decision and the sample's quality.

    ``score`` is the normalised score and ``threshold`` the score this sample needed (``null`` when
    its quality is too poor for any score to do); ``llr`` is the calibrated log-likelihood ratio
    the level's ``llr_threshold`` applies to.
    """

    outcome: Outcome
    score: float
    threshold: float | None
    llr: float | None
    llr_threshold: float | None
    reason: str
    quality_issues: list[str]
    notes: list[str]


class VerifyAnswer(BaseModel):
    """A 1:1 check. ``score``/``threshold`` are the deciding modality's (the one closest to failing);
    ``rule`` how a face and a voice were combined (``"and"``, or ``"sum"`` of their LLRs)."""

    outcome: Outcome
    identity: str
    level: str
    score: float
    threshold: float | None
    reason: str
    quality_issues: list[str]
    modalities: dict[str, ModalityDecision]
    rule: str


class Candidate(BaseModel):
    """An enrolled person in or above the retry band: the score and the evidence (LLR) it gives."""

    identity: str
    score: float
    evidence: float


class ModalitySearch(ModalityDecision):
    """One modality's 1:N search: the best match and the candidates scoring in or above the retry band."""

    identity: str | None
    candidates: list[Candidate]


class IdentifyAnswer(BaseModel):
    """A 1:N search: ``identity`` is ``null`` when nobody is named (no clear match)."""

    outcome: Outcome
    identity: str | None
    level: str
    score: float
    threshold: float | None
    reason: str
    quality_issues: list[str]
    modalities: dict[str, ModalitySearch]


class EnrolledModality(BaseModel):
    samples: int
    model: str
    model_version: str
    quality_issues: list[str]
    notes: list[str]
    warnings: list[str]


class FailedModality(BaseModel):
    error: str
    message: str


class EnrollAnswer(BaseModel):
    """An enrollment: modalities enrolled, and those that failed beside them."""

    identity: str
    enrolled: dict[str, EnrolledModality]
    failed: dict[str, FailedModality]


class StoredTemplate(BaseModel):
    samples: int
    model: str
    model_version: str
    enrolled_at: str
    updated_at: str


class Identity(BaseModel):
    identity: str
    modalities: dict[str, StoredTemplate]


class IdentitiesAnswer(BaseModel):
    identities: list[Identity]


class DeleteAnswer(BaseModel):
    identity: str
    deleted: int


class HealthAnswer(BaseModel):
    status: Literal["ok"]
    models_loaded: list[str]


class LevelThreshold(BaseModel):
    target_far: float
    threshold: float
    retry_threshold: float


class ModelInfo(BaseModel):
    model: str
    model_version: str
    thresholds: dict[str, LevelThreshold]


class InfoAnswer(BaseModel):
    api_version: str
    device: str
    default_level: str
    auth: Literal["token", "none"]
    max_body_bytes: int
    models: dict[str, ModelInfo]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _decision(decision: Decision, sample: Embedding | None) -> dict:
    return {"outcome": decision.outcome, "score": decision.score, "threshold": _finite(decision.threshold),
            "llr": decision.llr, "llr_threshold": decision.llr_threshold, "reason": decision.reason, "quality_issues": list(sample.quality_issues) if sample else [],
            "notes": list(sample.notes) if sample else []}


def _deciding(decisions: Mapping[str, Decision]) -> Decision:
    return min(decisions.values(), key=lambda decision: decision.score - decision.threshold)


def _issues(samples: Mapping[str, Embedding]) -> list[str]:
    return [f"{modality}: {issue}" for modality, sample in samples.items() for issue in sample.quality_issues]


def verify_answer(result: CheckResult) -> dict:
    """The JSON of a 1:1 check."""
    return {"outcome": result.outcome, "identity": result.identity, "level": result.level, "score": result.score,
            "threshold": _finite(result.threshold), "reason": result.reason, "quality_issues": _issues(result.samples),
            "modalities": {m: _decision(d, result.samples.get(m)) for m, d in result.decisions.items()},
            "rule": result.rule}


def identify_answer(result: IdentifyResult) -> dict:
    """The JSON of a 1:N search."""
    deciding = _deciding({m: s.decision for m, s in result.searches.items()})
    modalities = {
        m: {**_decision(s.decision, result.samples.get(m)), "identity": s.identity,
            "candidates": [{"identity": c.identity, "score": c.score, "evidence": c.evidence} for c in s.candidates]}
        for m, s in result.searches.items()
    }
    return {"outcome": result.outcome, "identity": result.identity, "level": result.level, "score": deciding.score,
            "threshold": _finite(deciding.threshold), "reason": result.reason, "quality_issues": _issues(result.samples),
            "modalities": modalities}


def enroll_answer(result: EnrollResult) -> dict:
    """The JSON of an enrollment."""
    enrolled = {
        m: {"samples": e.template.sample_count, "model": e.template.model_id, "model_version": e.template.model_version,
            "quality_issues": list(e.sample.quality_issues), "notes": list(e.sample.notes), "warnings": list(e.warnings)}
        for m, e in result.enrolled.items()
    }
    failed = {m: {"error": type(error).__name__, "message": str(error)} for m, error in result.failed.items()}
    return {"identity": result.identity, "enrolled": enrolled, "failed": failed}


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def identities_answer(templates: list[Template]) -> dict:
    """The JSON of the gallery: one entry per identity, its templates by modality."""
    identities: dict[str, dict] = {}
    for t in templates:
        identities.setdefault(t.identity, {})[t.modality] = {
            "samples": t.sample_count, "model": t.model_id, "model_version": t.model_version,
            "enrolled_at": _iso(t.created_at), "updated_at": _iso(t.updated_at)}
    return {"identities": [{"identity": name, "modalities": m} for name, m in identities.items()]}
