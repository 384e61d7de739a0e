"""Inner-product search over unit vectors: exact up to a configured size; above it, FAISS PQ
fast-scan on the CPU or an exact scan on the GPU, each re-ranked exactly.

A :class:`VectorIndex` answers "which rows of ``(N, D)`` are nearest to this query?" and nothing
else: it is the retrieval step of 1:N identification, whose shortlist is then re-scored by the
product's scorer (:mod:`enrollment.identify`). It always holds the rows themselves, in float32.

- Up to ``exact_max`` rows the search is a NumPy matrix product: exactly the brute-force answer.
- Above it the rows are also encoded by a FAISS ``IndexPQFastScan`` (product quantisation, 4-bit
  codes of ``dims_per_code`` dimensions each: 32 bytes per 256-d row at 4), which scans every code
  in registers (SIMD) for the approximate top ``candidates``; those are re-ranked by their exact
  inner product. The scan visits every row, so unlike a graph (HNSW) it cannot miss a region of
  the space: face and voice embeddings have a high intrinsic dimension, where graph search loses
  recall as the gallery grows (``benchmarks/gallery.py``), and a scan of codes does not.
- Above it, with a CUDA ``device``, the rows are also copied to the GPU, whose scan of every row is
  one exact matrix product (a million 384-d rows is 0.8 GFLOP); its top ``candidates`` are
  re-ranked from the float32 rows on the host as above, so the scores returned are the host's.

Rows are appended or marked removed. A removed row is zeroed and the codes are re-encoded from the
rows, so nothing of a removed vector, not even its code, stays in memory or in a later save (a
re-encoding takes a few seconds per million rows, less than a build). Without ``faiss`` every
index is exact (slower above ``exact_max``, same answers).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from verify.device import DEVICE_PATTERN
from verify.errors import ConfigError

IndexKind = Literal["exact", "pq", "gpu"]
_FORMAT = b"VIDX2"
_CODE_BITS = 4  # FAISS fast-scan codes are 4-bit
_TRAIN_SEED = 0


@dataclass(frozen=True)
class IndexConfig:
    """How a :class:`VectorIndex` is built.

    Attributes:
        exact_max: indexes of at most this many rows are searched exactly.
        dims_per_code: dimensions each 4-bit product-quantisation code stands for (4: 64 codes,
            32 bytes, for a 256-d row; memory is the rows' ``4 * D`` bytes plus
            ``D / (2 * dims_per_code)``).
        candidates: rows the code scan retrieves for exact re-ranking (recall vs latency; at least
            ``k`` are used).
        train_max: rows the quantiser is trained on (a seeded sample when there are more).
        device: ``"cpu"``, or a CUDA device (``"cuda"``, ``"cuda:N"``) whose scan replaces the
            codes above ``exact_max``.
    """

    exact_max: int = 20_000
    dims_per_code: int = 4
    candidates: int = 1_000
    train_max: int = 65_536
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("exact_max", "dims_per_code", "candidates", "train_max"):
            value, least = getattr(self, name), 0 if name == "exact_max" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"index setting {name} must be an integer >= {least}, got {value!r}")
        if not DEVICE_PATTERN.fullmatch(str(self.device)):
            raise ConfigError(f"index device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")

    def kind_for(self, rows: int) -> IndexKind:
        """The kind of index that ``rows`` rows get: exact up to ``exact_max``; above it, a GPU scan on
        a CUDA device, else PQ (when FAISS is there, else exact)."""
        if rows <= self.exact_max:
            return "exact"
        if self.device.startswith("cuda"):
            return "gpu"
        return "pq" if faiss_available() else "exact"

    def codes_for(self, dim: int) -> int:
        """Codes per row for rows of ``dim``: ``dim / dims_per_code``, or the nearest count above that divides ``dim``."""
        wanted = max(1, -(-dim // self.dims_per_code))
        return next(count for count in range(wanted, dim + 1) if dim % count == 0)


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


def _quantizer(rows: np.ndarray, config: IndexConfig) -> Any:
    """A FAISS PQ fast-scan index trained on (a seeded sample of) ``rows``, holding all of them."""
    import faiss

    dim = rows.shape[1]
    codes = faiss.IndexPQFastScan(dim, config.codes_for(dim), _CODE_BITS, faiss.METRIC_INNER_PRODUCT)
    sample = rows
    if len(rows) > config.train_max:
        picked = np.random.default_rng(_TRAIN_SEED).choice(len(rows), config.train_max, replace=False)
        sample = rows[np.sort(picked)]
    codes.train(sample)
    codes.add(rows)
    return codes


class DeviceScan:
    """A copy of an index's rows on a torch device, scanned exactly by one matrix product per query."""

    def __init__(self, rows: np.ndarray, device: str) -> None:
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self._rows = torch.from_numpy(rows).to(self.device)
        self._removed = torch.zeros(len(rows), dtype=torch.bool, device=self.device)

    def add(self, rows: np.ndarray) -> None:
        torch = self._torch
        self._rows = torch.cat([self._rows, torch.from_numpy(rows).to(self.device)])
        self._removed = torch.cat([self._removed, torch.zeros(len(rows), dtype=torch.bool, device=self.device)])

    def remove(self, positions: np.ndarray) -> None:
        """Zero the rows at ``positions`` and never return them."""
        index = self._torch.from_numpy(positions).to(self.device)
        self._rows[index] = 0.0
        self._removed[index] = True

    def top(self, vector: np.ndarray, count: int) -> np.ndarray:
        """Positions of the ``count`` rows of largest inner product with ``vector`` ``(D,)``, none
        removed (``count`` at most the rows not removed)."""
        torch = self._torch
        with torch.inference_mode():
            scores = self._rows @ torch.from_numpy(vector).to(self.device)
            scores.masked_fill_(self._removed, -torch.inf)
            return scores.topk(count).indices.cpu().numpy().astype(np.int64)


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest ``scores``, largest first (ties in position order)."""
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return top[np.argsort(-scores[top], kind="stable")]


class VectorIndex:
    """Rows of unit vectors searched by inner product; rows can be appended and marked removed.

    Build with :meth:`build`; row numbers are stable until the index is rebuilt.
    """

    def __init__(self, rows: np.ndarray, config: IndexConfig, alive: np.ndarray, codes: Any = None,
                 scan: DeviceScan | None = None) -> None:
        self.dim = rows.shape[1]
        self.config = config
        self.kind: IndexKind = "pq" if codes is not None else "gpu" if scan is not None else "exact"
        self._rows = rows
        self._codes = codes  # None or a faiss IndexPQFastScan over the same rows
        self._scan = scan  # None or the same rows on the GPU
        self._alive = alive

    @classmethod
    def build(cls, vectors: Any, config: IndexConfig = IndexConfig(), dim: int | None = None) -> VectorIndex:
        """An index over ``vectors`` ``(N, D)`` (unit rows), of the kind :meth:`IndexConfig.kind_for` picks.

        Raises:
            ConfigError: ``vectors`` is not a 2-D array (of dimension ``dim`` when given).
        """
        rows = _as_rows(vectors, dim).copy()
        return cls._over(rows, config, np.ones(len(rows), bool))

    @classmethod
    def _over(cls, rows: np.ndarray, config: IndexConfig, alive: np.ndarray, codes: Any = None) -> VectorIndex:
        """An index of the kind ``config`` gives ``rows``, using saved ``codes`` when it is a PQ index."""
        kind = config.kind_for(len(rows))
        if kind == "gpu":
            scan = DeviceScan(rows, config.device)
            scan.remove(np.flatnonzero(~alive))
            return cls(rows, config, alive, scan=scan)
        if kind == "pq":
            return cls(rows, config, alive, codes if codes is not None else _quantizer(rows, config))
        return cls(rows, config, alive)

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
        """All rows ``(N, D)`` float32, removed ones (zeros) included."""
        return self._rows

    def add(self, vectors: Any) -> np.ndarray:
        """Append rows ``(M, D)``; returns their row numbers."""
        rows = _as_rows(vectors, self.dim)
        first = len(self)
        self._rows = np.concatenate([self._rows, rows])
        if self._codes is not None and len(rows):
            self._codes.add(rows)
        if self._scan is not None and len(rows):
            self._scan.add(rows)
        self._alive = np.concatenate([self._alive, np.ones(len(rows), bool)])
        return np.arange(first, first + len(rows))

    def remove(self, rows: Any) -> None:
        """Mark ``rows`` removed: they are never returned again, and their vectors are overwritten
        with zeros and their codes re-encoded from those (nothing of them stays in memory or in a
        later save)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return
        self._alive[rows] = False
        self._rows[rows] = 0.0
        if self._codes is not None:
            self._codes.reset()
            self._codes.add(self._rows)
        if self._scan is not None:
            self._scan.remove(rows)

    def search(self, query: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows of largest inner product with ``query`` ``(D,)``, best first.

        Returns:
            ``(scores (k,), rows (k,))``, fewer when fewer rows are alive; the scores are exact. The
            rows are those of brute force for an exact index; for a PQ or GPU index, the best ``k``
            of the ``candidates`` the code scan or the GPU's scan retrieved.
        """
        if k < 1 or self.count == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        vector = _as_rows(np.reshape(query, (1, -1)), self.dim)
        k = min(k, self.count)
        if self._codes is None:
            scores = (self._rows @ vector[0]).astype(np.float32)
            scores[~self._alive] = -np.inf
            top = _best(scores, k)
            return scores[top], top.astype(np.int64)
        wanted = min(len(self), max(k, self.config.candidates))
        if self._scan is not None:
            candidates = self._scan.top(vector[0], min(wanted, self.count))
        else:
            _, found = self._codes.search(vector, wanted)
            candidates = found[0][found[0] >= 0]
        candidates = candidates[self._alive[candidates]]
        scores = (self._rows[candidates] @ vector[0]).astype(np.float32)
        top = _best(scores, k)
        return scores[top], candidates[top].astype(np.int64)

    def memory_bytes(self) -> int:
        """Bytes held in host memory by the rows and the codes (not Python overheads; a GPU index
        holds its rows on the device too)."""
        codes = 0 if self._codes is None else self._codes.codes.size() + self._codes.pq.centroids.size() * 4
        return int(self._rows.nbytes + self._alive.nbytes + codes)

    # --- persistence ------------------------------------------------------------------------
    def to_buffers(self) -> list[memoryview]:
        """The index as buffers to write one after the other (:meth:`from_bytes` restores their
        concatenation); removed rows are kept as such. Large buffers are views, not copies."""
        buffer = io.BytesIO()
        np.save(buffer, self._alive, allow_pickle=False)
        alive = buffer.getvalue()
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(self._rows))
        rows_header = buffer.getvalue()
        codes = b""
        if self._codes is not None:
            import faiss

            codes = faiss.serialize_index(self._codes)
        kind = "pq" if self._codes is not None else "exact"  # a GPU index saves its rows, as an exact one
        header = f"{kind} {self.dim} {len(alive)} {len(rows_header) + self._rows.nbytes}\n".encode("ascii")
        return [memoryview(_FORMAT + header + alive), memoryview(rows_header), memoryview(self._rows).cast("B"),
                memoryview(codes)]

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, config: IndexConfig = IndexConfig()) -> VectorIndex:
        """An index saved by :meth:`to_buffers` (their concatenation), of the kind ``config`` gives it
        (a saved PQ index loaded with a CUDA device scans on the GPU; saved rows loaded on the
        CPU above ``exact_max`` are encoded again).

        Raises:
            ValueError: the bytes are not such an index (or FAISS is missing for a PQ one).
        """
        data = memoryview(data)
        if bytes(data[: len(_FORMAT)]) != _FORMAT:
            raise ValueError("not a saved vector index")
        end = bytes(data[:80]).index(b"\n")
        kind, dim_text, alive_text, rows_text = bytes(data[len(_FORMAT) : end]).decode("ascii").split()
        dim, start = int(dim_text), end + 1
        alive = np.load(io.BytesIO(data[start : start + int(alive_text)]), allow_pickle=False).astype(bool)
        start += int(alive_text)
        rows = np.load(io.BytesIO(data[start : start + int(rows_text)]), allow_pickle=False)  # a copy: ``data`` may be reused
        if rows.dtype != np.float32 or rows.shape != (len(alive), dim):
            raise ValueError(f"saved index has rows {rows.shape} {rows.dtype}, expected ({len(alive)}, {dim})")
        body = data[start + int(rows_text) :]
        if kind not in ("exact", "pq") or (kind == "exact") == bool(len(body)):
            raise ValueError(f"saved index of kind {kind!r} with {len(body)} bytes of codes")
        codes = None
        if kind == "pq" and config.kind_for(len(alive)) == "pq":
            import faiss

            codes = faiss.deserialize_index(np.frombuffer(body, dtype=np.uint8))
            if codes.d != dim or codes.ntotal != len(alive):
                raise ValueError(f"saved PQ codes have {codes.ntotal} rows of {codes.d}, expected {len(alive)} of {dim}")
        return cls._over(rows, config, alive, codes)
