"""`ElasticBackend`: the IndexBackend contract on Elasticsearch.

Writes go through `helpers.streaming_bulk` in chunks bounded by count and bytes. Every
document is indexed under its OAI identifier with an *external* version derived from its OAI
datestamp (`version_type: external_gte`), so an older copy of a record, arriving late from a
re-harvest or a retried task, never replaces a newer one; Elasticsearch answers such a write
with a version conflict, counted as `skipped_stale`. Items Elasticsearch refuses for any
other reason (mapping errors under `dynamic: strict`, ...) come back as `ItemError`s for the
caller to quarantine; overload (429) and gateway errors are retried with backoff first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import elasticsearch
from elasticsearch import Elasticsearch, helpers

from indexer.backend import ItemError, SearchDocument, WriteResult
from indexer.elastic import indices
from indexer.elastic.connection import (
    ConnectionOptions,
    ElasticConnectionError,
    connect,
    redact_url,
)
from indexer.elastic.mapping import DEFAULT_ALIAS
from indexer.elastic.queries import build_search, to_search_response
from indexer.search_model import FACET_FIELDS, SearchRequest, SearchResponse

log = logging.getLogger(__name__)

VERSION_TYPE = "external_gte"
"""`gte`, not `gt`: re-indexing the same datestamp (a page processed twice) is a no-op
success rather than a conflict, which keeps writes idempotent."""


@dataclass(frozen=True, slots=True)
class BulkOptions:
    """How writes are chunked and retried (defaults suit ~1-2 KB bibliographic records)."""

    chunk_size: int = 500
    max_chunk_bytes: int = 10 * 1024 * 1024
    max_retries: int = 5
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    retry_on_status: tuple[int, ...] = (429, 502, 503, 504)
    refresh: bool | str = False
    """Passed to each bulk request; tests use "wait_for" to search right after a write."""
    parallel: int = 1
    """Bulk requests in flight at once (threads, each streaming chunks of the same actions);
    a rebuild uses 2, so the cluster indexes one chunk while the next one is sent."""


REBUILD_PARALLEL_BULK = 2
"""Concurrent bulk requests while a rebuild loads its new index (refresh off, no replicas)."""


def datestamp_version(datestamp: str) -> int:
    """The external version for an OAI datestamp: seconds since the epoch, UTC.

    Accepts day granularity (`2024-05-01`, midnight) and seconds granularity
    (`2024-05-01T12:30:00Z`, fractions and offsets tolerated). Raises ValueError otherwise.
    """
    text = datestamp.strip()
    if len(text) == 10:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    else:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    seconds = int(moment.timestamp())
    if seconds < 0:
        raise ValueError(f"datestamp {datestamp!r} lies before 1970")
    return seconds


def document_source(document: SearchDocument) -> dict[str, Any]:
    """The `_source` to store: empty values (None, "", []) left out.

    An empty string is not a valid `date` or `integer`, and absent fields keep the index
    small; the search side treats missing and empty alike.
    """
    return {key: value for key, value in document.items() if value not in (None, "", [])}


def index_actions(
    documents: Iterable[SearchDocument], index: str, errors: list[ItemError]
) -> Iterator[dict[str, Any]]:
    """Bulk `index` actions keyed by OAI identifier and versioned by datestamp.

    A document without an identifier or with an unreadable datestamp is not sent: it is
    appended to `errors` with the reason (the caller quarantines it).
    """
    for document in documents:
        identifier = str(document.get("id") or "")
        if not identifier:
            errors.append(ItemError("", f"search document without an id: {sorted(document)}"))
            continue
        datestamp = str(document.get("datestamp") or "")
        try:
            version = datestamp_version(datestamp)
        except ValueError:
            errors.append(
                ItemError(
                    identifier,
                    f"datestamp {datestamp!r} is not an ISO 8601 date or time; it is needed "
                    "as the record's version",
                )
            )
            continue
        yield {
            "_op_type": "index",
            "_index": index,
            "_id": identifier,
            "version": version,
            "version_type": VERSION_TYPE,
            "_source": document_source(document),
        }


def delete_actions(
    identifiers: Iterable[str], index: str, datestamps: Mapping[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Bulk `delete` actions by OAI identifier; with the tombstone's datestamp the delete is
    versioned (`external_gte`), so it cannot remove a newer copy, and the tombstone it leaves
    (for `index.gc_deletes`, 60 s) refuses an older copy written after it."""
    for identifier in identifiers:
        action: dict[str, Any] = {"_op_type": "delete", "_index": index, "_id": identifier}
        stamp = (datestamps or {}).get(identifier)
        if stamp:
            try:
                action["version"] = datestamp_version(stamp)
                action["version_type"] = "external_gte"
            except ValueError:
                pass  # an unreadable datestamp: delete unversioned rather than not at all
        yield action


def apply_bulk_item(result: WriteResult, ok: bool, item: dict[str, Any]) -> None:
    """Count one streaming_bulk result item into `result`.

    Deleting a missing document (404) is not an error; a version conflict means a newer copy
    is stored (stale write or delete skipped); anything else becomes an ItemError.
    """
    operation, info = next(iter(item.items()))
    status = int(info.get("status", 0))
    if ok:
        if operation == "delete":
            result.deleted += 1
        else:
            result.written += 1
        return
    if operation == "delete" and status == 404:
        return
    error = info.get("error")
    error_type = error.get("type", "") if isinstance(error, dict) else ""
    if status == 409 and error_type == "version_conflict_engine_exception":
        result.skipped_stale += 1
        return
    result.errors.append(ItemError(str(info.get("_id", "")), _describe_error(status, error)))


def run_bulk(
    client: Elasticsearch,
    actions: Iterable[dict[str, Any]],
    options: BulkOptions,
    result: WriteResult,
) -> WriteResult:
    """Stream `actions` to Elasticsearch and count every item's outcome into `result`.

    Chunks are bounded by count and bytes; with `options.parallel` > 1, that many threads
    each stream chunks drawn from the same actions (helpers.parallel_bulk would not retry
    429s with backoff, streaming_bulk does).
    """
    try:
        if options.parallel <= 1:
            for ok, item in _stream(client, actions, options):
                apply_bulk_item(result, ok, item)
        else:
            _run_parallel(client, actions, options, result)
    except elasticsearch.ConnectionError as error:
        raise ElasticConnectionError(
            f"Elasticsearch became unreachable during a bulk write ({error}); "
            f"{result.written} written and {result.deleted} deleted before it failed"
        ) from None
    return result


def _stream(
    client: Elasticsearch, actions: Iterable[dict[str, Any]], options: BulkOptions
) -> Iterable[tuple[bool, Any]]:
    extra: dict[str, Any] = {}
    if options.refresh:
        extra["refresh"] = options.refresh
    return helpers.streaming_bulk(
        client,
        actions,
        chunk_size=options.chunk_size,
        max_chunk_bytes=options.max_chunk_bytes,
        raise_on_error=False,
        max_retries=options.max_retries,
        initial_backoff=options.initial_backoff,
        max_backoff=options.max_backoff,
        retry_on_status=options.retry_on_status,
        **extra,
    )


def _run_parallel(
    client: Elasticsearch,
    actions: Iterable[dict[str, Any]],
    options: BulkOptions,
    result: WriteResult,
) -> None:
    source = iter(actions)
    take, count = threading.Lock(), threading.Lock()

    def shared() -> Iterator[dict[str, Any]]:
        while True:
            with take:
                action = next(source, None)
            if action is None:
                return
            yield action

    def worker() -> None:
        for ok, item in _stream(client, shared(), options):
            with count:
                apply_bulk_item(result, ok, item)

    with ThreadPoolExecutor(options.parallel, thread_name_prefix="ernte-bulk") as pool:
        for done in [pool.submit(worker) for _ in range(options.parallel)]:
            done.result()


def write_documents(
    client: Elasticsearch,
    index: str,
    documents: Iterable[SearchDocument],
    options: BulkOptions,
) -> WriteResult:
    """Upsert documents into `index` (an alias or a concrete index)."""
    result = WriteResult()
    run_bulk(client, index_actions(documents, index, result.errors), options, result)
    log.info(
        "bulk upsert done",
        extra={
            "index": index,
            "written": result.written,
            "skipped_stale": result.skipped_stale,
            "errors": len(result.errors),
        },
    )
    return result


def delete_documents(
    client: Elasticsearch,
    index: str,
    identifiers: Iterable[str],
    options: BulkOptions,
    datestamps: Mapping[str, str] | None = None,
) -> WriteResult:
    """Delete documents by OAI identifier from `index` (missing ones are fine)."""
    actions = delete_actions(identifiers, index, datestamps)
    result = run_bulk(client, actions, options, WriteResult())
    log.info("bulk delete done", extra={"index": index, "deleted": result.deleted})
    return result


class ElasticBackend:
    """The IndexBackend on Elasticsearch: reads and writes go through `alias`.

    The alias points at one versioned index `<alias>-<n>` built from the index template;
    `create(recreate=True)` and `indexer.elastic.rebuild.build_index_and_switch_alias` swap it atomically.
    Facets are multi-select (each counted without its own field's filters), as in the
    embedded backend (see `queries`).
    """

    def __init__(
        self,
        client: Elasticsearch,
        *,
        alias: str = DEFAULT_ALIAS,
        bulk: BulkOptions | None = None,
        with_decompounder: bool = False,
    ) -> None:
        self.client = client
        self.alias = alias
        self.bulk = bulk or BulkOptions()
        self.with_decompounder = with_decompounder

    @classmethod
    def connect(cls, options: ConnectionOptions, alias: str = DEFAULT_ALIAS) -> ElasticBackend:
        """Connect to the server `options` describe, check it, and use the index behind `alias`."""
        return cls(connect(options), alias=alias)

    @classmethod
    def for_tests(cls, es_url: str, index_name: str) -> ElasticBackend:
        """A backend on its own alias/template `index_name`, refreshing after each write."""
        client = connect(ConnectionOptions(url=es_url))
        return cls(client, alias=index_name, bulk=BulkOptions(refresh="wait_for"))

    def create(self, *, recreate: bool = False) -> None:
        """Install the template; create `<alias>-1` behind the alias if there is none.

        With `recreate`, a fresh empty index replaces the current one (alias swapped in one
        request, old index deleted afterwards).
        """
        indices.put_template(self.client, self.alias, with_decompounder=self.with_decompounder)
        current = indices.indices_behind_alias(self.client, self.alias)
        if current and not recreate:
            return
        new_index = indices.create_versioned_index(self.client, self.alias)
        indices.switch_alias(self.client, self.alias, new_index, current)
        indices.delete_indices(self.client, current)

    def upsert(self, documents: Sequence[SearchDocument]) -> WriteResult:
        return write_documents(self.client, self.alias, documents, self.bulk)

    def delete(
        self, identifiers: Iterable[str], datestamps: Mapping[str, str] | None = None
    ) -> WriteResult:
        return delete_documents(self.client, self.alias, identifiers, self.bulk, datestamps)

    def upsert_into(self, index: str, documents: Iterable[SearchDocument]) -> WriteResult:
        """Upsert into a concrete index (a rebuild's new one), never waiting for a refresh:
        a bulk-loading index has refresh switched off, so `wait_for` would never return."""
        loading = replace(self.bulk, refresh=False, parallel=REBUILD_PARALLEL_BULK)
        return write_documents(self.client, index, documents, loading)

    def smoke_search(self, index: str) -> SearchResponse:
        """One faceted, highlighted search with the year histogram on `index`: proves query,
        sort and aggregations work against its mapping before the alias is switched to it."""
        request = SearchRequest(limit=1, facets=dict.fromkeys(FACET_FIELDS, 1), year_histogram=True)
        return self._search(request, index)

    def count(self) -> int:
        return int(self.client.count(index=self.alias)["count"])

    def search(self, request: SearchRequest) -> SearchResponse:
        return self._search(request, self.alias)

    def _search(self, request: SearchRequest, index: str) -> SearchResponse:
        search = build_search(request, index)
        search = search.using(self.client)
        return to_search_response(search.execute().to_dict(), request)

    def refresh(self) -> None:
        """Make everything written so far searchable now (tests, end of a rebuild)."""
        self.client.indices.refresh(index=self.alias)

    def analyze(self, text: str, analyzer: str = "de") -> list[str]:
        """The tokens an index analyzer produces for `text` (`_analyze` on the alias)."""
        response = self.client.indices.analyze(index=self.alias, analyzer=analyzer, text=text)
        return [token["token"] for token in response["tokens"]]

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        hosts = [redact_url(str(node.base_url)) for node in self.client.transport.node_pool.all()]
        return f"ElasticBackend(alias={self.alias!r}, hosts={hosts})"


def _describe_error(status: int, error: Any) -> str:
    """A one-line reason from a bulk item error (type: reason; caused by ...)."""
    if not isinstance(error, dict):
        return f"HTTP {status}: {error}"
    reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        reason += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
    return f"HTTP {status} {reason}"
