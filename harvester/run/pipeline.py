"""normalize -> search document -> index, for a batch of archived raw records.

The same function serves `ernte harvest` (in-process, page by page), `ernte index` (from the
archive), the Celery index task and the relevance harness. Records that cannot be normalized
or that the index refuses go to the quarantine with the reason; the batch goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from harvester.model import RawRecord, Record
from harvester.normalize.normalizer import QuarantineError, normalize
from harvester.run.document import build_document
from harvester.sources import Source
from harvester.store.archive import RawArchive
from harvester.store.state import RunCounts
from indexer.backend import IndexBackend

log = logging.getLogger(__name__)


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
    counts = RunCounts()
    if live:
        result = backend.upsert([build_document(r) for r in live])
        counts.indexed += result.written
        for error in result.errors:
            archive.quarantine(error.identifier, "index", error.reason, None)
            counts.quarantined += 1
            log.warning(
                "document refused by the index",
                extra={
                    "source": source.key,
                    "identifier": error.identifier,
                    "reason": error.reason,
                },
            )
        refused = {e.identifier for e in result.errors}
        archive.release([r.identifier for r in live if r.identifier not in refused], "index")
    if gone:
        backend.delete(list(gone), gone)
    return counts


def process_batch(
    records: Sequence[RawRecord], source: Source, archive: RawArchive, backend: IndexBackend
) -> RunCounts:
    """Normalize and index one batch (a harvested page, or a slice of the archive)."""
    normalized, counts = normalize_batch(records, source, archive)
    counts.add(index_records(normalized, backend, archive, source))
    return counts


class IndexingSink:
    """The in-process page sink: each archived page is normalized and indexed right away."""

    def __init__(self, source: Source, archive: RawArchive, backend: IndexBackend) -> None:
        self.source = source
        self.archive = archive
        self.backend = backend

    def handle(self, records: Sequence[RawRecord], page_no: int) -> RunCounts:
        return process_batch(records, self.source, self.archive, self.backend)

    def close(self) -> RunCounts:
        return RunCounts()


class NormalizeOnlySink:
    """A page sink for `ernte harvest --no-index`: normalize (to quarantine early), no index."""

    def __init__(self, source: Source, archive: RawArchive) -> None:
        self.source = source
        self.archive = archive

    def handle(self, records: Sequence[RawRecord], page_no: int) -> RunCounts:
        return normalize_batch(records, self.source, self.archive)[1]

    def close(self) -> RunCounts:
        return RunCounts()
