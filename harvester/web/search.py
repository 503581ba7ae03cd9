"""The web's side of a search: query parameters into the one `SearchRequest` (built by
`indexer.user_request.build_request`, as for `ernte search`), and the index the server keeps
open between requests."""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Sequence

from harvester.run import services
from harvester.settings import Settings
from indexer.backend import IndexBackend
from indexer.search_model import QuerySyntaxError, SearchRequest, SearchResponse
from indexer.user_request import build_request, parse_filter

_FILTER = re.compile(r"^\s*([A-Za-z_]+)\s*[:=](.*)$", re.DOTALL)

MAX_LIMIT = 100
"""Most hits one API request may ask for (deeper: page with `after` or `offset`)."""


def cli_filter(text: str) -> str:
    """`field:value` (the API's and the page's spelling, like the query syntax) as the
    command line's `field=value`; `field=value` is accepted as it is."""
    match = _FILTER.match(text)
    if match is None:
        raise QuerySyntaxError(
            f"filter {text!r}: write field:value (e.g. type:Zeitschriftenaufsatz)"
        )
    rewritten = f"{match[1]}={match[2]}"
    try:
        parse_filter(rewritten)
    except QuerySyntaxError as exc:  # the command line's message, about what the user wrote
        raise QuerySyntaxError(str(exc).replace(repr(rewritten), repr(text), 1)) from None
    return rewritten


def page_filter(text: str) -> str:
    """A filter as the page writes it, `field:value` with the field's own name
    (`Typ=Monographie` -> `type:Monographie`), so that a filter from a hand-written link ticks
    its facet box; a filter that is no filter is returned as written (the search reports it)."""
    match = _FILTER.match(text)
    if match is None:
        return text
    try:
        parsed = parse_filter(f"{match[1]}={match[2]}")
    except QuerySyntaxError:
        return text
    return f"{parsed.field}:{match[2].strip()}"


def parse_after(text: str | None) -> list[object] | None:
    """The `after` cursor: `next_search_after` of the previous response, as JSON (`[10]`)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, list) or not value or not all(map(_cursor_value, value)):
        raise QuerySyntaxError(
            f"after {text[:100]!r}: pass next_search_after of the previous response as JSON,"
            " e.g. [10]"
        )
    return value


def _cursor_value(value: object) -> bool:
    """A sort value a cursor may hold: a number (finite, not a boolean) or a string."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int | str)


def search_request(
    query: str,
    filters: Sequence[str],
    facets: Sequence[str],
    *,
    facet_size: int = 10,
    sort: str = "relevance",
    limit: int = 10,
    offset: int = 0,
    after: str | None = None,
    year_histogram: bool = False,
) -> SearchRequest:
    """A SearchRequest exactly as `ernte search` builds it; errors are QuerySyntaxError with the
    command line's message."""
    request = build_request(
        query,
        [cli_filter(f) for f in filters],
        facets,
        facet_size,
        sort,
        limit,
        offset,
        year_histogram=year_histogram,
    )
    request.search_after = parse_after(after)
    return request


class OpenIndex:
    """The index backend a server searches, opened once and shared by all requests.

    The embedded index is reopened when its directory is replaced (`ernte index rebuild`
    swaps in a new one), so a long-running server never searches a removed index. Searches
    never create an index: before the first harvest they raise `services.NoIndexYet`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._backend: IndexBackend | None = None
        self._identity: tuple[int, int] | None = None

    @property
    def kind(self) -> str:
        return "elasticsearch" if self.settings.es_url else "embedded"

    def _directory_identity(self) -> tuple[int, int] | None:
        if self.settings.es_url:
            return None
        try:
            info = os.stat(self.settings.index_dir)
        except FileNotFoundError:
            return None
        return info.st_dev, info.st_ino

    def backend(self) -> IndexBackend:
        if self.settings.es_url:
            # Queries are analyzed and split in this process with the configured word lists:
            # a list rewritten since (`ernte compounds build`) is read again. The embedded
            # index is reopened after `ernte index rebuild`, which chooses them again.
            services.use_configured_word_lists(self.settings)
        identity = self._directory_identity()
        with self._lock:
            if self._backend is None or identity != self._identity:
                old, self._backend = self._backend, None
                if old is not None:
                    old.close()
                self._backend = services.index_backend(self.settings, create=False)
                self._identity = identity
            return self._backend

    def search(self, request: SearchRequest) -> SearchResponse:
        return self.backend().search(request)

    def close(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
