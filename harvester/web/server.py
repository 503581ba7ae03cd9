"""Run the `ernte serve` application under uvicorn (one process; searches run in its thread
pool, the index is opened once)."""

from __future__ import annotations

import uvicorn

from harvester.settings import Settings
from harvester.web.app import create_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def serve(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until Ctrl-C or SIGTERM (uvicorn finishes the requests under way, then stops)."""
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,  # ernte's logging (text or JSON) stays in charge
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
