"""Facet counts and the year histogram of an embedded search, multi-select style.

Facets are multi-select: each filtered facet field is counted without its own filter (see
`SearchResponse`). The year histogram (a timeline) is a `histogram` aggregation on the fast
`year` field, likewise counted without the filters on `year`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import tantivy

from indexer.embedded.queries import restrict
from indexer.search_model import FACET_FIELDS, FacetValue, QuerySyntaxError

_T = TypeVar("_T")

YEAR_HISTOGRAM_AGG = "year_histogram"

YEAR_HISTOGRAM_SPEC: dict[str, Any] = {
    "histogram": {"field": "year", "interval": 1, "min_doc_count": 1}
}
"""tantivy's histogram aggregation (Elasticsearch syntax): one bucket per year with a record."""


SEGMENT_VALUES = 1_000
"""How many values of a field each index segment hands on to a terms aggregation (tantivy's
`segment_size`; by default ten times the size asked for).
A value that ranks below it in one segment loses that segment's records: with the default,
the 7th author of the benchmark's 400,000 records showed 1,323 records, and selecting it gave
1,333. With 1,000 a count is exact whenever each segment's matches hold at most 1,000 values
of the field (type, language and year always), for at most 4 % more time on the benchmark's
subject and author facets (bench/results/facets.txt). Broad queries are counted exactly by
subtraction (`aggregate_by_subtraction`) in fields of up to 10,000 values."""


SPLIT_FIELDS = ("subject", "author")
"""The facet fields records carry several values of. Counting the page's six facets and the
timeline of `Planung` (182,000 of the 388,000 bench records) takes 32 ms in one pass, of which
subject 18 ms and author 9 ms counted alone: with `subject` in a pass of its own on another
thread the two passes take 19 ms (`Entwicklung Stadt`, whose query costs more to evaluate
twice: 21 -> 15 ms). `ernte serve` under bench_serve's fresh load, 2 x 400 searches each way,
alternating: p95 62.7 -> 55.4 ms. Splitting off `subject` from the three facets of `ernte
search` (no author) cost more than it saved (bench_query: p95 22 -> 33 ms, results/query.txt)."""


def check_facet_names(wanted: dict[str, int]) -> None:
    for name in wanted:
        if name not in FACET_FIELDS:
            raise QuerySyntaxError(
                f"cannot facet on {name!r}: facet fields are {', '.join(FACET_FIELDS)}"
            )


BucketsByName = dict[str, list[dict[str, Any]]]
"""Aggregation name -> its buckets (what `aggregate` returns)."""

Runner = Callable[[Callable[[], BucketsByName]], Callable[[], BucketsByName]]
"""Starts one aggregation and returns what waits for its buckets: `run_here` runs it at once;
a search running alone in its process runs some beside the others (`_SpareThreads`)."""


def run_here(task: Callable[[], _T]) -> Callable[[], _T]:
    """A Runner that runs the task at once, in the calling thread."""
    result = task()
    return lambda: result


def facet_counts(
    searcher: tantivy.Searcher,
    query: tantivy.Query,
    base: tantivy.Query,
    faceted_filters: dict[str, tantivy.Query],
    wanted: dict[str, int],
    *,
    with_year_histogram: bool = False,
    whole: Mapping[str, list[dict[str, Any]]] | None = None,
    beside: Runner | None = None,
) -> tuple[dict[str, list[FacetValue]], list[FacetValue]]:
    """Terms aggregations, multi-select style (see SearchResponse), and, when asked, the year
    histogram (the timeline), each riding on a pass that has its scope.

    Facets without a filter of their own share one aggregation over `query` (everything
    the search matched); each filtered facet field gets its own aggregation over `base`
    plus the filters of the other faceted fields. So a search costs one aggregation
    more per filtered facet field, and none more without filters. The timeline's scope is the
    query and every filter but those on `year`: that of the shared pass when no year filter
    is set, else that of the `year` facet's own pass (the caller asks for it here only in
    those two cases).

    `whole` (the caller's choice for a text query that matches most records, when the
    search has no filter or every filter is on one faceted field): facet name -> all
    buckets of the field over every record (`IndexView.whole_counts`). The pass whose scope
    is then the text query alone (the shared pass without filters, else the filtered
    field's own pass) counts those fields by subtraction (`aggregate_by_subtraction`).

    `beside`: runs all but the first aggregation on other threads (each filtered facet field
    is a pass of its own anyway). With it, a shared pass that counts both fields records carry
    several values of (SPLIT_FIELDS) is split in two, one on another thread: every pass
    evaluates the query again (about 5 ms for a compound typed whole), but those two fields
    cost most of the counting (see SPLIT_FIELDS).
    """
    timeline_on_year_pass = with_year_histogram and "year" in faceted_filters
    whole_scope = next(iter(faceted_filters)) if len(faceted_filters) == 1 else None
    passes = _passes(
        searcher,
        query,
        {n: wanted[n] for n in wanted if n not in faceted_filters},
        with_year_histogram=with_year_histogram and not timeline_on_year_pass,
        whole=whole if whole and not faceted_filters else {},
        split=beside is not None,
    )
    for name in wanted:
        if name in faceted_filters:
            others = [q for f, q in faceted_filters.items() if f != name]
            passes += _passes(
                searcher,
                restrict(base, others),
                {name: wanted[name]},
                with_year_histogram=timeline_on_year_pass and name == "year",
                whole=whole if whole and name == whole_scope else {},
                split=False,
            )
    started = [(beside or run_here)(task) for task in passes[1:]]
    buckets = passes[0]() if passes else {}
    for result in started:
        buckets.update(result())
    facets = {
        name: [
            FacetValue(str(int(b["key"])) if name == "year" else str(b["key"]), b["doc_count"])
            for b in buckets[name]
        ]
        for name in wanted
    }
    return facets, _timeline(buckets.get(YEAR_HISTOGRAM_AGG, []))


def _passes(
    searcher: tantivy.Searcher,
    scope: tantivy.Query,
    sizes: dict[str, int],
    *,
    with_year_histogram: bool,
    whole: Mapping[str, list[dict[str, Any]]],
    split: bool,
) -> list[Callable[[], BucketsByName]]:
    """The aggregations counting `sizes` (and the timeline when asked) over `scope`: the
    fields `whole` holds by subtraction, the others directly; none when nothing is asked.
    `split`: the direct count in two passes when it holds both SPLIT_FIELDS."""
    subtracted = {n: size for n, size in sizes.items() if n in whole}
    histogram_subtracted = with_year_histogram and YEAR_HISTOGRAM_AGG in whole
    direct = {n: size for n, size in sizes.items() if n not in subtracted}
    passes: list[Callable[[], BucketsByName]] = []
    if split and all(name in direct for name in SPLIT_FIELDS):
        first = SPLIT_FIELDS[0]
        passes.append(functools.partial(aggregate, searcher, scope, {first: direct.pop(first)}))
    if direct or (with_year_histogram and not histogram_subtracted):
        passes.append(
            functools.partial(
                aggregate,
                searcher,
                scope,
                direct,
                with_year_histogram=with_year_histogram and not histogram_subtracted,
            )
        )
    if subtracted or histogram_subtracted:
        passes.append(
            functools.partial(
                aggregate_by_subtraction,
                searcher,
                scope,
                subtracted,
                whole,
                with_year_histogram=histogram_subtracted,
            )
        )
    return passes


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


def count_with_year(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    """The records `query` matches that have a year (all but a few): a count that skips the
    scoring and ranking a search does."""
    found = searcher.aggregate(query, {"n": {"value_count": {"field": "year"}}})
    return int(found.get("n", {}).get("value") or 0)


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
        name: {
            "terms": {
                "field": "year" if name == "year" else f"f_{name}",
                "size": max(1, size),
                "segment_size": max(SEGMENT_VALUES, 10 * size),
            }
        }
        for name, size in sizes.items()
    }
    if with_year_histogram:
        aggregations[YEAR_HISTOGRAM_AGG] = YEAR_HISTOGRAM_SPEC
    if not aggregations:
        return {}
    result = searcher.aggregate(query, aggregations)
    return {name: result.get(name, {}).get("buckets", []) for name in aggregations}


def aggregate_by_subtraction(
    searcher: tantivy.Searcher,
    query: tantivy.Query,
    sizes: dict[str, int],
    whole: Mapping[str, list[dict[str, Any]]],
    *,
    with_year_histogram: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """What `aggregate` returns, counted as the buckets over every record (`whole`, which
    holds every value of each field named) minus those of the records `query` does not match.

    For a query that matches most records this reads far fewer values: `Stadt` matches 85 %
    of the benchmark's records, and its facets cost 18 ms this way instead of 46 ms
    (bench/results/facets.txt). The counts are exact, and so is the top `size` of each field
    (ties by value, as tantivy orders them): every value's count is known, not only a
    shard's top list.
    """
    others = tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, tantivy.Query.all_query()), (tantivy.Occur.MustNot, query)]
    )
    names = list(sizes) + ([YEAR_HISTOGRAM_AGG] if with_year_histogram else [])
    excluded = aggregate(
        searcher,
        others,
        {name: max(1, len(whole[name])) for name in sizes},
        with_year_histogram=with_year_histogram,
    )
    counted: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        left = {b["key"]: int(b["doc_count"]) for b in whole[name]}
        for bucket in excluded.get(name, []):
            left[bucket["key"]] -= int(bucket["doc_count"])
        remaining = [{"key": k, "doc_count": n} for k, n in left.items() if n > 0]
        if name == YEAR_HISTOGRAM_AGG:
            counted[name] = sorted(remaining, key=lambda b: b["key"])
        else:
            remaining.sort(key=lambda b: (-b["doc_count"], b["key"]))
            counted[name] = remaining[: max(1, sizes[name])]
    return counted
