"""Noisy and echoing voice probes moved back towards where their clean recording would embed.

Noise and a room's echo do not scatter a speaker's embedding at random: they push it along
directions of their own, the same for every speaker. Measured on the calibration speakers, the
shift of a degraded copy from its clean recording along the fitted direction grows steadily as the
signal-to-noise ratio falls from about 20 dB to 8 dB, and as a clip's decay (``decay_db``, how
fast its level can fall) rises from about -15 dB to -7 dB. A :class:`ProbeCompensation`
subtracts from a probe's embedding the shift its measures predict, ``sum_k w_k(measures) * d_k``,
with one direction ``d_k`` per :class:`Ramp` (a weight rising linearly from 0 to 1 between two
values of one measure), then renormalises. The directions are fitted by least squares on the
calibration speakers' degraded copies against their clean recordings
(:func:`verify.compensation_fit.fit_directions`, ``scripts/calibrate_compensation.py``); the score
calibration is then fitted on compensated probes. Templates are never compensated: they are
scored as they were enrolled, as calibration scores its enrollments (enrollment refuses noisy
samples unless told otherwise), so stored templates stay valid whatever ships here.

``<model_id>.compensation.json``: ``{"format", "format_version", "model_id", "ramps": [{"measure",
"start", "full"}], "directions": [[...D floats] per ramp], "provenance": {...}}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from verify.embedding import Embedding
from verify.errors import WeightsError
from verify.weights import read_model_document, write_model_document

COMPENSATION_FORMAT = "verify-probe-compensation"
COMPENSATION_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Ramp:
    """A weight of 0 where ``measure`` is at ``start`` or beyond it, 1 at ``full`` or beyond it,
    linear in between (``start`` may lie above ``full``: a weight that rises as the measure falls).
    A sample that did not report the measure weighs 0."""

    measure: str
    start: float
    full: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.start) and np.isfinite(self.full)) or self.start == self.full:
            raise ValueError(f"a ramp needs two different finite ends, got {self.start!r} and {self.full!r}")

    def weights(self, values: np.ndarray) -> np.ndarray:
        """``(N,)`` weights of ``(N,)`` measure values (NaN: 0)."""
        rising = (np.asarray(values, dtype=np.float64) - self.start) / (self.full - self.start)
        return np.nan_to_num(np.clip(rising, 0.0, 1.0), nan=0.0)


DEFAULT_RAMPS = (Ramp("snr_db", 20.0, 8.0), Ramp("decay_db", -15.0, -7.0))
"""Noise (estimated SNR falling from 20 to 8 dB) and echo (decay rising from -15 to -7 dB): the
ranges over which the calibration speakers' shifts grow (``scripts/calibrate_compensation.py``
prints them)."""


@dataclass(frozen=True, eq=False)
class ProbeCompensation:
    """Directions of the shift each ramp's condition gives an embedding, and how to undo it.

    Attributes:
        model_id: the embedding model the directions were fitted for.
        ramps: what weighs each direction.
        directions: ``(K, D)``, one row per ramp.
        provenance: data, command and figures of the fit.
    """

    model_id: str
    ramps: tuple[Ramp, ...]
    directions: np.ndarray
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        directions = np.asarray(self.directions, dtype=np.float64)
        if directions.ndim != 2 or len(directions) != len(self.ramps) or not np.isfinite(directions).all():
            raise ValueError(f"need one finite direction per ramp, got {directions.shape} for {len(self.ramps)} ramps")
        object.__setattr__(self, "directions", directions)

    @property
    def compensation_id(self) -> str:
        """First 12 hex digits of a sha256 over the ramps and directions: what a calibration names."""
        digest = hashlib.sha256(json.dumps([dataclasses.astuple(ramp) for ramp in self.ramps]).encode())
        digest.update(np.ascontiguousarray(self.directions).tobytes())
        return digest.hexdigest()[:12]

    def weights(self, measures: Mapping[str, Any], count: int) -> np.ndarray:
        """``(count, K)`` ramp weights of ``count`` samples' measures (scalars or ``(count,)`` arrays)."""
        columns = [ramp.weights(np.broadcast_to(np.asarray(measures.get(ramp.measure, np.nan), dtype=np.float64),
                                                (count,)))
                   for ramp in self.ramps]
        return np.stack(columns, axis=1)

    def compensated_many(self, vectors: np.ndarray, measures: Mapping[str, Any]) -> np.ndarray:
        """``(N, D)`` float32 unit vectors: ``vectors`` less the shift their ``measures`` predict."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        return self._moved(vectors, self.weights(measures, len(vectors)))

    def compensated(self, probe: Embedding) -> Embedding:
        """``probe`` with its vector compensated (itself when no ramp weighs it)."""
        weights = self.weights(probe.measures, 1)
        if not weights.any():
            return probe
        return dataclasses.replace(probe, vector=self._moved(np.asarray(probe.vector, np.float64)[None], weights)[0])

    def appended_probes(self, vectors: np.ndarray, measures: Mapping[str, np.ndarray],
                        probe: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The probes of trials over a set of samples, as a scorer compensates them, beside the
        uncompensated samples that enroll: ``(vectors with each probe sample appended compensated,
        the rows appended (to extend the samples' other ``(M,)`` arrays with), the trials' probe rows
        among the appended ones)``. ``measures``: name -> ``(M,)`` values of every sample."""
        rows, inverse = np.unique(probe, return_inverse=True)
        moved = self.compensated_many(vectors[rows], {name: values[rows] for name, values in measures.items()})
        return np.vstack([vectors, moved]), rows, len(vectors) + inverse

    def _moved(self, vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        moved = vectors - weights @ self.directions
        return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)


def save_compensation(path: Path, compensation: ProbeCompensation) -> None:
    """Write a compensation as JSON (format in the module docstring)."""
    write_model_document(path, COMPENSATION_FORMAT, COMPENSATION_FORMAT_VERSION, compensation.model_id, {
        "ramps": [dataclasses.asdict(ramp) for ramp in compensation.ramps],
        "directions": [[round(float(value), 8) for value in row] for row in compensation.directions],
        "provenance": dict(compensation.provenance),
    }, indent=1)


def load_compensation(path: Path, model_id: str) -> ProbeCompensation:
    """Read a compensation written by :func:`save_compensation` for ``model_id``.

    Raises:
        WeightsError: unreadable, malformed, of another format or fitted for another model.
    """
    try:
        document = read_model_document(path, COMPENSATION_FORMAT, COMPENSATION_FORMAT_VERSION, model_id)
        ramps = tuple(Ramp(str(ramp["measure"]), float(ramp["start"]), float(ramp["full"])) for ramp in document["ramps"])
        return ProbeCompensation(model_id, ramps, np.array(document["directions"], dtype=np.float64),
                                 document.get("provenance", {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise WeightsError(
            f"cannot read the probe compensation {path}: {error}. Refit with: python scripts/calibrate_compensation.py"
        ) from error
