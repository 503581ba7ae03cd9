"""The one small interface both index backends implement (embedded and Elasticsearch)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from indexer.search_model import SearchRequest, SearchResponse

SearchDocument = dict[str, Any]
"""A flat search document as built by `harvester.run.document.build_document`."""


@dataclass(slots=True)
class ItemError:
    """A document the backend refused, with the record identifier and the reason."""

    identifier: str
    reason: str


@dataclass(slots=True)
class WriteResult:
    """What a batch write did: counts and per-item errors (never silently dropped)."""

    written: int = 0
    deleted: int = 0
    skipped_stale: int = 0
    errors: list[ItemError] = field(default_factory=list)


class IndexBackend(Protocol):
    """create/open, upsert in batches, delete by identifier, count, search with facets.

    Writes are idempotent: a document is keyed by its OAI identifier, and a document whose
    `datestamp` is older than the stored one never replaces it.
    """

    def create(self, *, recreate: bool = False) -> None:
        """Create the index if missing (or drop and create it with `recreate`)."""
        ...

    def upsert(self, documents: Sequence[SearchDocument]) -> WriteResult:
        """Insert or replace documents by `id`."""
        ...

    def delete(
        self, identifiers: Iterable[str], datestamps: Mapping[str, str] | None = None
    ) -> WriteResult:
        """Remove documents by OAI identifier (missing ones are not an error).

        With `datestamps` (identifier -> the tombstone's OAI datestamp), a stored document that
        is newer than its tombstone stays: a record deleted and later restored is not removed
        when the old deletion is processed last. Refused deletes count as `skipped_stale`.
        """
        ...

    def count(self) -> int:
        """Number of searchable documents."""
        ...

    def search(self, request: SearchRequest) -> SearchResponse:
        """Run a search with filters, facets, sort, paging and highlights."""
        ...

    def close(self) -> None:
        """Flush pending writes and release resources."""
        ...
