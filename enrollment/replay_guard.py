"""Replay guard: refuse a probe that is a copy of an enrollment sample or of a recent accepted probe.

Enrolling remembers the sample's digest (sha256 of the file, bytes or array) and embedding;
every accepted probe is remembered too. A later probe of that identity whose digest matches, or
whose embedding is near-identical (the model's measured threshold, :mod:`verify.replay`), is
answered "rejected" with the reason "replay suspected: ...", logged and counted like any failed
check. Only the digest and the embedding are kept, sealed under the store's key like templates,
at most :data:`KEEP` of each kind per identity and modality (the oldest go first). Deleting a
template deletes its samples (a trigger); re-enrolling replaces them.
"""

from __future__ import annotations

import dataclasses

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from enrollment.crypto import associated_data
from enrollment.store import TemplateStore
from enrollment.template import validate_identity, validate_modality
from verify.embedding import Embedding, Pipeline
from verify.replay import DIGEST_BYTES, RememberedSample, find_replay, sample_digest
from verify.scoring import Decision

KEEP = {"enrolled": 16, "accepted": 16}
"""Samples kept per identity, modality and kind."""


def _bound(identity: str, modality: str, kind: str, model_id: str, version: str, dim: int) -> bytes:
    return associated_data(identity, modality, f"replay:{kind}", f"{model_id}:{version}", dim, 1)


def remember(store: TemplateStore, identity: str, pipeline: Pipeline, kind: str, digest: bytes | None,
             vector: np.ndarray, now: float | None = None) -> None:
    """Keep one sample's digest and ``(D,)`` embedding; drop the oldest beyond :data:`KEEP`."""
    identity, modality = validate_identity(identity), validate_modality(pipeline.modality)
    vector = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
    flag = b"\x01" if digest is not None else b"\x00"
    plaintext = flag + (digest or bytes(DIGEST_BYTES)) + vector.tobytes()
    bound = _bound(identity, modality, kind, pipeline.model_id, pipeline.model_version, vector.size)
    blob, seal = store.seal(plaintext, bound)
    with store.transaction(write=True) as connection:
        connection.execute(
            "INSERT INTO replay_samples (identity, modality, kind, model_id, model_version, sample, dim, created_at,"
            " seal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (identity, modality, kind, pipeline.model_id, pipeline.model_version, blob, vector.size,
             time.time() if now is None else now, seal),
        )
        connection.execute(
            "DELETE FROM replay_samples WHERE id IN (SELECT id FROM replay_samples WHERE identity = ? AND modality = ?"
            " AND kind = ? ORDER BY id DESC LIMIT -1 OFFSET ?)", (identity, modality, kind, KEEP[kind]),
        )


def remembered(store: TemplateStore, identity: str, pipeline: Pipeline) -> list[RememberedSample]:
    """The samples kept for ``identity`` by the pipeline's model, oldest first.

    Raises:
        StoreKeyError, TemplateIntegrityError: a row's sealing does not match the store's key.
    """
    identity, modality = validate_identity(identity), validate_modality(pipeline.modality)
    with store.transaction() as connection:
        rows = connection.execute(
            "SELECT kind, sample, dim, seal FROM replay_samples WHERE identity = ? AND modality = ? AND model_id = ?"
            " AND model_version = ? ORDER BY id", (identity, modality, pipeline.model_id, pipeline.model_version),
        ).fetchall()
    samples = []
    for kind, blob, dim, seal in rows:
        what = f"enrollment store {store.path}: a replay sample of {identity!r} ({modality})"
        plaintext = store.unseal(blob, seal, _bound(identity, modality, kind, pipeline.model_id,
                                                    pipeline.model_version, dim), what)
        digest = plaintext[1 : 1 + DIGEST_BYTES] if plaintext[0] == 1 else None
        samples.append(RememberedSample(digest, np.frombuffer(plaintext[1 + DIGEST_BYTES :], dtype="<f4").copy(), kind))
    return samples


def forget(store: TemplateStore, identity: str, modality: str) -> int:
    """Drop every sample kept for ``identity`` and ``modality`` (re-enrollment); returns how many."""
    identity, modality = validate_identity(identity), validate_modality(modality)
    with store.transaction(write=True) as connection:
        return connection.execute("DELETE FROM replay_samples WHERE identity = ? AND modality = ?",
                                  (identity, modality)).rowcount


@dataclass(frozen=True)
class ReplayGuard:
    """The replay rule for one pipeline: answers whether an accepted probe is a copy.

    Attributes:
        store: where samples are kept.
        pipeline: the model the samples and probes come from.
        near_identical: the model's near-identical cosine, or ``None`` (a model without a measured
            threshold: only byte-identical copies are caught).
    """

    store: TemplateStore
    pipeline: Pipeline
    near_identical: float | None

    def review(self, identity: str, digest: bytes | None, probe: Embedding, decision: Decision) -> Decision:
        """``decision``, or a rejection "replay suspected: ..." when an accepted probe is a copy."""
        if not decision.accepted:
            return decision
        why = self.find(identity, digest, [probe.vector])
        return dataclasses.replace(decision, outcome="rejected", reason=why) if why else decision

    def remember_accepted(self, identity: str, digest: bytes | None, probe: Embedding) -> None:
        """Keep an accepted probe, so that a copy of it is refused later."""
        remember(self.store, identity, self.pipeline, "accepted", digest, probe.vector)

    def find(self, identity: str, digest: bytes | None, vectors: Sequence[np.ndarray]) -> str | None:
        """Why a probe (its digest and one or more ``(D,)`` embeddings) is a copy, or ``None``."""
        kept = remembered(self.store, identity, self.pipeline)
        threshold = self.near_identical if self.near_identical is not None else np.inf
        for index, vector in enumerate(vectors):
            why = find_replay(digest if index == 0 else None, vector, kept, threshold)
            if why:
                return why
        return None


class ReplayReview:
    """The replay rule over the probes made from ``sources`` (one check or one batch).

    Called as ``review(index, probe, decision)`` it flags copies (see
    :data:`enrollment.enroll.Review`); :meth:`remember_accepted` then keeps the probes whose final
    answer (after the lockout) was an acceptance.
    """

    def __init__(self, guard: ReplayGuard, identity: str, sources: Sequence[object]) -> None:
        self.guard = guard
        self.identity = identity
        self.sources = sources
        self._accepted: dict[int, tuple[bytes | None, Embedding]] = {}

    def __call__(self, index: int, probe: Embedding, decision: Decision) -> Decision:
        digest = sample_digest(self.sources[index])
        decision = self.guard.review(self.identity, digest, probe, decision)
        if decision.accepted:
            self._accepted[index] = (digest, probe)
        return decision

    def remember_accepted(self, answers: Sequence[object]) -> None:
        """Keep the probes whose answer in ``answers`` (aligned with the sources) is an acceptance."""
        for index, (digest, probe) in self._accepted.items():
            if isinstance(answers[index], Decision) and answers[index].accepted:
                self.guard.remember_accepted(self.identity, digest, probe)
