"""The demo OAI-PMH provider with every ListRecords page rendered before any client is timed.

    .venv/bin/python bench/prerendered_provider.py --generate 10000 --port 8765 --batch-size 100

The demo provider (`harvester.demo.provider`) renders each page when it is asked for: pyoai and
lxml build the XML of 100 records, which on this machine takes longer than a client needs to
parse it. A benchmark against it measures the provider: a bare sickle loop waits on it for
about half its time, and a harvester's own cost hides behind that wait. A real repository
renders its pages on another machine. So this provider renders the whole ListRecords list of
each prefix asked for (the `from`-less list a `--full` harvest reads) into memory at start,
then serves those bytes; any other GET (Identify, a list with `from`, ...) is rendered when
asked and kept as well, POST is rendered every time. Responses are the demo provider's own,
except that a kept page carries the `responseDate` of its rendering and its `<request>`
element lists the arguments in the order the first client sent them.

It prints the same line as the demo provider once it listens ("OAI-PMH base URL: ..."), so
`bench_harvest.Provider` starts either.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from contextlib import suppress
from html import unescape
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harvester.demo.generate import generate_records  # noqa: E402
from harvester.demo.provider import (  # noqa: E402
    OAI_PATH,
    OAIApplication,
    SampleRepository,
    _QuietHandler,
    _ThreadingWSGIServer,
)

_TOKEN = re.compile(rb"<resumptionToken[^>]*>([^<]+)</resumptionToken>")

Key = tuple[tuple[str, str], ...]


def request_key(query: str) -> Key:
    """A query string's arguments in a fixed order: clients order them differently."""
    return tuple(sorted(urllib.parse.parse_qsl(query, keep_blank_values=True)))


class RenderedOnce:
    """WSGI app: the demo provider's answers, each rendered once and then served as kept."""

    def __init__(self, application: OAIApplication) -> None:
        self._application = application
        self._kept: dict[Key, bytes] = {}
        self._lock = threading.Lock()

    def render_list(self, prefix: str) -> int:
        """Render every page of the ListRecords list of `prefix`; the number of pages."""
        query = urllib.parse.urlencode({"verb": "ListRecords", "metadataPrefix": prefix})
        pages = 0
        while True:
            body = self._answer(query)
            pages += 1
            token = _TOKEN.search(body)
            if token is None:
                return pages
            query = urllib.parse.urlencode(
                {"verb": "ListRecords", "resumptionToken": unescape(token.group(1).decode())}
            )

    def _answer(self, query: str) -> bytes:
        key = request_key(query)
        with self._lock:
            body = self._kept.get(key)
        if body is None:
            body = self._application.respond(query)
            with self._lock:
                self._kept[key] = body
        return body

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO", "") != OAI_PATH or environ.get("REQUEST_METHOD") == "POST":
            return self._application(environ, start_response)
        body = self._answer(environ.get("QUERY_STRING", ""))
        start_response(
            "200 OK",
            [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generate", type=int, metavar="N", required=True)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--prefix", action="append", help="lists to render at start (default: dim and oai_dc)"
    )
    args = parser.parse_args(argv)
    repository = SampleRepository(generate_records(args.generate, seed=args.seed))
    application = RenderedOnce(OAIApplication(repository, args.batch_size))
    server = make_server(
        "127.0.0.1",
        args.port,
        application,
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    repository.base_url = f"http://127.0.0.1:{server.server_port}{OAI_PATH}"
    pages = sum(application.render_list(prefix) for prefix in args.prefix or ["dim", "oai_dc"])
    print(
        f"OAI-PMH base URL: {repository.base_url}  ({args.generate} records, {pages} pages"
        " rendered; Ctrl-C stops)",
        flush=True,
    )
    with suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
