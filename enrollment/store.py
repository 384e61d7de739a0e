"""Enrollment templates in the store: add samples, read, list, replace and delete, atomically.

Only embeddings are stored, never raw samples. Concurrent ``add_sample`` calls never lose an
update: each read-modify-write is one ``BEGIN IMMEDIATE`` transaction (see
:mod:`enrollment.database`). With a key, every embedding (and a voice template's narrowband copy)
is sealed bound to its identity, modality, model and sample count, so an edited, swapped or
planted row is refused.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time

import numpy as np

from enrollment.crypto import associated_data
from enrollment.database import StoreDatabase, default_store_path
from enrollment.errors import InvalidTemplateError, StoreCorruptError, UnknownIdentityError
from enrollment.schema import SCHEMA_VERSION
from enrollment.template import Template, validate_identity, validate_modality
from verify.errors import ModelMismatchError
from verify.normalization import CohortStats

__all__ = ["SCHEMA_VERSION", "TemplateStore", "default_store_path"]
_COLUMNS = (
    "identity, modality, embedding, dim, sample_count, model_id, model_version,"
    " created_at, updated_at, seal, cohort_stats, narrowband, narrowband_seal, narrowband_stats"
)


def _bound_data(identity: str, modality: str, model_id: str, version: str, dim: int, count: int,
                stats: str | None) -> bytes:
    """What a sealed row is bound to: its identity, model and sample count, and its cohort statistics
    (a planted statistic would shift every normalised score of the template)."""
    bound = associated_data(identity, modality, model_id, version, dim, count)
    return bound if stats is None else bound + b"|cohort_stats:" + stats.encode("utf-8")


def _sealed_data(bound: bytes, narrowband: bool, narrowband_stats: str | None) -> tuple[bytes, bytes]:
    """What the embedding and the narrowband copy of a row are each bound to.

    The copy is bound to its row and its statistics, and told apart from the embedding (neither
    can stand for the other). A row with a copy or its statistics binds its embedding to them too,
    so a deleted copy or planted statistics are refused; a row with neither keeps the binding of
    schema 8, so rows written before still open.
    """
    stats = b"" if narrowband_stats is None else b"|narrowband_stats:" + narrowband_stats.encode("utf-8")
    copy = bound + b"|narrowband" + stats
    if not narrowband and narrowband_stats is None:
        return bound, copy
    return copy + b"|embedding", copy


class TemplateStore(StoreDatabase):
    """Enrollment templates in one SQLite file (see :class:`~enrollment.database.StoreDatabase`)."""

    def select_templates(self, connection: sqlite3.Connection, where: str = "", args: tuple = ()) -> list[Template]:
        """Templates read inside :meth:`transaction`, authenticated when the store has a key."""
        return self._select(connection, where, args)

    def write_template(self, connection: sqlite3.Connection, template: Template) -> None:
        """Write one template inside :meth:`transaction` (``write=True``), sealed under the key."""
        if not isinstance(template, Template):
            raise InvalidTemplateError(f"write_template() needs a Template, got {type(template).__name__}")
        self._write_row(connection, template)

    # --- rows -----------------------------------------------------------------------------
    def _row_to_template(self, row: tuple) -> Template:
        (identity, modality, blob, dim, count, model_id, version, created, updated, seal, stats,
         narrowband, narrowband_seal, narrowband_stats) = row  # fmt: skip
        what = f"enrollment store {self._path}: template {identity!r} ({modality})"
        row_bound = _bound_data(identity, modality, model_id, version, dim, count, stats)
        bound, copy_bound = _sealed_data(row_bound, narrowband is not None, narrowband_stats)
        embedding = self._open_vector(blob, seal, dim, bound, what, "embedding")
        if narrowband is not None:
            narrowband = self._open_vector(narrowband, narrowband_seal, dim, copy_bound, what,
                                           "narrowband copy")
        try:
            return Template(
                identity, modality, embedding, count, model_id, version, created, updated,
                None if stats is None else CohortStats.from_json(stats), narrowband_sum=narrowband,
                narrowband_stats=None if narrowband_stats is None else CohortStats.from_json(narrowband_stats),
            )
        except Exception as error:  # noqa: BLE001 - any invalid stored value is corruption
            raise StoreCorruptError(f"{what} is invalid: {error}") from error

    def _open_vector(self, blob: object, seal: bytes | None, dim: int, bound: bytes, what: str,
                     name: str) -> np.ndarray:
        """One stored float32 vector ``(dim,)``, authenticated when the store has a key."""
        if not isinstance(blob, bytes) or len(blob) != 4 * dim:
            raise StoreCorruptError(
                f"{what} has a damaged {name} ({len(blob) if blob else 0} bytes for dim {dim})"
            )
        return np.frombuffer(self.unseal(blob, seal, bound, what), dtype="<f4").astype(np.float32)

    def _write_row(self, connection: sqlite3.Connection, template: Template) -> None:
        stats = None if template.cohort_stats is None else template.cohort_stats.to_json()
        narrowband_stats = None if template.narrowband_stats is None else template.narrowband_stats.to_json()
        bound, copy_bound = _sealed_data(
            _bound_data(template.identity, template.modality, template.model_id, template.model_version,
                        template.dim, template.sample_count, stats),
            template.narrowband_sum is not None, narrowband_stats,
        )
        blob, seal = self.seal(template.embedding_sum.astype("<f4").tobytes(), bound)
        narrowband, narrowband_seal = None, None
        if template.narrowband_sum is not None:
            narrowband, narrowband_seal = self.seal(template.narrowband_sum.astype("<f4").tobytes(),
                                                    copy_bound)
        connection.execute(
            f"INSERT OR REPLACE INTO templates ({_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                template.identity,
                template.modality,
                blob,
                template.dim,
                template.sample_count,
                template.model_id,
                template.model_version,
                template.created_at,
                template.updated_at,
                seal,
                stats,
                narrowband,
                narrowband_seal,
                narrowband_stats,
            ),
        )

    def _select(self, connection: sqlite3.Connection, where: str, args: tuple) -> list[Template]:
        rows = connection.execute(
            f"SELECT {_COLUMNS} FROM templates {where} ORDER BY identity, modality", args
        ).fetchall()
        return [self._row_to_template(row) for row in rows]

    # --- public API -----------------------------------------------------------------------
    def add_sample(
        self,
        identity: str,
        modality: str,
        embedding: np.ndarray,
        model_id: str,
        model_version: str,
        narrowband: np.ndarray | None = None,
    ) -> Template:
        """Add one sample embedding ``(D,)`` to a template, creating it if needed; atomic.

        ``narrowband`` is the embedding ``(D,)`` of the sample's 8 kHz telephone-band copy, if any
        (see :meth:`Template.with_sample`: a template keeps copies only while every sample has one).

        Raises:
            InvalidIdentityError, ConfigError, InvalidTemplateError: bad arguments.
            ModelMismatchError: the template was made by another model, version or dimension.
        """
        identity = validate_identity(identity)
        validate_modality(modality)
        first = Template.from_sample(
            identity, modality, embedding, model_id, model_version, time.time(), narrowband
        )
        with self._writing() as connection:
            existing = self._select(
                connection, "WHERE identity = ? AND modality = ?", (identity, modality)
            )
            if not existing:
                template = first
            else:
                self._check_same_model(existing[0], first)
                template = existing[0].with_sample(first.embedding_sum, time.time(), first.narrowband_sum)
            self._write_row(connection, template)
        return template

    @staticmethod
    def _check_same_model(existing: Template, new: Template) -> None:
        made_by = (existing.model_id, existing.model_version, existing.dim)
        if made_by != (new.model_id, new.model_version, new.dim):
            raise ModelMismatchError(
                f"template {existing.identity!r} ({existing.modality}) was made by model"
                f" {existing.model_id!r} version {existing.model_version!r} (dim {existing.dim});"
                f" the new sample comes from {new.model_id!r} version {new.model_version!r}"
                f" (dim {new.dim}); re-enroll to replace it"
            )

    def get(self, identity: str, modality: str) -> Template:
        """Return the template of ``identity`` for ``modality``.

        Raises:
            UnknownIdentityError: nothing is enrolled for that pair.
        """
        identity = validate_identity(identity)
        validate_modality(modality)
        with self._reading() as connection:
            found = self._select(
                connection, "WHERE identity = ? AND modality = ?", (identity, modality)
            )
        if not found:
            raise UnknownIdentityError(f"no {modality} template enrolled for {identity!r}")
        return found[0]

    def find(self, identity: str) -> list[Template]:
        """Return every template of ``identity`` (all modalities, sorted); may be empty."""
        identity = validate_identity(identity)
        with self._reading() as connection:
            return self._select(connection, "WHERE identity = ?", (identity,))

    def list_templates(self) -> list[Template]:
        """Return all templates sorted by (identity, modality)."""
        with self._reading() as connection:
            return self._select(connection, "", ())

    def delete(self, identity: str, modality: str | None = None) -> int:
        """Delete the templates of ``identity`` (one modality, or all); return how many.

        Raises:
            UnknownIdentityError: nothing matched.
        """
        identity = validate_identity(identity)
        if modality is not None:
            validate_modality(modality)
        where, args = "identity = ?", (identity,)
        if modality is not None:
            where, args = "identity = ? AND modality = ?", (identity, modality)
        with self._writing() as connection:
            deleted = connection.execute(f"DELETE FROM templates WHERE {where}", args).rowcount
        if deleted == 0:
            which = f"{modality} template" if modality else "template"
            raise UnknownIdentityError(f"no {which} enrolled for {identity!r}")
        return deleted

    def replace(self, template: Template) -> None:
        """Write ``template`` over any template of the same identity and modality (re-enroll)."""
        if not isinstance(template, Template):
            raise InvalidTemplateError(
                f"replace() needs a Template, got {type(template).__name__}"
            )
        with self._writing() as connection:
            self._write_row(connection, template)

    def set_cohort_stats(self, template: Template, stats: CohortStats,
                         narrowband_stats: CohortStats | None = None) -> Template:
        """Store ``stats`` with ``template`` unless the stored template changed since it was read.

        ``narrowband_stats`` are those of its narrowband template, kept only if it has one.
        Returns the template as stored now (with the statistics, or the newer template untouched,
        whose statistics are computed on its next use).
        """
        with self._writing() as connection:
            current = self._select(connection, "WHERE identity = ? AND modality = ?",
                                   (template.identity, template.modality))
            if not current or (current[0].updated_at, current[0].sample_count) != (
                template.updated_at, template.sample_count
            ):
                return current[0] if current else template
            has_copy = current[0].narrowband_sum is not None
            updated = dataclasses.replace(current[0], cohort_stats=stats,
                                          narrowband_stats=narrowband_stats if has_copy else None)
            self._write_row(connection, updated)
        return updated
