"""One embedded file as a flat record (for Ray batches and Parquet files) and back.

A record holds the path and either the embedding (vector, quality issues, notes, measures) or the
error (its class name and message), so an error crosses processes as the same
:class:`VerifyError` subclass with the same message.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from verify import errors
from verify.embedding import Embedding
from verify.errors import VerifyError


def _error_classes() -> dict[str, type[VerifyError]]:
    found, pending = {}, [VerifyError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.__name__, cls)
        pending.extend(cls.__subclasses__())
    return found


def to_record(path: str, result: Embedding | VerifyError) -> dict[str, Any]:
    """The record of one file's result (no preview: only what decisions and files need)."""
    if isinstance(result, VerifyError):
        return {"path": path, "vector": None, "quality": [], "notes": [], "measures": "{}",
                "error_type": type(result).__name__, "error": str(result)}
    return {"path": path, "vector": np.asarray(result.vector, np.float32).tolist(),
            "quality": list(result.quality_issues), "notes": list(result.notes),
            "measures": json.dumps({name: float(value) for name, value in result.measures.items()}),
            "error_type": "", "error": ""}


def from_record(record: dict[str, Any]) -> Embedding | VerifyError:
    """The embedding or the error a record holds; an unknown error class comes back as :class:`VerifyError`."""
    if record.get("error_type"):
        cls = _error_classes().get(record["error_type"], errors.VerifyError)
        try:
            return cls(record["error"])
        except TypeError:  # a class whose constructor wants more than the message
            return VerifyError(record["error"])
    return Embedding(np.asarray(record["vector"], np.float32), tuple(record["quality"]), tuple(record["notes"]),
                     measures=json.loads(record["measures"] or "{}"))
