"""`ernte index rebuild`: a fresh index from every raw archive, switched in only when complete.

Elasticsearch: a new versioned index behind the alias, loaded in bulk, then one atomic alias
switch (indexer.elastic.rebuild). Embedded: a new index directory beside the live one, then a
directory swap, under the host's index lock. Either way searches see the old index until the new
one is whole, and the raw archive is the only input: no server is contacted.

Records archived while the rebuild ran (a harvest writing to the old index meanwhile) are
caught up after the switch: each archive's position is noted at the start, and what came later
is normalized and indexed into the new index through the alias.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvester.model import RawRecord
from harvester.run import interrupt, services
from harvester.run.check import lost_archives
from harvester.run.guarded_index import GuardedIndex
from harvester.run.harvest import ArchiveLost
from harvester.run.pipeline import (
    PreparedBatch,
    Preparer,
    apply_failures,
    archive_key,
    prepare_batch,
    process_batch,
    worker_pool,
)
from harvester.run.progress import PeriodicLog
from harvester.run.services import index_workers
from harvester.settings import Settings
from harvester.sources import Source, load_sources, source_of_archive
from harvester.store.archive import RawArchive, archives_of
from harvester.store.locks import index_write_lock
from harvester.store.state import RunCounts
from indexer.backend import IndexBackend

if TYPE_CHECKING:
    from indexer.embedded.backend import EmbeddedBackend
    from indexer.embedded.documents import PreparedDocument

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class _Archives:
    """The archives a rebuild reads: each with its source and its position at the start."""

    settings: Settings
    entries: list[tuple[Source, RawArchive, int]] = field(default_factory=list)
    not_normalized: int = 0
    configured: dict[str, Source] | None = None  # the sources file, read once at the start

    @classmethod
    def open(cls, settings: Settings) -> _Archives:
        opened = cls(settings)
        opened._add_new()
        return opened

    def _add_new(self) -> list[tuple[Source, RawArchive, int]]:
        """Open the archives not opened yet (all of them the first time); their position now."""
        # An unreadable sources file stops the rebuild (as `ernte index` stops): read as "no
        # sources", every record of a source whose format the prefix does not tell was
        # quarantined, and an empty index was switched in. Read once, before any switch.
        if self.configured is None:
            self.configured = load_sources(self.settings.sources_file)
        configured = self.configured
        known = {archive.path for _, archive, _ in self.entries}
        added = []
        for key, prefix, path in archives_of(self.settings.archive_dir):
            if path in known:
                continue
            source = source_of_archive(configured, key, prefix)
            archive = RawArchive(path)
            added.append((source, archive, archive.last_seq()))
        self.entries += added
        return added

    def close(self) -> None:
        for _, archive, _ in self.entries:
            archive.close()

    def documents(
        self,
        preparer: Preparer | None = None,
        pool: ProcessPoolExecutor | None = None,
        ahead: int = 4,
    ) -> Iterator[Any]:
        """Search documents (or what `preparer` makes of them) of every identifier's latest
        live version, as of the start, in archive order.

        With a pool, batches are normalized and prepared in its worker processes, a few in
        flight at a time (memory stays flat); records that fail to normalize are quarantined
        here, in this process.
        """
        live = sum(archive.count_latest()[0] for _, archive, _ in self.entries)
        progress = PeriodicLog("rebuild progress", live)
        for source, archive, start in self.entries:
            batches = archive.batches(BATCH, until_seq=start, live_only=True)
            for prepared in _prepared_in_order(batches, source, preparer, pool, ahead):
                apply_failures(prepared, archive, source)
                self.not_normalized += len(prepared.failed)
                yield from prepared.documents
                progress.add(len(prepared.passed) + len(prepared.failed))
                for identifier, reason in prepared.refused:
                    archive.quarantine(identifier, "index", reason, None)

    def release_indexed(self, identifiers: list[str], refused: set[str]) -> None:
        """Records the index took are no longer quarantined by it (an earlier refusal)."""
        written = [i for i in identifiers if i not in refused]
        for _, archive, _ in self.entries:
            archive.release(written, "index")

    def quarantine_refused(self, refused: list[tuple[str, str]]) -> None:
        """Quarantine documents the index refused, in the archive that holds them."""
        for identifier, reason in refused:
            for _, archive, _ in self.entries:
                if archive.get(identifier) is not None:
                    archive.quarantine(identifier, "index", reason, None)
                    break

    def catch_up(self, backend: IndexBackend) -> RunCounts:
        """Index what was archived after the rebuild started (upserts and deletions), including
        archives created meanwhile (a new source or prefix), streaming in batches."""
        counts = RunCounts()
        started = list(self.entries)
        created = [(source, archive, 0) for source, archive, _ in self._add_new()]
        for source, archive, start in started + created:
            for batch in archive.batches(BATCH, after_seq=start):
                counts.add(process_batch(batch, source, archive, backend))
        return counts


def refuse_lost(settings: Settings) -> None:
    """ArchiveLost, before any archive is opened for writing or anything is built, when an
    archive holds less than its harvests archived (emptied, replaced or deleted, as `ernte
    check` reports it): the new index would lack those records, and switching it in would
    drop them from search too. (Opening an emptied file writable made it an empty archive.)"""
    for lost in lost_archives(settings):
        raise ArchiveLost(
            lost.problem(
                "a rebuild now would leave out of the index what it lacks (nothing was changed)"
            )
        )


def rebuild_from_archives(settings: Settings) -> str:
    """Rebuild the configured backend's index; returns a one-line report."""
    services.use_configured_word_lists(settings)  # the new index analyzes with these
    if settings.es_url:
        refuse_lost(settings)
        archives = _Archives.open(settings)
        try:
            return _rebuild_elasticsearch(settings, archives)
        finally:
            archives.close()
    # Embedded: writers wait for the whole rebuild, so the archives' positions are taken once
    # the lock is held; nothing can be archived-and-indexed between them and the swap.
    with index_write_lock(settings):
        refuse_lost(settings)
        archives = _Archives.open(settings)
        try:
            return _rebuild_embedded(settings, archives)
        finally:
            archives.close()


def _rebuild_elasticsearch(settings: Settings, archives: _Archives) -> str:
    from indexer.elastic.backend import ElasticBackend
    from indexer.elastic.rebuild import build_index_and_switch_alias

    backend = ElasticBackend.connect(services.es_connection(settings), settings.es_index_alias)
    workers = index_workers(settings)
    pool = worker_pool(workers) if workers else None
    try:
        # Normalizing and building documents run in the workers while this process sends
        # bulk requests (the server does the analysis).
        report = build_index_and_switch_alias(
            backend, archives.documents(None, pool, 2 * max(1, workers))
        )
        archives.quarantine_refused([(e.identifier, e.reason) for e in report.errors])
        late = archives.catch_up(backend)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        backend.close()
    previous = ", ".join(report.previous) or "none"
    return (
        f"rebuilt {report.index} ({report.count} documents, {len(report.errors)} refused and "
        f"{archives.not_normalized} not normalized, all quarantined; {late.indexed} archived "
        "meanwhile caught up); "
        f"alias {settings.es_index_alias} switched from {previous}"
    )


def _rebuild_embedded(settings: Settings, archives: _Archives) -> str:
    from indexer.embedded.backend import EmbeddedBackend

    live_dir = settings.index_dir
    new_dir = live_dir.with_name(live_dir.name + ".rebuild")
    shutil.rmtree(new_dir, ignore_errors=True)
    backend = EmbeddedBackend(new_dir)
    # A full disk in the middle of a rebuild is the one-line error a harvest gives, and the
    # partial new index is removed (a stop, Ctrl-C or SIGTERM, too): the live one is untouched.
    guard = GuardedIndex(backend, new_dir)
    workers = index_workers(settings)
    pool = worker_pool(workers) if workers else None
    try:
        refused, count = _build(guard, backend, archives, pool, workers)
        with guard.writing():
            backend.close()
    except BaseException:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        with suppress(Exception):  # its commit would fail as the build did, or is not wanted
            backend.close()
        shutil.rmtree(new_dir, ignore_errors=True)
        raise
    try:
        # Once built, the new index is switched in whole: a stop signalled now waits for the
        # switch and then lets the command end as done (it said the live index was unchanged).
        with interrupt.critical():
            if pool is not None:
                pool.shutdown()
            swap_in(new_dir, live_dir)
    except interrupt.Interrupted:
        log.warning("stop received while the new index was switched in; the rebuild is done")
    return (
        f"rebuilt the embedded index at {live_dir}: {count} documents, {refused} refused by "
        f"the index, {archives.not_normalized} could not be normalized (`ernte quarantine`)"
    )


def _build(
    guard: GuardedIndex,
    backend: EmbeddedBackend,
    archives: _Archives,
    pool: ProcessPoolExecutor | None,
    workers: int,
) -> tuple[int, int]:
    """Write every archived record into the new index `backend`; (refused, documents).
    Only the index writes are under `guard` (a failure elsewhere keeps its own error)."""
    with guard.writing():
        backend.create(recreate=True)
        backend.defer_commits()
    refused = 0
    batch: list[PreparedDocument] = []
    since_commit = 0
    for prepared in archives.documents(backend.preparer, pool, 2 * max(1, workers)):
        batch.append(prepared)
        if len(batch) >= UPSERT_BATCH:
            with guard.writing():
                refused += _upsert(backend, batch, archives)
            since_commit += len(batch)
            batch = []
        if since_commit >= COMMIT_EVERY:
            with guard.writing():
                backend.commit()  # bounds the writer's memory of uncommitted ids
            since_commit = 0
    with guard.writing():
        refused += _upsert(backend, batch, archives)
        # Every archive is in the new index up to its position at the start (the host's
        # index lock kept writers out since), so a harvest after the swap catches up from there.
        backend.commit({archive_key(a): start for _, a, start in archives.entries})
    return refused, backend.count()


def swap_in(new_dir: Path, live_dir: Path) -> None:
    """Put the directory `new_dir` in the place of `live_dir` and delete the old one.

    On Linux the two are exchanged in one step (renameat2 with RENAME_EXCHANGE), so a search
    or a server opening the index at that moment finds the old index or the new one, never
    no index (a reader that found none would create an empty one there, and the swap would
    then fail). Elsewhere, or on a file system without the exchange: two renames.
    """
    old_dir = live_dir.with_name(live_dir.name + ".previous")
    shutil.rmtree(old_dir, ignore_errors=True)
    if live_dir.exists() and _exchange(new_dir, live_dir):
        shutil.rmtree(new_dir, ignore_errors=True)  # now the old index; the new one is live
        return
    if live_dir.exists():
        live_dir.rename(old_dir)
    new_dir.rename(live_dir)
    shutil.rmtree(old_dir, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where that is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):  # no libc, or no renameat2 in it
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    done = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if done == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM, errno.EXDEV):
        return False  # the file system, kernel or sandbox cannot exchange
    raise OSError(error, f"cannot swap {first} and {second}: {os.strerror(error)}")


UPSERT_BATCH = 1000
COMMIT_EVERY = 50_000
"""Documents between the rebuild's intermediate commits (what it holds of uncommitted ids)."""


def _upsert(backend: EmbeddedBackend, batch: list[PreparedDocument], archives: _Archives) -> int:
    if not batch:
        return 0
    result = backend.upsert_prepared(batch)
    refused = [(e.identifier, e.reason) for e in result.errors]
    archives.quarantine_refused(refused)
    archives.release_indexed([d["id"] for d in batch], {i for i, _ in refused})
    return len(result.errors)


def _prepared_in_order(
    batches: Iterable[list[RawRecord]],
    source: Source,
    preparer: Preparer | None,
    pool: ProcessPoolExecutor | None,
    ahead: int,
) -> Iterator[PreparedBatch]:
    """`prepare_batch` of each batch, in order; in the pool's workers when there is one,
    with at most `ahead` batches in flight."""
    if pool is None:
        for batch in batches:
            yield prepare_batch(batch, source, preparer)
        return
    in_flight: deque[Future[PreparedBatch]] = deque()
    for batch in batches:
        in_flight.append(pool.submit(prepare_batch, batch, source, preparer))
        if len(in_flight) >= ahead:
            yield in_flight.popleft().result()
    while in_flight:
        yield in_flight.popleft().result()
