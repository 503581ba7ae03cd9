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
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harvester.errors import ErnteError

log = logging.getLogger(__name__)


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


def mount_point(path: Path) -> Path:
    """The mount point a path lives on (what a user frees space on)."""
    current = path.resolve()
    while not current.exists() and current != current.parent:
        current = current.parent
    while current != current.parent and not os.path.ismount(current):
        current = current.parent
    return current


def full_message(path: Path, then: str = "run the command again") -> str:
    """The one line of a full disk: where to free space, and `then` what to do (a worker's
    dead letter is replayed rather than run again)."""
    return (
        f"no space left on the device for {path}: free space on {mount_point(path)} (or point "
        f"ERNTE_DATA_DIR at a larger disk), then {then}; nothing stored is lost"
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


def connect_readonly(path: Path, *, what: str, remedy: str) -> GuardedConnection:
    """Open the existing SQLite file `path` for reading only. In a directory this process may
    not write (a read-only mount), a file in WAL mode cannot get its shared-memory file: it is
    then read as it is on disk (immutable, without locks), which is what such a directory
    holds still."""
    try:
        db = connect(path, what=what, remedy=remedy, mode="ro")
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except StorageUnwritable:
        return connect(path, what=what, remedy=remedy, mode="ro", immutable=True)


def empty_stand_in(path: Path, *, what: str, remedy: str) -> GuardedConnection:
    """An empty in-memory database standing in for `path` (a file emptied, or created and never
    written): what a reader sees there is nothing, and its messages still name `path`."""
    db = sqlite3.connect(":memory:", isolation_level=None, factory=GuardedConnection)
    assert isinstance(db, GuardedConnection)
    db.translate = _Translate(path, what, remedy)
    return db
