"""`ernte search`: its command line (a query may start with `-`) and a response as tables (hits,
facets, and on request the year histogram as a text timeline).

The options become a SearchRequest in `indexer.user_request`, shared with `ernte serve`."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from indexer.search_model import (
    FacetValue,
    SearchRequest,
    SearchResponse,
)

TIMELINE_BAR_WIDTH = 40
"""Characters of the longest bar of the year timeline (the year with the most records)."""


class SearchCommand(click.Command):
    """`ernte search`: a query that starts with an exclusion (`ernte search -Stadt`, or
    `ernte search "-Verkehr Planung"`) is the query, not an unknown option `-S`.

    click reads every argument that starts with `-` as an option. Before it parses, an
    argument that starts with a single `-`, is no option of this command and is not the value
    of the option before it, is moved behind `--`, where click takes it as the QUERY. Typos of
    real options (`--limt`) still fail as unknown options.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self.query_words_behind_separator(args))

    def query_words_behind_separator(self, args: list[str]) -> list[str]:
        names: set[str] = set()
        takes_value: set[str] = set()
        for param in self.get_params(click.Context(self)):
            if isinstance(param, click.Option):
                names.update(param.opts)
                names.update(param.secondary_opts)
                if not param.is_flag:
                    takes_value.update(param.opts)
        options: list[str] = []
        queries: list[str] = []
        previous = ""
        for position, arg in enumerate(args):
            if arg == "--":
                return options + args[position:] + queries
            is_query = (
                len(arg) > 1
                and arg.startswith("-")
                and not arg.startswith("--")
                and arg not in names
                and previous not in takes_value
            )
            (queries if is_query else options).append(arg)
            previous = arg
        return options + (["--", *queries] if queries else [])


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
        f"[bold]{response.total}[/] records match {escape(repr(request.query or '(everything)'))}"
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
