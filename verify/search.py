"""Inner-product search over unit vectors: exact up to a configured size, FAISS HNSW above it.

A :class:`VectorIndex` answers "which rows of ``(N, D)`` are nearest to this query?" and nothing
else: it is the retrieval step of 1:N identification, whose shortlist is then re-scored exactly
(:mod:`enrollment.identify`). Up to ``exact_max`` rows the search is a NumPy matrix product, so it
returns exactly the brute-force answer; above it the rows go into a FAISS ``IndexHNSWFlat``
(inner product), an approximate graph search whose recall the re-ranking cannot repair, so the
shortlist is generous.

Rows are only appended or marked removed (HNSW graphs cannot delete), so a caller that changes
many rows rebuilds. Without ``faiss`` every index is exact (slower above ``exact_max``, same
answers).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from verify.errors import ConfigError

log = logging.getLogger(__name__)
IndexKind = Literal["exact", "hnsw"]
_FORMAT = b"VIDX1"


@dataclass(frozen=True)
class IndexConfig:
    """How a :class:`VectorIndex` is built.

    Attributes:
        exact_max: indexes of at most this many rows are searched exactly.
        hnsw_m: neighbours per node of the HNSW graph (memory: about ``8 * hnsw_m`` bytes per row
            besides the row's ``4 * D``; 64 keeps a million 256-d rows under 1.5 GiB).
        ef_construction: candidate list while building (build time vs graph quality).
        ef_search: candidate list while searching (latency vs recall); at least ``k`` is used.
    """

    exact_max: int = 20_000
    hnsw_m: int = 64
    ef_construction: int = 40
    ef_search: int = 256

    def __post_init__(self) -> None:
        for name in ("exact_max", "hnsw_m", "ef_construction", "ef_search"):
            value, least = getattr(self, name), 0 if name == "exact_max" else 2
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"index setting {name} must be an integer >= {least}, got {value!r}")

    def kind_for(self, rows: int) -> IndexKind:
        """The kind of index that ``rows`` rows get: exact up to ``exact_max``, else HNSW (when FAISS is there)."""
        return "hnsw" if rows > self.exact_max and faiss_available() else "exact"


def faiss_available() -> bool:
    """Whether ``faiss`` imports (the ``scale`` extra); without it every index is searched exactly."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _as_rows(vectors: Any, dim: int | None = None) -> np.ndarray:
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or (dim is not None and array.shape[1] != dim):
        raise ConfigError(f"index rows must have shape (N, {dim or 'D'}), got {array.shape}")
    return array


class VectorIndex:
    """Rows of unit vectors searched by inner product; rows can be appended and marked removed.

    Build with :meth:`build`; row numbers are stable until the index is rebuilt.
    """

    def __init__(self, dim: int, config: IndexConfig, kind: IndexKind, store: Any, alive: np.ndarray) -> None:
        self.dim = dim
        self.config = config
        self.kind = kind
        self._store = store  # (N, D) float32 array (exact) or a faiss IndexHNSWFlat (hnsw)
        self._alive = alive

    @classmethod
    def build(cls, vectors: Any, config: IndexConfig = IndexConfig(), dim: int | None = None) -> VectorIndex:
        """An index over ``vectors`` ``(N, D)`` (unit rows), of the kind :meth:`IndexConfig.kind_for` picks.

        Raises:
            ConfigError: ``vectors`` is not a 2-D array (of dimension ``dim`` when given).
        """
        rows = _as_rows(vectors, dim)
        kind = config.kind_for(len(rows))
        if kind == "exact":
            return cls(rows.shape[1], config, kind, rows.copy(), np.ones(len(rows), bool))
        import faiss

        graph = faiss.IndexHNSWFlat(rows.shape[1], config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = config.ef_construction
        graph.add(rows)
        return cls(rows.shape[1], config, kind, graph, np.ones(len(rows), bool))

    def __len__(self) -> int:
        """Rows, removed ones included."""
        return len(self._alive)

    @property
    def count(self) -> int:
        """Rows not removed."""
        return int(self._alive.sum())

    @property
    def removed_fraction(self) -> float:
        """Share of the rows marked removed (0 for an empty index)."""
        return 1.0 - self.count / len(self) if len(self) else 0.0

    def alive(self, rows: np.ndarray) -> np.ndarray:
        """Which of ``rows`` are not removed."""
        return self._alive[np.asarray(rows, dtype=np.int64)]

    @property
    def vectors(self) -> np.ndarray:
        """All rows ``(N, D)`` float32, removed ones included (a read-only view for HNSW)."""
        if self.kind == "exact":
            return self._store
        import faiss

        flat = faiss.downcast_index(self._store.storage)
        view = faiss.rev_swig_ptr(flat.get_xb(), len(self) * self.dim).reshape(len(self), self.dim)
        view.flags.writeable = False
        return view

    def add(self, vectors: Any) -> np.ndarray:
        """Append rows ``(M, D)``; returns their row numbers."""
        rows = _as_rows(vectors, self.dim)
        first = len(self)
        if self.kind == "exact":
            self._store = np.concatenate([self._store, rows])
        elif len(rows):
            self._store.add(rows)
        self._alive = np.concatenate([self._alive, np.ones(len(rows), bool)])
        return np.arange(first, first + len(rows))

    def remove(self, rows: Any) -> None:
        """Mark ``rows`` removed: they are never returned again, and their vectors are overwritten
        with zeros (nothing of them stays in memory or in a later save)."""
        rows = np.asarray(rows, dtype=np.int64)
        self._alive[rows] = False
        if self.kind == "exact":
            self._store[rows] = 0.0
        elif len(rows):
            import faiss

            flat = faiss.downcast_index(self._store.storage)
            faiss.rev_swig_ptr(flat.get_xb(), len(self) * self.dim).reshape(len(self), self.dim)[rows] = 0.0

    def search(self, query: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows of largest inner product with ``query`` ``(D,)``, best first.

        Returns:
            ``(scores (k,), rows (k,))``, fewer when fewer rows are alive. Exact for an exact index;
            approximate (HNSW) otherwise.
        """
        if k < 1 or self.count == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        vector = _as_rows(np.reshape(query, (1, -1)), self.dim)
        k = min(k, self.count)
        if self.kind == "exact":
            scores = (self._store @ vector[0]).astype(np.float32)
            scores[~self._alive] = -np.inf
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            return scores[top], top.astype(np.int64)
        return self._search_hnsw(vector, k)

    def _search_hnsw(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.config.ef_search, k)
        if self.count < len(self):
            bitmap = np.packbits(self._alive, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(self), faiss.swig_ptr(bitmap))
            params.sel = selector
        scores, rows = self._store.search(vector, k, params=params)
        found = rows[0] >= 0
        return scores[0][found], rows[0][found].astype(np.int64)

    def memory_bytes(self) -> int:
        """Bytes held by the rows and the graph (not Python overheads)."""
        if self.kind == "exact":
            return int(self._store.nbytes + self._alive.nbytes)
        links = self._store.hnsw.neighbors.size() * 4 + self._store.hnsw.offsets.size() * 8
        levels = self._store.hnsw.levels.size() * 4
        return int(len(self) * self.dim * 4 + links + levels + self._alive.nbytes)

    # --- persistence ------------------------------------------------------------------------
    def to_buffers(self) -> list[memoryview]:
        """The index as buffers to write one after the other (:meth:`from_bytes` restores their
        concatenation); removed rows are kept as such. Large buffers are views, not copies."""
        buffer = io.BytesIO()
        np.save(buffer, self._alive, allow_pickle=False)
        alive = buffer.getvalue()
        if self.kind == "exact":
            buffer = io.BytesIO()
            np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(self._store))
            body = [memoryview(buffer.getvalue()), memoryview(self._store).cast("B")]
        else:
            import faiss

            body = [memoryview(faiss.serialize_index(self._store))]
        header = f"{self.kind} {self.dim} {len(alive)}\n".encode("ascii")
        return [memoryview(_FORMAT + header + alive), *body]

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, config: IndexConfig = IndexConfig()) -> VectorIndex:
        """An index saved by :meth:`to_buffers` (their concatenation).

        Raises:
            ValueError: the bytes are not such an index (or FAISS is missing for an HNSW one).
        """
        data = memoryview(data)
        if bytes(data[: len(_FORMAT)]) != _FORMAT:
            raise ValueError("not a saved vector index")
        end = bytes(data[: 64]).index(b"\n")
        kind, dim_text, alive_text = bytes(data[len(_FORMAT) : end]).decode("ascii").split()
        dim, start = int(dim_text), end + 1
        alive = np.load(io.BytesIO(data[start : start + int(alive_text)]), allow_pickle=False)
        body = data[start + int(alive_text) :]
        if kind == "exact":
            rows = np.load(io.BytesIO(body), allow_pickle=False)  # a copy: ``data`` may be reused
            if rows.dtype != np.float32 or rows.shape != (len(alive), dim):
                raise ValueError(f"saved exact index has rows {rows.shape} {rows.dtype}, expected ({len(alive)}, {dim})")
            return cls(dim, config, "exact", rows, alive.astype(bool))
        if kind != "hnsw" or not faiss_available():
            raise ValueError(f"cannot load a saved {kind!r} index here")
        import faiss

        graph = faiss.deserialize_index(np.frombuffer(body, dtype=np.uint8))
        if graph.d != dim or graph.ntotal != len(alive):
            raise ValueError(f"saved HNSW index has {graph.ntotal} rows of {graph.d}, expected {len(alive)} of {dim}")
        return cls(dim, config, "hnsw", graph, alive.astype(bool))
