"""One-shot face and speaker verification: the shared core.

Sample -> front end -> embedding -> template -> score -> decision. Pipelines are built with
:func:`load_pipeline`; :class:`Verifier` turns a probe into a :class:`Decision`.

Exports load lazily, so ``import verify.errors`` stays light (no torch).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Decision": "verify.scoring",
    "OperatingPoint": "verify.scoring",
    "cosine_scores": "verify.scoring",
    "Embedding": "verify.embedding",
    "Pipeline": "verify.embedding",
    "Thresholds": "verify.calibration",
    "ScoreCalibration": "verify.calibration",
    "Cohort": "verify.normalization",
    "CohortStats": "verify.normalization",
    "Verifier": "verify.verifier",
    "VerifyError": "verify.errors",
    "load_pipeline": "verify.models",
    "model_scorer": "verify.models",
    "shipped_verifier": "verify.models",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'verify' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
