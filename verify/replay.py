"""Replay detection: is a probe a copy of a sample already seen for this identity?

Two tests, both cheap. A probe whose bytes hash to the digest of a remembered sample is a
byte-identical copy. A probe whose embedding has cosine at or above the model's
*near-identical* threshold with a remembered sample's embedding is a near-identical copy (a
re-encoded, resized or re-recorded file). That threshold is measured per model by
``scripts/replay_threshold.py`` as the largest cosine between two *different* genuine samples of
one person in the data sets, plus a margin, and ships beside the model as
``<model_id>.replay.json``: on that data it never fires on two genuine samples.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from verify.errors import WeightsError
from verify.weights import MODELS_DIR

DIGEST_BYTES = 32
"""Length of a sample digest (sha256)."""

REPLAY_REASON = "replay suspected"
"""How every answer refused as a replay starts: front ends show it as it is."""


@dataclass(frozen=True)
class ReplayThreshold:
    """A model's near-identical cosine threshold and how it was measured.

    Attributes:
        model_id: the embedding model it was measured for.
        cosine: probes at or above this cosine with a remembered sample are near-identical copies.
        provenance: data sets, pair counts, largest genuine cosine, margin and the command.
    """

    model_id: str
    cosine: float
    provenance: dict[str, Any] = field(default_factory=dict)


def replay_threshold_path(model_id: str) -> Path:
    """Where the near-identical threshold of ``model_id`` ships."""
    return MODELS_DIR / f"{model_id}.replay.json"


def save_replay_threshold(path: Path, threshold: ReplayThreshold) -> None:
    """Write a threshold as JSON."""
    document = {"model_id": threshold.model_id, "near_identical_cosine": round(threshold.cosine, 6),
                "measurement": threshold.provenance}
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def load_replay_threshold(model_id: str, path: Path | None = None) -> ReplayThreshold:
    """The shipped near-identical threshold of ``model_id``.

    Raises:
        WeightsError: the file is missing, unreadable, or made for another model.
    """
    path = replay_threshold_path(model_id) if path is None else Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        threshold = ReplayThreshold(document["model_id"], float(document["near_identical_cosine"]),
                                    document.get("measurement", {}))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WeightsError(f"cannot read the replay threshold {path}: {error}. Measure it with: "
                           f"python scripts/replay_threshold.py") from error
    if threshold.model_id != model_id:
        raise WeightsError(f"{path} was measured for {threshold.model_id}, not {model_id}: "
                           "rerun python scripts/replay_threshold.py")
    return threshold


def sample_digest(source: Any) -> bytes | None:
    """sha256 of a sample's content: a file's bytes, encoded bytes, or an array with its shape.

    A ``(samples, rate)`` pair includes the rate. ``None`` for anything else (nothing to hash),
    or a file that cannot be read (decoding will report it).
    """
    digest = hashlib.sha256()
    if isinstance(source, (str, Path)):
        try:
            with open(source, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError:
            return None
        return digest.digest()
    if isinstance(source, (bytes, bytearray, memoryview)):
        digest.update(bytes(source))
        return digest.digest()
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], np.ndarray):
        samples, rate = source
        digest.update(f"audio {rate} {samples.dtype.str} {samples.shape}".encode())
        digest.update(np.ascontiguousarray(samples).tobytes())
        return digest.digest()
    if isinstance(source, np.ndarray):
        digest.update(f"array {source.dtype.str} {source.shape}".encode())
        digest.update(np.ascontiguousarray(source).tobytes())
        return digest.digest()
    return None


@dataclass(frozen=True)
class RememberedSample:
    """A sample kept for replay checks: its digest (or ``None``), ``(D,)`` unit embedding and kind.

    ``kind`` is ``"enrolled"`` (an enrollment sample) or ``"accepted"`` (a recently accepted probe).
    """

    digest: bytes | None
    vector: np.ndarray
    kind: str


def find_replay(digest: bytes | None, vector: np.ndarray, remembered: Sequence[RememberedSample],
                threshold: float) -> str | None:
    """Why a probe is a replay of one of ``remembered``, or ``None`` when it is not.

    Args:
        digest: the probe's :func:`sample_digest`, if any.
        vector: the probe's ``(D,)`` embedding.
        remembered: the identity's remembered samples (same model and dimension).
        threshold: the model's near-identical cosine.
    """
    described = {"enrolled": "an enrollment sample", "accepted": "a recently accepted sample"}
    if digest is not None:
        for sample in remembered:
            if sample.digest == digest:
                return f"{REPLAY_REASON}: a byte-identical copy of {described[sample.kind]}"
    vectors = [sample.vector for sample in remembered if sample.vector.shape == np.shape(vector)]
    if not vectors:
        return None
    probe = np.asarray(vector, np.float64) / np.linalg.norm(vector)
    stack = np.asarray(vectors, np.float64)
    cosines = stack @ probe / np.linalg.norm(stack, axis=1)
    best = int(np.argmax(cosines))
    if cosines[best] >= threshold:
        kind = [sample for sample in remembered if sample.vector.shape == np.shape(vector)][best].kind
        return (f"{REPLAY_REASON}: a near-identical copy of {described[kind]} "
                f"(cosine {cosines[best]:.4f} >= {threshold:.4f})")
    return None
