"""The search request and response models both backends share.

`ernte search --json` prints `SearchResponse.to_dict()`; its shape is stable and
documented in README ("Search output").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FACET_FIELDS: tuple[str, ...] = (
    "subject",
    "type",
    "normalized_type",
    "year",
    "author",
    "language",
    "source",
    "set",
    "journal",
)
"""Exact-match fields a user can facet and filter on (document field of the same name)."""

SortOrder = Literal["relevance", "year_desc", "year_asc"]


@dataclass(slots=True)
class Filter:
    """`field = value`, or for `year` an inclusive range `low..high` (either end open)."""

    field: str
    value: str = ""
    low: int | None = None
    high: int | None = None

    @property
    def is_range(self) -> bool:
        return self.low is not None or self.high is not None


@dataclass(slots=True)
class SearchRequest:
    """What a user asks for.

    query: user query syntax (words ANDed, "phrases", -exclusion, field:value); "" = all.
    filters: exact facet filters (ANDed across fields, ORed within one field).
    facets: facet field -> number of values wanted.
    sort: relevance (default), year_desc, year_asc.
    offset/limit: paging; search_after: opaque cursor from a previous response (deep paging).
    highlight: return highlighted snippets (`<mark>`...`</mark>`) for title and abstract.
    """

    query: str = ""
    filters: list[Filter] = field(default_factory=list)
    facets: dict[str, int] = field(default_factory=dict)
    sort: SortOrder = "relevance"
    offset: int = 0
    limit: int = 10
    search_after: list[Any] | None = None
    highlight: bool = True


@dataclass(slots=True)
class Hit:
    """One matching record: its identity, display fields, score and highlights."""

    id: str
    score: float
    title: str
    year: int | None = None
    authors: list[str] = field(default_factory=list)
    type: str = ""
    subjects: list[str] = field(default_factory=list)
    source: str = ""
    highlights: dict[str, list[str]] = field(default_factory=dict)
    sort: list[Any] | None = None


@dataclass(slots=True)
class FacetValue:
    value: str
    count: int


@dataclass(slots=True)
class SearchResponse:
    """total: matching records; hits: the requested page; facets: field -> value counts
    over everything the query and filters matched; next_search_after: cursor for the page
    after this one (or None)."""

    total: int
    hits: list[Hit] = field(default_factory=list)
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)
    took_ms: float = 0.0
    next_search_after: list[Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class QuerySyntaxError(ValueError):
    """A user query that cannot be parsed; the message says where and why."""
