"""A stand-in pipeline whose samples are their own embeddings, for fast store-level tests.

A sample is a ``(D,)`` array (its unit vector is the embedding); the string ``"no face"`` raises
:class:`NoFaceError`. Thresholds: medium accepts at 0.6 with a retry band from 0.4; high is 0.8.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from verify.calibration import Thresholds
from verify.embedding import Embedding
from verify.errors import NoFaceError, VerifyError
from verify.scorer import CosineScorer
from verify.verifier import Verifier

THRESHOLDS = Thresholds("vector", {1e-1: 0.2, 1e-2: 0.4, 1e-3: 0.6, 1e-4: 0.8})


class VectorPipeline:
    modality = "face"
    model_id = "vector"
    model_version = "1"

    def __init__(self, modality: str = "face") -> None:
        self.modality = modality

    def embed(self, source: Any) -> Embedding:
        if isinstance(source, str):
            raise NoFaceError(f"no face found in {source!r}")
        vector = np.asarray(source, dtype=np.float32)
        return Embedding(vector / np.linalg.norm(vector))

    def embed_many(self, sources: Sequence[Any]) -> list[Embedding | VerifyError]:
        results: list[Embedding | VerifyError] = []
        for source in sources:
            try:
                results.append(self.embed(source))
            except VerifyError as error:
                results.append(error)
        return results


def vector_verifier(modality: str = "face", level: str = "medium") -> Verifier:
    return Verifier(VectorPipeline(modality), CosineScorer(THRESHOLDS), level)


def direction(index: int, dim: int = 8, lean: float = 0.0) -> np.ndarray:
    """Unit vector along axis ``index``, tilted towards the last axis by ``lean`` (cosine 1 - ...)."""
    vector = np.zeros(dim, dtype=np.float32)
    vector[index] = 1.0
    vector[-1] += lean
    return vector / np.linalg.norm(vector)
