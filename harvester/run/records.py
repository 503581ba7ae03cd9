"""One archived record by its OAI identifier: found in the raw archive, normalized on request.

Shared by `ernte show` and the `ernte serve` record page/API, so both show the same record.
"""

from __future__ import annotations

from dataclasses import dataclass

from harvester.model import RawRecord, Record
from harvester.settings import Settings
from harvester.sources import load_sources, source_of_archive
from harvester.store.archive import RawArchive, archives_of


@dataclass(slots=True)
class ArchivedRecord:
    """The latest archived version of a record and the source archive it was found in."""

    source: str
    raw: RawRecord


def find_archived(
    settings: Settings, identifier: str, source: str | None = None
) -> tuple[str, RawArchive] | None:
    """The (source key, open archive) holding `identifier`, or None; the caller closes it."""
    try:
        identifier.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are no UTF-8 on the command line: no identifier
        return None
    for src, _prefix, path in archives_of(settings.archive_dir, source):
        archive = RawArchive(path, readonly=True)
        if archive.get(identifier) is not None:
            return src, archive
        archive.close()
    return None


def load_archived(
    settings: Settings, identifier: str, source: str | None = None
) -> ArchivedRecord | None:
    """The latest archived version of `identifier` (archive closed again), or None."""
    found = find_archived(settings, identifier, source)
    if found is None:
        return None
    src_key, archive = found
    with archive:
        raw = archive.get(identifier)
    assert raw is not None
    return ArchivedRecord(src_key, raw)


def normalize_archived(settings: Settings, record: ArchivedRecord) -> Record:
    """The normalized record, through the crosswalk its source is configured with.

    Raises `harvester.normalize.normalizer.QuarantineError` for a record that cannot be normalized."""
    from harvester.normalize.normalizer import normalize
    from harvester.run.pipeline import crosswalk_for

    src = source_of_archive(
        load_sources(settings.sources_file), record.source, record.raw.metadata_prefix
    )
    return normalize(record.raw, record.source, crosswalk_for(src, record.raw.metadata_prefix))
