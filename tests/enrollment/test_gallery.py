"""The 1:N gallery: brute-force answers, saved beside the store, kept in step with it, rebuilt when untrustworthy."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from enrollment import Service, Settings, TemplateStore
from enrollment.changes import store_version
from enrollment.crypto import generate_key, parse_key
from enrollment.gallery import Gallery, GalleryConfig, GalleryKey
from enrollment.gallery_file import GalleryFileError, gallery_path, load_gallery
from enrollment.identify import Candidate, Identification, identify
from enrollment.template import Template
from tests.enrollment.vector_pipeline import THRESHOLDS as VECTOR_THRESHOLDS
from tests.enrollment.vector_pipeline import VectorPipeline
from verify.calibration import ScoreCalibration, Thresholds
from verify.embedding import Embedding
from verify.normalization import Cohort
from verify.scorer import CalibratedScorer, CosineScorer, evidence
from verify.search import IndexConfig, faiss_available
from verify.verifier import Verifier

needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss-cpu (the scale extra) is absent")

THRESHOLDS = Thresholds("toy", {1e-1: 0.4, 1e-2: 0.5, 1e-3: 0.6, 1e-4: 0.7})  # medium: accept 0.6, retry 0.5
LLR_THRESHOLDS = Thresholds("toy", {1e-1: 1.0, 1e-2: 3.0, 1e-3: 5.0, 1e-4: 7.0})  # medium: accept 5, retry 3
KEY = GalleryKey("face", "toy", "v1")
EXACT = GalleryConfig(IndexConfig(exact_max=10_000), save_min=1)
PQ = GalleryConfig(IndexConfig(exact_max=10), shortlist=40, save_min=1)


@dataclass
class ToyPipeline:
    modality: str = "face"
    model_id: str = "toy"
    model_version: str = "v1"


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def random_rows(count: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((count, dim)))


def fill(store: TemplateStore, vectors: np.ndarray, prefix: str = "p", version: str = "v1") -> list[str]:
    names = [f"{prefix}{index:05d}" for index in range(len(vectors))]
    with store.transaction(write=True) as connection:
        for name, vector in zip(names, vectors):
            store.write_template(connection, Template.from_sample(name, "face", vector, "toy", version, 1.0))
    return names


def probes(vectors: np.ndarray, seed: int = 1) -> list[Embedding]:
    """Near one template (named), between two (ambiguous), near the threshold (retry), and strangers."""
    rng = np.random.default_rng(seed)
    noise = unit(rng.standard_normal(vectors.shape))
    near = unit(0.8 * vectors[:20] + 0.6 * noise[:20])
    between = unit(vectors[20:25] + vectors[25:30])
    borderline = unit(0.55 * vectors[30:35] + 0.835 * noise[30:35])
    strangers = unit(rng.standard_normal((10, vectors.shape[1])))
    return [Embedding(vector) for vector in np.concatenate([near, between, borderline, strangers])]


def same(found, expected, exact: bool = True) -> None:
    assert (found.identity, found.decision.outcome, found.reason, found.skipped) == (
        expected.identity, expected.decision.outcome, expected.reason, expected.skipped)
    assert [c.identity for c in found.candidates] == [c.identity for c in expected.candidates]
    if exact:
        assert found.decision == expected.decision and found.candidates == expected.candidates
    else:
        assert [c.score for c in found.candidates] == pytest.approx([c.score for c in expected.candidates], abs=1e-6)


@pytest.fixture
def store(tmp_path: Path):
    with TemplateStore(tmp_path / "people.db") as opened:
        yield opened


def calibrated_scorer() -> CalibratedScorer:
    """S-norm against a toy cohort, then llr = 1.5 * s - 2 at LLR thresholds."""
    cohort = Cohort(random_rows(200, seed=77), top_k=20, model_id="toy")
    calibration = ScoreCalibration("toy", (), 1.5, -2.0, (), (), LLR_THRESHOLDS, cohort_id=cohort.cohort_id,
                                   top_k=cohort.effective_k)
    return CalibratedScorer(calibration, cohort)


@pytest.fixture(params=["cosine", "s-norm+llr"])
def verifier(request) -> Verifier:
    scorer = CosineScorer(THRESHOLDS) if request.param == "cosine" else calibrated_scorer()
    return Verifier(ToyPipeline(), scorer, "medium")


def identify_by_deciding_every_template(store, verifier, probe):
    """1:N without a gallery (integrate's ``identify``): every template read, decided and ranked by evidence."""
    pipeline, point = verifier.pipeline, verifier.operating_point
    margin = point.threshold - point.retry_threshold
    templates = [t for t in store.list_templates() if t.modality == pipeline.modality]
    current = [t for t in templates if (t.model_id, t.model_version) == (pipeline.model_id, pipeline.model_version)]
    skipped = tuple(t.identity for t in templates if t not in current)
    decisions = verifier.decide_many(np.stack([t.embedding for t in current]), probe, [t.cohort_stats for t in current])
    strength = np.array([evidence(decision) for decision in decisions])
    order = np.argsort(-strength, kind="stable")
    ranked = [Candidate(current[i].identity, decisions[i].score, float(strength[i])) for i in order]
    candidates = tuple(c for c in ranked if c.evidence >= point.retry_threshold)
    best, decision = ranked[0], decisions[order[0]]
    if not decision.accepted:
        return Identification(None, decision, candidates, f"no enrolled face matches ({decision.reason})", skipped)
    if len(ranked) > 1 and best.evidence - ranked[1].evidence < margin:
        reason = (f"ambiguous: {best.identity!r} ({best.evidence:.3f}) and {ranked[1].identity!r} "
                  f"({ranked[1].evidence:.3f}) are closer than the margin {margin:.3f}")
        return Identification(None, dataclasses.replace(decision, outcome="retry", reason=reason), candidates,
                              reason, skipped)
    return Identification(best.identity, decision, candidates, "", skipped)


def with_stats_on_half(store, verifier, names):
    """Stored statistics on every other template (the rest are computed when scored, as for old templates)."""
    for name in names[::2]:
        template = store.get(name, "face")
        stats = verifier.template_stats(template.embedding)
        if stats is not None:
            store.set_cohort_stats(template, stats)


def test_an_exact_gallery_answers_as_deciding_every_template(store, verifier):
    vectors = random_rows(300)
    with_stats_on_half(store, verifier, fill(store, vectors))
    fill(store, random_rows(2, seed=9), prefix="old", version="v0")  # another model: skipped, as before
    gallery = Gallery.build(store, KEY, EXACT)
    assert gallery.exact and gallery.count == 300 and gallery.skipped == ("old00000", "old00001")
    twin = unit(vectors[40] + 1e-3 * random_rows(1, seed=3)[0])
    store.add_sample("p00040 twin", "face", twin, "toy", "v1")  # nearly equal evidence: the order of ties
    gallery.refresh(store)
    outcomes = set()
    for probe in [*probes(vectors), Embedding(vectors[40]), Embedding(twin)]:
        found = identify(store, verifier, probe, gallery=gallery)
        assert found == identify_by_deciding_every_template(store, verifier, probe)  # every field, every bit
        outcomes.add(found.decision.outcome)
    assert outcomes == {"accepted", "retry", "rejected"}


@needs_faiss
def test_a_pq_gallery_names_whom_brute_force_names(store, verifier):
    vectors = random_rows(1500)
    fill(store, vectors)
    gallery = Gallery.build(store, KEY, PQ)
    assert not gallery.exact and len(gallery.shortlist(vectors[0]).identities) == 40
    for probe in probes(vectors):
        same(identify(store, verifier, probe, gallery=gallery), identify(store, verifier, probe), exact=False)


@pytest.mark.parametrize("config", [EXACT, PQ], ids=["exact", "pq"])
def test_deletes_and_reenrollments_reach_the_gallery(store, verifier, config):
    vectors = random_rows(400)
    names = fill(store, vectors)
    gallery = Gallery.build(store, KEY, config)
    store.delete(names[0])
    moved = unit(vectors[1] + vectors[2])
    store.replace(Template.from_sample(names[1], "face", vectors[3], "toy", "v1", 2.0))  # re-enrolled lookalike
    store.add_sample("newcomer", "face", moved, "toy", "v1")
    assert gallery.refresh(store) and not gallery.refresh(store)
    assert gallery.version == _version(store) and gallery.count == 400
    assert identify(store, verifier, Embedding(vectors[0]), gallery=gallery).identity != names[0]
    assert identify(store, verifier, Embedding(moved), gallery=gallery).identity == "newcomer"
    for probe in probes(vectors):
        same(identify(store, verifier, probe, gallery=gallery), identify(store, verifier, probe), exact=config is EXACT)


def _version(store):
    with store.transaction() as connection:
        return store_version(connection)


def test_a_saved_gallery_is_private_and_reused(store, verifier, monkeypatch):
    vectors = random_rows(100)
    fill(store, vectors)
    Gallery.open(store, KEY, PQ)
    path = gallery_path(store.path, "face")
    assert path.name == "people.db.face.gallery" and stat.S_IMODE(path.stat().st_mode) == 0o600
    store.add_sample("late", "face", vectors[0] * -1, "toy", "v1")  # written after the save

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the saved gallery should have been used")

    monkeypatch.setattr(Gallery, "build", no_rebuild)
    reopened = Gallery.open(store, KEY, PQ)
    assert reopened.count == 101 and identify(store, verifier, Embedding(-vectors[0]), gallery=reopened).identity == "late"


@pytest.mark.parametrize("damage", ["flip", "truncate", "header"])
def test_a_damaged_saved_gallery_is_rebuilt(store, verifier, damage, caplog):
    vectors = random_rows(200)
    fill(store, vectors)
    Gallery.open(store, KEY, PQ)
    path = gallery_path(store.path, "face")
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x40
    elif damage == "truncate":
        data = data[: len(data) - 100]
    else:
        data[12:20] = b"}}}}}}}}"
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="enrollment.gallery"):
        gallery = Gallery.open(store, KEY, PQ)
    assert "rebuilding the face gallery index" in caplog.text
    for probe in probes(vectors)[:10]:
        same(identify(store, verifier, probe, gallery=gallery), identify(store, verifier, probe), exact=False)
    load_gallery(path, store)  # saved again, whole


def test_a_gallery_of_another_history_is_rebuilt(tmp_path, verifier):
    """A store restored from an older copy that then reaches the saved version's count: not trusted."""
    path = tmp_path / "people.db"
    with TemplateStore(path) as store:
        fill(store, random_rows(50))
    shutil.copy(path, tmp_path / "older.db")
    with TemplateStore(path) as store:
        store.add_sample("first history", "face", random_rows(1, seed=5)[0], "toy", "v1")
        Gallery.open(store, KEY, PQ)
        saved = _version(store)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "older.db", path)
    with TemplateStore(path) as store:
        second = random_rows(1, seed=6)[0]
        store.add_sample("second history", "face", second, "toy", "v1")
        assert _version(store).version == saved.version and _version(store) != saved
        gallery = Gallery.open(store, KEY, PQ)
        assert identify(store, verifier, Embedding(random_rows(1, seed=5)[0]), gallery=gallery).identity is None
        assert identify(store, verifier, Embedding(second), gallery=gallery).identity == "second history"


def test_a_sealed_store_seals_its_gallery(tmp_path, monkeypatch):
    key = parse_key(generate_key(), "test")
    vectors = random_rows(60)
    with TemplateStore(tmp_path / "sealed.db", key=key) as store:
        fill(store, vectors)
        Gallery.open(store, KEY, PQ)
        data = gallery_path(store.path, "face").read_bytes()
        assert not any(vector.tobytes()[:16] in data for vector in vectors)  # no vector in clear
        monkeypatch.setattr(Gallery, "build", lambda *a, **k: pytest.fail("the sealed gallery should load"))
        assert Gallery.open(store, KEY, PQ).count == 60
    with TemplateStore(tmp_path / "clear.db") as clear:
        with pytest.raises(GalleryFileError, match="is sealed but the store has no key"):
            load_gallery(gallery_path(tmp_path / "sealed.db", "face"), clear)


def test_a_gallery_of_another_model_is_rebuilt(store):
    fill(store, random_rows(30))
    Gallery.open(store, KEY, PQ)
    other = Gallery.open(store, GalleryKey("face", "toy", "v2"), PQ)
    assert other.count == 0 and len(other.skipped) == 30


def test_small_galleries_are_not_saved(store):
    fill(store, random_rows(30))
    Gallery.open(store, KEY, PQ)
    assert gallery_path(store.path, "face").exists()
    store.delete("p00000")
    small = GalleryConfig(PQ.index, PQ.shortlist, save_min=100)
    Gallery.open(store, KEY, small)
    assert not gallery_path(store.path, "face").exists()  # it may hold the deleted vector: removed
    grown = Gallery.open(store, KEY, GalleryConfig(PQ.index, PQ.shortlist, save_min=30))
    store.add_sample("newcomer", "face", random_rows(1, seed=4)[0], "toy", "v1")
    assert grown.refresh(store) and gallery_path(store.path, "face").exists()  # saved once large enough


# --- through the service: deleting erases the vector from disk --------------------------------
def service(path: Path) -> Service:
    settings = Settings(store_path=path, device="cpu", caller="tester", gallery=EXACT)
    return Service(settings=settings, pipelines={"face": VectorPipeline("face")},
                   scorers={"face": CosineScorer(VECTOR_THRESHOLDS)})


def test_deleting_and_reenrolling_update_the_saved_gallery(tmp_path):
    vectors = random_rows(3, dim=8)
    with TemplateStore(tmp_path / "s.db") as store:  # enrolled in bulk: the first search saves all three
        for name, vector in zip(("alice", "bob", "carol"), vectors):
            store.add_sample(name, "face", vector, "vector", "1")
    with service(tmp_path / "s.db") as svc:
        assert svc.identify(face=vectors[1]).identity == "bob"
        saved = gallery_path(tmp_path / "s.db", "face")
        assert vectors[1].tobytes() in saved.read_bytes()
        svc.delete("bob")
        assert vectors[1].tobytes() not in saved.read_bytes()
        assert svc.identify(face=vectors[1]).identity is None
        svc.reenroll("alice", face=vectors[1])
        near = unit(0.9 * vectors[1] + 0.44 * random_rows(1, dim=8, seed=7)[0])  # not a replay of the enrollment
        assert svc.identify(face=near).identity == "alice"
        assert vectors[0].tobytes() not in saved.read_bytes()
    with service(tmp_path / "s.db") as other_process:  # no gallery loaded: the saved one is updated
        other_process.delete("carol")
    assert vectors[2].tobytes() not in saved.read_bytes()


def test_a_gallery_that_cannot_be_saved_still_answers(store, verifier, monkeypatch, caplog):
    vectors = random_rows(50)
    fill(store, vectors)

    def refuse(*args, **kwargs):
        raise OSError("read-only file system")

    monkeypatch.setattr("enrollment.gallery.save_gallery", refuse)
    with caplog.at_level(logging.WARNING, logger="enrollment.gallery"):
        gallery = Gallery.open(store, KEY, PQ)
    assert "the face gallery index is not saved: read-only file system" in caplog.text
    assert identify(store, verifier, Embedding(vectors[3]), gallery=gallery).identity == "p00003"


def test_a_service_on_cuda_scans_its_large_galleries_on_the_gpu(tmp_path, monkeypatch):
    from verify import search
    from verify.device import Device

    monkeypatch.setattr("enrollment.service.select_device", lambda spec: Device("cuda", 0))
    scan = search.DeviceScan
    monkeypatch.setattr(search, "DeviceScan", lambda rows, device: scan(rows, "cpu"))  # torch on the CPU: no CUDA here
    vectors = random_rows(30, dim=64)
    with TemplateStore(tmp_path / "s.db") as store:
        for index, vector in enumerate(vectors):
            store.add_sample(f"p{index:02d}", "face", vector, "vector", "1")
    settings = Settings(store_path=tmp_path / "s.db", device="cuda", caller="tester",
                        gallery=GalleryConfig(IndexConfig(exact_max=10), shortlist=40, save_min=1))
    with Service(settings=settings, pipelines={"face": VectorPipeline("face")},
                 scorers={"face": CosineScorer(VECTOR_THRESHOLDS)}) as svc:
        assert svc.identify(face=vectors[7]).identity == "p07"
        assert svc.gallery(VectorPipeline("face")).index.kind == "gpu"
        svc.delete("p07")
        assert svc.identify(face=vectors[7]).identity is None
