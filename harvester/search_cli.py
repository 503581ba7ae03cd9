"""`ernte search`: turn command-line options into a SearchRequest, and a response into tables
(hits, facets, and on request the year histogram as a text timeline)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from indexer.search_model import (
    FACET_FIELDS,
    FacetValue,
    Filter,
    QuerySyntaxError,
    SearchRequest,
    SearchResponse,
    SortOrder,
)

_RANGE = re.compile(r"^(\d{0,4})\.\.(\d{0,4})$")

TIMELINE_BAR_WIDTH = 40
"""Characters of the longest bar of the year timeline (the year with the most records)."""


def parse_filter(text: str) -> Filter:
    """`field=value`, or `year=2005..2010` (either end may be open: `year=..2010`)."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise QuerySyntaxError(
            f"filter {text!r}: write field=value (e.g. type=Zeitschriftenaufsatz)"
        )
    if name not in FACET_FIELDS:
        raise QuerySyntaxError(
            f"filter {text!r}: unknown field {name!r}; filterable: {', '.join(FACET_FIELDS)}"
        )
    match = _RANGE.match(value)
    if name == "year" and match:
        low, high = match.groups()
        return Filter(name, low=int(low) if low else None, high=int(high) if high else None)
    return Filter(name, value)


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
    sort_order: SortOrder = "relevance"
    if sort in ("year_desc", "year_asc"):
        sort_order = "year_desc" if sort == "year_desc" else "year_asc"
    return SearchRequest(
        query=query,
        filters=[parse_filter(f) for f in filters],
        facets={name: facet_size for name in facets},
        sort=sort_order,
        limit=limit,
        offset=offset,
        year_histogram=year_histogram,
    )


def _marked(text: str) -> str:
    """An HTML-encoded snippet with <mark> highlights as rich markup: the backends encode the
    text for HTML (`&amp;`), a terminal wants the characters back, escaped for rich."""
    parts = re.split(r"(<mark>.*?</mark>)", text)
    out = []
    for part in parts:
        if part.startswith("<mark>"):
            out.append(f"[bold black on yellow]{escape(html.unescape(part[6:-7]))}[/]")
        else:
            out.append(escape(html.unescape(part)))
    return "".join(out)


def timeline_bar(count: int, maximum: int, width: int = TIMELINE_BAR_WIDTH) -> str:
    """`count` as a bar of `█` scaled so that `maximum` fills `width`; never empty for a
    positive count, so a year with one record stays visible beside one with thousands."""
    if count <= 0 or maximum <= 0:
        return ""
    return "█" * max(1, round(count * width / maximum))


def timeline_table(values: Sequence[FacetValue]) -> Table:
    """The year histogram as one compact line per year: year, count, bar."""
    maximum = max((v.count for v in values), default=0)
    table = Table(
        title="timeline: year", title_justify="left", box=None, show_header=False, padding=(0, 1)
    )
    table.add_column("year", justify="right")
    table.add_column("count", justify="right")
    table.add_column("bar", style="cyan", no_wrap=True)
    for v in values:
        table.add_row(escape(v.value), str(v.count), timeline_bar(v.count, maximum))
    return table


def print_response(console: Console, request: SearchRequest, response: SearchResponse) -> None:
    """A readable result table with highlighted snippets, then the facet counts, then the
    year timeline when it was asked for."""
    shown = f"{request.offset + 1}–{request.offset + len(response.hits)}" if response.hits else "0"
    console.print(
        f"[bold]{response.total}[/] records match {request.query or '(everything)'!r}"
        f" — showing {shown} ({response.took_ms:.1f} ms)"
    )
    table = Table("#", "year", "title / snippet", "authors", "type", show_lines=True)
    for n, hit in enumerate(response.hits, start=request.offset + 1):
        title = (
            _marked(hit.highlights["title"][0])
            if hit.highlights.get("title")
            else escape(hit.title)
        )
        snippet = hit.highlights.get("abstract") or []
        body = title + (f"\n[dim]{_marked(snippet[0])}[/]" if snippet else "")
        authors = "; ".join(hit.authors[:3]) + (" u.a." if len(hit.authors) > 3 else "")
        table.add_row(str(n), str(hit.year or ""), body, escape(authors), escape(hit.type))
    console.print(table)
    for name, values in response.facets.items():
        facet = Table(f"{name}", "count", title=f"facet: {name}", title_justify="left")
        for v in values:
            facet.add_row(escape(v.value), str(v.count))
        console.print(facet)
    if response.year_histogram:
        console.print(timeline_table(response.year_histogram))
