"""The search request and response models both backends share.

`ernte search --json` prints `SearchResponse.to_dict()`; its shape is stable and
documented in README ("Search output").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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
SORT_ORDERS: tuple[SortOrder, ...] = ("relevance", "year_desc", "year_asc")


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

    query: user query syntax ("phrases", -exclusion, field:value, bare words of which
        DEFAULT_MIN_SHOULD_MATCH must match: all of one or two, all but one of more); "" = all.
    filters: exact facet filters (ANDed across fields, ORed within one field; a facet is
        counted without the filters on its own field, see SearchResponse).
    facets: facet field -> number of values wanted.
    sort: relevance (default), year_desc, year_asc.
    offset/limit: paging; search_after: opaque cursor from a previous response (deep paging).
    highlight: return highlighted snippets (`<mark>`...`</mark>`) for title and abstract.
    year_histogram: also return the result set's distribution over the years (a timeline,
        see SearchResponse.year_histogram); off by default, as it costs one more
        aggregation.
    """

    query: str = ""
    filters: list[Filter] = field(default_factory=list)
    facets: dict[str, int] = field(default_factory=dict)
    sort: SortOrder = "relevance"
    offset: int = 0
    limit: int = 10
    search_after: list[Any] | None = None
    highlight: bool = True
    year_histogram: bool = False


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

    def to_dict(self) -> dict[str, Any]:
        """`dataclasses.asdict(self)`, written out (see `SearchResponse.to_dict`)."""
        return {
            "id": self.id,
            "score": self.score,
            "title": self.title,
            "year": self.year,
            "authors": list(self.authors),
            "type": self.type,
            "subjects": list(self.subjects),
            "source": self.source,
            "highlights": {name: list(marked) for name, marked in self.highlights.items()},
            "sort": None if self.sort is None else list(self.sort),
        }


@dataclass(slots=True)
class FacetValue:
    value: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "count": self.count}


@dataclass(slots=True)
class SearchResponse:
    """What a search found.

    total: records matching the query and ALL filters; hits: the requested page of them.
    facets: field -> value counts, multi-select style (as VuFind and Kibana count): the
    counts of facet F are taken over the query plus every filter EXCEPT the filters on F
    itself, so selecting `subject=Verkehr` narrows the hits and the other facets but leaves
    the sibling subjects (with the counts they would get if chosen instead) visible.
    Filters on a field that is not faceted restrict every facet. With no filters, the counts
    cover exactly the `total` records.
    next_search_after: cursor for the page after this one (or None).
    year_histogram: when the request asked for it, every year with at least one matching
    record, ascending by year (value = the year as a string, count); empty otherwise. Unlike
    the `year` facet (the top years by count) it is the whole timeline. It is multi-select
    like the facets: counted over the query and every filter except the filters on `year`,
    so a year range narrows the hits but the timeline still shows the years around it.
    Records without a year are not in it.
    """

    total: int
    hits: list[Hit] = field(default_factory=list)
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)
    took_ms: float = 0.0
    next_search_after: list[Any] | None = None
    year_histogram: list[FacetValue] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The response as plain data (what `ernte search --json` prints and the API returns):
        what `dataclasses.asdict` gives for what the backends put in it (strings, numbers,
        lists), with lists and dicts of its own down to the values of a cursor or highlight,
        which are shared; written out because asdict, which copies every value generically,
        took about 1 ms of a page search with six facets."""
        return {
            "total": self.total,
            "hits": [hit.to_dict() for hit in self.hits],
            "facets": {
                name: [value.to_dict() for value in values] for name, values in self.facets.items()
            },
            "took_ms": self.took_ms,
            "next_search_after": (
                None if self.next_search_after is None else list(self.next_search_after)
            ),
            "year_histogram": [value.to_dict() for value in self.year_histogram],
        }


MAX_HITS = 10_000
"""The most hits one search may ask for (`ernte search --limit`): Elasticsearch's default
result window; further on, page with `next_search_after`."""

MAX_FACET_SIZE = 1_000
"""The most values one facet may ask for (`--facet-size`, the API's `facet_size`)."""

DEFAULT_MIN_SHOULD_MATCH = "2<-1"
"""How many bare words of a query must match (Elasticsearch `minimum_should_match` syntax):
all of one or two words, all but one of three or more. Measured in
bench/results/relevance.md; both backends use it."""

DEFAULT_PROXIMITY_BOOST = 1.0
"""Weight of the optional sloppy-phrase clause that lifts records where the free words of a
multi-word query stand close together (title, subject, abstract). 0 switches it off."""

DEFAULT_PROXIMITY_SLOP = 2
"""Positions the words of the proximity clause may move (Lucene/tantivy phrase slop)."""

SUBJECT_NORMS = False
"""Whether the subject heading fields (subject, its exact spellings, its compound parts) are
scored with BM25 length normalization. Off: headings are a set, and a record catalogued with
20 headings is not less about each than one with 2 (issue 15, measured in
bench/results/relevance.md). The embedded backend scores them by idf and weight
(`indexer.embedded.queries.no_norms_weight`), Elasticsearch by the `heading_set` similarity."""

_MSM_SIMPLE = re.compile(r"^-?\d+%?$")
_MSM_CONDITION = re.compile(r"^(\d+)<(-?\d+%?)$")


def required_word_count(spec: str, optional: int) -> int:
    """How many of `optional` words must match under a `minimum_should_match` spec.

    Supported (the subset of Elasticsearch's syntax ernte needs): an integer (`2`), a
    negative integer (`-1`: all but one), a percentage (`75%`, rounded down), a negative
    percentage (`-25%`), and conditions `N<spec` (up to N words all are required, above N
    the spec applies), several separated by spaces (`2<-1 5<75%`). Computed as Lucene's
    `Queries.calculateMinShouldMatch` (in exact integer arithmetic), then clamped to
    1..optional: Lucene would match nothing when the number exceeds the words present, which
    a search box should not do. Both backends call this; Elasticsearch receives the integer,
    so they cannot disagree. Raises ValueError for a spec outside the subset.
    """
    if optional <= 0:
        return 0
    text = re.sub(r"\s*<\s*", "<", spec.strip())
    if not text:
        raise ValueError("minimum_should_match is empty")
    if "<" in text:
        result = optional
        for part in text.split():
            match = _MSM_CONDITION.match(part)
            if match is None:
                raise ValueError(f"minimum_should_match condition {part!r} is not N<spec")
            if optional <= int(match[1]):
                break
            result = _simple_count(match[2], optional)
    else:
        result = _simple_count(text, optional)
    return min(max(result, 1), optional)


def _simple_count(spec: str, optional: int) -> int:
    if not _MSM_SIMPLE.match(spec):
        raise ValueError(
            f"minimum_should_match {spec!r} is not an integer or a percentage (2, -1, 75%, -25%)"
        )
    negative = spec.startswith("-")
    percent = spec.endswith("%")  # Lucene truncates a percentage toward zero
    magnitude = optional * abs(int(spec[:-1])) // 100 if percent else abs(int(spec))
    return optional - magnitude if negative else magnitude


class QuerySyntaxError(ValueError):
    """A user query that cannot be parsed; the message says where and why."""
