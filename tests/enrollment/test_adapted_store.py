"""Per-user adapted scorers in the store and in enroll/check (synthetic 8-d embeddings, no models)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from vector_pipeline import direction, vector_verifier

from enrollment import TemplateStore, UnknownIdentityError
from enrollment.crypto import generate_key, parse_key
from enrollment.enroll import adapt_template, check, check_many, enroll
from enrollment.errors import TemplateIntegrityError
from enrollment.ratelimit import NO_LOCKOUT
from enrollment.adapted import AdaptedParams, load_adapted, save_adapted
from enrollment.store import SCHEMA_VERSION
from verify.calibration import Thresholds
from verify.errors import ConfigError, ModelMismatchError
from verify.adaptation import Adapter, AugmentConfig, GuardRecord, initial_params

DIM = 8


def make_adapter(tmp_path: Path) -> Adapter:
    """A saved and reloaded adapter for the 8-d vector pipeline, with a cohort of random directions."""
    generator = torch.Generator().manual_seed(0)
    cohort = torch.randn(48, DIM, generator=generator)
    cohort = cohort / cohort.norm(dim=1, keepdim=True)
    adapter = Adapter(initial_params(DIM, threshold=0.5), 0.05, 3, cohort[:32], cohort[32:],
                      AugmentConfig(count=6, holdout=2), method="maml", modality="face", model_id="vector",
                      model_version="1", thresholds=Thresholds("vector+adapt-maml", {1e-1: -3.0, 1e-2: -1.0, 1e-3: 0.0, 1e-4: 2.0}))
    return Adapter.load(adapter.save(tmp_path / "adapt-face-maml.pt"))


@pytest.fixture
def store(tmp_path: Path):
    with TemplateStore(tmp_path / "store.db") as opened:
        yield opened


def record(identity: str = "alice", params=None) -> AdaptedParams:
    params = np.arange(2 * DIM + 2, dtype=np.float32) if params is None else params
    guard = GuardRecord(True, 1.0, 2.0, "maml").to_json()
    return AdaptedParams(identity, "face", "maml", "abc123", params, guard, 10.0, 11.0)


def test_migration_creates_the_adapted_table(store):
    raw = sqlite3.connect(store.path)
    tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "adapted" in tables
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


def test_adapted_params_round_trip_and_follow_their_template(store):
    store.add_sample("alice", "face", direction(0), "vector", "1")
    store.add_sample("alice", "voice", direction(1), "vector", "1")
    assert load_adapted(store, "alice", "face") is None
    save_adapted(store, record())
    save_adapted(store, AdaptedParams("alice", "voice", "maml", "abc123", np.ones(3, np.float32), "{}", 1.0, 1.0))
    loaded = load_adapted(store, "alice", "face")
    np.testing.assert_array_equal(loaded.params, record().params)
    assert (loaded.method, loaded.checkpoint, loaded.template_updated_at, loaded.created_at) == ("maml", "abc123", 10.0, 11.0)
    assert GuardRecord.from_json(loaded.guard).kept
    store.delete("alice", "face")  # deleting a template deletes its adapted parameters, and only those
    assert load_adapted(store, "alice", "voice") is not None
    store.add_sample("alice", "face", direction(0), "vector", "1")
    assert load_adapted(store, "alice", "face") is None


def test_adapted_params_need_an_enrolled_template(store):
    with pytest.raises(UnknownIdentityError, match="no face template enrolled for 'bob'"):
        save_adapted(store, record("bob"))


def test_adapted_params_are_sealed_under_the_store_key(tmp_path):
    pytest.importorskip("cryptography")
    key = parse_key(generate_key(), "test")
    path = tmp_path / "sealed.db"
    with TemplateStore(path, key=key) as sealed:
        sealed.add_sample("alice", "face", direction(0), "vector", "1")
        save_adapted(sealed, record())
        np.testing.assert_array_equal(load_adapted(sealed, "alice", "face").params, record().params)
    raw = sqlite3.connect(path)
    stored = raw.execute("SELECT params FROM adapted").fetchone()[0]
    assert stored != record().params.tobytes()
    raw.execute("UPDATE adapted SET guard = '{}'")  # the guard record is bound to the ciphertext
    raw.commit()
    raw.close()
    with TemplateStore(path, key=key) as sealed, pytest.raises(TemplateIntegrityError):
        load_adapted(sealed, "alice", "face")


def test_enrollment_adapts_and_a_reopened_store_gives_identical_scores(tmp_path):
    adapter = make_adapter(tmp_path)
    verifier = vector_verifier()
    alice = direction(0, DIM, lean=0.2)
    probes = [direction(0, DIM, lean=0.5), direction(3, DIM), direction(0, DIM, lean=1.0)]
    with TemplateStore(tmp_path / "store.db") as store:
        enrollment = enroll(store, verifier, "alice", alice, adapter=adapter)
        stored = load_adapted(store, "alice", "face")
        assert stored.checkpoint == adapter.checkpoint_id and stored.template_updated_at == enrollment.template.updated_at
        first = check_many(store, verifier, "alice", probes, adapter=adapter, policy=NO_LOCKOUT)
    params, record_ = adapter.adapt(enrollment.template.embedding)
    np.testing.assert_array_equal(stored.params, params)
    assert GuardRecord.from_json(stored.guard) == record_
    expected = adapter.score(params, enrollment.template.embedding, np.stack(probes))
    assert [decision.score for decision in first] == pytest.approx(list(expected), abs=1e-6)
    with TemplateStore(tmp_path / "store.db") as reopened:
        again = [check(reopened, verifier, "alice", probe, adapter=Adapter.load(tmp_path / "adapt-face-maml.pt"),
                       policy=NO_LOCKOUT) for probe in probes]
    assert [decision.score for decision in again] == [decision.score for decision in first]
    assert [decision.threshold for decision in again] == [0.0] * 3  # the adapter's medium-level threshold


def test_a_new_sample_re_adapts_and_cosine_checks_are_unchanged(tmp_path):
    adapter = make_adapter(tmp_path)
    verifier = vector_verifier()
    with TemplateStore(tmp_path / "store.db") as store:
        enroll(store, verifier, "alice", direction(0, DIM), adapter=adapter)
        before = load_adapted(store, "alice", "face")
        template = enroll(store, verifier, "alice", direction(0, DIM, lean=0.3)).template  # no adapter: stale
        decision = check(store, verifier, "alice", direction(0, DIM, lean=0.3), adapter=adapter, policy=NO_LOCKOUT)
        after = load_adapted(store, "alice", "face")
        plain = check(store, verifier, "alice", direction(0, DIM, lean=0.3), policy=NO_LOCKOUT)
    assert after.template_updated_at == template.updated_at != before.template_updated_at
    assert not np.array_equal(after.params, before.params)
    assert decision.score == pytest.approx(adapter.score(after.params, template.embedding, direction(0, DIM, lean=0.3)[None])[0])
    assert plain.score == pytest.approx(float(template.embedding @ direction(0, DIM, lean=0.3)), abs=1e-6)


def test_an_adapter_of_another_backbone_or_without_thresholds_is_refused(tmp_path, store):
    adapter = make_adapter(tmp_path)
    template = store.add_sample("alice", "face", direction(0), "vector", "1")
    adapter.thresholds = None
    with pytest.raises(ConfigError, match="has no calibrated thresholds; retrain it"):
        check(store, vector_verifier(), "alice", direction(0), adapter=adapter, policy=NO_LOCKOUT)
    adapter.model_id = "other"
    with pytest.raises(ModelMismatchError, match="trained on face embeddings of other 1"):
        adapt_template(store, adapter, template)
