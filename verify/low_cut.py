"""Voices from another microphone than the enrollment's, compared as if both had lost their bass.

Microphones differ most in how much bass they keep: a headset or a phone cuts under 100-250 Hz
what a laptop or a desk microphone records, and the voice encoder leans on that band, so a genuine
voice recorded on another microphone than its enrollment scored low: the unseen condition
"another microphone" (``verify.voice.degrade.microphone``) was refused 31.4 % of the time at
``medium`` against 2.63 % for the same clips unchanged, and as often the other way round (enrolled
on that microphone, checked on a full one). An embedding's *low-cut copy* is where the encoder
would place its recording without the bass (through a high-pass at :attr:`LowCutCopy.corner_hz`).
Nothing is stored for it: a linear map of the embedding gives it (a reduced-rank ridge regression
of high-passed clips' embeddings on the plain ones, fitted on the calibration people by
``scripts/fit_low_cut.py``), so every template has one, old ones too, and a probe costs no second
pass through the encoder.

A 1:1 check scores three pairs, each S-normalised and calibrated as shipped: the template against
the probe, the template's copy against the probe (the probe lost its bass) and the template
against the probe's copy (the enrollment had none), and keeps the highest LLR after each copy's is
lowered by :attr:`LowCutCopy.penalty`. Taking the best of three scores raises every impostor's
chances; the penalty is the smallest (in steps of 0.1) at which the calibration people's trials,
in every calibration condition together, still meet the default level's target FAR
(``scripts/fit_low_cut.py``), so the levels' thresholds keep their meaning without a refit.
Identification (1:N) scores the template alone, as for the narrowband copy.

``<model_id>.low_cut.json``: ``{"format", "format_version", "model_id", "corner_hz", "penalty",
"down": [[...] x D], "up": [[...] x rank], "provenance": {...}}``; the copy of a unit embedding
``e`` is ``e + (e @ down) @ up``, normalised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from verify.errors import WeightsError
from verify.weights import read_model_document, write_model_document

COPY_FORMAT = "verify-low-cut-copy"
COPY_FORMAT_VERSION = 1


@dataclass(frozen=True)
class LowCutCopy:
    """How an embedding's low-cut copy is made and weighed.

    Attributes:
        model_id: the voice model it was fitted for.
        corner_hz: the high-pass corner the copy stands for.
        down: ``(D, rank)`` and ``up``: ``(rank, D)``, the map's factors (see the module docstring).
        penalty: what the copy's LLR loses in the choice (``>= 0``; see the module docstring).
        provenance: data, command and figures of the fit.
    """

    model_id: str
    corner_hz: float
    down: np.ndarray
    up: np.ndarray
    penalty: float
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        down, up = np.asarray(self.down, np.float64), np.asarray(self.up, np.float64)
        if down.ndim != 2 or up.shape != down.shape[::-1]:
            raise ValueError(f"the map's factors must be (D, r) and (r, D), got {down.shape} and {up.shape}")
        if not (np.isfinite(down).all() and np.isfinite(up).all() and math.isfinite(self.penalty)):
            raise ValueError("the map and the penalty must be finite")
        if self.penalty < 0:
            raise ValueError(f"the penalty must not be negative, got {self.penalty}")
        object.__setattr__(self, "down", down)
        object.__setattr__(self, "up", up)

    def copies(self, embeddings: np.ndarray) -> np.ndarray:
        """The unit low-cut copies ``(N, D)`` float32 of embeddings ``(N, D)`` (or one ``(D,)`` -> ``(D,)``)."""
        rows = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        moved = rows + (rows @ self.down) @ self.up
        moved /= np.linalg.norm(moved, axis=1, keepdims=True)
        return (moved if np.ndim(embeddings) == 2 else moved[0]).astype(np.float32)


def save_copy(path: Path, copy: LowCutCopy) -> None:
    """Write a low-cut copy's map as JSON (format in the module docstring)."""
    write_model_document(path, COPY_FORMAT, COPY_FORMAT_VERSION, copy.model_id, {
        "corner_hz": copy.corner_hz,
        "penalty": copy.penalty,
        "down": [[round(float(value), 7) for value in row] for row in copy.down],
        "up": [[round(float(value), 7) for value in row] for row in copy.up],
        "provenance": dict(copy.provenance),
    }, indent=None)


def load_copy(path: Path, model_id: str) -> LowCutCopy:
    """Read a low-cut copy's map written by :func:`save_copy` for ``model_id``.

    Raises:
        WeightsError: unreadable, malformed, of another format or fitted for another model.
    """
    try:
        document = read_model_document(path, COPY_FORMAT, COPY_FORMAT_VERSION, model_id)
        return LowCutCopy(model_id, float(document["corner_hz"]), np.array(document["down"], dtype=np.float64),
                          np.array(document["up"], dtype=np.float64), float(document["penalty"]),
                          document.get("provenance", {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise WeightsError(
            f"cannot read the low-cut copy {path}: {error}. Refit with: python scripts/fit_low_cut.py"
        ) from error
