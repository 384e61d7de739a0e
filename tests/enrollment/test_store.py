"""Tests of enrollment.store: round trips, validation, file safety, migrations, concurrency."""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import enrollment.database as store_module
from enrollment import (
    InvalidIdentityError,
    InvalidTemplateError,
    StoreCorruptError,
    StoreError,
    Template,
    TemplateStore,
    UnknownIdentityError,
    default_store_path,
)
from verify.errors import ConfigError, ModelMismatchError

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = ("facenet", "1.0")


def one_hot(index: int, dim: int = 8) -> np.ndarray:
    vector = np.zeros(dim, dtype=np.float32)
    vector[index] = 1.0
    return vector


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "enrollments.db"


@pytest.fixture
def store(store_path: Path):
    with TemplateStore(store_path) as opened:
        yield opened


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


# --- default path ----------------------------------------------------------------------------
def test_default_store_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VERIFY_STORE", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    expected_home = tmp_path / "home" / ".local" / "share" / "verify" / "enrollments.db"
    assert default_store_path() == expected_home
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert default_store_path() == expected_home
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "verify" / "enrollments.db"
    monkeypatch.setenv("VERIFY_STORE", str(tmp_path / "mine.db"))
    assert default_store_path() == tmp_path / "mine.db"


# --- round trips -------------------------------------------------------------------------------
def test_round_trip_survives_reopening(store_path: Path) -> None:
    embedding = np.random.default_rng(1).normal(size=192).astype(np.float32)
    with TemplateStore(store_path) as store:
        added = store.add_sample("alice", "voice", embedding, "ecapa", "2")
    with TemplateStore(store_path) as store:
        loaded = store.get("alice", "voice")
    assert loaded == added
    assert loaded.embedding_sum.dtype == np.float32
    np.testing.assert_allclose(loaded.embedding, embedding / np.linalg.norm(embedding), atol=1e-6)
    assert (loaded.model_id, loaded.model_version, loaded.sample_count) == ("ecapa", "2", 1)


def test_adding_samples_updates_the_mean(store: TemplateStore) -> None:
    store.add_sample("bob", "face", [2.0, 0.0, 0.0], *MODEL)
    store.add_sample("bob", "face", [0.0, 5.0, 0.0], *MODEL)
    third = store.add_sample("bob", "face", [0.0, 0.0, 0.5], *MODEL)
    loaded = store.get("bob", "face")
    assert loaded == third and loaded.sample_count == 3
    np.testing.assert_array_equal(loaded.embedding_sum, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(loaded.embedding, [3**-0.5] * 3, rtol=1e-6)
    assert loaded.updated_at >= loaded.created_at


def test_find_list_delete(store: TemplateStore) -> None:
    store.add_sample("zoe", "voice", one_hot(0), *MODEL)
    store.add_sample("adam", "voice", one_hot(1), *MODEL)
    store.add_sample("adam", "face", one_hot(2), *MODEL)
    listed = [(t.identity, t.modality) for t in store.list_templates()]
    assert listed == [("adam", "face"), ("adam", "voice"), ("zoe", "voice")]
    assert [t.modality for t in store.find("adam")] == ["face", "voice"]
    assert store.find("nobody") == []
    assert store.delete("adam", "voice") == 1
    assert [t.modality for t in store.find("adam")] == ["face"]
    store.add_sample("adam", "voice", one_hot(1), *MODEL)
    assert store.delete(" adam ") == 2
    assert [t.identity for t in store.list_templates()] == ["zoe"]


def test_unknown_identity(store: TemplateStore) -> None:
    store.add_sample("alice", "face", one_hot(0), *MODEL)
    with pytest.raises(UnknownIdentityError, match="no voice template enrolled for 'alice'"):
        store.get("alice", "voice")
    with pytest.raises(UnknownIdentityError, match="no voice template enrolled for 'alice'"):
        store.delete("alice", "voice")
    with pytest.raises(UnknownIdentityError, match="no template enrolled for 'mallory'"):
        store.delete("mallory")


def test_replace_re_enrolls_with_another_model(store: TemplateStore) -> None:
    store.add_sample("alice", "face", one_hot(0), *MODEL)
    fresh = Template.from_sample("alice", "face", np.ones(4), "arcface", "3", now=50.0)
    store.replace(fresh)
    assert store.get("alice", "face") == fresh
    store.replace(Template.from_sample("carol", "voice", [1.0], "ecapa", "1", now=1.0))
    assert store.get("carol", "voice").dim == 1
    with pytest.raises(InvalidTemplateError, match="needs a Template, got dict"):
        store.replace({"identity": "alice"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "Robert'); DROP TABLE templates;--",
        "' OR '1'='1",
        "../../../etc/passwd",
        "José \"Pepe\" Ñúñez",
        "李小龙",
        "%_*",
    ],
)
def test_hostile_names_are_plain_data(store: TemplateStore, name: str) -> None:
    store.add_sample("innocent", "face", one_hot(0), *MODEL)
    store.add_sample(name, "voice", one_hot(1), *MODEL)
    assert store.get(name, "voice").identity == name
    assert [t.identity for t in store.find(name)] == [name]
    assert len(store.list_templates()) == 2
    assert store.delete(name) == 1
    assert store.get("innocent", "face").sample_count == 1


# --- validation -----------------------------------------------------------------------------
def test_model_mismatch_leaves_template_unchanged(store: TemplateStore) -> None:
    original = store.add_sample("alice", "face", one_hot(0), "facenet", "1.0")
    cases = [
        ("arcface", "1.0", one_hot(1), "made by model 'facenet' version '1.0' \\(dim 8\\)"),
        ("facenet", "1.1", one_hot(1), "comes from 'facenet' version '1.1'"),
        ("facenet", "1.0", np.ones(16), "\\(dim 16\\); re-enroll"),
    ]
    for model_id, version, embedding, message in cases:
        with pytest.raises(ModelMismatchError, match=message):
            store.add_sample("alice", "face", embedding, model_id, version)
    assert store.get("alice", "face") == original


@pytest.mark.parametrize(
    ("identity", "modality", "embedding", "error", "message"),
    [
        ("", "face", [1.0], InvalidIdentityError, "is empty"),
        ("a" * 65, "face", [1.0], InvalidIdentityError, "limit is 64"),
        ("al\x07ice", "face", [1.0], InvalidIdentityError, "control character U\\+0007"),
        (42, "face", [1.0], InvalidIdentityError, "must be a string, got int"),
        ("alice", "iris", [1.0], ConfigError, "unknown modality 'iris'"),
        ("alice", "face", [0.0, 0.0], InvalidTemplateError, "norm 0.0"),
        ("alice", "face", [1.0, np.nan], InvalidTemplateError, "NaN or infinite"),
        ("alice", "face", np.ones((2, 3)), InvalidTemplateError, r"got shape \(2, 3\)"),
    ],
)
def test_add_sample_rejects_bad_arguments_and_writes_nothing(
    store: TemplateStore, identity, modality, embedding, error, message
) -> None:
    with pytest.raises(error, match=message):
        store.add_sample(identity, modality, embedding, *MODEL)
    assert store.list_templates() == []


def test_add_sample_rejects_empty_model_id(store: TemplateStore) -> None:
    with pytest.raises(InvalidTemplateError, match="model_id must be a non-empty string"):
        store.add_sample("alice", "face", [1.0], "", "1")


def test_other_methods_validate(store: TemplateStore) -> None:
    with pytest.raises(InvalidIdentityError, match="is empty"):
        store.get(" ", "face")
    with pytest.raises(ConfigError, match="unknown modality 'FACE'"):
        store.get("alice", "FACE")
    with pytest.raises(InvalidIdentityError, match="control character"):
        store.find("a\nb")
    with pytest.raises(InvalidIdentityError, match="is empty"):
        store.delete("")
    with pytest.raises(ConfigError, match="unknown modality 'all'"):
        store.delete("alice", "all")


def test_closed_store_raises(store_path: Path) -> None:
    store = TemplateStore(store_path)
    store.close()
    store.close()
    assert "closed" in repr(store)
    with pytest.raises(StoreError, match="is closed"):
        store.list_templates()
    with pytest.raises(StoreError, match="is closed"):
        store.add_sample("alice", "face", [1.0], *MODEL)


# --- the file ---------------------------------------------------------------------------------
def test_new_file_is_private_and_stores_only_embeddings(store_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        store = TemplateStore(store_path)
    finally:
        os.umask(old_umask)
    with store:
        store.add_sample("alice", "face", one_hot(0), *MODEL)
        assert store.path == store_path
        assert stat.S_IMODE(store_path.stat().st_mode) == 0o600
        for sidecar in store_path.parent.glob("*-*"):  # -wal and -shm copy the file's mode
            assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600
        assert stat.S_IMODE(store_path.parent.stat().st_mode) == 0o700
    raw = sqlite3.connect(store_path)
    columns = [row[1] for row in raw.execute("PRAGMA table_info(templates)")]
    tables = [row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    journal = raw.execute("PRAGMA journal_mode").fetchone()[0]
    raw.close()
    assert columns == [
        "identity", "modality", "embedding", "dim", "sample_count",
        "model_id", "model_version", "created_at", "updated_at", "seal", "cohort_stats",
        "narrowband", "narrowband_seal", "narrowband_stats",
    ]  # fmt: skip
    assert sorted(tables) == ["adapted", "api_tokens", "attempts", "lockouts", "meta", "replay_samples",
                              "sqlite_sequence", "template_changes", "templates"]
    assert journal == "wal"


def test_connection_settings(store: TemplateStore) -> None:
    connection = store._connection  # white-box: per-connection pragmas cannot be seen outside
    assert connection is not None
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert connection.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    assert connection.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION


def test_directory_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"{re.escape(str(tmp_path))} is a directory"):
        TemplateStore(tmp_path)


def make_foreign_sqlite(path: Path, application_id: int = 0) -> None:
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA application_id = {application_id}")
    connection.execute("CREATE TABLE photos (name TEXT)")
    connection.execute("INSERT INTO photos VALUES ('holiday.jpg')")
    connection.commit()
    connection.close()


def make_meta_only(path: Path, magic: str) -> None:
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA application_id = {store_module.APPLICATION_ID}")
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    connection.execute("INSERT INTO meta VALUES ('magic', ?)", (magic,))
    connection.commit()
    connection.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: make_foreign_sqlite(path), "SQLite database of another application"),
        (lambda path: make_foreign_sqlite(path, 0x12345), "application_id 0x12345"),
        (lambda path: make_meta_only(path, "someone-else"), "another application"),
        (lambda path: path.write_bytes(os.urandom(5000)), "is not an SQLite file"),
        (lambda path: path.write_text("name,embedding\nalice,0.1\n"), "is not an SQLite file"),
        (lambda path: path.write_bytes(b"SQL"), "is not an SQLite file"),
        (lambda path: path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000), "is corrupt"),
    ],
    ids=["foreign", "foreign-app-id", "wrong-magic", "random", "text", "short", "bad-header"],
)
def test_foreign_file_is_refused_and_left_unchanged(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "enrollments.db"
    make(path)
    before = snapshot(tmp_path)
    mtime = path.stat().st_mtime_ns
    with pytest.raises(StoreCorruptError, match=re.escape(str(path))) as caught:
        TemplateStore(path)
    assert re.search(message, str(caught.value))
    assert snapshot(tmp_path) == before
    assert path.stat().st_mtime_ns == mtime


def test_empty_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "enrollments.db"
    path.touch()
    with TemplateStore(path) as store:
        store.add_sample("alice", "face", [1.0], *MODEL)
        assert store.get("alice", "face").sample_count == 1


def test_damaged_store_fails_integrity_check(store_path: Path) -> None:
    rng = np.random.default_rng(2)
    with TemplateStore(store_path) as store:
        for index in range(120):
            store.add_sample(f"person {index}", "voice", rng.normal(size=256), *MODEL)
        store.integrity_check()
    size = store_path.stat().st_size
    with open(store_path, "r+b") as handle:  # smash pages in the middle, keep the schema page
        handle.seek(size // 3)
        handle.write(b"\xa5" * (size // 3))
    with pytest.raises(StoreCorruptError, match=re.escape(str(store_path))):
        with TemplateStore(store_path) as store:
            store.integrity_check()


# --- schema versions ------------------------------------------------------------------------
def test_migrates_a_version_0_store(store_path: Path) -> None:
    store_path.parent.mkdir(parents=True)
    make_meta_only(store_path, store_module.MAGIC)  # version 0: meta only, no templates table
    with TemplateStore(store_path) as store:
        store.add_sample("alice", "face", [1.0], *MODEL)
        assert store.get("alice", "face").sample_count == 1
    raw = sqlite3.connect(store_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION
    raw.close()


CURRENT = store_module.SCHEMA_VERSION  # the tests below add one migration after the current ones


def _add_note_column(connection: sqlite3.Connection) -> None:
    connection.execute("ALTER TABLE templates ADD COLUMN note TEXT DEFAULT 'migrated'")


def _broken_migration(connection: sqlite3.Connection) -> None:
    connection.execute("ALTER TABLE templates ADD COLUMN note TEXT")
    raise sqlite3.OperationalError("disk I/O error (simulated)")


def test_migration_runs_in_order_and_keeps_data(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TemplateStore(store_path) as store:
        store.add_sample("alice", "face", [1.0], *MODEL)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", CURRENT + 1)
    monkeypatch.setitem(store_module.MIGRATIONS, CURRENT, _add_note_column)
    with TemplateStore(store_path) as store:
        assert store.get("alice", "face").sample_count == 1
    raw = sqlite3.connect(store_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == CURRENT + 1
    assert raw.execute("SELECT note FROM templates").fetchall() == [("migrated",)]
    raw.close()


def test_failed_migration_rolls_back(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    TemplateStore(store_path).close()
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", CURRENT + 1)
    monkeypatch.setitem(store_module.MIGRATIONS, CURRENT, _broken_migration)
    with pytest.raises(StoreError, match="disk I/O error \\(simulated\\)"):
        TemplateStore(store_path)
    raw = sqlite3.connect(store_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == CURRENT
    columns = [row[1] for row in raw.execute("PRAGMA table_info(templates)")]
    raw.close()
    assert "note" not in columns


def test_missing_migration_and_newer_schema(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    TemplateStore(store_path).close()
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", CURRENT + 2)
    with pytest.raises(StoreCorruptError, match=f"schema version {CURRENT}, which no migration upgrades"):
        TemplateStore(store_path)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 0)
    with pytest.raises(StoreError, match=f"schema version {CURRENT}, newer than 0.*upgrade the program"):
        TemplateStore(store_path)


# --- import weight --------------------------------------------------------------------------
IMPORT_PROBE = """
import sys
def loaded(): return set(sys.modules)
start = loaded()
import verify.errors
after_core = loaded()
import enrollment
added = loaded() - after_core
def top(name): return name.split(".")[0]
print(any(top(name) == "torch" for name in after_core - start))
print(sorted(name for name in added if top(name) not in sys.stdlib_module_names
             and top(name) not in {"enrollment", "verify", "numpy"}))
"""


def test_import_does_not_load_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    core_loads_torch, enrollment_extras = result.stdout.split("\n")[:2]
    assert enrollment_extras == "[]"  # enrollment itself adds only the core, stdlib and numpy: no model, no torch
    if core_loads_torch == "True":
        pytest.xfail("`import verify.errors` runs verify/__init__.py, which imports torch")


# --- concurrency ----------------------------------------------------------------------------
def test_threads_sharing_one_store(store: TemplateStore) -> None:
    def add(worker: int) -> None:
        for _ in range(25):
            store.add_sample("shared", "face", one_hot(worker), *MODEL)

    threads = [threading.Thread(target=add, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert store.get("shared", "face").sample_count == 100
    np.testing.assert_array_equal(store.get("shared", "face").embedding_sum[:4], [25] * 4)


def _hammer(path: str, worker: int, start, results) -> None:
    """Process body: open the (possibly new) store at once with the others, add 2 x 25 samples."""
    try:
        start.wait(timeout=30)
        with TemplateStore(path) as store:
            for _ in range(25):
                store.add_sample("shared", "voice", one_hot(worker), *MODEL, narrowband=one_hot(4 + worker))
                store.add_sample(f"own {worker}", "voice", one_hot(worker), *MODEL)
        results.put((worker, "ok"))
    except BaseException as error:  # noqa: BLE001 - reported to the parent test
        results.put((worker, repr(error)))


def test_processes_lose_no_updates(store_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=_hammer, args=(str(store_path), worker, start, results))
        for worker in range(4)
    ]
    for process in workers:
        process.start()
    start.set()  # all four open the not yet existing store and write at the same time
    try:
        outcomes = dict(results.get(timeout=60) for _ in workers)
    finally:
        for process in workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    assert outcomes == {worker: "ok" for worker in range(4)}
    with TemplateStore(store_path) as store:
        shared = store.get("shared", "voice")
        assert shared.sample_count == 100
        np.testing.assert_array_equal(shared.embedding_sum, [25, 25, 25, 25, 0, 0, 0, 0])
        np.testing.assert_array_equal(shared.narrowband_sum, [0, 0, 0, 0, 25, 25, 25, 25])
        for worker in range(4):
            assert store.get(f"own {worker}", "voice").sample_count == 25
        store.integrity_check()


# --- crash safety ---------------------------------------------------------------------------
CRASH_CHILD = """
import sys
import numpy as np
from enrollment import TemplateStore
store = TemplateStore(sys.argv[1])
vector = np.zeros(8, dtype=np.float32)
vector[0] = 1.0
print("open", flush=True)
while True:
    template = store.add_sample("crash", "voice", vector, "facenet", "1.0")
    print(template.sample_count, flush=True)  # acknowledged only after COMMIT returned
"""


def _run_and_kill(path: Path, acks_before_kill: int, rng: random.Random) -> list[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH_CHILD, str(path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(15.0, child.kill)
    watchdog.start()
    try:
        lines = [child.stdout.readline().strip()]
        while len(lines) <= acks_before_kill and lines[-1]:
            lines.append(child.stdout.readline().strip())
        time.sleep(rng.uniform(0.0, 0.003))  # land the kill anywhere inside the next write
        os.kill(child.pid, signal.SIGKILL)
        rest, errors = child.communicate(timeout=10)
    finally:
        watchdog.cancel()
    assert child.returncode == -signal.SIGKILL, errors
    return [line for line in lines + rest.split() if line]


def test_sigkill_while_writing_loses_no_acknowledged_sample(store_path: Path) -> None:
    rng = random.Random(7)
    TemplateStore(store_path).close()
    deadline = time.monotonic() + 10.0
    committed = rounds = 0
    while rounds < 4 and (rounds < 2 or time.monotonic() < deadline):
        rounds += 1
        lines = _run_and_kill(store_path, rng.randint(1, 30), rng)
        assert lines[0] == "open"
        counts = [int(line) for line in lines[1:]]
        assert counts == list(range(committed + 1, committed + 1 + len(counts)))
        acknowledged = counts[-1] if counts else committed
        with TemplateStore(store_path) as store:
            store.integrity_check()
            template = store.get("crash", "voice")
        # the write in flight at the kill may or may not have committed, nothing else
        assert acknowledged <= template.sample_count <= acknowledged + 1
        assert template.embedding_sum[0] == template.sample_count
        committed = template.sample_count
    assert committed >= rounds
