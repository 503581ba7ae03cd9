"""The embedded index, with its write failures in words a user can act on (naming the directory).

A full disk under tantivy surfaces as `IoError{StorageFull}` or 'An index writer was killed';
`GuardedIndex` turns either into the data directory's `StorageFull` or `StorageUnwritable`
(`harvester.store.files`), like the SQLite files' failures.
"""

from __future__ import annotations

import errno
import logging
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harvester.store.files import (
    StorageFull,
    StorageUnwritable,
    full_message,
    is_storage_full,
    mount_point,
)
from indexer.backend import IndexBackend, SearchDocument, WriteResult
from indexer.search_model import SearchRequest, SearchResponse

log = logging.getLogger(__name__)

LOW_SPACE_BYTES = 32 * 1024 * 1024
"""Below this much free space, an index writer that died is taken to have run out of it."""


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
            low = shutil.disk_usage(mount_point(self.path)).free < LOW_SPACE_BYTES
        except OSError:
            low = False
        if is_storage_full(message) or (low and "writer was killed" in message):
            return StorageFull(full_message(self.path), self.path)
        return StorageUnwritable(f"cannot write the index at {self.path}: {message}", self.path)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Within the block, a write failure of the index is raised as StorageFull or
        StorageUnwritable (for writes made on the inner backend directly, as a rebuild does)."""
        try:
            yield
        except (OSError, ValueError) as exc:
            translated = self._translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    def create(self, *, recreate: bool = False) -> None:
        with self.writing():
            self.inner.create(recreate=recreate)

    def upsert(self, documents: Sequence[SearchDocument]) -> WriteResult:
        with self.writing():
            return self.inner.upsert(documents)

    def delete(
        self, identifiers: Iterable[str], datestamps: Mapping[str, str] | None = None
    ) -> WriteResult:
        with self.writing():
            return self.inner.delete(identifiers, datestamps)

    def count(self) -> int:
        return self.inner.count()

    def search(self, request: SearchRequest) -> SearchResponse:
        return self.inner.search(request)

    def close(self) -> None:
        if not self._failed:
            with self.writing():
                self.inner.close()
            return
        try:
            self.inner.close()
        except (OSError, ValueError) as exc:
            log.warning("index not committed after a failed write: %s", exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
