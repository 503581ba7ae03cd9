"""Writing the embedded index: upserts and deletes by `id` (never older over newer), commits, and
how far into each raw archive the index holds (archive positions).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import tantivy

from indexer.backend import ItemError, SearchDocument, WriteResult
from indexer.embedded.documents import PreparedDocument

log = logging.getLogger(__name__)

WRITER_HEAP_BYTES = 256_000_000

WRITER_THREADS = 1
"""tantivy indexing threads. One: the analysis runs in Python before tantivy sees a document,
so tantivy's share of the work is small, and the normalizing workers have the other core. A
second thread wrote two segments per commit, which doubled the merging; the harvest's own
process then grew from 68 to 135 MB over 60,000 records, against 87 to 99 MB over 100,000
with one thread (bench/results/harvest.txt)."""

POSITIONS_FILE = "ernte-archive-positions.json"
"""Beside the index: archive key -> sequence number the index holds that archive up to."""


def write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON so that a reader (or a crash) sees the old file or the new one, never half."""
    staged = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with staged.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    staged.replace(path)


class EmbeddedWriter:
    """The one tantivy writer of an index directory, opened on the first write.

    By default every `upsert_prepared`/`delete` call commits; with `defer_commits()` writes
    accumulate until `commit()`, and `commit(positions)` records with the commit how far into
    each raw archive the index is (`archive_positions()`).
    """

    def __init__(
        self, path: Path, schema: tantivy.Schema, open_index: Callable[[], tantivy.Index]
    ) -> None:
        self.path = path
        self._schema = schema
        self._open = open_index
        self._writer: tantivy.IndexWriter | None = None
        self._auto_commit = True
        # id -> datestamp of documents written since the last commit (None: deleted); the
        # searcher cannot see them yet, but the stale-write check and the replace must.
        self._pending: dict[str, str | None] = {}

    def close(self) -> None:
        """Commit pending writes, wait for merges, release the writer lock."""
        writer, self._writer = self._writer, None
        self._pending.clear()
        if writer is None:
            return
        try:
            writer.commit()
        except BaseException:
            # A failed commit (a full disk) must still release the writer's lock: a traceback
            # kept by the caller (Celery keeps it) kept the writer, and every later write of
            # this process failed with LockBusy until it was restarted.
            with suppress(Exception):
                writer.rollback()
            with suppress(Exception):
                writer.wait_merging_threads()  # consumes the writer: the lock goes with it
            raise
        writer.wait_merging_threads()

    def _writer_for_batch(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self._open().writer(
                heap_size=WRITER_HEAP_BYTES, num_threads=WRITER_THREADS
            )
        return self._writer

    def _commit(self) -> None:
        if self._auto_commit:
            self.commit()

    def defer_commits(self) -> None:
        """From now on writes are committed only by `commit()` (and `close()`)."""
        self._auto_commit = False

    def commit(self, positions: Mapping[str, int] | None = None) -> None:
        """Make every write so far durable and searchable; with `positions` (archive key ->
        archive sequence number), record that the index now holds each archive up to there.

        The positions are written (atomically) after the tantivy commit: killed in between,
        the index holds more than its positions say, and a catch-up re-writes it (upserts are
        idempotent); it never holds less.
        """
        if self._writer is not None:
            self._writer.commit()
            self._open().reload()
        self._pending.clear()
        if positions:
            merged = {**(self.archive_positions() or {}), **positions}
            write_json_atomically(self.path / POSITIONS_FILE, merged)

    def archive_positions(self) -> dict[str, int] | None:
        """Archive key -> the sequence number up to which the index holds that archive
        (an archive not named: nothing of it); None for an index written before positions
        were recorded, which committed every page and so holds everything archived."""
        self._open()
        path = self.path / POSITIONS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {str(k): int(v) for k, v in data.items()}
        except FileNotFoundError:
            return None
        except (ValueError, AttributeError, TypeError) as exc:  # a damaged file
            # Known to hold nothing: the next harvest indexes its archive again from the
            # start (writes by id: nothing twice), where a traceback stopped every harvest.
            log.warning(
                "%s is damaged (%s); the index catches up from the archives' start", path, exc
            )
            return {}

    def upsert_prepared(
        self, prepared: Sequence[PreparedDocument], result: WriteResult | None = None
    ) -> WriteResult:
        """`upsert` for documents already turned into fields by `prepare` (perhaps in another
        process): the stale-datestamp check, the replace by `id`, the commit."""
        result = result if result is not None else WriteResult()
        newest: dict[str, PreparedDocument] = {}
        for fields in prepared:
            identifier = fields["id"]
            held = newest.get(identifier)
            if held is not None and _is_older_stamp(fields["datestamp"], held["datestamp"]):
                result.skipped_stale += 1
                continue
            if held is not None:
                result.skipped_stale += 1  # superseded by a newer copy in the same batch
            newest[identifier] = fields
        current = self._current_datestamps(list(newest))
        writer = self._writer_for_batch()
        for identifier, fields in newest.items():
            stored = current.get(identifier)
            if stored is not None and _is_older_stamp(fields["datestamp"], stored):
                result.skipped_stale += 1
                continue
            try:
                tantivy_document = tantivy.Document(**fields)
            except (TypeError, ValueError) as error:
                result.errors.append(ItemError(identifier, f"cannot index document: {error}"))
                continue
            if identifier in current:
                writer.delete_documents_by_term("id", identifier)
            writer.add_document(tantivy_document)
            if not self._auto_commit:
                self._pending[identifier] = fields["datestamp"]
            result.written += 1
        self._commit()
        return result

    def delete(
        self, identifiers: Iterable[str], datestamps: Mapping[str, str] | None = None
    ) -> WriteResult:
        """Remove documents by identifier; missing identifiers are not an error. A stored
        document newer than its tombstone's datestamp stays (counted as skipped_stale)."""
        wanted = [i for i in dict.fromkeys(identifiers) if i]
        present = {i: d for i, d in self._current_datestamps(wanted).items() if d is not None}
        tombstones = datestamps or {}
        newer = {
            i
            for i, stored in present.items()
            if _is_older({"datestamp": tombstones.get(i)}, stored)
        }
        writer = self._writer_for_batch()
        for identifier in present:
            if identifier not in newer:
                writer.delete_documents_by_term("id", identifier)
                if not self._auto_commit:
                    self._pending[identifier] = None
        self._commit()
        return WriteResult(deleted=len(present) - len(newer), skipped_stale=len(newer))

    def _current_datestamps(self, identifiers: list[str]) -> dict[str, str | None]:
        """`_stored_datestamps` overlaid with the writes not committed yet (None: deleted
        since the last commit, still to be replaced by id if it comes again)."""
        current: dict[str, str | None] = dict(self._stored_datestamps(identifiers))
        if self._pending:
            for identifier in identifiers:
                if identifier in self._pending:
                    current[identifier] = self._pending[identifier]
        return current

    def _stored_datestamps(self, identifiers: list[str]) -> dict[str, str]:
        """id -> stored datestamp for those of `identifiers` already in the index."""
        if not identifiers:
            return {}
        searcher = self._open().searcher()
        if searcher.num_docs == 0:
            return {}
        query = tantivy.Query.term_set_query(self._schema, "id", identifiers)
        found: dict[str, str] = {}
        for _score, address in searcher.search(query, len(identifiers), count=False).hits:
            stored = searcher.doc(address)
            found[str(stored.get_first("id"))] = str(stored.get_first("datestamp") or "")
        return found


def _is_older_stamp(incoming: str, stored: str | None) -> bool:
    """`_is_older` for two datestamps (a missing one never blocks a write)."""
    return bool(incoming and stored and incoming < stored)


def _is_older(document: SearchDocument, stored_datestamp: str) -> bool:
    """True when the document's datestamp is strictly older than the stored one.

    OAI datestamps are ISO 8601 UTC in one granularity per repository, so string order is
    time order. A missing datestamp on either side never blocks a write.
    """
    incoming = str(document.get("datestamp") or "")
    return bool(incoming and stored_datestamp and incoming < stored_datestamp)
