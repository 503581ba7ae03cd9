"""The search as a user writes it (query, `field=value` filters, facet names, sort) -> one
`SearchRequest`: the same for `ernte search`, `ernte demo` and `ernte serve`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from indexer.filters import fold_value
from indexer.query import FIELD_ALIASES, check_utf8, parse_year_value
from indexer.search_model import (
    FACET_FIELDS,
    SORT_ORDERS,
    Filter,
    QuerySyntaxError,
    SearchRequest,
    SortOrder,
)

MAX_FILTERS = 100
"""The most distinct filters one search may carry. Each costs the backends a lookup and a
clause (and the search page a link per filter in every other filter's link): unbounded, a
URL of 5,000 `filter=year:...` took 10 s of a server's CPU, like the long queries that
`indexer.query.MAX_QUERY_WORDS` bounds."""


def parse_filter(text: str) -> Filter:
    """`field=value`, or `year=2005..2010` (either end may be open: `year=..2010`).

    The year value is read by the query syntax's parser, so `year=2010..2005` is the same
    one-line error as `year:2010..2005` in the query. Other values are compared case- and
    umlaut-insensitively by the backends (`indexer.filters`).
    """
    check_utf8(text, "filter")
    name, sep, value = text.partition("=")
    typed, value = name.strip(), value.strip()
    name = FIELD_ALIASES.get(typed.lower(), typed.lower())  # `jahr=2009`, `Type=`: as in queries
    if not sep or not typed or not value:
        raise QuerySyntaxError(
            f"filter {text!r}: write field=value (e.g. type=Zeitschriftenaufsatz)"
        )
    if name not in FACET_FIELDS:
        raise QuerySyntaxError(
            f"filter {text!r}: unknown field {typed!r}; filterable: {', '.join(FACET_FIELDS)}"
        )
    if name == "year":
        try:
            low, high = parse_year_value(value)
        except QuerySyntaxError as error:
            raise QuerySyntaxError(f"filter {text!r}: {error}") from None
        if ".." in value:
            return Filter(name, low=low, high=high)
    return Filter(name, value)


def distinct_filters(written: Sequence[str]) -> list[Filter]:
    """The filters parsed, each once: two that filter alike (`type=Monographie` beside
    `Typ=monographie`: the field by its alias, the value folded as the backends compare it,
    `indexer.filters.fold_value`) are one filter, in the first spelling."""
    kept: dict[tuple[str, str, int | None, int | None], Filter] = {}
    for text in written:
        item = parse_filter(text)
        kept.setdefault((item.field, fold_value(item.value), item.low, item.high), item)
    return list(kept.values())


def build_request(
    query: str,
    filters: Sequence[str],
    facets: Sequence[str],
    facet_size: int,
    sort: str,
    limit: int,
    offset: int,
    *,
    year_histogram: bool = False,
) -> SearchRequest:
    for name in facets:
        if name not in FACET_FIELDS:
            raise QuerySyntaxError(f"unknown facet {name!r}; available: {', '.join(FACET_FIELDS)}")
    distinct = distinct_filters(filters)
    if len(distinct) > MAX_FILTERS:
        raise QuerySyntaxError(
            f"{len(distinct)} filters: a search takes at most {MAX_FILTERS}"
            " (values of one field are ORed: ask for fewer, or search with the query)"
        )
    if sort not in SORT_ORDERS:
        raise QuerySyntaxError(f"sort {sort!r}: use {', '.join(SORT_ORDERS)}")
    return SearchRequest(
        query=query,
        filters=distinct,
        facets={name: facet_size for name in facets},
        sort=cast(SortOrder, sort),
        limit=limit,
        offset=offset,
        year_histogram=year_histogram,
    )
