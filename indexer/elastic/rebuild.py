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
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from elasticsearch import Elasticsearch

from indexer.backend import ItemError, SearchDocument, WriteResult
from indexer.elastic.mapping import (
    AUTO_EXPAND_REPLICAS,
    DEFAULT_ALIAS,
    REFRESH_INTERVAL,
    template_body,
)

if TYPE_CHECKING:
    from indexer.elastic.backend import ElasticBackend

log = logging.getLogger(__name__)

__all__ = [
    "BULK_LOAD_SETTINGS",
    "DEFAULT_ALIAS",
    "SERVING_SETTINGS",
    "RebuildError",
    "RebuildReport",
    "alias_switch_actions",
    "build_index_and_switch_alias",
    "create_versioned_index",
    "delete_indices",
    "indices_behind_alias",
    "next_index_name",
    "put_template",
    "switch_alias",
    "versioned_indices",
]

BULK_LOAD_SETTINGS: dict[str, Any] = {
    "index": {"number_of_replicas": 0, "auto_expand_replicas": False, "refresh_interval": "-1"}
}
"""Overrides of the template while loading: no replica copies, no periodic refresh."""

SERVING_SETTINGS: dict[str, Any] = {
    "index": {"auto_expand_replicas": AUTO_EXPAND_REPLICAS, "refresh_interval": REFRESH_INTERVAL}
}
"""The template's values, restored once loading is done."""

DEFAULT_BATCH_SIZE = 5_000


class RebuildError(RuntimeError):
    """A rebuild that was stopped before the alias switch (the live index is untouched)."""


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


def put_template(client: Elasticsearch, alias: str, *, with_decompounder: bool = False) -> None:
    """Install (or update) the composable template `alias` for the indices `alias-*`."""
    body = template_body(alias, with_decompounder=with_decompounder)
    client.indices.put_index_template(name=alias, **body)


def versioned_indices(client: Elasticsearch, alias: str) -> list[str]:
    """Existing `alias-<n>` indices, oldest first."""
    found = client.indices.get(index=f"{alias}-*", allow_no_indices=True, ignore_unavailable=True)
    return sorted(
        (name for name in found.body if _version_number(alias, name) is not None),
        key=lambda name: _version_number(alias, name) or 0,
    )


def next_index_name(alias: str, existing: Iterable[str]) -> str:
    """`alias-<n+1>` after the highest existing version (`alias-1` when there is none)."""
    numbers = [n for n in (_version_number(alias, name) for name in existing) if n is not None]
    return f"{alias}-{max(numbers, default=0) + 1}"


def indices_behind_alias(client: Elasticsearch, alias: str) -> list[str]:
    """The concrete indices the alias points at now ([] when the alias does not exist)."""
    if client.indices.exists(index=alias) and not client.indices.exists_alias(name=alias):
        raise RebuildError(
            f"'{alias}' is a concrete index, not an alias; ernte keeps its data in "
            f"'{alias}-<n>' indices behind the alias '{alias}'. Reindex or delete '{alias}' "
            "first, or set ES_INDEX_ALIAS to another name"
        )
    if not client.indices.exists_alias(name=alias):
        return []
    return sorted(client.indices.get_alias(name=alias).body)


def create_versioned_index(client: Elasticsearch, alias: str, *, bulk_load: bool = False) -> str:
    """Create the next `alias-<n>` from the template; `bulk_load` relaxes refresh/replicas."""
    name = next_index_name(alias, versioned_indices(client, alias))
    if bulk_load:
        client.indices.create(index=name, settings=BULK_LOAD_SETTINGS)
    else:
        client.indices.create(index=name)
    log.info("created index", extra={"index": name, "alias": alias, "bulk_load": bulk_load})
    return name


def alias_switch_actions(
    alias: str, new_index: str, old_indices: Sequence[str]
) -> list[dict[str, Any]]:
    """The `_aliases` actions that move `alias` to `new_index` in one atomic request."""
    actions: list[dict[str, Any]] = [
        {"remove": {"index": old, "alias": alias}} for old in old_indices if old != new_index
    ]
    actions.append({"add": {"index": new_index, "alias": alias}})
    return actions


def switch_alias(
    client: Elasticsearch, alias: str, new_index: str, old_indices: Sequence[str]
) -> None:
    client.indices.update_aliases(actions=alias_switch_actions(alias, new_index, old_indices))
    log.info(
        "alias switched",
        extra={"alias": alias, "index": new_index, "previous": list(old_indices)},
    )


def delete_indices(client: Elasticsearch, names: Iterable[str]) -> None:
    """Delete concrete indices by exact name (never a wildcard, never an alias)."""
    for name in names:
        if "*" in name or "," in name:
            raise ValueError(f"refusing to delete {name!r}: only exact index names")
        client.indices.delete(index=name)
        log.info("deleted index", extra={"index": name})


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


def _version_number(alias: str, name: str) -> int | None:
    match = re.fullmatch(re.escape(alias) + r"-(\d+)", name)
    return int(match.group(1)) if match else None
