"""A fault-injecting reverse proxy for harvest tests (loopback only).

It sits between a harvester and a real OAI-PMH endpoint (usually the demo provider), forwards
every request, and on the request numbers a test scripts (1 = the first request it sees)
answers with what real repositories do to harvesters instead: 503 + Retry-After, stalls,
truncated pages, HTML error pages sent with 200, resumption-token loops, endless empty pages,
expired tokens, connection resets, 500 with an empty body. It logs every request it saw so a
test can assert what the harvester sent (from/until, User-Agent, tokens).

    with serve(records) as upstream, fault_proxy(
        upstream, faults={2: Fault.retry_after(1), 5: Fault.truncate()}
    ) as proxy:
        harvest(proxy.url)
        assert proxy.requests[1].params["resumptionToken"] == ...

`faults` may also be a function of the request number, for faults that go on and on:
`faults=lambda n: Fault.empty_page() if n >= 2 else None`.
"""

from __future__ import annotations

import enum
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

import requests


class FaultKind(enum.Enum):
    RETRY_AFTER = "retry_after"
    DELAY = "delay"
    TRUNCATE = "truncate"
    HTML_PAGE = "html_page"
    REPEAT_TOKEN = "repeat_token"
    EMPTY_PAGE = "empty_page"
    BAD_RESUMPTION_TOKEN = "bad_resumption_token"
    RESET = "reset"
    HTTP_ERROR = "http_error"
    DAMAGE = "damage"
    REDIRECT = "redirect"


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour; build it with the class methods."""

    kind: FaultKind
    status: int = 200
    seconds: float = 0.0
    fraction: float = 0.5
    declare_full_length: bool = False
    body: bytes = b""
    find: bytes = b""

    @classmethod
    def retry_after(cls, seconds: int = 1, status: int = 503) -> Fault:
        """`503 Service Unavailable` with `Retry-After: <seconds>` and a short text body."""
        return cls(FaultKind.RETRY_AFTER, status=status, seconds=seconds)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait `seconds` before forwarding: longer than the client's read timeout = a timeout."""
        return cls(FaultKind.DELAY, seconds=seconds)

    @classmethod
    def truncate(cls, fraction: float = 0.5, declare_full_length: bool = False) -> Fault:
        """Send only the first `fraction` of the real page, then close.

        Without a declared length the cut page looks complete to HTTP (the XML is broken);
        with `declare_full_length` the Content-Length promises more (a transport error).
        """
        return cls(FaultKind.TRUNCATE, fraction=fraction, declare_full_length=declare_full_length)

    @classmethod
    def html_page(cls, status: int = 200) -> Fault:
        """A maintenance HTML page instead of XML, with status 200 by default."""
        return cls(FaultKind.HTML_PAGE, status=status)

    @classmethod
    def repeat_token(cls) -> Fault:
        """The real page, but its resumptionToken is the one the request sent: a loop.

        Script it for a resumption request (one that carries a token).
        """
        return cls(FaultKind.REPEAT_TOKEN)

    @classmethod
    def empty_page(cls) -> Fault:
        """A ListRecords page with no records and a new token each time (`empty-<n>`)."""
        return cls(FaultKind.EMPTY_PAGE)

    @classmethod
    def bad_resumption_token(cls, status: int = 200) -> Fault:
        """The OAI error `badResumptionToken` (an expired token), as DSpace sends it (200)."""
        return cls(FaultKind.BAD_RESUMPTION_TOKEN, status=status)

    @classmethod
    def damage(cls, find: bytes, replace: bytes) -> Fault:
        """The real page with its first `find` replaced by `replace` (bytes a real server
        damaged: a stray byte that is not UTF-8, an HTML entity, a blank line before the
        XML declaration)."""
        return cls(FaultKind.DAMAGE, find=find, body=replace)

    @classmethod
    def redirect(cls, location: str) -> Fault:
        """`301 Moved Permanently` to `location` (a path: the proxy forwards it upstream)."""
        return cls(FaultKind.REDIRECT, status=301, body=location.encode())

    @classmethod
    def reset(cls) -> Fault:
        """Read the request, then reset the TCP connection without answering."""
        return cls(FaultKind.RESET)

    @classmethod
    def http_error(cls, status: int = 500, body: bytes = b"") -> Fault:
        """A bare HTTP error, by default 500 with an empty body."""
        return cls(FaultKind.HTTP_ERROR, status=status, body=body)


FaultPlan = Mapping[int, Fault] | Callable[[int], Fault | None]


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A request as the proxy received it; `params` holds the first value of each argument."""

    number: int
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    fault: FaultKind | None


@dataclass
class FaultProxy:
    """What `fault_proxy` yields: the URL to harvest and the requests seen so far."""

    url: str
    requests: list[SeenRequest] = field(default_factory=list)


_TOKEN = re.compile(rb"<resumptionToken\b[^>]*?(?:/>|>.*?</resumptionToken>)", re.DOTALL)
_LIST_END = re.compile(rb"</(ListRecords|ListIdentifiers)>")

_HTML_PAGE = (
    b'<!DOCTYPE html>\n<html lang="de"><head><title>Wartungsarbeiten</title></head>'
    b"<body><h1>Wartungsarbeiten</h1><p>Der Dienst ist vor\xc3\xbcbergehend nicht erreichbar."
    b"</p></body></html>\n"
)


def _oai_page(inner: str, verb: str) -> bytes:
    """A minimal OAI-PMH response around `inner`."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        f"<responseDate>{now}</responseDate><request verb={quoteattr(verb)}></request>"
        f"{inner}</OAI-PMH>\n"
    ).encode()


def _with_token(page: bytes, token: str) -> bytes:
    """`page` with its resumptionToken replaced by (or, on a last page, given) `token`."""
    element = f"<resumptionToken>{escape(token)}</resumptionToken>".encode()
    if _TOKEN.search(page):
        return _TOKEN.sub(lambda _: element, page, count=1)
    return _LIST_END.sub(lambda m: element + m.group(0), page, count=1)


class _ProxyHandler(BaseHTTPRequestHandler):
    """Forwards to the upstream endpoint unless the plan scripts a fault for this request."""

    upstream_origin: str
    plan: FaultPlan
    seen: list[SeenRequest]
    lock: threading.Lock

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def log_message(self, format: str, *args: object) -> None:
        """Silent; the request log is the record."""

    def finish(self) -> None:
        with suppress(OSError):  # the client gave up (timeout) or we reset the connection
            super().finish()

    # --- dispatch ---------------------------------------------------------------------------

    def _handle(self, body: bytes) -> None:
        query = urlsplit(self.path).query or body.decode("utf-8", "replace")
        params = {name: values[0] for name, values in parse_qs(query).items()}
        with self.lock:
            number = len(self.seen) + 1
            plan = self.plan
            fault = plan(number) if callable(plan) else plan.get(number)
            self.seen.append(
                SeenRequest(
                    number=number,
                    method=self.command,
                    path=urlsplit(self.path).path,
                    params=params,
                    headers=dict(self.headers.items()),
                    fault=fault.kind if fault else None,
                )
            )
        # The client may have stopped listening (its read timeout passed): nothing to do then.
        with suppress(BrokenPipeError, ConnectionResetError):
            self._answer(fault, number, params, body)

    def _answer(
        self, fault: Fault | None, number: int, params: dict[str, str], body: bytes
    ) -> None:
        if fault is None:
            self._send(*self._forward(body))
            return
        match fault.kind:
            case FaultKind.DELAY:
                time.sleep(fault.seconds)
                self._send(*self._forward(body))
            case FaultKind.TRUNCATE:
                self._send_truncated(*self._forward(body), fault)
            case FaultKind.REPEAT_TOKEN:
                token = params.get("resumptionToken")
                if token is None:
                    self._send(500, "text/plain", b"test script error: repeat_token needs a token")
                    return
                status, content_type, page = self._forward(body)
                self._send(status, content_type, _with_token(page, token))
            case FaultKind.RETRY_AFTER:
                headers = {"Retry-After": str(int(fault.seconds))}
                self._send(fault.status, "text/plain", b"Service Unavailable\n", headers)
            case FaultKind.HTML_PAGE:
                self._send(fault.status, "text/html; charset=utf-8", _HTML_PAGE)
            case FaultKind.EMPTY_PAGE:
                inner = (
                    f"<ListRecords><resumptionToken>empty-{number}</resumptionToken></ListRecords>"
                )
                self._send(200, "text/xml; charset=utf-8", _oai_page(inner, "ListRecords"))
            case FaultKind.BAD_RESUMPTION_TOKEN:
                inner = (
                    '<error code="badResumptionToken">The resumptionToken has expired '
                    "or is invalid.</error>"
                )
                page = _oai_page(inner, params.get("verb", "ListRecords"))
                self._send(fault.status, "text/xml; charset=utf-8", page)
            case FaultKind.RESET:
                linger_off = struct.pack("ii", 1, 0)  # close() then sends RST, not FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_off)
                self.connection.close()
                self.close_connection = True
            case FaultKind.HTTP_ERROR:
                self._send(fault.status, "text/plain", fault.body)
            case FaultKind.REDIRECT:
                self._send(fault.status, "text/plain", b"", {"Location": fault.body.decode()})
            case FaultKind.DAMAGE:
                status, content_type, page = self._forward(body)
                if fault.find not in page:
                    self._send(500, "text/plain", b"test script error: nothing to damage")
                    return
                self._send(status, content_type, page.replace(fault.find, fault.body, 1))

    # --- helpers ----------------------------------------------------------------------------

    def _forward(self, body: bytes) -> tuple[int, str, bytes]:
        url = self.upstream_origin + self.path
        if self.command == "POST":
            content_type = self.headers.get("Content-Type", "application/x-www-form-urlencoded")
            response = requests.post(
                url, data=body, headers={"Content-Type": content_type}, timeout=30
            )
        else:
            response = requests.get(url, timeout=30)
        return response.status_code, response.headers.get("Content-Type", ""), response.content

    def _send(
        self,
        status: int,
        content_type: str,
        page: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(page)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(page)

    def _send_truncated(self, status: int, content_type: str, page: bytes, fault: Fault) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if fault.declare_full_length:
            self.send_header("Content-Length", str(len(page)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(page[: int(len(page) * fault.fraction)])
        self.close_connection = True


@contextmanager
def fault_proxy(upstream_url: str, faults: FaultPlan | None = None) -> Iterator[FaultProxy]:
    """Run the proxy on 127.0.0.1 (free port) in front of `upstream_url` while the block runs.

    `proxy.url` has the upstream's path, so it is a drop-in base URL.
    """
    upstream = urlsplit(upstream_url)
    proxy = FaultProxy(url="")
    handler = type(
        "ScriptedProxyHandler",
        (_ProxyHandler,),
        {
            "upstream_origin": f"{upstream.scheme}://{upstream.netloc}",
            "plan": staticmethod(faults) if callable(faults) else (faults or {}),
            "seen": proxy.requests,
            "lock": threading.Lock(),
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_port}{upstream.path}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
    )
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
