"""The German search page and record page, rendered on the server (they work without
JavaScript; the one small script only submits the form when a facet is ticked).

The URL holds the whole state: `/?q=Stadtteile&filter=subject:Soziale+Stadt&sort=year_desc&page=2`
uses the API's parameter names and its `field:value` filters, so a search can be bookmarked."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from harvester.run.records import load_archived, normalize_archived
from harvester.settings import Settings
from harvester.web import formatting
from harvester.web.search import OpenIndex, search_request
from indexer.search_model import FacetValue, QuerySyntaxError, SearchResponse

router = APIRouter()

PAGE_SIZE = 20
FACET_SIZE = 10
SORT_LABELS = {
    "relevance": "Relevanz",
    "year_desc": "Jahr, neueste zuerst",
    "year_asc": "Jahr, älteste zuerst",
}

templates = Environment(
    loader=PackageLoader("harvester.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(
    number=formatting.number,
    ms=formatting.milliseconds,
    datestamp=formatting.datestamp,
    issued=formatting.issued,
    language=formatting.language,
    snippet=formatting.snippet,
    safe_url=formatting.safe_url,
    doi_url=formatting.doi_url,
    issn_url=formatting.issn_url,
    urn_url=formatting.urn_url,
    record_path=formatting.record_path,
)
templates.globals.update(facet_labels=formatting.FACET_LABELS, sort_labels=SORT_LABELS)


@dataclass(slots=True)
class FacetEntry:
    value: str
    label: str
    count: int | None
    selected: bool
    filter: str


@dataclass(slots=True)
class Bar:
    year: int
    count: int
    x: float
    height: float
    selected: bool
    href: str


@dataclass(slots=True)
class SearchState:
    """What the URL says: query, filters (`field:value`), sort and page."""

    query: str = ""
    filters: list[str] = field(default_factory=list)
    sort: str = "relevance"
    page: int = 1

    def url(self, **changes: Any) -> str:
        values = {
            "q": self.query,
            "filter": self.filters,
            "sort": self.sort,
            "page": self.page,
            **changes,
        }
        params: list[tuple[str, str]] = []
        if values["q"]:
            params.append(("q", values["q"]))
        params += [("filter", f) for f in values["filter"]]
        if values["sort"] != "relevance":
            params.append(("sort", values["sort"]))
        if values["page"] > 1:
            params.append(("page", str(values["page"])))
        return "/?" + urlencode(params) if params else "/"

    def toggled(self, filter_text: str) -> str:
        """The URL with `filter_text` added or removed (back to the first page)."""
        if filter_text in self.filters:
            return self.url(filter=[f for f in self.filters if f != filter_text], page=1)
        return self.url(filter=[*self.filters, filter_text], page=1)


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {400: "Ungültige Anfrage", 404: "Nicht gefunden", 503: "Noch kein Index"}
    return render(
        "error.html",
        status,
        title=titles.get(status, "Fehler"),
        message=message,
    )


def facet_entries(name: str, values: list[FacetValue], state: SearchState) -> list[FacetEntry]:
    """A facet's values, the selected ones first and always shown (even when outside the top
    counts), each with the filter it stands for."""
    selected = [f.partition(":")[2] for f in state.filters if f.partition(":")[0] == name]
    counted = {v.value: v.count for v in values}
    entries = [
        FacetEntry(v, formatting.facet_value(name, v), counted.get(v), True, f"{name}:{v}")
        for v in selected
    ]
    entries += [
        FacetEntry(
            v.value, formatting.facet_value(name, v.value), v.count, False, f"{name}:{v.value}"
        )
        for v in values
        if v.value not in selected
    ]
    return entries


def year_bars(
    histogram: list[FacetValue], state: SearchState, height: float = 80.0
) -> tuple[list[Bar], float]:
    """The year histogram as bars on a continuous timeline (years without matches stay
    empty), each a link that filters on its year. Returns the bars and the chart width."""
    counts = {int(v.value): v.count for v in histogram if v.value.isdigit()}
    if not counts:
        return [], 0.0
    first, last = min(counts), max(counts)
    most = max(counts.values())
    bars = []
    for n, year in enumerate(range(first, last + 1)):
        count = counts.get(year, 0)
        bar_height = max(1.5, height * count / most) if count else 0.0
        text = f"year:{year}"
        bars.append(
            Bar(year, count, n * 10.0, bar_height, text in state.filters, state.toggled(text))
        )
    return bars, (last - first + 1) * 10.0


def _index(request: Request) -> OpenIndex:
    index: OpenIndex = request.app.state.index
    return index


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def search_page(
    request: Request,
    q: str = "",
    filters: Annotated[list[str], Query(alias="filter")] = [],  # noqa: B006
    sort: str = "relevance",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    state = SearchState(q.strip(), [f for f in filters if f.strip()], sort, page)
    error = ""
    try:
        search = search_request(
            state.query,
            state.filters,
            formatting.PAGE_FACETS,
            facet_size=FACET_SIZE,
            sort=state.sort,
            limit=PAGE_SIZE,
            offset=(state.page - 1) * PAGE_SIZE,
            year_histogram=True,
        )
        response: SearchResponse = _index(request).search(search)
    except QuerySyntaxError as exc:  # shown above the form, which keeps what was typed
        error = str(exc)
        response = SearchResponse(total=0)
    pages = max(1, math.ceil(response.total / PAGE_SIZE))
    bars, chart_width = year_bars(response.year_histogram, state)
    return render(
        "search.html",
        400 if error else 200,
        error=error,
        state=state,
        response=response,
        facets=[
            (name, facet_entries(name, response.facets.get(name, []), state))
            for name in formatting.PAGE_FACETS
        ],
        hidden_filters=[
            f for f in state.filters if f.partition(":")[0] not in formatting.PAGE_FACETS
        ],
        bars=bars,
        chart_width=chart_width,
        first_hit=(state.page - 1) * PAGE_SIZE + 1,
        pages=pages,
        previous_url=state.url(page=state.page - 1) if state.page > 1 else None,
        next_url=state.url(page=state.page + 1) if state.page < pages else None,
        type_label=formatting.NORMALIZED_TYPE_LABELS,
    )


@router.get("/records/{identifier:path}", response_class=HTMLResponse, include_in_schema=False)
def record_page(request: Request, identifier: str) -> Response:
    settings: Settings = request.app.state.settings
    found = load_archived(settings, identifier)
    if found is None:
        raise HTTPException(404, f"Der Datensatz {identifier!r} ist nicht im Archiv.")
    from harvester.normalize.normalizer import QuarantineError

    reason = ""
    record = None
    try:
        record = normalize_archived(settings, found)
    except QuarantineError as exc:
        reason = exc.reason
    return render(
        "record.html",
        identifier=identifier,
        source=found.source,
        record=record,
        quarantined=reason,
        raw_xml=found.raw.xml.decode("utf-8", errors="replace"),
        type_label=formatting.NORMALIZED_TYPE_LABELS,
        search_url=SearchState().url,
    )
