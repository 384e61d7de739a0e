"""The store's version: which templates changed since a given state of the store.

Triggers (schema 5, :mod:`enrollment.schema`) append one row to ``template_changes`` in the
transaction of every template insert, replace, update and delete, so the version read here
changes exactly when a template does. Read these inside ``TemplateStore.transaction()`` together
with the templates, for one consistent snapshot.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class StoreVersion:
    """One state of the store's templates.

    Attributes:
        version: template writes so far (never reused).
        stamp: a random number drawn at that write; tells two histories with equal counts apart.
    """

    version: int
    stamp: int


def store_version(connection: sqlite3.Connection) -> StoreVersion:
    """The version of the templates as seen by ``connection``'s transaction."""
    row = connection.execute("SELECT version, stamp FROM template_changes ORDER BY version DESC LIMIT 1").fetchone()
    return StoreVersion(int(row[0]), int(row[1])) if row else StoreVersion(0, 0)


def in_history(connection: sqlite3.Connection, version: StoreVersion) -> bool:
    """Whether the store went through ``version`` and still logs every change since."""
    row = connection.execute("SELECT stamp FROM template_changes WHERE version = ?", (version.version,)).fetchone()
    return row is not None and int(row[0]) == version.stamp


def changed_since(connection: sqlite3.Connection, version: StoreVersion, modality: str) -> set[str]:
    """Identities whose ``modality`` template was written or deleted after ``version``."""
    rows = connection.execute(
        "SELECT DISTINCT identity FROM template_changes WHERE version > ? AND modality = ?",
        (version.version, modality),
    )
    return {row[0] for row in rows}
