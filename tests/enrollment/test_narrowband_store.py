"""A voice template's narrowband copy in the store: round trips, sealing, tampering, migration, statistics."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from vector_pipeline import direction

import enrollment.database as database
from enrollment import Template, TemplateStore
from enrollment.crypto import associated_data
from enrollment.errors import StoreCorruptError, TemplateIntegrityError
from enrollment.schema import SCHEMA_VERSION
from verify.normalization import CohortStats

KEY = bytes(range(32))
MODEL = ("vector", "1")
STATS = CohortStats(0.1, 0.05, 10, "cohort")
BAND_STATS = CohortStats(0.2, 0.04, 10, "cohort")


@pytest.fixture(params=[None, KEY], ids=["plain", "keyed"])
def key(request) -> bytes | None:
    return request.param


def raw_row(path: Path, identity: str, columns: str) -> tuple:
    """``columns`` of the voice template of ``identity``, as stored."""
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT {columns} FROM templates WHERE identity = ? AND modality = 'voice'",
                                  (identity,)).fetchone()


def set_row(path: Path, identity: str, **values) -> None:
    assignments = ", ".join(f"{column} = ?" for column in values)
    with sqlite3.connect(path) as connection:
        connection.execute(f"UPDATE templates SET {assignments} WHERE identity = ?", (*values.values(), identity))


def test_round_trip_sums_the_copies_and_survives_reopening(tmp_path: Path, key: bytes | None) -> None:
    path = tmp_path / "s.db"
    with TemplateStore(path, key=key) as store:
        store.add_sample("alice", "voice", direction(0), *MODEL, narrowband=direction(4) * 3)
        added = store.add_sample("alice", "voice", direction(1), *MODEL, narrowband=direction(5) * 0.5)
        store.add_sample("alice", "face", direction(0), *MODEL)
    np.testing.assert_array_equal(added.narrowband_sum, direction(4) + direction(5))
    with TemplateStore(path, key=key) as store:
        assert store.get("alice", "voice") == added and store.get("alice", "face").narrowband_sum is None
    narrowband, seal, stats = raw_row(path, "alice", "narrowband, narrowband_seal, narrowband_stats")
    assert len(narrowband) == 32 and stats is None
    assert (narrowband == added.narrowband_sum.astype("<f4").tobytes()) == (key is None)
    assert (seal is None) == (key is None) and (key is None or len(seal) == 28)


def test_a_sample_without_a_copy_drops_the_narrowband(tmp_path: Path) -> None:
    with TemplateStore(tmp_path / "s.db") as store:
        store.add_sample("alice", "voice", direction(0), *MODEL, narrowband=direction(4))
        assert store.add_sample("alice", "voice", direction(1), *MODEL).narrowband_sum is None
        again = store.add_sample("alice", "voice", direction(2), *MODEL, narrowband=direction(5))
        assert again.sample_count == 3 and again.narrowband_sum is None
        assert store.get("alice", "voice") == again


def test_replace_writes_the_copy_and_its_statistics(tmp_path: Path, key: bytes | None) -> None:
    template = Template("alice", "voice", direction(0), 1, *MODEL, 1.0, 1.0, STATS, direction(3), BAND_STATS)
    with TemplateStore(tmp_path / "s.db", key=key) as store:
        store.replace(template)
    with TemplateStore(tmp_path / "s.db", key=key) as store:
        assert store.get("alice", "voice") == template


def test_set_cohort_stats_keeps_the_narrowband_statistics(tmp_path: Path) -> None:
    with TemplateStore(tmp_path / "s.db", key=KEY) as store:
        banded = store.add_sample("alice", "voice", direction(0), *MODEL, narrowband=direction(4))
        plain = store.add_sample("bob", "voice", direction(1), *MODEL)
        stored = store.set_cohort_stats(banded, STATS, BAND_STATS)
        assert (stored.cohort_stats, stored.narrowband_stats) == (STATS, BAND_STATS)
        assert store.get("alice", "voice") == stored
        assert store.set_cohort_stats(plain, STATS, BAND_STATS).narrowband_stats is None  # no copy: no statistics
        assert store.get("bob", "voice").cohort_stats == STATS
        newer = store.add_sample("alice", "voice", direction(1), *MODEL, narrowband=direction(5))
        assert store.set_cohort_stats(stored, STATS, BAND_STATS) == newer  # the stored template changed since
        assert newer.cohort_stats is None and newer.narrowband_stats is None
    with TemplateStore(tmp_path / "s.db", key=KEY) as store:
        assert store.get("alice", "voice") == newer


def test_threads_with_their_own_connections_lose_no_copy(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    TemplateStore(path, key=KEY).close()

    def add(worker: int) -> None:
        with TemplateStore(path, key=KEY) as store:
            for _ in range(10):
                store.add_sample("shared", "voice", direction(worker), *MODEL, narrowband=direction(4 + worker))

    threads = [threading.Thread(target=add, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with TemplateStore(path, key=KEY) as store:
        shared = store.get("shared", "voice")
    assert shared.sample_count == 40
    np.testing.assert_array_equal(shared.narrowband_sum, [0, 0, 0, 0, 10, 10, 10, 10])


# --- tampering with a key ---------------------------------------------------------------------
@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    """A keyed store: alice (voice, with a copy and statistics), bob (voice, with a copy), carol (voice, none)."""
    path = tmp_path / "k.db"
    with TemplateStore(path, key=KEY) as store:
        alice = store.add_sample("alice", "voice", direction(0), *MODEL, narrowband=direction(4))
        store.set_cohort_stats(alice, STATS, BAND_STATS)
        store.add_sample("bob", "voice", direction(1), *MODEL, narrowband=direction(5))
        store.add_sample("carol", "voice", direction(2), *MODEL)
    return path


def flipped(blob: bytes) -> bytes:
    return bytes([blob[0] ^ 1]) + blob[1:]


def edit_alice(path: Path, change: str) -> str:
    """Apply one edit an attacker with write access could make; return the row it targets."""
    columns = "embedding, seal, narrowband, narrowband_seal"
    embedding, seal, narrowband, narrowband_seal = raw_row(path, "alice", columns)
    bob = raw_row(path, "bob", "narrowband, narrowband_seal")
    lowered = BAND_STATS.to_json().replace('"mean":0.2', '"mean":0.0')
    edits = {
        "flip": ("alice", {"narrowband": flipped(narrowband)}),
        "seal": ("alice", {"narrowband_seal": flipped(narrowband_seal)}),
        "swap-with-embedding": ("alice", {"embedding": narrowband, "seal": narrowband_seal,
                                          "narrowband": embedding, "narrowband_seal": seal}),
        "from-bob": ("alice", {"narrowband": bob[0], "narrowband_seal": bob[1]}),
        "plain": ("alice", {"narrowband": direction(6).astype("<f4").tobytes(), "narrowband_seal": None}),
        "deleted": ("alice", {"narrowband": None, "narrowband_seal": None, "narrowband_stats": None}),
        "stats": ("alice", {"narrowband_stats": lowered}),
        "stats-deleted": ("alice", {"narrowband_stats": None}),
        "planted-copy": ("carol", {"narrowband": bob[0], "narrowband_seal": bob[1]}),
        "planted-stats": ("carol", {"narrowband_stats": BAND_STATS.to_json()}),
    }
    identity, values = edits[change]
    set_row(path, identity, **values)
    return identity


@pytest.mark.parametrize(
    "change",
    ["flip", "seal", "swap-with-embedding", "from-bob", "plain", "deleted", "stats", "stats-deleted",
     "planted-copy", "planted-stats"],
)
def test_an_edited_copy_or_statistic_fails_authentication(sealed: Path, change: str) -> None:
    identity = edit_alice(sealed, change)
    with TemplateStore(sealed, key=KEY) as store:
        with pytest.raises(TemplateIntegrityError, match=f"'{identity}' \\(voice\\)"):
            store.get(identity, "voice")
        assert store.get("bob", "voice").narrowband_sum is not None  # other rows still open


def test_a_copy_of_the_wrong_length_is_corruption(sealed: Path) -> None:
    set_row(sealed, "bob", narrowband=b"\x00" * 12)
    with TemplateStore(sealed, key=KEY) as store:
        with pytest.raises(StoreCorruptError, match=r"'bob' \(voice\) has a damaged narrowband copy \(12 bytes"):
            store.get("bob", "voice")


def test_statistics_without_a_copy_are_refused_without_a_key(tmp_path: Path) -> None:
    with TemplateStore(tmp_path / "s.db") as store:
        store.add_sample("carol", "voice", direction(2), *MODEL)
    set_row(tmp_path / "s.db", "carol", narrowband_stats=BAND_STATS.to_json())
    with TemplateStore(tmp_path / "s.db") as store:
        with pytest.raises(StoreCorruptError, match="narrowband_stats given without a narrowband_sum"):
            store.get("carol", "voice")


# --- migration ----------------------------------------------------------------------------------
def version_8_store(path: Path, key: bytes | None, monkeypatch: pytest.MonkeyPatch) -> Template:
    """A store built by the migrations up to version 8, holding one voice template as version 8 wrote it."""
    template = Template("alice", "voice", direction(0) + direction(1), 2, *MODEL, 1.0, 2.0, STATS)
    stats = STATS.to_json()
    monkeypatch.setattr(database, "SCHEMA_VERSION", 8)
    with TemplateStore(path, key=key) as store, store.transaction(write=True) as connection:
        bound = associated_data("alice", "voice", *MODEL, 8, 2) + b"|cohort_stats:" + stats.encode("utf-8")
        blob, seal = store.seal(template.embedding_sum.astype("<f4").tobytes(), bound)
        connection.execute("INSERT INTO templates VALUES ('alice', 'voice', ?, 8, 2, ?, ?, 1.0, 2.0, ?, ?)",
                           (blob, *MODEL, seal, stats))
    monkeypatch.undo()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 8
        assert "narrowband" not in [row[1] for row in raw.execute("PRAGMA table_info(templates)")]
    return template


def test_a_version_8_store_is_migrated_with_its_templates(tmp_path: Path, key: bytes | None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "v8.db"
    before = version_8_store(path, key, monkeypatch)
    with TemplateStore(path, key=key) as store:
        migrated = store.get("alice", "voice")
        assert migrated == before and migrated.narrowband_sum is None and migrated.narrowband_stats is None
        grown = store.add_sample("alice", "voice", direction(2), *MODEL, narrowband=direction(4))
        assert grown.sample_count == 3 and grown.narrowband_sum is None  # its older samples have no copy
        store.replace(Template("alice", "voice", direction(0), 1, *MODEL, 3.0, 3.0, None, direction(4)))
    with TemplateStore(path, key=key) as store:
        np.testing.assert_array_equal(store.get("alice", "voice").narrowband_sum, direction(4))
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 9
