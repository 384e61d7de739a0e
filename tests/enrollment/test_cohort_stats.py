"""Templates keep their cohort statistics (S-norm) through enrollment, storage, migration and backups."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from enrollment.backup import export_store, import_store
from enrollment.crypto import generate_key, parse_key
from enrollment.enroll import check, enroll
from enrollment.errors import TemplateIntegrityError
from enrollment.schema import MIGRATIONS
from enrollment.store import TemplateStore
from verify.models import model_spec, shipped_verifier

FACE = model_spec("face")
MODELS = {"face": (FACE.model_id, FACE.version)}


@pytest.fixture
def verifier(face_pipeline):
    return shipped_verifier(face_pipeline)


def test_enrollment_stores_the_statistics_and_a_new_sample_refreshes_them(tmp_path, verifier, face_files):
    with TemplateStore(tmp_path / "s.db") as store:
        first = enroll(store, verifier, "Andy", face_files[0]).template
        assert first.cohort_stats == verifier.template_stats(first.embedding)
        assert first.cohort_stats.cohort_id == FACE.scorer.cohort.cohort_id
        second = enroll(store, verifier, "Andy", face_files[1]).template
        assert second.sample_count == 2 and second.cohort_stats == verifier.template_stats(second.embedding)
        assert second.cohort_stats != first.cohort_stats
    with TemplateStore(tmp_path / "s.db") as reopened:
        assert reopened.get("Andy", "face").cohort_stats == second.cohort_stats


def test_sealed_statistics_are_bound_to_the_row(tmp_path, verifier, face_files):
    key = generate_key()
    with TemplateStore(tmp_path / "k.db", key=parse_key(key, "test")) as store:
        stats = enroll(store, verifier, "Andy", face_files[0]).template.cohort_stats
    raw = sqlite3.connect(tmp_path / "k.db")
    lowered = json.dumps({**json.loads(stats.to_json()), "mean": stats.mean - 0.2}, separators=(",", ":"))
    raw.execute("UPDATE templates SET cohort_stats = ?", (lowered,))  # would raise every normalised score
    raw.commit()
    raw.close()
    with TemplateStore(tmp_path / "k.db", key=parse_key(key, "test")) as store:
        with pytest.raises(TemplateIntegrityError):
            store.get("Andy", "face")


def test_a_template_from_before_the_statistics_gets_them_on_first_use(tmp_path, verifier, face_files):
    path = tmp_path / "v4.db"
    with TemplateStore(path) as store:
        vector = verifier.pipeline.embed(face_files[0]).vector
        store.add_sample("Andy", "face", vector, FACE.model_id, FACE.version)
    raw = sqlite3.connect(path)  # rebuild the table as schema version 4 had it: no statistics column
    (create,) = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'templates'").fetchone()
    added = ", cohort_stats TEXT, narrowband BLOB, narrowband_seal BLOB, narrowband_stats TEXT"  # versions 5, 9
    assert added in create
    raw.execute("ALTER TABLE templates RENAME TO newer")
    raw.execute(create.replace(added, ""))
    raw.execute("INSERT INTO templates SELECT identity, modality, embedding, dim, sample_count, model_id,"
                " model_version, created_at, updated_at, seal FROM newer")
    raw.execute("DROP TABLE newer")
    raw.execute("DROP TABLE replay_samples")  # added by version 6
    raw.execute("DROP TABLE api_tokens")  # added by version 7
    raw.execute("DROP TABLE template_changes")  # added by version 8 (its triggers went with the renamed table)
    raw.execute("PRAGMA user_version = 4")
    raw.commit()
    raw.close()
    assert 4 in MIGRATIONS
    with TemplateStore(path) as store:
        old = store.get("Andy", "face")
        assert old.cohort_stats is None and old.narrowband_sum is None
        assert check(store, verifier, "Andy", face_files[1]).accepted
        migrated = store.get("Andy", "face")
        assert migrated.cohort_stats == verifier.template_stats(migrated.embedding)


def test_exports_carry_the_statistics_and_version_1_exports_still_import(tmp_path, verifier, face_files):
    with TemplateStore(tmp_path / "a.db") as source:
        stats = enroll(source, verifier, "Andy", face_files[0]).template.cohort_stats
        export_store(source, tmp_path / "backup.json")
    document = json.loads((tmp_path / "backup.json").read_text())
    assert document["format_version"] == 3 and document["templates"][0]["cohort_stats"]["mean"] == stats.mean
    with TemplateStore(tmp_path / "b.db") as target:
        assert import_store(target, tmp_path / "backup.json", MODELS) == 1
        assert target.get("Andy", "face").cohort_stats == stats
    document["format_version"] = 1
    for record in document["templates"]:
        for field in ("cohort_stats", "narrowband_sum", "narrowband_stats"):
            del record[field]
    (tmp_path / "v1.json").write_text(json.dumps(document))
    with TemplateStore(tmp_path / "c.db") as target:
        assert import_store(target, tmp_path / "v1.json", MODELS) == 1
        assert target.get("Andy", "face").cohort_stats is None
        np.testing.assert_allclose(target.get("Andy", "face").embedding, verifier.pipeline.embed(face_files[0]).vector,
                                   atol=1e-6)
