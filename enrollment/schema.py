"""The enrollment store's schema: its identity marks and the migrations that build it.

A store file is recognised by ``PRAGMA application_id`` and :data:`MAGIC` in its ``meta`` table.
Its version is ``PRAGMA user_version``; ``MIGRATIONS[n]`` upgrades version ``n`` to ``n + 1``,
and a new store starts at version 0 (only ``meta``), so every table is created by a migration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

APPLICATION_ID = 0x56524659  # "VRFY"
MAGIC = "verify-enrollment-store"
SCHEMA_VERSION = 9
CHANGE_LOG_LIMIT = 100_000
"""Template changes kept in ``template_changes``; an index older than the oldest is rebuilt."""


def _migrate_0_to_1(connection: sqlite3.Connection) -> None:
    connection.execute(
        """CREATE TABLE templates (
            identity TEXT NOT NULL,
            modality TEXT NOT NULL CHECK (modality IN ('face', 'voice')),
            embedding BLOB NOT NULL,
            dim INTEGER NOT NULL CHECK (dim > 0 AND length(embedding) = 4 * dim),
            sample_count INTEGER NOT NULL CHECK (sample_count > 0),
            model_id TEXT NOT NULL,
            model_version TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (identity, modality)
        )"""
    )


def _migrate_1_to_2(connection: sqlite3.Connection) -> None:
    """Seal column for encrypted embeddings; attempts (audit log) and lockouts tables."""
    connection.execute("ALTER TABLE templates ADD COLUMN seal BLOB")  # NULL: not encrypted
    connection.execute(
        """CREATE TABLE attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,
            identity TEXT NOT NULL,
            modality TEXT NOT NULL,
            decision TEXT NOT NULL,
            score REAL,
            detail TEXT NOT NULL DEFAULT ''
        )"""
    )
    connection.execute("CREATE INDEX attempts_by_identity ON attempts (identity, modality, time)")
    connection.execute(
        """CREATE TABLE lockouts (
            identity TEXT NOT NULL,
            modality TEXT NOT NULL,
            until REAL NOT NULL,
            PRIMARY KEY (identity, modality)
        )"""
    )


def _migrate_2_to_3(connection: sqlite3.Connection) -> None:
    """Per-user adapted scorer parameters (verify.adaptation), removed with their template."""
    connection.execute(
        """CREATE TABLE adapted (
            identity TEXT NOT NULL,
            modality TEXT NOT NULL,
            method TEXT NOT NULL,
            checkpoint TEXT NOT NULL,
            params BLOB NOT NULL,
            dim INTEGER NOT NULL CHECK (dim > 0 AND length(params) = 4 * dim),
            guard TEXT NOT NULL,
            template_updated_at REAL NOT NULL,
            created_at REAL NOT NULL,
            seal BLOB,
            PRIMARY KEY (identity, modality)
        )"""
    )
    # FK-like cleanup: deleting a template deletes its adapted parameters. (INSERT OR REPLACE on
    # templates does not fire it; stale rows are told apart by template_updated_at.)
    connection.execute(
        """CREATE TRIGGER adapted_follows_templates AFTER DELETE ON templates BEGIN
            DELETE FROM adapted WHERE identity = OLD.identity AND modality = OLD.modality;
        END"""
    )


def _migrate_3_to_4(connection: sqlite3.Connection) -> None:
    """Attempts record what was attempted (1:1 ``verify`` or 1:N ``identify``) and by which caller."""
    connection.execute("ALTER TABLE attempts ADD COLUMN action TEXT NOT NULL DEFAULT 'verify'")
    connection.execute("ALTER TABLE attempts ADD COLUMN caller TEXT NOT NULL DEFAULT ''")
    connection.execute("CREATE INDEX attempts_by_caller ON attempts (action, caller, time)")


def _migrate_4_to_5(connection: sqlite3.Connection) -> None:
    """Templates keep their cohort statistics (S-norm); older templates get them on first use."""
    connection.execute("ALTER TABLE templates ADD COLUMN cohort_stats TEXT")


def _migrate_5_to_6(connection: sqlite3.Connection) -> None:
    """Samples kept for replay checks (digest + embedding, sealed under the key), removed with their template."""
    connection.execute(
        """CREATE TABLE replay_samples (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            identity TEXT NOT NULL,
            modality TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('enrolled', 'accepted')),
            model_id TEXT NOT NULL,
            model_version TEXT NOT NULL,
            sample BLOB NOT NULL,
            dim INTEGER NOT NULL CHECK (dim > 0 AND length(sample) = 33 + 4 * dim),
            created_at REAL NOT NULL,
            seal BLOB
        )"""
    )
    connection.execute("CREATE INDEX replay_samples_by_identity ON replay_samples (identity, modality, kind, id)")
    connection.execute(
        """CREATE TRIGGER replay_samples_follow_templates AFTER DELETE ON templates BEGIN
            DELETE FROM replay_samples WHERE identity = OLD.identity AND modality = OLD.modality;
        END"""
    )


def _migrate_6_to_7(connection: sqlite3.Connection) -> None:
    """API tokens of the REST API (:mod:`enrollment.tokens`): only a digest of each secret is kept."""
    connection.execute(
        """CREATE TABLE api_tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            scope TEXT NOT NULL CHECK (scope IN ('verify', 'admin')),
            digest BLOB NOT NULL CHECK (length(digest) = 32),
            seal BLOB,
            created_at REAL NOT NULL,
            revoked_at REAL
        )"""
    )
    connection.execute("CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL")


def _migrate_7_to_8(connection: sqlite3.Connection) -> None:
    """A log of template changes, written by triggers in the transaction of every template write.

    Its latest ``(version, stamp)`` is the store's version: the version counts writes (never
    reused), the random stamp tells two histories apart (a store restored from an older copy
    that then reaches the same count). A gallery index saved at a version whose stamp is still
    in the log is brought up to date from the rows changed since; any other index is rebuilt.
    """
    connection.execute(
        """CREATE TABLE template_changes (
            version INTEGER PRIMARY KEY AUTOINCREMENT,
            stamp INTEGER NOT NULL,
            identity TEXT NOT NULL,
            modality TEXT NOT NULL
        )"""
    )
    connection.execute("INSERT INTO template_changes (stamp, identity, modality) VALUES (random(), '', '')")
    logged = "INSERT INTO template_changes (stamp, identity, modality) VALUES (random(), {row}.identity, {row}.modality);"
    for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
        body = " ".join(logged.format(row=row) for row in rows)
        connection.execute(f"CREATE TRIGGER templates_{event.lower()}_logged AFTER {event} ON templates BEGIN {body} END")
    connection.execute(
        f"""CREATE TRIGGER template_changes_pruned AFTER INSERT ON template_changes BEGIN
            DELETE FROM template_changes WHERE version <= NEW.version - {CHANGE_LOG_LIMIT};
        END"""
    )


def _migrate_8_to_9(connection: sqlite3.Connection) -> None:
    """Voice templates keep the embeddings of an 8 kHz telephone-band copy of their samples.

    A band-limited probe (a phone line) is then scored against a band-matched template. The copy is
    a biometric template like the embedding: sealed under the key (``narrowband_seal``), with its
    own cohort statistics. NULL: no copy (faces, templates enrolled before, or a sample added
    without one), scored on the plain path.
    """
    connection.execute("ALTER TABLE templates ADD COLUMN narrowband BLOB")
    connection.execute("ALTER TABLE templates ADD COLUMN narrowband_seal BLOB")
    connection.execute("ALTER TABLE templates ADD COLUMN narrowband_stats TEXT")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    0: _migrate_0_to_1, 1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4, 4: _migrate_4_to_5,
    5: _migrate_5_to_6, 6: _migrate_6_to_7, 7: _migrate_7_to_8, 8: _migrate_8_to_9,
}
