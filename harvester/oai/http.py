"""HTTP for harvesting: timeouts, retries with backoff and jitter, Retry-After, a clear User-Agent.

Retried: connection errors, timeouts, truncated transfers, HTTP 429 and 5xx. Other statuses are
returned to the caller, because OAI-PMH servers put their error in the body (Zenodo answers
`noRecordsMatch` with HTTP 422) and the OAI layer decides from the body.

Not retried: a refused connection or an unknown host before the server ever answered this
client (a wrong URL or a server that is down fails in seconds, not after a minute of backoff;
once it has answered, the same errors during a run are retried), and a body larger than
`max_response_bytes` after decompression.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from harvester.errors import ErnteError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 507, 509})


_OAI_ERROR = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?error\s[^>]*\bcode\s*=", re.S)


def _answers_with_oai_error(status: int, headers: Mapping[str, str], body: bytes) -> bool:
    """A server error whose body is an OAI-PMH error (`badResumptionToken` with HTTP 500, as
    some servers send): the body decides, as for any status, so it is not retried. A 429 or
    503 with Retry-After is flow control, and is waited out whatever its body says."""
    if status in (429, 503) and headers.get("Retry-After"):
        return False
    return b"OAI-PMH" in body[:4096] and _OAI_ERROR.search(body, 0, 65536) is not None


class HTTPFailure(ErnteError, RuntimeError):
    """A request that still failed after all retries; names the URL and what went wrong."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        self.reason = reason
        where = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{where} from {url}: {reason}")


@dataclass(slots=True)
class HTTPResponse:
    """What came back: final URL (with query), status, headers and the body bytes, and the
    URL that was asked for when a redirect led elsewhere (`named` says both)."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    requested: str = ""

    @property
    def named(self) -> str:
        """The URL for a message: the request, and where a redirect took it if it did (an
        error named only `/elsewhere/`, not the ListRecords request that was sent there)."""
        if self.requested and self.requested != self.url:
            return f"{self.requested} (redirected to {self.url})"
        return self.url

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


@dataclass(slots=True)
class RetryPolicy:
    """How hard to try: attempts after the first, backoff base and cap, Retry-After cap."""

    max_retries: int = 5
    backoff_base: float = 2.0
    backoff_max: float = 120.0
    retry_after_cap: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter for retry number `attempt` (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


DEFAULT_MAX_RESPONSE_BYTES = 200 * 1024 * 1024


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what it wraps (urllib3's MaxRetryError.reason) and its causes."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or current in seen:
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        todo += [a for a in current.args if isinstance(a, BaseException)]
    return seen


def unreachable(exc: BaseException, url: str) -> str | None:
    """'connection refused by HOST:PORT' or 'unknown host HOST' when that is what `exc` is."""
    for inner in _chain(exc):
        if isinstance(inner, ConnectionRefusedError) or "Connection refused" in str(inner):
            return f"connection refused by {_host_port(url)}"
        if isinstance(inner, socket.gaierror | urllib3.exceptions.NameResolutionError):
            return f"unknown host {urlsplit(url).hostname} (name resolution failed)"
    return None


def describe(exc: BaseException, url: str) -> str:
    """A short reason for a transport error, without urllib3's object reprs."""
    known = unreachable(exc, url)
    if known:
        return known
    if isinstance(exc, requests.Timeout):
        return f"timed out talking to {_host_port(url)}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke off mid-response (truncated transfer)"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return "the response could not be decompressed"
    for inner in _chain(exc):
        if isinstance(inner, ConnectionResetError) or "reset by peer" in str(inner):
            return f"connection reset by {_host_port(url)}"
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}"


class ResponseTooLarge(HTTPFailure):
    """A body over the configured cap (ERNTE_MAX_RESPONSE_BYTES); not retried."""


class HTTPClient:
    """A requests session with the harvester's timeouts and retry policy."""

    def __init__(
        self,
        *,
        user_agent: str,
        connect_timeout: float,
        read_timeout: float,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "text/xml, application/xml;q=0.9, */*;q=0.1"
        self.session.headers["Accept-Encoding"] = "gzip, deflate"
        self.timeout = (connect_timeout, read_timeout)
        self.policy = policy
        self.sleep = sleep
        self.retries = 0
        self.max_response_bytes = max_response_bytes
        self.answered = False  # has the server ever answered this client?

    def _read_body(self, response: requests.Response, request_url: str) -> bytes:
        """The body, decompressed, refused once it passes `max_response_bytes`."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=256 * 1024):
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise ResponseTooLarge(
                        request_url,
                        f"response body larger than {self.max_response_bytes} bytes "
                        "(decompressed); raise ERNTE_MAX_RESPONSE_BYTES if this server's "
                        "pages really are that large",
                        response.status_code,
                    )
                chunks.append(chunk)
        finally:
            response.close()
        return b"".join(chunks)

    def get(self, url: str, params: Mapping[str, str]) -> HTTPResponse:
        """GET with retries; returns the last response whose status is not retryable."""
        last_reason = ""
        last_status: int | None = None
        request_url = requests.Request("GET", url, params=dict(params)).prepare().url or url
        for attempt in range(self.policy.max_retries + 1):
            if attempt:
                self.retries += 1
            try:
                response = self.session.get(url, params=params, timeout=self.timeout, stream=True)
                body = self._read_body(response, request_url)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                refused = None if self.answered else unreachable(exc, url)
                if refused:  # the first request: a wrong URL or a server that is down
                    raise HTTPFailure(request_url, refused) from exc
                last_reason, last_status = describe(exc, url), None
                wait = self.policy.backoff(attempt + 1)
            except requests.RequestException as exc:
                raise HTTPFailure(request_url, describe(exc, url)) from exc
            else:
                self.answered = True
                if response.status_code not in RETRY_STATUSES or _answers_with_oai_error(
                    response.status_code, response.headers, body
                ):
                    return HTTPResponse(
                        response.url, response.status_code, response.headers, body, request_url
                    )
                last_status = response.status_code
                last_reason = "empty body" if not body else response.reason or "server error"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None:
                    wait = min(retry_after, self.policy.retry_after_cap)
                else:
                    wait = self.policy.backoff(attempt + 1)
            if attempt == self.policy.max_retries:
                break
            log.warning(
                "retrying request",
                extra={
                    "url": request_url,
                    "status": last_status,
                    "reason": last_reason,
                    "attempt": attempt + 1,
                    "wait_s": round(wait, 2),
                },
            )
            self.sleep(wait)
        raise HTTPFailure(
            request_url,
            f"{last_reason} (gave up after {self.policy.max_retries + 1} attempts)",
            last_status,
        )
