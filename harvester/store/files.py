"""The data directory's files fail in words a user can act on.

A full disk, a read-only volume or a damaged SQLite file (the harvest state, an archive) would
otherwise surface as `database disk image is malformed` or a tantivy `IoError{StorageFull}`
naming no file. `connect()` opens a SQLite file whose every statement turns such errors into
`StorageFull`, `StorageUnwritable` or `DamagedFile`: one line naming the file and the way out.
All are ErnteErrors (and OSErrors), which the command line prints as one line.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvester.errors import ErnteError

if TYPE_CHECKING:
    from indexer.backend import IndexBackend, SearchDocument, WriteResult
    from indexer.search_model import SearchRequest, SearchResponse

log = logging.getLogger(__name__)

LOW_SPACE_BYTES = 32 * 1024 * 1024
"""Below this much free space, an index writer that died is taken to have run out of it."""


class StorageError(ErnteError, OSError):
    """A file of the data directory could not be used; the message names it."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


class StorageFull(StorageError):
    """No space left where a file is written."""


class StorageUnwritable(StorageError):
    """A file or its directory cannot be written (read-only, permissions, I/O error)."""


class DamagedFile(StorageError):
    """A SQLite file that is not (or no longer) a valid database."""


def _mount_point(path: Path) -> Path:
    """The mount point a path lives on (what a user frees space on)."""
    current = path.resolve()
    while not current.exists() and current != current.parent:
        current = current.parent
    while current != current.parent and not os.path.ismount(current):
        current = current.parent
    return current


def full_message(path: Path) -> str:
    return (
        f"no space left on the device for {path}: free space on {_mount_point(path)} (or point "
        "ERNTE_DATA_DIR at a larger disk), then run the command again; nothing stored is lost"
    )


def from_os_error(exc: OSError, path: Path) -> StorageError:
    """An OSError while writing under `path`, as a StorageError with the way out."""
    if isinstance(exc, StorageError):
        return exc
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(full_message(path), path)
    return StorageUnwritable(f"cannot write {path}: {exc.strerror or exc}", path)


def is_storage_full(message: str) -> bool:
    """True for the ways libraries word ENOSPC (SQLite, tantivy's Rust io::Error)."""
    lowered = message.lower()
    return any(
        marker in lowered
        for marker in ("database or disk is full", "storagefull", "no space left", "enospc")
    )


class _Translate:
    def __init__(self, path: Path, what: str, remedy: str) -> None:
        self.path, self.what, self.remedy = path, what, remedy

    def error(self, exc: sqlite3.Error) -> Exception:
        message = str(exc)
        if is_storage_full(message):
            return StorageFull(full_message(self.path), self.path)
        if isinstance(exc, sqlite3.OperationalError):
            if "locked" in message or "busy" in message:
                return exc
            if "readonly" in message or "unable to open" in message or "I/O error" in message:
                return StorageUnwritable(f"cannot write {self.path}: {message}", self.path)
            return exc
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
            exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError
        ):
            return DamagedFile(
                f"{self.what} {self.path} is damaged ({message}); {self.remedy}", self.path
            )
        return exc


class _GuardedCursor(sqlite3.Cursor):
    translate: _Translate

    def execute(self, sql: str, parameters: Any = (), /) -> _GuardedCursor:
        try:
            super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self.translate.error(exc) from exc
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> _GuardedCursor:
        try:
            super().executemany(sql, seq_of_parameters)
        except sqlite3.Error as exc:
            raise self.translate.error(exc) from exc
        return self

    def executescript(self, sql_script: str, /) -> _GuardedCursor:
        try:
            super().executescript(sql_script)
        except sqlite3.Error as exc:
            raise self.translate.error(exc) from exc
        return self

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise self.translate.error(exc) from exc

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise self.translate.error(exc) from exc


class GuardedConnection(sqlite3.Connection):
    """A SQLite connection whose errors name the file (see the module doc)."""

    translate: _Translate

    def cursor(self, factory: Any = None) -> _GuardedCursor:  # type: ignore[override]
        cur = super().cursor(_GuardedCursor)
        cur.translate = self.translate
        return cur

    def execute(self, sql: str, parameters: Any = (), /) -> _GuardedCursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> _GuardedCursor:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> _GuardedCursor:
        return self.cursor().executescript(sql_script)


def connect(
    path: Path, *, what: str, remedy: str, mode: str = "rwc", immutable: bool = False
) -> GuardedConnection:
    """Open the SQLite file `path` (`what` names it in messages, `remedy` says the way out of
    damage). `mode`: rwc (create if missing), rw, ro; `immutable` reads a file in a read-only
    directory (no locks: for `status` only)."""
    try:
        if mode == "rwc":
            path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"{path.resolve().as_uri()}?mode={mode}" + ("&immutable=1" if immutable else "")
        db = sqlite3.connect(
            uri, timeout=60, isolation_level=None, uri=True, factory=GuardedConnection
        )
    except sqlite3.Error as exc:
        raise _Translate(path, what, remedy).error(exc) from exc
    except OSError as exc:
        raise from_os_error(exc, path) from exc
    assert isinstance(db, GuardedConnection)
    db.translate = _Translate(path, what, remedy)
    return db


class GuardedIndex:
    """The embedded index backend, with write failures in one line naming the index directory.

    tantivy reports a full disk as `IoError{StorageFull}` or as 'An index writer was killed';
    either becomes StorageFull (with what to free) or StorageUnwritable. After a failed write
    `close()` only logs: its commit would fail the same way and hide the first error.
    """

    def __init__(self, inner: IndexBackend, path: Path) -> None:
        self.inner = inner
        self.path = path
        self._failed = False

    def _translate(self, exc: Exception) -> Exception:
        self._failed = True
        if isinstance(exc, OSError) and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return exc  # it names its file already (a path that is not a directory, ...)
        message = str(exc)
        try:
            low = shutil.disk_usage(_mount_point(self.path)).free < LOW_SPACE_BYTES
        except OSError:
            low = False
        if is_storage_full(message) or (low and "writer was killed" in message):
            return StorageFull(full_message(self.path), self.path)
        return StorageUnwritable(f"cannot write the index at {self.path}: {message}", self.path)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except (OSError, ValueError) as exc:
            translated = self._translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    def create(self, *, recreate: bool = False) -> None:
        with self._writing():
            self.inner.create(recreate=recreate)

    def upsert(self, documents: Sequence[SearchDocument]) -> WriteResult:
        with self._writing():
            return self.inner.upsert(documents)

    def delete(
        self, identifiers: Iterable[str], datestamps: Mapping[str, str] | None = None
    ) -> WriteResult:
        with self._writing():
            return self.inner.delete(identifiers, datestamps)

    def count(self) -> int:
        return self.inner.count()

    def search(self, request: SearchRequest) -> SearchResponse:
        return self.inner.search(request)

    def close(self) -> None:
        if not self._failed:
            with self._writing():
                self.inner.close()
            return
        try:
            self.inner.close()
        except (OSError, ValueError) as exc:
            log.warning("index not committed after a failed write: %s", exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
