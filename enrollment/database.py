"""The enrollment store's SQLite file: opening, schema migrations, transactions, sealing.

The file is safe to share between processes: WAL journal, a 30 s busy timeout, and every
read-modify-write in one ``BEGIN IMMEDIATE`` transaction. ``synchronous=FULL`` makes every
acknowledged write survive a crash of the process or the machine.

A store file is recognised by ``PRAGMA application_id`` and a magic value in its ``meta`` table;
any other file raises :class:`StoreCorruptError` before anything is written to it. The schema
version and its migrations live in :mod:`enrollment.schema`.

With a key (see :mod:`enrollment.crypto`) rows are sealed with AES-256-GCM on write and must
authenticate on read; a sealed constant in ``meta`` names a wrong key as such. What lives in the
file: templates (:mod:`enrollment.store`), adapted parameters (:mod:`enrollment.adapted`),
lockouts and the audit log (:mod:`enrollment.ratelimit`, :mod:`enrollment.audit`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

from enrollment.crypto import TemplateCipher
from enrollment.errors import StoreCorruptError, StoreError, StoreKeyError, TemplateIntegrityError
from enrollment.schema import APPLICATION_ID, MAGIC, MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT_S = 30.0
_SQLITE_HEADER = b"SQLite format 3\x00"
_CORRUPT_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$VERIFY_STORE`` if set, else ``$XDG_DATA_HOME/verify/enrollments.db``.

    ``$XDG_DATA_HOME`` falls back to ``~/.local/share`` when unset or not absolute. ``environ``
    defaults to the process environment.
    """
    environ = os.environ if environ is None else environ
    explicit = environ.get("VERIFY_STORE")
    if explicit:
        return Path(explicit).expanduser()
    data_home = environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "verify" / "enrollments.db"

class StoreDatabase:
    """One SQLite store file and one connection to it, with optional sealing of rows.

    Thread-safe (calls are serialised) and process-safe (SQLite locking). Use as a context
    manager or call :meth:`close`.

    Raises (from the constructor):
        StoreCorruptError: the file is not SQLite, belongs to another application or is damaged.
        StoreError: the path is a directory, the schema is newer than this code, or SQLite fails.
        StoreKeyError: the key given is not the store's key.
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
        return f"{type(self).__name__}({str(self._path)!r}, {state})"

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
    # --- sealing ----------------------------------------------------------------------------
    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes | None]:
        """``(stored bytes, seal)``: sealed under the key, or the plaintext and ``None`` without one."""
        if self._cipher is None:
            return plaintext, None
        return self._cipher.seal(plaintext, aad)

    def unseal(self, blob: bytes, seal: bytes | None, aad: bytes, what: str) -> bytes:
        """The plaintext of a stored row, authenticated when the store has a key.

        Raises:
            StoreKeyError: the row is sealed but the store was opened without a key.
            TemplateIntegrityError: the row is not sealed although the store has a key, or it
                fails authentication (tampered, swapped between rows).
        """
        if self._cipher is None:
            if seal is not None:
                raise StoreKeyError(f"{what} is encrypted: give the store key ($VERIFY_STORE_KEY or --key-file)")
            return blob
        if seal is None:
            raise TemplateIntegrityError(
                f"{what} is not encrypted although the store has a key; it was not used"
                " (re-enroll, or export without the key and import with it)"
            )
        return self._cipher.open(blob, seal, aad, what)

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

    def __enter__(self) -> StoreDatabase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
