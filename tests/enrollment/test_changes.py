"""The store's version changes in the transaction of every template write, and only then."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

import enrollment.database as database
import enrollment.schema as schema
from enrollment import TemplateStore
from enrollment.audit import Attempt, record_attempt
from enrollment.changes import StoreVersion, changed_since, in_history, store_version

MODEL = ("toy", "v1")


def version(store: TemplateStore) -> StoreVersion:
    with store.transaction() as connection:
        return store_version(connection)


def test_every_template_write_and_only_those_changes_the_version(tmp_path: Path):
    with TemplateStore(tmp_path / "s.db") as store:
        start = version(store)
        store.add_sample("alice", "face", np.ones(4), *MODEL)
        store.add_sample("alice", "face", np.arange(4.0) + 1, *MODEL)  # INSERT OR REPLACE
        store.add_sample("bob", "voice", np.ones(4), *MODEL)
        after_writes = version(store)
        with store.transaction(write=True) as connection:  # the audit log is no template write
            record_attempt(connection, Attempt(1.0, "alice", "face", "accepted", 0.9, ""))
        assert version(store) == after_writes
        with pytest.raises(RuntimeError), store.transaction(write=True) as connection:
            connection.execute("DELETE FROM templates")
            raise RuntimeError("rolled back")
        assert version(store) == after_writes
        store.delete("alice")
        end = version(store)
        assert start.version < after_writes.version < end.version and end.stamp != after_writes.stamp
        with store.transaction() as connection:
            assert in_history(connection, after_writes) and in_history(connection, start)
            assert not in_history(connection, StoreVersion(after_writes.version, after_writes.stamp + 1))
            assert changed_since(connection, start, "face") == {"alice"}
            assert changed_since(connection, start, "voice") == {"bob"}
            assert changed_since(connection, after_writes, "voice") == set()


def test_a_version_7_store_is_migrated_with_its_templates(tmp_path: Path, monkeypatch):
    path = tmp_path / "v7.db"
    monkeypatch.setattr(database, "SCHEMA_VERSION", 7)
    with TemplateStore(path) as store, store.transaction(write=True) as connection:  # a version 7 row
        connection.execute("INSERT INTO templates VALUES ('alice', 'face', ?, 4, 1, ?, ?, 1.0, 1.0, NULL, NULL)",
                           (np.ones(4, "<f4").tobytes(), *MODEL))
    monkeypatch.undo()
    with TemplateStore(path) as store:
        migrated = version(store)
        assert migrated.version == 1 and store.get("alice", "face").sample_count == 1
        store.delete("alice")
        assert version(store).version == 2
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    raw.close()


def test_the_change_log_is_bounded(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(schema, "CHANGE_LOG_LIMIT", 3)  # read when the store is created
    with TemplateStore(tmp_path / "s.db") as store:
        first = version(store)
        for value in range(5):
            store.add_sample("alice", "face", np.ones(4) + value, *MODEL)
        with store.transaction() as connection:
            assert not in_history(connection, first)
            assert connection.execute("SELECT count(*) FROM template_changes").fetchone()[0] == 3
