"""Embeddings of many files in one Parquet file: written by ``verify embed``, read by galleries and benchmarks.

Columns: ``path``, ``modality``, ``model_id``, ``model_version``, ``vector`` (float32 list, null
for a file that failed), ``quality`` (the sample's quality issues), ``error`` (why a file failed,
null otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from verify.embedding import Embedding
from verify.errors import ConfigError, VerifyError


@dataclass(frozen=True)
class EmbeddingsTable:
    """The embedded files of an embeddings file (failed files left out).

    Attributes:
        paths: ``(N,)`` file paths.
        vectors: ``(N, D)`` float32 unit vectors.
        quality: each file's quality issues.
        model_id, model_version, modality: what made them (one of each per file).
        failed: paths of the files that failed, with why.
    """

    paths: tuple[str, ...]
    vectors: np.ndarray
    quality: tuple[tuple[str, ...], ...]
    modality: str
    model_id: str
    model_version: str
    failed: tuple[tuple[str, str], ...] = ()


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet files need pyarrow: pip install -e '.[scale]'") from None
    return pa, pq


def write_embeddings(path: str | Path, results: Iterable[tuple[str, Embedding | VerifyError]], modality: str,
                     model_id: str, model_version: str) -> int:
    """Write ``(path, embedding or error)`` pairs; returns how many rows."""
    pa, pq = _pyarrow()
    rows = [{"path": name, "modality": modality, "model_id": model_id, "model_version": model_version,
             "vector": None if isinstance(result, VerifyError) else np.asarray(result.vector, np.float32).tolist(),
             "quality": [] if isinstance(result, VerifyError) else list(result.quality_issues),
             "error": str(result) if isinstance(result, VerifyError) else None}
            for name, result in results]
    schema = pa.schema([("path", pa.string()), ("modality", pa.string()), ("model_id", pa.string()),
                        ("model_version", pa.string()), ("vector", pa.list_(pa.float32())),
                        ("quality", pa.list_(pa.string())), ("error", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), str(path))
    return len(rows)


def read_embeddings(path: str | Path) -> EmbeddingsTable:
    """The embeddings written by :func:`write_embeddings`.

    Raises:
        ConfigError: the file is missing, not such a file, or mixes models or modalities.
    """
    _, pq = _pyarrow()
    try:
        table = pq.read_table(str(path)).to_pydict()
        columns = [table[name] for name in ("path", "modality", "model_id", "model_version", "vector", "quality",
                                            "error")]
    except (OSError, KeyError) as error:
        raise ConfigError(f"{path} is not an embeddings file written by `verify embed`: {error}") from None
    paths, modalities, models, versions, vectors, quality, errors = columns
    made_by = set(zip(modalities, models, versions))
    if not made_by:
        raise ConfigError(f"{path} holds no embeddings")
    if len(made_by) > 1:
        raise ConfigError(f"{path} mixes {len(made_by)} modalities or models; embed each with one model")
    ((modality, model_id, model_version),) = made_by
    ok = [i for i, vector in enumerate(vectors) if vector is not None]
    dim = len(vectors[ok[0]]) if ok else 0
    return EmbeddingsTable(tuple(paths[i] for i in ok),
                           np.asarray([vectors[i] for i in ok], np.float32).reshape(len(ok), dim),
                           tuple(tuple(quality[i]) for i in ok), modality, model_id, model_version,
                           tuple((paths[i], errors[i] or "") for i in range(len(paths)) if vectors[i] is None))
