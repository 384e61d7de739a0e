"""Backup and restore of the enrollment store as one JSON file.

``export_store`` reads every template in one read transaction (a consistent snapshot even while
other processes enroll) and writes the file atomically with permissions 0600. ``import_store``
parses and validates the whole file (format, every template, duplicates, models) before it
writes anything, then writes every template in one transaction: all or nothing.

The file holds embeddings (and voice templates' narrowband copies) in clear (base64
little-endian float32), whether or not the store is encrypted: it is biometric data, keep it as
safe as the store. Importing into a store opened with a key seals every template under that key.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from enrollment.errors import BackupError
from enrollment.store import SCHEMA_VERSION, TemplateStore
from enrollment.template import Template
from verify.errors import ModelMismatchError
from verify.normalization import CohortStats

FORMAT = "verify-enrollment-export"
FORMAT_VERSION = 3  # 2 adds cohort statistics, 3 the narrowband copy and its statistics; older files import
READABLE_VERSIONS = (1, 2, 3)
MAX_IMPORT_BYTES = 100 * 1024 * 1024
_FIELDS = ("identity", "modality", "embedding_sum", "sample_count", "model_id", "model_version",
           "created_at", "updated_at")  # fmt: skip


def _vector_text(vector: np.ndarray | None) -> str | None:
    return None if vector is None else base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")


def _stats_record(stats: CohortStats | None) -> dict | None:
    return None if stats is None else json.loads(stats.to_json())


def _template_record(template: Template) -> dict:
    return {
        "identity": template.identity,
        "modality": template.modality,
        "model_id": template.model_id,
        "model_version": template.model_version,
        "dim": template.dim,
        "sample_count": template.sample_count,
        "created_at": template.created_at,
        "updated_at": template.updated_at,
        "embedding_sum": _vector_text(template.embedding_sum),
        "cohort_stats": _stats_record(template.cohort_stats),
        "narrowband_sum": _vector_text(template.narrowband_sum),
        "narrowband_stats": _stats_record(template.narrowband_stats),
    }


def export_store(store: TemplateStore, path: str | Path) -> int:
    """Write every template of ``store`` to ``path`` (JSON, mode 0600); returns how many.

    Raises:
        BackupError: the file cannot be written.
        TemplateIntegrityError: a sealed template fails authentication (nothing is written).
    """
    with store.transaction() as connection:
        templates = store.select_templates(connection)
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "schema_version": SCHEMA_VERSION,
                "exported_at": time.time(), "templates": [_template_record(t) for t in templates]}  # fmt: skip
    path = Path(path).expanduser()
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot write export file {path}: {error.strerror or error}") from None
    return len(templates)


def _read_document(path: Path) -> dict:
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise BackupError(f"{path} is {size / 2**20:.0f} MiB; an export file is at most {MAX_IMPORT_BYTES // 2**20} MiB")
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BackupError(f"cannot read import file {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BackupError(f"{path} is not a JSON export of an enrollment store: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BackupError(f"{path} is not an export of an enrollment store (no format {FORMAT!r})")
    if document.get("format_version") not in READABLE_VERSIONS:
        raise BackupError(
            f"{path} has export format version {document.get('format_version')!r};"
            f" this program reads versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    if not isinstance(document.get("templates"), list):
        raise BackupError(f"{path} has no list of templates")
    return document


def _parse_vector(record: dict, field: str, where: str) -> np.ndarray:
    """The float32 vector ``(dim,)`` in ``record[field]`` (base64 little-endian float32)."""
    try:
        blob = base64.b64decode(str(record[field]), validate=True)
    except ValueError:  # binascii.Error, or text that is not ASCII
        raise BackupError(f"{where}: {field} is not base64") from None
    dim = record.get("dim", len(blob) // 4)
    if isinstance(dim, bool) or not isinstance(dim, int) or len(blob) != 4 * dim:
        raise BackupError(f"{where}: {field} has {len(blob)} bytes for dim {dim!r}")
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def _parse_stats(document: object) -> CohortStats | None:
    return None if document is None else CohortStats.from_json(json.dumps(document))


def _parse_template(record: object, where: str) -> Template:
    if not isinstance(record, dict) or set(_FIELDS) - set(record):
        missing = sorted(set(_FIELDS) - set(record)) if isinstance(record, dict) else "all"
        raise BackupError(f"{where} is not a template record (missing {missing})")
    values = {name: record[name] for name in _FIELDS}
    values["embedding_sum"] = _parse_vector(record, "embedding_sum", where)
    if record.get("narrowband_sum") is not None:  # format 3; older files have none
        values["narrowband_sum"] = _parse_vector(record, "narrowband_sum", where)
    try:
        values["cohort_stats"] = _parse_stats(record.get("cohort_stats"))
        values["narrowband_stats"] = _parse_stats(record.get("narrowband_stats"))
        return Template(**values)
    except Exception as error:  # noqa: BLE001 - any invalid value names the record
        raise BackupError(f"{where} is invalid: {error}") from None


def read_export(path: str | Path, models: Mapping[str, tuple[str, str]] | None = None) -> list[Template]:
    """Parse and validate an export file; nothing is written.

    Args:
        models: modality -> (model_id, model_version) in use; templates of other models are refused.

    Raises:
        BackupError: unreadable, malformed, invalid or duplicated templates.
        ModelMismatchError: a template was made by a model other than the one in use.
    """
    path = Path(path).expanduser()
    templates, seen = [], set()
    for index, record in enumerate(_read_document(path)["templates"]):
        template = _parse_template(record, f"{path} template #{index + 1}")
        key = (template.identity, template.modality)
        if key in seen:
            raise BackupError(f"{path} holds {template.identity!r} ({template.modality}) twice")
        seen.add(key)
        expected = (models or {}).get(template.modality)
        if expected is not None and (template.model_id, template.model_version) != tuple(expected):
            raise ModelMismatchError(
                f"{path}: {template.identity!r} ({template.modality}) was made by {template.model_id}"
                f" {template.model_version}, but the model in use is {expected[0]} {expected[1]};"
                " nothing was imported (re-enroll these people with the current model)"
            )
        templates.append(template)
    return templates


def import_store(
    store: TemplateStore,
    path: str | Path,
    models: Mapping[str, tuple[str, str]] | None = None,
    replace: bool = False,
) -> int:
    """Validate an export file, then write all its templates in one transaction; returns how many.

    Raises:
        BackupError, ModelMismatchError: see :func:`read_export`; or an (identity, modality) is
            already enrolled and ``replace`` is false. Nothing is written in any of these cases.
    """
    templates = read_export(path, models)
    with store.transaction(write=True) as connection:
        if not replace:
            existing = {(t.identity, t.modality) for t in store.select_templates(connection)}
            clashes = sorted(existing & {(t.identity, t.modality) for t in templates})
            if clashes:
                names = ", ".join(f"{identity!r} ({modality})" for identity, modality in clashes[:5])
                raise BackupError(
                    f"already enrolled: {names}{' ...' if len(clashes) > 5 else ''};"
                    " nothing was imported (delete them first, or import with --replace)"
                )
        for template in templates:
            store.write_template(connection, template)
    return len(templates)
