"""Versioned indices behind one alias, and the zero-downtime rebuild.

Searches and incremental writes use the alias `ernte-records`, which points at exactly one
concrete index `ernte-records-<n>` created from the index template. A rebuild (new mapping,
new analysis, re-normalized records) never touches the live index:

1. install the current template, create `ernte-records-<n+1>` with replicas 0 and refresh
   off (`refresh_interval: -1`), which is how Elastic recommends bulk-loading;
2. bulk-load every document;
3. restore the serving settings (template refresh interval, auto-expanded replicas), refresh;
4. smoke-check the new index (documents counted, a faceted search runs);
5. move the alias with ONE `_aliases` request (remove old + add new: atomic, so no search
   ever sees no index or two indices);
6. delete the old index (unless asked to keep it).

If anything fails before step 5 the new index is deleted and the alias still serves the old
one: a failed rebuild costs nothing but time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING

from indexer.backend import ItemError, SearchDocument, WriteResult
from indexer.elastic.indices import (
    SERVING_SETTINGS,
    RebuildError,
    create_versioned_index,
    delete_indices,
    indices_behind_alias,
    put_template,
    switch_alias,
)

if TYPE_CHECKING:
    from indexer.elastic.backend import ElasticBackend

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5_000


@dataclass(slots=True)
class RebuildReport:
    """What a rebuild did: the new index, the one it replaced, and the write counts."""

    index: str
    previous: list[str]
    written: int = 0
    skipped_stale: int = 0
    errors: list[ItemError] = field(default_factory=list)
    count: int = 0
    deleted_previous: bool = False


def build_index_and_switch_alias(
    backend: ElasticBackend,
    documents: Iterable[SearchDocument],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep_previous: bool = False,
    allow_empty: bool = False,
) -> RebuildReport:
    """Build a new index from `documents` and swap the alias to it (see module docstring).

    Refused-document errors are returned in the report (quarantine them); they do not stop
    the rebuild. An empty new index does not replace a non-empty one unless `allow_empty`.
    """
    client, alias = backend.client, backend.alias
    put_template(client, alias, with_decompounder=backend.with_decompounder)
    previous = indices_behind_alias(client, alias)
    report = RebuildReport(
        index=create_versioned_index(client, alias, bulk_load=True), previous=previous
    )
    try:
        for batch in _batches(documents, batch_size):
            _add(report, backend.upsert_into(report.index, batch))
        client.indices.put_settings(index=report.index, settings=SERVING_SETTINGS)
        client.indices.refresh(index=report.index)
        report.count = _smoke_check(backend, report, previous, allow_empty=allow_empty)
    except BaseException:
        log.error(
            "rebuild failed; the alias still serves the previous index",
            extra={"index": report.index, "alias": alias},
        )
        delete_indices(client, [report.index])
        raise
    switch_alias(client, alias, report.index, previous)
    if not keep_previous:
        delete_indices(client, previous)
        report.deleted_previous = bool(previous)
    return report


def _smoke_check(
    backend: ElasticBackend, report: RebuildReport, previous: Sequence[str], *, allow_empty: bool
) -> int:
    """Count the new index and run one faceted search on it before it goes live."""
    client = backend.client
    count = int(client.count(index=report.index)["count"])
    if report.written and not count:
        raise RebuildError(f"{report.index}: {report.written} documents written but none found")
    if not count and not allow_empty and previous:
        old_count = int(client.count(index=",".join(previous))["count"])
        if old_count:
            raise RebuildError(
                f"{report.index} is empty but {previous} holds {old_count} documents; "
                "refusing to replace it (pass allow_empty to force)"
            )
    backend.smoke_search(report.index)
    return count


def _add(report: RebuildReport, result: WriteResult) -> None:
    report.written += result.written
    report.skipped_stale += result.skipped_stale
    report.errors.extend(result.errors)


def _batches(documents: Iterable[SearchDocument], size: int) -> Iterator[list[SearchDocument]]:
    iterator = iter(documents)
    while batch := list(islice(iterator, size)):
        yield batch
