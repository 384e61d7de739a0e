"""Inner-product search: exact equals brute force, the PQ scan finds planted neighbours and re-ranks exactly,
the GPU scan is brute force (run by torch on the CPU here, on CUDA when there is one), rows removed
stay removed (codes included)."""

from __future__ import annotations

import numpy as np
import pytest

from verify import search
from verify.device import cuda_driver_present
from verify.errors import ConfigError
from verify.search import DeviceScan, IndexConfig, VectorIndex, faiss_available

needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss-cpu (the scale extra) is absent")
GPU = IndexConfig(exact_max=10, device="cuda", candidates=40)
"""A GPU index; :func:`torch_on_the_cpu` runs its scan with torch on the CPU where there is no CUDA."""


@pytest.fixture(autouse=True)
def torch_on_the_cpu(monkeypatch):
    """Without CUDA, the device scan of a CUDA index runs the same torch code on the CPU."""
    import torch

    if not torch.cuda.is_available():
        monkeypatch.setattr(search, "DeviceScan", lambda rows, device: DeviceScan(rows, "cpu"))


def unit_rows(count: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force(rows: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(rows @ query), kind="stable")[:k]


def test_exact_search_is_brute_force():
    rows, queries = unit_rows(500), unit_rows(20, seed=1)
    index = VectorIndex.build(rows, IndexConfig(exact_max=1000))
    assert index.kind == "exact" and index.count == 500
    for query in queries:
        scores, found = index.search(query, 10)
        assert found.tolist() == brute_force(rows, query, 10).tolist()
        np.testing.assert_allclose(scores, rows[found] @ query, rtol=1e-6)
    assert index.search(queries[0], 1000)[1].size == 500


@needs_faiss
def test_pq_scan_finds_planted_neighbours():
    rows = unit_rows(2000, dim=32)
    index = VectorIndex.build(rows, IndexConfig(exact_max=100, candidates=50))
    assert index.kind == "pq" and len(index) == 2000
    noise = unit_rows(50, dim=32, seed=2)
    probes = 0.8 * rows[:50] + 0.6 * noise  # cosine ~0.8 with their row, ~0 with the others
    found = [index.search(probe / np.linalg.norm(probe), 5)[1][0] for probe in probes]
    assert found == list(range(50))
    np.testing.assert_array_equal(index.vectors, rows)


@needs_faiss
def test_pq_search_re_ranks_its_candidates_exactly():
    rows, queries = unit_rows(3000, dim=32), unit_rows(20, dim=32, seed=3)
    whole = VectorIndex.build(rows, IndexConfig(exact_max=100, candidates=3000))
    narrow = VectorIndex.build(rows, IndexConfig(exact_max=100, candidates=40))
    for query in queries:
        scores, found = whole.search(query, 10)  # every row a candidate: brute force
        assert found.tolist() == brute_force(rows, query, 10).tolist()
        np.testing.assert_allclose(scores, rows[found] @ query, rtol=1e-6)
        scores, found = narrow.search(query, 10)  # exact scores, in order, of some 40 rows
        np.testing.assert_allclose(scores, rows[found] @ query, rtol=1e-6)
        assert (np.diff(scores) <= 0).all()


@needs_faiss
def test_codes_of_a_removed_row_are_those_of_a_zero_row():
    import faiss

    rows = unit_rows(700)
    index = VectorIndex.build(rows, IndexConfig(exact_max=10))
    reference = faiss.clone_index(index._codes)  # the same trained quantiser
    index.remove([5])
    reference.reset()
    reference.add(np.concatenate([rows[:5], np.zeros((1, 16), np.float32), rows[6:]]))
    np.testing.assert_array_equal(faiss.vector_to_array(index._codes.codes), faiss.vector_to_array(reference.codes))
    reference.reset()
    reference.add(rows)
    assert not np.array_equal(faiss.vector_to_array(index._codes.codes), faiss.vector_to_array(reference.codes))


def test_codes_per_row_divide_the_dimension():
    config = IndexConfig()
    assert [config.codes_for(dim) for dim in (256, 384, 192, 10, 3)] == [64, 96, 48, 5, 1]
    assert IndexConfig(dims_per_code=8).codes_for(256) == 32


CONFIGS = [IndexConfig(exact_max=10_000), IndexConfig(exact_max=10), GPU]


def test_the_gpu_scan_is_brute_force_re_ranked_on_the_host():
    rows, queries = unit_rows(3000, dim=32), unit_rows(20, dim=32, seed=3)
    index = VectorIndex.build(rows, GPU)
    assert index.kind == "gpu" and index.memory_bytes() == rows.nbytes + 3000  # no codes on the host
    for query in queries:
        scores, found = index.search(query, 10)
        assert found.tolist() == brute_force(rows, query, 10).tolist()
        np.testing.assert_allclose(scores, rows[found] @ query, rtol=1e-6)
    assert VectorIndex.build(rows[:10], GPU).kind == "exact"  # small galleries stay on the host


@pytest.mark.skipif(not cuda_driver_present(), reason="no CUDA device")
def test_the_device_scan_on_cuda_finds_the_rows_of_the_host():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rows, query = unit_rows(5000, dim=64), unit_rows(1, dim=64, seed=4)[0]
    scan = DeviceScan(rows, "cuda")
    assert scan.top(query, 10).tolist() == brute_force(rows, query, 10).tolist()
    scan.remove(np.array([int(brute_force(rows, query, 1)[0])]))
    assert scan.top(query, 9).tolist() == brute_force(rows, query, 10)[1:].tolist()


@needs_faiss
def test_a_saved_index_takes_the_kind_of_the_device_that_loads_it():
    rows = unit_rows(400)
    pq = VectorIndex.build(rows, IndexConfig(exact_max=10))
    pq.remove([3])
    on_gpu = VectorIndex.from_bytes(b"".join(bytes(part) for part in pq.to_buffers()), GPU)
    assert (on_gpu.kind, on_gpu.count) == ("gpu", 399)
    on_cpu = VectorIndex.from_bytes(b"".join(bytes(part) for part in on_gpu.to_buffers()), IndexConfig(exact_max=10))
    assert (on_cpu.kind, on_cpu.count) == ("pq", 399)  # the saved rows encoded again
    for query in unit_rows(10, seed=5):
        assert 3 not in on_gpu.search(query, 400)[1]
        assert on_cpu.search(query, 5)[1].tolist() == on_gpu.search(query, 5)[1].tolist() == pq.search(query, 5)[1].tolist()


@pytest.mark.parametrize("config", CONFIGS)
def test_removed_rows_are_never_returned_and_are_zeroed(config):
    rows = unit_rows(300)
    index = VectorIndex.build(rows, config)
    index.remove([7, 8])
    assert index.count == 298 and index.removed_fraction == pytest.approx(2 / 300)
    assert 7 not in index.search(rows[7], 300)[1] and 8 not in index.search(rows[8], 20)[1]
    assert not index.vectors[7].any() and not index.alive([7, 9]).tolist()[0]
    added = index.add(rows[7:8])
    assert added.tolist() == [300] and index.search(rows[7], 1)[1].tolist() == [300]


@pytest.mark.parametrize("config", CONFIGS)
def test_saved_index_answers_the_same(config):
    rows = unit_rows(400)
    index = VectorIndex.build(rows, config)
    index.remove([3])
    restored = VectorIndex.from_bytes(b"".join(bytes(part) for part in index.to_buffers()), index.config)
    assert (restored.kind, restored.count, len(restored)) == (index.kind, 399, 400)
    for query in unit_rows(10, seed=5):
        assert restored.search(query, 5)[1].tolist() == index.search(query, 5)[1].tolist()


def test_empty_index_and_bad_input():
    empty = VectorIndex.build(np.empty((0, 0), np.float32))
    assert empty.count == 0 and empty.search(np.ones(4), 3)[1].size == 0
    with pytest.raises(ConfigError, match=r"must have shape \(N, 16\)"):
        VectorIndex.build(unit_rows(5)).add(np.ones((2, 3)))
    with pytest.raises(ConfigError, match="exact_max must be an integer >= 0"):
        IndexConfig(exact_max=-1)
    with pytest.raises(ConfigError, match="candidates must be an integer >= 1"):
        IndexConfig(candidates=0)
    with pytest.raises(ConfigError, match="index device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        IndexConfig(device="gpu")
    with pytest.raises(ValueError, match="not a saved vector index"):
        VectorIndex.from_bytes(b"garbage")
