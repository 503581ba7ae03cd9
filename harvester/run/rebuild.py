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

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

from harvester.model import RawRecord
from harvester.run import services
from harvester.run.document import build_document
from harvester.run.pipeline import normalize_batch, process_batch
from harvester.run.progress import PeriodicLog
from harvester.settings import Settings
from harvester.sources import Source, SourceError, load_sources, source_of_archive
from harvester.store.archive import RawArchive, archives_of
from harvester.store.locks import index_write_lock
from harvester.store.state import RunCounts
from indexer.backend import IndexBackend, SearchDocument

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class _Archives:
    """The archives a rebuild reads: each with its source and its position at the start."""

    settings: Settings
    entries: list[tuple[Source, RawArchive, int]] = field(default_factory=list)
    owner: dict[str, RawArchive] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings) -> _Archives:
        opened = cls(settings)
        opened._add_new()
        return opened

    def _add_new(self) -> list[tuple[Source, RawArchive, int]]:
        """Open the archives not opened yet (all of them the first time); their position now."""
        try:
            configured = load_sources(self.settings.sources_file)
        except SourceError:
            configured = {}
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

    def documents(self) -> Iterator[SearchDocument]:
        """Search documents of every identifier's latest live version, as of the start.

        Records that fail to normalize are quarantined on the way; `owner` learns which
        archive each identifier came from, so index-side refusals are quarantined there.
        """
        progress = PeriodicLog("rebuild progress")
        for source, archive, start in self.entries:
            for batch in archive.batches(BATCH, until_seq=start, live_only=True):
                yield from self._normalized(batch, source, archive)
                progress.add(len(batch))

    def _normalized(
        self, batch: list[RawRecord], source: Source, archive: RawArchive
    ) -> Iterator[SearchDocument]:
        records, _ = normalize_batch(batch, source, archive)
        for record in records:
            self.owner[record.identifier] = archive
            yield build_document(record)

    def quarantine_refused(self, refused: list[tuple[str, str]]) -> None:
        for identifier, reason in refused:
            if identifier in self.owner:
                self.owner[identifier].quarantine(identifier, "index", reason, None)

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


def rebuild_from_archives(settings: Settings) -> str:
    """Rebuild the configured backend's index; returns a one-line report."""
    if settings.es_url:
        archives = _Archives.open(settings)
        try:
            return _rebuild_elasticsearch(settings, archives)
        finally:
            archives.close()
    # Embedded: writers wait for the whole rebuild, so the archives' positions are taken once
    # the lock is held; nothing can be archived-and-indexed between them and the swap.
    with index_write_lock(settings):
        archives = _Archives.open(settings)
        try:
            return _rebuild_embedded(settings, archives)
        finally:
            archives.close()


def _rebuild_elasticsearch(settings: Settings, archives: _Archives) -> str:
    from indexer.elastic.backend import ElasticBackend
    from indexer.elastic.rebuild import build_index_and_switch_alias

    backend = ElasticBackend.connect(services.es_connection(settings), settings.es_index_alias)
    try:
        report = build_index_and_switch_alias(backend, archives.documents())
        archives.quarantine_refused([(e.identifier, e.reason) for e in report.errors])
        late = archives.catch_up(backend)
    finally:
        backend.close()
    previous = ", ".join(report.previous) or "none"
    return (
        f"rebuilt {report.index} ({report.count} documents, {len(report.errors)} refused and "
        f"quarantined; {late.indexed} archived meanwhile caught up); "
        f"alias {settings.es_index_alias} switched from {previous}"
    )


def _rebuild_embedded(settings: Settings, archives: _Archives) -> str:
    from indexer.embedded import EmbeddedBackend

    live_dir = settings.index_dir
    new_dir = live_dir.with_name(live_dir.name + ".rebuild")
    old_dir = live_dir.with_name(live_dir.name + ".previous")
    shutil.rmtree(new_dir, ignore_errors=True)
    backend = EmbeddedBackend(new_dir)
    backend.create(recreate=True)
    refused = 0
    try:
        batch: list[SearchDocument] = []
        for document in archives.documents():
            batch.append(document)
            if len(batch) >= 1000:
                refused += _upsert(backend, batch, archives)
                batch = []
        refused += _upsert(backend, batch, archives)
        count = backend.count()
    finally:
        backend.close()
    shutil.rmtree(old_dir, ignore_errors=True)
    if live_dir.exists():
        live_dir.rename(old_dir)
    new_dir.rename(live_dir)
    shutil.rmtree(old_dir, ignore_errors=True)
    return f"rebuilt the embedded index at {live_dir}: {count} documents, {refused} refused"


def _upsert(backend: IndexBackend, batch: list[SearchDocument], archives: _Archives) -> int:
    if not batch:
        return 0
    result = backend.upsert(batch)
    archives.quarantine_refused([(e.identifier, e.reason) for e in result.errors])
    return len(result.errors)
