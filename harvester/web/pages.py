"""The German search page and record page, rendered on the server (they work without
JavaScript; the one small script only submits the form when a facet is ticked).

The URL holds the whole state: `/?q=Stadtteile&filter=subject:Soziale+Stadt&sort=year_desc&page=2`
uses the API's parameter names and its `field:value` filters, so a search can be bookmarked."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from harvester.run.records import load_archived, normalize_archived
from harvester.settings import Settings
from harvester.web import formatting
from harvester.web.search import OpenIndex, page_filter, search_request
from indexer.filters import fold_value
from indexer.search_model import MAX_HITS, FacetValue, QuerySyntaxError, SearchResponse

router = APIRouter()

PAGE_SIZE = 20
FACET_SIZE = 10
LAST_PAGE = MAX_HITS // PAGE_SIZE
"""The last page the pager offers: hits beyond the first MAX_HITS are not paged to (what
Elasticsearch's window allows; a narrower search finds them)."""
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
    titles = {400: "Ungültige Anfrage", 404: "Nicht gefunden", 503: "Index nicht verfügbar"}
    return render(
        "error.html",
        status,
        title=titles.get(status, "Fehler"),
        message=message,
    )


def facet_entries(
    name: str,
    values: list[FacetValue],
    state: SearchState,
    outside_top: Mapping[str, int] | None = None,
) -> list[FacetEntry]:
    """A facet's values, the selected ones first and always shown (even when outside the top
    counts: their counts in `outside_top`, by filter value), each with the filter it stands
    for. A selected value matches its counted value the way filters match, without regard to
    case or umlaut spelling (`subject:soziale stadt` ticks "Soziale Stadt", once)."""
    counted = {fold_value(v.value): v for v in values}
    entries: list[FacetEntry] = []
    chosen: set[str] = set()
    for value in _selected(name, state):
        folded = fold_value(value)
        if folded in chosen:
            continue  # the same value under another spelling: one box, already shown
        match = counted.get(folded)
        shown = match.value if match else value
        count = match.count if match else (outside_top or {}).get(value)
        chosen.add(folded)
        entries.append(
            FacetEntry(shown, formatting.facet_value(name, shown), count, True, f"{name}:{value}")
        )
    entries += [
        FacetEntry(
            v.value, formatting.facet_value(name, v.value), v.count, False, f"{name}:{v.value}"
        )
        for v in values
        if fold_value(v.value) not in chosen
    ]
    return entries


def _selected(name: str, state: SearchState) -> list[str]:
    """The values of the filters on facet `name`."""
    return [f.partition(":")[2] for f in state.filters if f.partition(":")[0] == name]


def counts_outside_top(
    index: OpenIndex, state: SearchState, response: SearchResponse
) -> dict[str, dict[str, int]]:
    """facet name -> selected value -> its count, for the selected values a facet's top list
    does not hold: the records of the query and every filter on other fields with this value,
    which is what the facet would show for it (values of one field are ORed). One count-only
    search per such value; a range (`year:2005..2010`) is no facet value and gets none."""
    missing: dict[str, dict[str, int]] = {}
    for name in formatting.PAGE_FACETS:
        counted = {fold_value(v.value) for v in response.facets.get(name, [])}
        for value in _selected(name, state):
            if fold_value(value) in counted or ".." in value:
                continue
            others = [f for f in state.filters if f.partition(":")[0] != name]
            request = search_request(state.query, [*others, f"{name}:{value}"], (), limit=0)
            missing.setdefault(name, {})[value] = index.search(request).total
    return missing


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


def distinct_filters(written: list[str]) -> list[str]:
    """The filters of a URL, each once: a value repeated in another spelling
    (`subject:soziale stadt` beside `subject:Soziale Stadt`, which filter alike) is dropped,
    the first spelling kept, so the page shows one chip and one box for it."""
    kept: dict[tuple[str, str], str] = {}
    for text in written:
        name, _, value = text.partition(":")
        kept.setdefault((name, fold_value(value)), text)
    return list(kept.values())


def page_number(text: str) -> int:
    """The `page` of a search page's URL. A page that is no number (an edited or truncated
    link) is the first page: a 400 lost the search the user was looking at. Only ASCII digits
    count (`str.isdigit` also takes `²` and `①`, which `int` refuses), and a number of more
    digits than any page has is a page past the last (`int` refuses 4,300 digits and more)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return 1
    return int(text) if len(text) <= 9 else 10**9


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def search_page(
    request: Request,
    q: str = "",
    filters: Annotated[list[str], Query(alias="filter")] = [],  # noqa: B006
    sort: str = "relevance",
    page: str = "1",
) -> Response:
    number = page_number(page)
    # `type=…`, `Typ:…` (a hand-written link, the command line's spelling) as the page writes
    # them, or the facet box of such a filter stays unticked.
    written = [page_filter(f) for f in filters if f.strip()]
    state = SearchState(q.strip(), distinct_filters(written), sort, max(1, number))
    index = _index(request)
    error = ""
    try:
        search = search_request(
            state.query,
            state.filters,
            formatting.PAGE_FACETS,
            facet_size=FACET_SIZE,
            sort=state.sort,
            limit=PAGE_SIZE,
            offset=min(state.page, LAST_PAGE) * PAGE_SIZE - PAGE_SIZE,
            year_histogram=True,
        )
        response: SearchResponse = index.search(search)
        outside_top = counts_outside_top(index, state, response)
    except QuerySyntaxError as exc:  # shown above the form, which keeps what was typed
        error = str(exc)
        response, outside_top = SearchResponse(total=0), {}
    pages = min(LAST_PAGE, max(1, math.ceil(response.total / PAGE_SIZE)))
    if state.page > pages and not error:
        # Past the last page (a bookmark from when there were more hits, an edited link):
        # the last page, with the URL saying so.
        return RedirectResponse(state.url(page=pages), status_code=303)
    bars, chart_width = year_bars(response.year_histogram, state)
    return render(
        "search.html",
        400 if error else 200,
        error=error,
        state=state,
        response=response,
        facets=[
            (
                name,
                facet_entries(name, response.facets.get(name, []), state, outside_top.get(name)),
            )
            for name in formatting.PAGE_FACETS
        ],
        hidden_filters=[
            f for f in state.filters if f.partition(":")[0] not in formatting.PAGE_FACETS
        ],
        bars=bars,
        chart_width=chart_width,
        first_hit=(state.page - 1) * PAGE_SIZE + 1,
        pages=pages,
        pageable=pages * PAGE_SIZE if response.total > pages * PAGE_SIZE else None,
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
    gone = record is not None and record.deleted  # 410, so that link checkers notice
    return render(
        "record.html",
        410 if gone else 200,
        identifier=identifier,
        source=found.source,
        record=record,
        quarantined=reason,
        raw_xml=found.raw.xml.decode("utf-8", errors="replace"),
        type_label=formatting.NORMALIZED_TYPE_LABELS,
        search_url=SearchState().url,
    )
