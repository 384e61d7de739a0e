"""SQLite store of enrollment templates: transactions, schema version, migrations.

Only embeddings are stored, never raw samples. The file is safe to share between processes:
WAL journal, a 30 s busy timeout, and every read-modify-write in one ``BEGIN IMMEDIATE``
transaction, so concurrent ``add_sample`` calls never lose an update. ``synchronous=FULL`` makes
every acknowledged write survive a crash of the process or the machine.

A store file is recognised by ``PRAGMA application_id`` and a magic value in its ``meta`` table;
any other file raises :class:`StoreCorruptError` before anything is written to it. The schema
version and its migrations live in :mod:`enrollment.schema`.

With a key (see :mod:`enrollment.crypto`) every embedding written is sealed with AES-256-GCM and
every embedding read must authenticate: a tampered, swapped or unsealed row raises
:class:`TemplateIntegrityError` and is never used. A sealed constant in ``meta`` names a wrong key
as such. Lockout state and the audit log live in the same file (see :mod:`enrollment.ratelimit`).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from enrollment.crypto import TemplateCipher, associated_data
from enrollment.errors import (
    InvalidTemplateError,
    StoreCorruptError,
    StoreError,
    StoreKeyError,
    TemplateIntegrityError,
    UnknownIdentityError,
)
from enrollment.schema import APPLICATION_ID, MAGIC, MIGRATIONS, SCHEMA_VERSION
from enrollment.template import Template, validate_identity, validate_modality
from verify.errors import ModelMismatchError

BUSY_TIMEOUT_S = 30.0
_SQLITE_HEADER = b"SQLite format 3\x00"
_CORRUPT_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
_COLUMNS = (
    "identity, modality, embedding, dim, sample_count, model_id, model_version,"
    " created_at, updated_at, seal"
)


@dataclass(frozen=True)
class AdaptedParams:
    """One identity's adapted scorer: flat float32 ``params`` ``(P,)`` made by ``method`` from the
    checkpoint with sha256 ``checkpoint``, for the template as of ``template_updated_at``;
    ``guard`` is the JSON record of whether adaptation was kept or fell back."""

    identity: str
    modality: str
    method: str
    checkpoint: str
    params: np.ndarray
    guard: str
    template_updated_at: float
    created_at: float


def default_store_path() -> Path:
    """``$VERIFY_STORE`` if set, else ``$XDG_DATA_HOME/verify/enrollments.db``.

    ``$XDG_DATA_HOME`` falls back to ``~/.local/share`` when unset or not absolute.
    """
    explicit = os.environ.get("VERIFY_STORE")
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "verify" / "enrollments.db"


class TemplateStore:
    """Enrollment templates in one SQLite file; one connection per object.

    Thread-safe (calls are serialised) and process-safe (SQLite locking). Use as a context
    manager or call :meth:`close`.

    Raises (from the constructor):
        StoreCorruptError: the file is not SQLite, belongs to another application or is damaged.
        StoreError: the path is a directory, the schema is newer than this code, or SQLite fails.
    """

    def __init__(self, path: str | Path, key: bytes | None = None) -> None:
        self._path = Path(path).expanduser()
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        self._cipher = TemplateCipher(key) if key is not None else None
        self._create_file()
        self._check_header()
        with self._sqlite_errors():
            connection = sqlite3.connect(
                self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            try:
                connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                connection.execute("PRAGMA synchronous = FULL")
                self._open_schema(connection)
                self._check_key(connection)
            except BaseException:
                connection.close()
                raise
        self._connection = connection

    @property
    def path(self) -> Path:
        """The store file."""
        return self._path

    @property
    def encrypted(self) -> bool:
        """Whether templates are sealed on write and authenticated on read."""
        return self._cipher is not None

    def __repr__(self) -> str:
        state = "closed" if self._connection is None else "open"
        return f"TemplateStore({str(self._path)!r}, {state})"

    # --- opening --------------------------------------------------------------------------
    def _create_file(self) -> None:
        if self._path.is_dir():
            raise StoreError(f"enrollment store path {self._path} is a directory")
        try:
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        except OSError as error:
            raise StoreError(f"cannot create enrollment store {self._path}: {error}") from error
        try:
            os.fchmod(descriptor, 0o600)
        finally:
            os.close(descriptor)

    def _check_header(self) -> None:
        try:
            with open(self._path, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as error:
            raise StoreError(f"cannot read enrollment store {self._path}: {error}") from error
        if header and header != _SQLITE_HEADER:
            raise StoreCorruptError(
                f"{self._path} is not an SQLite file, so not an enrollment store;"
                " it was left unchanged (move it away or pass another store path)"
            )

    def _open_schema(self, connection: sqlite3.Connection) -> None:
        if self._is_blank(connection):
            with self._transaction(connection):
                if self._is_blank(connection):  # another process may have won the race
                    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    connection.execute(
                        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                    )
                    connection.execute("INSERT INTO meta VALUES ('magic', ?)", (MAGIC,))
        self._check_ours(connection)
        self._enable_wal(connection)
        self._migrate(connection)

    @staticmethod
    def _is_blank(connection: sqlite3.Connection) -> bool:
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        objects = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        return application_id == 0 and version == 0 and objects == 0

    def _check_ours(self, connection: sqlite3.Connection) -> None:
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        magic = None
        if application_id == APPLICATION_ID:
            has_meta = connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()[0]
            if has_meta:
                row = connection.execute("SELECT value FROM meta WHERE key = 'magic'").fetchone()
                magic = row[0] if row else None
        if magic != MAGIC:
            raise StoreCorruptError(
                f"{self._path} is an SQLite database of another application (application_id"
                f" {application_id:#x}), not an enrollment store; it was left unchanged"
            )

    def _enable_wal(self, connection: sqlite3.Connection) -> None:
        # Switching to WAL needs an exclusive lock and may not wait on the busy handler.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
                continue
            if str(mode).lower() != "wal":
                raise StoreError(f"enrollment store {self._path} cannot use WAL (mode {mode!r})")
            return

    def _migrate(self, connection: sqlite3.Connection) -> None:
        if connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        with self._transaction(connection):
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"enrollment store {self._path} has schema version {version}, newer than"
                    f" {SCHEMA_VERSION} known to this program; upgrade the program"
                )
            while version < SCHEMA_VERSION:
                if version not in MIGRATIONS:
                    raise StoreCorruptError(
                        f"enrollment store {self._path} has schema version {version},"
                        " which no migration upgrades"
                    )
                MIGRATIONS[version](connection)
                version += 1
                connection.execute(f"PRAGMA user_version = {int(version)}")

    def _check_key(self, connection: sqlite3.Connection) -> None:
        """Record the key's check value on first use; refuse a key that is not the store's."""
        if self._cipher is None:
            return
        with self._transaction(connection):
            row = connection.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO meta VALUES ('key_check', ?)", (self._cipher.key_check(),)
                )
            elif not self._cipher.matches(row[0]):
                raise StoreKeyError(
                    f"the key given is not the key of enrollment store {self._path}"
                    " (check $VERIFY_STORE_KEY or --key-file)"
                )

    # --- transactions and errors ----------------------------------------------------------
    @staticmethod
    @contextmanager
    def _transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; the write lock is taken before the first read."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                with suppress(sqlite3.Error):  # the original error is the one to report
                    connection.execute("ROLLBACK")
            raise

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            code = getattr(error, "sqlite_errorname", "")
            text = str(error)
            if code in _CORRUPT_CODES or "malformed" in text or "not a database" in text:
                raise StoreCorruptError(
                    f"enrollment store {self._path} is corrupt: {text}"
                ) from error
            raise StoreError(f"enrollment store {self._path}: {text}") from error

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._sqlite_errors():
            if self._connection is None:
                raise StoreError(f"enrollment store {self._path} is closed")
            yield self._connection

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._reading() as connection, self._transaction(connection):
            yield connection

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction for the modules sharing the file (lockouts, audit log, backups).

        ``write=False`` reads one consistent snapshot; ``write=True`` takes the write lock before
        the first read. SQLite errors surface as :class:`StoreError`.
        """
        if write:
            with self._writing() as connection:
                yield connection
            return
        with self._reading() as connection:
            connection.execute("BEGIN DEFERRED")
            try:
                yield connection
            finally:
                if connection.in_transaction:  # nothing was written: COMMIT only ends the snapshot
                    with suppress(sqlite3.Error):
                        connection.execute("COMMIT")

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
        identity, modality, blob, dim, count, model_id, version, created, updated, seal = row
        if not isinstance(blob, bytes) or len(blob) != 4 * dim:
            raise StoreCorruptError(
                f"enrollment store {self._path}: template {identity!r} ({modality}) has a"
                f" damaged embedding ({len(blob) if blob else 0} bytes for dim {dim})"
            )
        blob = self._unseal(blob, seal, (identity, modality, model_id, version, dim, count))
        embedding = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        try:
            return Template(
                identity, modality, embedding, count, model_id, version, created, updated
            )
        except Exception as error:  # noqa: BLE001 - any invalid stored value is corruption
            raise StoreCorruptError(
                f"enrollment store {self._path}: template {identity!r} ({modality}) is"
                f" invalid: {error}"
            ) from error

    def _unseal(self, blob: bytes, seal: bytes | None, bound: tuple) -> bytes:
        """The plaintext embedding bytes of a row; authenticated when the store has a key."""
        what = f"enrollment store {self._path}: template {bound[0]!r} ({bound[1]})"
        if self._cipher is None:
            if seal is not None:
                raise StoreKeyError(
                    f"{what} is encrypted: give the store key ($VERIFY_STORE_KEY or --key-file)"
                )
            return blob
        if seal is None:
            raise TemplateIntegrityError(
                f"{what} is not encrypted although the store has a key; it was not used"
                " (re-enroll, or export without the key and import with it)"
            )
        return self._cipher.open(blob, seal, associated_data(*bound), what)

    def _write_row(self, connection: sqlite3.Connection, template: Template) -> None:
        blob, seal = template.embedding_sum.astype("<f4").tobytes(), None
        if self._cipher is not None:
            bound = (template.identity, template.modality, template.model_id,
                     template.model_version, template.dim, template.sample_count)  # fmt: skip
            blob, seal = self._cipher.seal(blob, associated_data(*bound))
        connection.execute(
            f"INSERT OR REPLACE INTO templates ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    ) -> Template:
        """Add one sample embedding ``(D,)`` to a template, creating it if needed; atomic.

        Raises:
            InvalidIdentityError, ConfigError, InvalidTemplateError: bad arguments.
            ModelMismatchError: the template was made by another model, version or dimension.
        """
        identity = validate_identity(identity)
        validate_modality(modality)
        first = Template.from_sample(
            identity, modality, embedding, model_id, model_version, time.time()
        )
        with self._writing() as connection:
            existing = self._select(
                connection, "WHERE identity = ? AND modality = ?", (identity, modality)
            )
            if not existing:
                template = first
            else:
                self._check_same_model(existing[0], first)
                template = existing[0].with_sample(first.embedding_sum, time.time())
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

    def save_adapted(self, adapted: AdaptedParams) -> None:
        """Store (replace) the adapted parameters of an enrolled template; sealed under the key.

        Raises:
            UnknownIdentityError: no template is enrolled for that identity and modality.
        """
        identity, modality = validate_identity(adapted.identity), validate_modality(adapted.modality)
        params = np.ascontiguousarray(adapted.params, dtype="<f4").reshape(-1)
        blob, seal = params.tobytes(), None
        if self._cipher is not None:
            blob, seal = self._cipher.seal(blob, self._adapted_data(adapted, params.size))
        with self._writing() as connection:
            if not self._select(connection, "WHERE identity = ? AND modality = ?", (identity, modality)):
                raise UnknownIdentityError(f"no {modality} template enrolled for {identity!r}")
            connection.execute(
                "INSERT OR REPLACE INTO adapted VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (identity, modality, adapted.method, adapted.checkpoint, blob, params.size,
                 adapted.guard, adapted.template_updated_at, adapted.created_at, seal),
            )

    def load_adapted(self, identity: str, modality: str) -> AdaptedParams | None:
        """The adapted parameters stored for a template, or ``None`` when there are none."""
        identity, modality = validate_identity(identity), validate_modality(modality)
        with self._reading() as connection:
            row = connection.execute(
                "SELECT method, checkpoint, params, dim, guard, template_updated_at, created_at, seal"
                " FROM adapted WHERE identity = ? AND modality = ?", (identity, modality),
            ).fetchone()
        if row is None:
            return None
        method, checkpoint, blob, dim, guard, updated, created, seal = row
        adapted = AdaptedParams(identity, modality, method, checkpoint, np.empty(0), guard, updated, created)
        what = f"enrollment store {self._path}: adapted parameters of {identity!r} ({modality})"
        if (self._cipher is None) != (seal is None):
            raise TemplateIntegrityError(f"{what} are {'' if seal is None else 'not '}sealed; they were not used")
        if seal is not None:
            blob = self._cipher.open(blob, seal, self._adapted_data(adapted, dim), what)
        return dataclasses.replace(adapted, params=np.frombuffer(blob, dtype="<f4").astype(np.float32))

    @staticmethod
    def _adapted_data(adapted: AdaptedParams, size: int) -> bytes:
        return associated_data(adapted.identity, adapted.modality, f"adapted:{adapted.method}",
                               f"{adapted.checkpoint}:{adapted.guard}:{adapted.template_updated_at!r}", size, 1)

    def integrity_check(self) -> None:
        """Run ``PRAGMA integrity_check``.

        Raises:
            StoreCorruptError: SQLite reports any problem.
        """
        with self._reading() as connection:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
        problems = [row[0] for row in rows if row[0] != "ok"]
        if problems:
            raise StoreCorruptError(
                f"enrollment store {self._path} failed its integrity check: "
                + "; ".join(problems[:5])
            )

    def close(self) -> None:
        """Close the connection; later calls raise StoreError. Closing twice is harmless."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> TemplateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
