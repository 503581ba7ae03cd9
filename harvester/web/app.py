"""The `ernte serve` application: the JSON API, the German search page, security headers and
one error shape (a JSON object with one line, or a German error page; never a traceback)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from harvester.run.services import NoIndexYet
from harvester.settings import Settings
from harvester.web import api, pages
from harvester.web.search import OpenIndex
from indexer.search_model import QuerySyntaxError

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Only our own scripts and styles run: an injected inline script or handler does nothing."""

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SecurityHeaders:
    """ASGI middleware: security headers on every response, and a `Server-Timing` header with
    the time the server spent on the request (what bench/bench_serve.py measures)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                took = (time.perf_counter() - started) * 1000
                headers.append((b"server-timing", f"app;dur={took:.2f}".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HeadAsGet:
    """ASGI middleware: HEAD answers as GET would, headers only. Monitors and link checkers
    ask with HEAD, and FastAPI's routes answer GET alone (405 before)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


ERROR_BODY: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {"error": {"type": "string", "description": "What went wrong, in one line"}},
    "required": ["error"],
}


def with_error_bodies(spec: dict[str, Any]) -> dict[str, Any]:
    """The generated OpenAPI description, changed to say what the server answers: a bad
    parameter is a 400 with the one-line error (`bad_parameter` below), not FastAPI's 422 with
    its validation details, and every error is `{"error": "..."}`."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_BODY
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            generated = responses.get("422", {})
            if "HTTPValidationError" in str(generated.get("content", "")):
                del responses["422"]
                responses.setdefault("400", {"description": "A bad parameter, in one line"})
            for status, response in responses.items():
                if not status.startswith("2"):
                    response["content"] = error
    return spec


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/healthz", "/openapi"))


def _error(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    response: Response
    if _wants_html(request):
        response = pages.error_page(request, status, message)
    else:
        response = JSONResponse({"error": message}, status_code=status)
    response.headers.update(headers or {})  # such as the Allow of a 405
    return response


def create_app(settings: Settings) -> FastAPI:
    """The server for the index `settings` point at (embedded, or Elasticsearch with ES_URL)."""
    index = OpenIndex(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        index.close()

    app = FastAPI(
        title="ernte",
        summary="Suche in geernteten bibliografischen Daten (OAI-PMH)",
        description=(
            "Read-only JSON API over the ernte index. `/api/search` takes and returns the "
            "model of `ernte search --json` (README, 'Search'); `/api/records/{identifier}` "
            "the normalized record of `ernte show --json` (`?raw=1`: the archived XML); "
            "`/api/status` the harvests of `ernte status --json`."
        ),
        version="1",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: the page loads nothing external
        redoc_url=None,
        lifespan=lifespan,
        # `/api/search/` was redirected to an absolute URL built from the Host header (and
        # `http`, also behind a TLS proxy); a path that is not one of ours is a 404.
        redirect_slashes=False,
    )
    generated_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_error_bodies(generated_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HeadAsGet)
    app.state.settings = settings
    app.state.index = index
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(packages=[("harvester.web", "static")]), name="static")

    @app.exception_handler(QuerySyntaxError)
    async def syntax_error(request: Request, exc: QuerySyntaxError) -> Response:
        return _error(request, 400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        return _error(request, 400, "; ".join(problems) or "invalid request")

    @app.exception_handler(NoIndexYet)
    async def no_index(request: Request, exc: NoIndexYet) -> Response:
        return _error(request, 503, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = {name.lower(): value for name, value in (exc.headers or {}).items()}
        allowed = [m.strip() for m in headers.get("allow", "").split(",") if m.strip()]
        if exc.status_code == 405 and "GET" in allowed and "HEAD" not in allowed:
            headers["allow"] = ", ".join([*allowed, "HEAD"])  # answered by HeadAsGet
        return _error(request, exc.status_code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        from harvester.run.user_errors import is_user_error

        if is_user_error(exc):  # ES unreachable, deep paging, a full disk, ...
            log.warning("request failed", extra={"path": request.url.path, "error": str(exc)})
            status = 400 if isinstance(exc, ValueError) else 503
            return _error(request, status, str(exc))
        log.exception("unexpected error", extra={"path": request.url.path})
        return _error(request, 500, "internal error (the server log has the details)")

    return app
