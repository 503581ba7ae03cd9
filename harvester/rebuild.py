"""`ernte index rebuild`: a fresh index from every raw archive, switched in only when complete.

Elasticsearch: a new versioned index behind the alias, loaded in bulk, then one atomic alias
switch (indexer.elastic.rebuild). Embedded: a new index directory beside the live one, then a
directory swap. Either way searches see the old index until the new one is whole, and the raw
archive is the only input: no server is contacted.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator

from harvester.archive import RawArchive, archives_of
from harvester.locks import index_write_lock
from harvester.model import RawRecord
from harvester.pipeline import normalize_batch
from harvester.settings import Settings
from harvester.sources import Source, SourceError, load_sources
from indexer.backend import IndexBackend, SearchDocument
from indexer.document import build_document

log = logging.getLogger(__name__)


def _sources(settings: Settings) -> dict[str, Source]:
    try:
        return load_sources(settings.sources_file)
    except SourceError:
        return {}


def archived_documents(
    settings: Settings, owners: dict[str, RawArchive]
) -> Iterator[SearchDocument]:
    """Search documents for the latest live version of every archived record.

    Records that fail to normalize are quarantined on the way; `owners` learns which archive
    each identifier came from so that index-side refusals can be quarantined there too.
    """
    configured = _sources(settings)
    for key, prefix, path in archives_of(settings.archive_dir):
        source = configured.get(key) or Source(key=key, base_url="", metadata_prefix=prefix)
        archive = RawArchive(path)
        batch: list[RawRecord] = []
        for raw in archive.iter_latest():
            if raw.deleted:
                continue
            batch.append(raw)
            if len(batch) >= 500:
                yield from _documents(batch, source, archive, owners)
                batch = []
        yield from _documents(batch, source, archive, owners)


def _documents(
    batch: list[RawRecord], source: Source, archive: RawArchive, owners: dict[str, RawArchive]
) -> Iterator[SearchDocument]:
    records, _ = normalize_batch(batch, source, archive)
    for record in records:
        owners[record.identifier] = archive
        yield build_document(record)


def rebuild_index(settings: Settings) -> str:
    """Rebuild the configured backend's index; returns a one-line report."""
    owners: dict[str, RawArchive] = {}
    try:
        if settings.es_url:
            return _rebuild_elasticsearch(settings, owners)
        with index_write_lock(settings):  # no harvest writes to the old index meanwhile
            return _rebuild_embedded(settings, owners)
    finally:
        for archive in {id(a): a for a in owners.values()}.values():
            archive.close()


def _rebuild_elasticsearch(settings: Settings, owners: dict[str, RawArchive]) -> str:
    from indexer.elastic.backend import ElasticBackend
    from indexer.elastic.rebuild import rebuild_index as es_rebuild

    backend = ElasticBackend.from_settings(settings)
    try:
        report = es_rebuild(backend, archived_documents(settings, owners))
    finally:
        backend.close()
    for error in report.errors:
        if error.identifier in owners:
            owners[error.identifier].quarantine(error.identifier, "index", error.reason, None)
    previous = ", ".join(report.previous) or "none"
    return (
        f"rebuilt {report.index} ({report.count} documents, {len(report.errors)} refused and "
        f"quarantined); alias {settings.es_index_alias} switched from {previous}"
    )


def _rebuild_embedded(settings: Settings, owners: dict[str, RawArchive]) -> str:
    from indexer.embedded import EmbeddedBackend

    live_dir = settings.index_dir
    new_dir = live_dir.with_name(live_dir.name + ".rebuild")
    old_dir = live_dir.with_name(live_dir.name + ".previous")
    shutil.rmtree(new_dir, ignore_errors=True)
    backend = EmbeddedBackend(new_dir)
    backend.create(recreate=True)
    written = refused = 0
    batch: list[SearchDocument] = []
    try:
        for document in archived_documents(settings, owners):
            batch.append(document)
            if len(batch) >= 1000:
                written, refused = _flush(backend, batch, owners, written, refused)
                batch = []
        written, refused = _flush(backend, batch, owners, written, refused)
        count = backend.count()
    finally:
        backend.close()
    shutil.rmtree(old_dir, ignore_errors=True)
    if live_dir.exists():
        live_dir.rename(old_dir)
    new_dir.rename(live_dir)
    shutil.rmtree(old_dir, ignore_errors=True)
    return f"rebuilt the embedded index at {live_dir}: {count} documents, {refused} refused"


def _flush(
    backend: IndexBackend,
    batch: list[SearchDocument],
    owners: dict[str, RawArchive],
    written: int,
    refused: int,
) -> tuple[int, int]:
    if not batch:
        return written, refused
    result = backend.upsert(batch)
    for error in result.errors:
        owners[error.identifier].quarantine(error.identifier, "index", error.reason, None)
    return written + result.written, refused + len(result.errors)
