"""The JSON API: the request and response model of `ernte search --json`, the record of
`ernte show --json`, the harvests of `ernte status --json`. Read-only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from harvester.run import services
from harvester.run.records import load_archived, normalize_archived
from harvester.settings import Settings
from harvester.web.search import MAX_LIMIT, OpenIndex, search_request
from indexer.search_model import FACET_FIELDS, MAX_FACET_SIZE, SORT_ORDERS, SearchResponse
from indexer.user_request import MAX_FILTERS

router = APIRouter()

RAW_XML_POLICY = "default-src 'none'; sandbox"
"""The archived XML is the repository's text: served so that nothing in it can run."""


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _index(request: Request) -> OpenIndex:
    index: OpenIndex = request.app.state.index
    return index


@router.get(
    "/api/search",
    response_model=SearchResponse,
    summary="Search with filters, facets, paging and the year histogram",
    responses={
        400: {"description": "A query syntax error or a bad parameter, in one line"},
        503: {"description": "No index yet: nothing has been harvested"},
    },
)
def api_search(
    request: Request,
    q: Annotated[str, Query(description="Query syntax of `ernte search`")] = "",
    filters: Annotated[
        list[str],
        Query(
            alias="filter",
            description=f"field:value (repeatable, at most {MAX_FILTERS}; ORed within a field,"
            f" ANDed across fields); year:2005..2010. Fields: {', '.join(FACET_FIELDS)}",
        ),
    ] = [],  # noqa: B006 (FastAPI copies defaults)
    facets: Annotated[
        list[str],
        Query(
            alias="facet",
            description="Facet field (repeatable)",
            json_schema_extra={"items": {"type": "string", "enum": list(FACET_FIELDS)}},
        ),
    ] = [],  # noqa: B006
    facet_size: Annotated[int, Query(ge=1, le=MAX_FACET_SIZE)] = 10,
    sort: Annotated[
        str, Query(description="Order of the hits", json_schema_extra={"enum": list(SORT_ORDERS)})
    ] = "relevance",
    limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    after: Annotated[
        str | None, Query(description="next_search_after of the previous response, as JSON")
    ] = None,
    year_histogram: Annotated[bool, Query(description="1: also the matches per year")] = False,
) -> Response:
    search = search_request(
        q,
        filters,
        facets,
        facet_size=facet_size,
        sort=sort,
        limit=limit,
        offset=offset,
        after=after,
        year_histogram=year_histogram,
    )
    return JSONResponse(_index(request).search(search).to_dict())


@router.get(
    "/api/records/{identifier:path}",
    summary="One record: normalized (as `ernte show --json`), or with raw=1 the archived XML",
    responses={
        400: {"description": "A bad parameter, in one line"},
        404: {"description": "No such record in the archive"},
        422: {"description": "The record is quarantined: it could not be normalized"},
    },
)
def api_record(
    request: Request, identifier: str, raw: Annotated[bool, Query()] = False
) -> Response:
    settings = _settings(request)
    found = load_archived(settings, identifier)
    if found is None:
        raise HTTPException(404, f"{identifier!r} is not in the archive")
    if raw:
        return Response(
            found.raw.xml,
            media_type="application/xml",
            headers={"content-security-policy": RAW_XML_POLICY},
        )
    from harvester.normalize.normalizer import QuarantineError

    try:
        record = normalize_archived(settings, found)
    except QuarantineError as exc:
        raise HTTPException(422, f"{identifier} is quarantined: {exc.reason}") from None
    return JSONResponse(record.to_dict())


@router.get("/api/status", summary="Every harvest, as `ernte status --json`")
def api_status(request: Request) -> Response:
    return JSONResponse(services.status_report(_settings(request)).to_dict())


@router.get("/healthz", summary="Liveness and the backend searched")
def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "backend": _index(request).kind})
