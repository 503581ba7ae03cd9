"""Searching an index in a directory this process may not write: a read-only mount (`ernte
serve` on a volume mounted `:ro`, a snapshot), or another user's files.

tantivy takes a lock file beside `meta.json` even to read an index, so opening one in such a
directory failed ("Failed to acquire Lockfile: ... Read-only file system"). A read-only index is
opened through a shadow directory instead: a private temporary directory holding a symbolic
link to each file of the index and tantivy's own lock files. The files are read in place
(memory-mapped through the links), nothing is copied, and nothing is written to the index.

The index may still change under a read-only mount (a harvester writing the same volume from
elsewhere): `refresh` links the segments of each new commit before the searcher is reloaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path

TANTIVY_LOCK_FILES = frozenset({".tantivy-meta.lock", ".tantivy-writer.lock"})
"""What tantivy creates (and locks) in an index directory: never linked, so that tantivy
creates its own in the shadow directory."""


def cannot_write(directory: Path) -> bool:
    """Whether this process may not create files in `directory` (also true for root on a
    read-only mount: access(2) reports EROFS)."""
    return not os.access(directory, os.W_OK)


class ReadOnlyShadow:
    """A temporary directory of links to the files of the index at `source` (see the module
    docstring), removed when this object is collected or the process ends."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.path = Path(tempfile.mkdtemp(prefix="ernte-read-only-index-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)
        self.refresh()

    def refresh(self) -> None:
        """Link the files the index holds now (new segments after a commit made elsewhere)
        and drop the links whose file is gone (segments merged away)."""
        held = {
            entry.name
            for entry in os.scandir(self.source)
            if entry.is_file() and entry.name not in TANTIVY_LOCK_FILES
        }
        linked = {entry.name for entry in os.scandir(self.path) if entry.is_symlink()}
        for name in held - linked:
            os.symlink(self.source / name, self.path / name)
        for name in linked - held:
            (self.path / name).unlink(missing_ok=True)

    def remove(self) -> None:
        self._cleanup()
