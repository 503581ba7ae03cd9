"""Run the `ernte serve` application under uvicorn: one process by default (searches run in its
thread pool, the index is opened once), or `workers` processes sharing the port. The embedded
backend's facet counting holds Python's GIL, so a second process is what uses a second core."""

from __future__ import annotations

import os
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI

from harvester.errors import UsageError
from harvester.logs import configure_logging, logging_choice
from harvester.settings import Settings, get_settings
from harvester.web.app import create_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

MAX_REQUEST_HEAD_BYTES = 128 * 1024
"""The largest request line and headers accepted (uvicorn's default, 16 KB, reset the
connection of a long query that arrived in several packets without an answer)."""

UVICORN_OPTIONS: dict[str, Any] = {
    "log_config": None,  # ernte's logging (text or JSON) stays in charge
    "access_log": False,
    "server_header": False,
    "proxy_headers": False,
    "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES,
}


def app_from_environment() -> FastAPI:
    """The application of a worker process: settings read from the environment it inherited
    (where the parent's settings came from), logging as the parent logs (uvicorn starts its
    workers as new processes, which have no logging set up)."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)


def check_address(host: str, port: int) -> None:
    """UsageError for an address this host cannot listen on (a name that does not resolve, a
    port in use): uvicorn reports it only after "Application startup complete", and exits 3."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind(address)
    except OSError as exc:  # socket.gaierror is one
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int = 1
) -> None:
    """Serve until Ctrl-C or SIGTERM (uvicorn finishes the requests under way, then stops)."""
    check_address(host, port)
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, **UVICORN_OPTIONS)
    else:
        # The workers read their settings from the environment: hand them the logging the
        # command line chose (`ernte --log-format json -v serve`), which may differ from it.
        os.environ["ERNTE_LOG_FORMAT"], os.environ["ERNTE_LOG_LEVEL"] = logging_choice()
        uvicorn.run(
            f"{__name__}:app_from_environment",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            **UVICORN_OPTIONS,
        )
