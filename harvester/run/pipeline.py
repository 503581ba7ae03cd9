"""normalize -> search document -> index, for a batch of archived raw records.

The same function serves `ernte harvest` (in-process, page by page), `ernte index` (from the
archive), the Celery index task and the relevance harness. Records that cannot be normalized
or that the index refuses go to the quarantine with the reason; the batch goes on.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harvester.model import RawRecord, Record
from harvester.normalize.normalizer import QuarantineError, available_crosswalks, normalize
from harvester.run import interrupt
from harvester.run.document import build_document
from harvester.sources import Source, SourceError, adhoc_key
from harvester.store.archive import RawArchive
from harvester.store.state import RunCounts
from indexer.backend import IndexBackend, SearchDocument, WriteResult
from indexer.compounds import default_decompounder
from indexer.word_lists import part_list_file, stopwords_file, use_word_lists

log = logging.getLogger(__name__)


def check_crosswalk(source: Source) -> None:
    """SourceError when the source names a crosswalk ernte does not have: every record of
    its harvests would be quarantined ("unknown format") while the run looked fine."""
    known = available_crosswalks()
    if source.crosswalk is not None and source.crosswalk not in known:
        raise SourceError(
            f"source {source.key!r}: crosswalk {source.crosswalk!r} is not one of "
            f"{', '.join(known)}"
        )


def warn_without_crosswalk(source: Source, prefix: str) -> None:
    """Warn, as a harvest of `prefix` starts, when no crosswalk reads that format: its records
    are archived (kept for a later `ernte normalize`) but each is quarantined."""
    name = crosswalk_for(source, prefix)
    if name in available_crosswalks():
        return
    if source.base_url and source.key == adhoc_key(source.base_url):
        advice = (
            "configure the repository in the sources file with "
            f"`metadata_prefix: {prefix}` and that `crosswalk`"
        )
    elif prefix != source.metadata_prefix:  # `crosswalk` reads the main prefix only
        advice = (
            f"set the source's `metadata_prefix: {prefix}` with that `crosswalk` (it applies "
            f"to the `metadata_prefix`, now {source.metadata_prefix}, only)"
        )
    else:
        advice = "name it as the source's `crosswalk`"
    log.warning(
        "no crosswalk reads metadata prefix %r: its records are archived but quarantined "
        "('unknown format'); if they follow one of %s, %s",
        name,
        ", ".join(available_crosswalks()),
        advice,
        extra={"source": source.key, "prefix": prefix},
    )


def crosswalk_for(source: Source, prefix: str) -> str:
    """The source's configured crosswalk for its main prefix; the prefix's own otherwise."""
    if source.crosswalk and prefix == source.metadata_prefix:
        return source.crosswalk
    return prefix


def normalize_batch(
    records: Iterable[RawRecord], source: Source, archive: RawArchive
) -> tuple[list[Record], RunCounts]:
    """Normalize records; quarantine the ones that fail (raw XML kept), release the ones that pass."""
    normalized: list[Record] = []
    counts = RunCounts()
    for raw in records:
        try:
            record = normalize(raw, source.key, crosswalk_for(source, raw.metadata_prefix))
        except QuarantineError as exc:
            archive.quarantine(raw.identifier, "normalize", exc.reason, raw.xml)
            counts.quarantined += 1
            log.warning(
                "record quarantined",
                extra={"source": source.key, "identifier": raw.identifier, "reason": exc.reason},
            )
            continue
        normalized.append(record)
    counts.normalized = sum(1 for r in normalized if not r.deleted)
    archive.release([r.identifier for r in normalized], "normalize")
    return normalized, counts


def index_records(
    records: Sequence[Record], backend: IndexBackend, archive: RawArchive, source: Source
) -> RunCounts:
    """Upsert live records and delete tombstones; refused documents go to the quarantine."""
    live = [r for r in records if not r.deleted]
    gone = {r.identifier: r.datestamp for r in records if r.deleted}
    batch = PreparedBatch(gone=gone, passed=[r.identifier for r in records])
    _add_documents(batch, live, _preparer_of(backend))
    return _write(batch, backend, archive, source)


def process_batch(
    records: Sequence[RawRecord], source: Source, archive: RawArchive, backend: IndexBackend
) -> RunCounts:
    """Normalize and index one batch (a harvested page, or a slice of the archive)."""
    return apply_batch(
        prepare_batch(records, source, _preparer_of(backend)), backend, archive, source
    )


# -- the same in two halves, so that the first may run in another process -----------------------

Preparer = Callable[[SearchDocument], Any]
"""Turns a search document into what the backend writes (`EmbeddedBackend.preparer`)."""


@dataclass(slots=True)
class PreparedBatch:
    """A batch normalized and made into documents, with neither archive nor index touched
    (so it can be computed in a worker process): what `apply_batch` then writes."""

    documents: list[Any] = field(default_factory=list)
    """Search documents, or what the backend's preparer made of them."""
    gone: dict[str, str] = field(default_factory=dict)
    """Tombstones: identifier -> the deletion's datestamp."""
    passed: list[str] = field(default_factory=list)
    """Identifiers that normalized (to release from the normalize quarantine)."""
    failed: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(identifier, reason, raw XML) of records that did not normalize."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(identifier, reason) of documents the preparer refused (the index's quarantine)."""


def prepare_batch(
    records: Sequence[RawRecord], source: Source, preparer: Preparer | None = None
) -> PreparedBatch:
    """normalize -> search document (-> the backend's own form, with a preparer)."""
    batch = PreparedBatch()
    live: list[Record] = []
    for raw in records:
        try:
            record = normalize(raw, source.key, crosswalk_for(source, raw.metadata_prefix))
        except QuarantineError as exc:
            batch.failed.append((raw.identifier, exc.reason, raw.xml))
            continue
        batch.passed.append(record.identifier)
        if record.deleted:
            batch.gone[record.identifier] = record.datestamp
        else:
            live.append(record)
    _add_documents(batch, live, preparer)
    return batch


def _add_documents(batch: PreparedBatch, live: Sequence[Record], preparer: Preparer | None) -> None:
    for record in live:
        document = build_document(record)
        if preparer is None:
            batch.documents.append(document)
            continue
        try:
            batch.documents.append(preparer(document))
        except (TypeError, ValueError, KeyError) as error:
            batch.refused.append((record.identifier, f"cannot index document: {error}"))


def apply_batch(
    batch: PreparedBatch,
    backend: IndexBackend,
    archive: RawArchive,
    source: Source,
    where: Mapping[str, object] | None = None,
) -> RunCounts:
    """Quarantine what failed, write the documents and tombstones, release what passed;
    `where` (such as the harvest's page) goes into the log lines about single records."""
    apply_failures(batch, archive, source, where)
    counts = _write(batch, backend, archive, source, where)
    counts.quarantined += len(batch.failed)
    counts.normalized += len(batch.passed) - len(batch.gone)
    return counts


def apply_failures(
    batch: PreparedBatch,
    archive: RawArchive,
    source: Source,
    where: Mapping[str, object] | None = None,
) -> None:
    """The normalize stage's archive writes: quarantine what failed, release what passed."""
    for identifier, reason, xml in batch.failed:
        archive.quarantine(identifier, "normalize", reason, xml)
        log.warning(
            "record quarantined",
            extra={
                **_about(source, archive, where),
                "identifier": identifier,
                "reason": reason,
            },
        )
    archive.release(batch.passed, "normalize")


def _about(
    source: Source, archive: RawArchive, where: Mapping[str, object] | None
) -> dict[str, object]:
    """Log context of a line about one record: source, prefix, and `where` (the page)."""
    return {
        "source": source.key,
        "prefix": archive.prefix,
        **(where or {}),
    }


def _write(
    batch: PreparedBatch,
    backend: IndexBackend,
    archive: RawArchive,
    source: Source,
    where: Mapping[str, object] | None = None,
) -> RunCounts:
    counts = RunCounts()
    refused = list(batch.refused)
    if batch.documents:
        upsert_prepared = getattr(backend, "upsert_prepared", None)
        if _preparer_of(backend) is not None and upsert_prepared is not None:
            result: WriteResult = upsert_prepared(batch.documents)
        else:
            result = backend.upsert(batch.documents)
        counts.indexed += result.written
        refused += [(e.identifier, e.reason) for e in result.errors]
    for identifier, reason in refused:
        archive.quarantine(identifier, "index", reason, None)
        counts.quarantined += 1
        log.warning(
            "document refused by the index",
            extra={**_about(source, archive, where), "identifier": identifier, "reason": reason},
        )
    if batch.documents or refused:
        not_refused = {i for i, _ in refused}
        written = [i for i in batch.passed if i not in not_refused and i not in batch.gone]
        archive.release(written, "index")
    if batch.gone:
        backend.delete(list(batch.gone), batch.gone)
    return counts


def _preparer_of(backend: IndexBackend) -> Preparer | None:
    preparer = getattr(backend, "preparer", None)
    return preparer if callable(preparer) else None


def archive_key(archive: RawArchive) -> str:
    """An archive's name in the index's positions: `<source dir>/<prefix>`."""
    return f"{archive.path.parent.name}/{archive.prefix}"


COMMIT_INTERVAL = 5.0
"""Default seconds between index commits during a harvest (settings.index_commit_interval)."""

IN_FLIGHT = 2
"""Pages handed to the worker process and not yet written (bounds memory)."""

CATCH_UP_STEP = 20_000
"""Archive sequence numbers a catch-up indexes between two commits (about 20,000 records:
ten seconds or so here). Versions the archive superseded count too; the step is a point in
the archive, whatever it holds."""


class IndexingSink:
    """The in-process page sink: each archived page is normalized and indexed.

    With a backend that can defer commits (the embedded index), the index is committed every
    `commit_interval` seconds and when the harvest ends, not per page, and each commit records
    the archive position it covers; the sink first catches up on what the archive holds beyond
    the index's position (a run killed between archiving and committing). With `workers` = 1,
    normalizing and analyzing run in a worker process while this one fetches and archives the
    next page (two cores busy instead of one); the writes stay here, in archive order. Any
    other backend (Elasticsearch) is written before `handle` returns, in this process, as the
    checkpoint that follows requires.
    """

    def __init__(
        self,
        source: Source,
        archive: RawArchive,
        backend: IndexBackend,
        *,
        workers: int = 0,
        commit_interval: float = COMMIT_INTERVAL,
    ) -> None:
        self.source = source
        self.archive = archive
        self.backend = backend
        self.key = archive_key(archive)
        self.commit_interval = commit_interval
        self._preparer = _preparer_of(backend)
        self._deferred = callable(getattr(backend, "defer_commits", None))
        # Only a backend that records archive positions may fall behind the checkpoint (a
        # crash is caught up from the archive); any other is written before handle() returns.
        self._ahead = IN_FLIGHT - 1 if self._deferred else 0
        self._pool = worker_pool(1) if workers > 0 and self._deferred else None
        # (prepared batch, archive position, harvest page or None for a catch-up)
        self._in_flight: deque[tuple[Future[PreparedBatch] | PreparedBatch, int, int | None]]
        self._in_flight = deque()
        self._applied_seq: int | None = None
        self._last_commit = time.monotonic()
        self._pending_counts = RunCounts()
        self._broken = False  # a batch failed to be written: nothing more is (see close)
        if self._deferred:
            backend.defer_commits()  # type: ignore[attr-defined]
            self._catch_up()

    def _catch_up(self) -> None:
        """Index what the archive holds beyond the index's recorded position."""
        positions = self.backend.archive_positions()  # type: ignore[attr-defined]
        newest = self.archive.last_seq()
        if positions is None:  # an index from before positions: it committed every page
            self._applied_seq = newest
            return
        start = positions.get(self.key, 0)
        if newest <= start:
            self._applied_seq = start
            return
        log.info(
            "catching up the index from the archive",
            extra={"source": self.source.key, "after_seq": start, "until_seq": newest},
        )
        # In steps of the archive's sequence, each committed with its end as the position:
        # a catch-up that is stopped (Ctrl-C, a full disk, a kill) keeps what it did.
        for low in range(start, newest, CATCH_UP_STEP):
            high = min(low + CATCH_UP_STEP, newest)
            for batch in self.archive.batches(500, after_seq=low, until_seq=high):
                self._submit(batch, low, None)
                self._pending_counts.add(self._drain(self._ahead))
            self._pending_counts.add(self._drain(0))
            self._applied_seq = high
            self._commit()
            log.info(
                "caught up the index from the archive",
                extra={"source": self.source.key, "until_seq": high, "of_seq": newest},
            )

    def handle(self, records: Sequence[RawRecord], page_no: int) -> RunCounts:
        seq = self.archive.last_seq() if self._deferred else 0
        self._submit(records, seq, page_no)
        counts = self._drain(self._ahead)
        counts.add(self._pending_counts)
        self._pending_counts = RunCounts()
        return counts

    def close(self) -> RunCounts:
        if self._broken:
            # A batch failed to be written: committing the ones after it would record an
            # archive position past it, and the next run's catch-up would skip it.
            self._in_flight.clear()
            self._shut_down_pool()
            return RunCounts()
        counts = self._drain(0)
        counts.add(self._pending_counts)
        self._pending_counts = RunCounts()
        self._commit()
        self._shut_down_pool()
        return counts

    def _shut_down_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _submit(self, records: Sequence[RawRecord], seq: int, page: int | None) -> None:
        if self._pool is None:
            prepared = prepare_batch(records, self.source, self._preparer)
            self._in_flight.append((prepared, seq, page))
            return
        detached = [replace(r, element=None) for r in records]  # lxml trees do not pickle
        future = self._pool.submit(prepare_batch, detached, self.source, self._preparer)
        self._in_flight.append((future, seq, page))

    def _drain(self, keep: int) -> RunCounts:
        """Write prepared batches in order until at most `keep` are in flight."""
        counts = RunCounts()
        while len(self._in_flight) > keep:
            pending, seq, page = self._in_flight.popleft()
            # `page stored` lines count pages from 1; handle() is given the 0-based index
            where = {"page": page + 1} if page is not None else {"catch_up": True}
            try:
                batch = pending.result() if isinstance(pending, Future) else pending
                counts.add(apply_batch(batch, self.backend, self.archive, self.source, where))
            except BaseException:
                self._broken = True
                raise
            self._applied_seq = max(self._applied_seq or 0, seq)
            if self._deferred and time.monotonic() - self._last_commit >= self.commit_interval:
                self._commit()
        return counts

    def _commit(self) -> None:
        if not self._deferred:
            return
        positions = {self.key: self._applied_seq} if self._applied_seq is not None else None
        self.backend.commit(positions)  # type: ignore[attr-defined]
        self._last_commit = time.monotonic()


def record_archive_position(backend: IndexBackend, archive: RawArchive, seq: int) -> None:
    """Commit, recording that the index holds `archive` up to `seq` (every record archived
    up to there was written), so that the next harvest's catch-up starts there, as a rebuild
    records its archives. Backends without positions: nothing."""
    if hasattr(backend, "archive_positions"):
        backend.commit({archive_key(archive): seq})  # type: ignore[attr-defined]


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Processes for `prepare_batch`, started now (their imports overlap the first fetch).

    Spawned, not forked: a forked worker would inherit the harvest's lock files and the
    index writer's threads. Each worker dies with the command (see `_worker_init`).

    The workers are started with Ctrl-C and SIGTERM ignored, and keep them so: a terminal's
    Ctrl-C and `systemctl stop` signal every process of the command, and a worker that died
    of it (or printed a KeyboardInterrupt traceback while still importing) broke the pool, so
    the stop was recorded as a failure. The command stops its workers in order.
    """
    pool = ProcessPoolExecutor(
        workers,
        mp_context=mp.get_context("spawn"),
        initializer=_worker_init,
        initargs=(stopwords_file(), part_list_file()),
    )
    with interrupt.stops_ignored():  # inherited by the spawned interpreters from their start
        for _ in range(workers):
            pool.submit(int)  # starts a process (Python 3.9+: one per submit while none idle)
    return pool


def yield_cpu_to_searches(niceness: int) -> None:
    """Run this process at niceness `niceness` at least (a batch command: harvest, index);
    its normalizing workers go lower still (WORKER_NICENESS on top, at most 19). A process
    already lower stays as it is, and calling this again lowers nothing further.
    Measured on 400,000 records with a 10,000-record harvest writing (bench/results/index.txt):
    search p95 58 -> 49 ms, and 35 ms when the local demo provider, which stands in for a
    remote repository, is lowered too."""
    with suppress(OSError):
        current = os.nice(0)
        if current < niceness:
            os.nice(niceness - current)


WORKER_NICENESS = 10
"""How much lower the scheduling priority of the normalizing workers is than the command's.
Harvests and rebuilds are batch work: while one runs on the host of `ernte serve` or of other
searches, those get the CPU first; with nothing else running the workers lose nothing (on a
host busy with other work the harvest slows down rather than that work)."""


def _worker_init(stopwords: Path, compound_parts: Path) -> None:
    """Leave Ctrl-C and SIGTERM to the command (it stops its workers in order; see
    `worker_pool`); die with it on SIGKILL
    (Linux: PR_SET_PDEATHSIG), so no orphan outlives a killed harvest; yield the CPU to
    interactive work (WORKER_NICENESS); load the analysis data once, from the word lists the
    command chose (a spawned process starts without)."""
    for signum in interrupt.STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    with suppress(OSError):
        os.nice(WORKER_NICENESS)
    with suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    use_word_lists(stopwords=stopwords, compound_parts=compound_parts)
    default_decompounder()


class NormalizeOnlySink:
    """A page sink for `ernte harvest --no-index`: normalize (to quarantine early), no index."""

    def __init__(self, source: Source, archive: RawArchive) -> None:
        self.source = source
        self.archive = archive

    def handle(self, records: Sequence[RawRecord], page_no: int) -> RunCounts:
        return normalize_batch(records, self.source, self.archive)[1]

    def close(self) -> RunCounts:
        return RunCounts()
