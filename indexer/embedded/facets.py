"""Facet counts and the year histogram of an embedded search, multi-select style.

Facets are multi-select: each filtered facet field is counted without its own filter (see
`SearchResponse`). The year histogram (a timeline) is a `histogram` aggregation on the fast
`year` field, likewise counted without the filters on `year`.
"""

from __future__ import annotations

from typing import Any

import tantivy

from indexer.embedded.queries import restrict
from indexer.search_model import FACET_FIELDS, FacetValue, QuerySyntaxError

YEAR_HISTOGRAM_AGG = "year_histogram"

YEAR_HISTOGRAM_SPEC: dict[str, Any] = {
    "histogram": {"field": "year", "interval": 1, "min_doc_count": 1}
}
"""tantivy's histogram aggregation (Elasticsearch syntax): one bucket per year with a record."""


def check_facet_names(wanted: dict[str, int]) -> None:
    for name in wanted:
        if name not in FACET_FIELDS:
            raise QuerySyntaxError(
                f"cannot facet on {name!r}: facet fields are {', '.join(FACET_FIELDS)}"
            )


def facet_counts(
    searcher: tantivy.Searcher,
    query: tantivy.Query,
    base: tantivy.Query,
    faceted_filters: dict[str, tantivy.Query],
    wanted: dict[str, int],
    *,
    with_year_histogram: bool = False,
) -> tuple[dict[str, list[FacetValue]], list[FacetValue]]:
    """Terms aggregations, multi-select style (see SearchResponse), and, when asked, the year
    histogram over `query` in the same pass.

    Facets without a filter of their own share one aggregation over `query` (everything
    the search matched); each filtered facet field gets its own aggregation over `base`
    plus the filters of the other faceted fields. So a search costs one aggregation
    more per filtered facet field, and none more without filters. The histogram rides on the
    shared pass: its scope (the query and every filter but `year`) is `query` itself whenever
    no year filter is set, which is what the caller checks before asking.
    """
    shared = {n: wanted[n] for n in wanted if n not in faceted_filters}
    buckets = aggregate(searcher, query, shared, with_year_histogram=with_year_histogram)
    for name in wanted:
        if name in faceted_filters:
            others = [q for f, q in faceted_filters.items() if f != name]
            scope = restrict(base, others)
            buckets.update(aggregate(searcher, scope, {name: wanted[name]}))
    facets = {
        name: [
            FacetValue(str(int(b["key"])) if name == "year" else str(b["key"]), b["doc_count"])
            for b in buckets[name]
        ]
        for name in wanted
    }
    return facets, _timeline(buckets.get(YEAR_HISTOGRAM_AGG, []))


def _timeline(buckets: list[dict[str, Any]]) -> list[FacetValue]:
    return [FacetValue(str(int(b["key"])), int(b["doc_count"])) for b in buckets]


def year_histogram(
    searcher: tantivy.Searcher,
    text_query: tantivy.Query,
    filters: dict[str, tantivy.Query],
) -> list[FacetValue]:
    """The timeline (see SearchResponse.year_histogram): one bucket per year that has a
    matching record, ascending, over the query and every filter except those on `year`.

    A `histogram` with interval 1 and min_doc_count 1 rather than a terms aggregation: it
    returns every year in key order, with no size to guess, and empty years cost nothing.
    """
    scope = restrict(text_query, [q for name, q in filters.items() if name != "year"])
    return _timeline(aggregate(searcher, scope, {}, with_year_histogram=True)[YEAR_HISTOGRAM_AGG])


def aggregate(
    searcher: tantivy.Searcher,
    query: tantivy.Query,
    sizes: dict[str, int],
    *,
    with_year_histogram: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """facet name -> terms buckets of the documents `query` matches, and the year histogram's
    buckets under YEAR_HISTOGRAM_AGG when asked (one pass)."""
    aggregations: dict[str, Any] = {
        name: {"terms": {"field": "year" if name == "year" else f"f_{name}", "size": max(1, size)}}
        for name, size in sizes.items()
    }
    if with_year_histogram:
        aggregations[YEAR_HISTOGRAM_AGG] = YEAR_HISTOGRAM_SPEC
    if not aggregations:
        return {}
    result = searcher.aggregate(query, aggregations)
    return {name: result.get(name, {}).get("buckets", []) for name in aggregations}
