"""The Elasticsearch client, built from settings, and a startup check that says what is wrong.

Secrets (API key, password) arrive only through the environment as `SecretStr` (see
`harvester.settings`) and are unwrapped at the one place the client is built; URLs are
redacted before they reach a log line or an error message.

Version rule: the `elasticsearch` Python client's major version must equal the server's.
Client 9.x sends `Accept: application/vnd.elasticsearch+json; compatible-with=9`; an 8.x
server refuses that header and a 10.x server may change the APIs ernte relies on (index
templates, bulk external versioning, search_after). `check_server` turns those situations
into one clear `UnsupportedServerError` instead of a stack of transport errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import elasticsearch
from elasticsearch import Elasticsearch
from pydantic import SecretStr

log = logging.getLogger(__name__)

SUPPORTED_SERVER_MAJOR = 9
"""The Elasticsearch server major version this client (elasticsearch-py 9.x) speaks to."""

RETRY_ON_STATUS = (429, 502, 503, 504)
"""Whole-request statuses the transport retries: overload and gateway hiccups, not 4xx bugs."""


class ElasticConnectionError(RuntimeError):
    """Elasticsearch cannot be used: unreachable, refusing credentials, or not Elasticsearch."""


class UnsupportedServerError(ElasticConnectionError):
    """The server's major version does not match the client's (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """Everything needed to build a client; secrets stay `SecretStr` until `build_client`."""

    url: str
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_certs: Path | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    max_retries: int = 3

    @property
    def display_url(self) -> str:
        """The URL without any user:password part, safe for logs and error messages."""
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """`https://user:secret@host:9200/` -> `https://***@host:9200/` (unchanged without userinfo)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def build_client(options: ConnectionOptions) -> Elasticsearch:
    """A client with authentication, TLS and retries configured (no request is sent yet).

    TLS certificates are verified unless `verify_certs` is explicitly False; an API key wins
    over user/password when both are given.
    """
    kwargs: dict[str, Any] = {
        "request_timeout": options.request_timeout,
        "max_retries": options.max_retries,
        "retry_on_timeout": True,
        "retry_on_status": RETRY_ON_STATUS,
        "verify_certs": options.verify_certs,
    }
    if options.api_key is not None:
        kwargs["api_key"] = options.api_key.get_secret_value()
    elif options.username and options.password is not None:
        kwargs["basic_auth"] = (options.username, options.password.get_secret_value())
    if options.ca_certs is not None:
        if not options.ca_certs.is_file():
            raise ElasticConnectionError(
                f"ES_CA_CERTS points to {options.ca_certs}, which is not a readable file"
            )
        kwargs["ca_certs"] = str(options.ca_certs)
    if not options.verify_certs:
        log.warning(
            "TLS certificate verification is OFF for Elasticsearch",
            extra={"es_url": options.display_url},
        )
        kwargs["ssl_show_warn"] = False
    return Elasticsearch(options.url, **kwargs)


def check_server_version(info: dict[str, Any], display_url: str) -> str:
    """The server version from a `GET /` body, or UnsupportedServerError with the fix."""
    version = str(info.get("version", {}).get("number", ""))
    try:
        major = int(version.split(".", 1)[0])
    except ValueError:
        raise UnsupportedServerError(
            f"Elasticsearch at {display_url} did not report a version (got {version!r})"
        ) from None
    if major != SUPPORTED_SERVER_MAJOR:
        raise UnsupportedServerError(_version_advice(display_url, version))
    return version


def check_server(client: Elasticsearch, display_url: str) -> str:
    """Ask the cluster who it is; return its version or raise an error that says what to do."""
    try:
        info = client.info().body
    except elasticsearch.UnsupportedProductError as error:
        raise ElasticConnectionError(
            f"the server at {display_url} is not Elasticsearch ({error.message})"
        ) from None
    except elasticsearch.AuthenticationException:
        raise ElasticConnectionError(
            f"Elasticsearch at {display_url} refused the credentials: check ES_API_KEY "
            "or ES_USERNAME/ES_PASSWORD"
        ) from None
    except elasticsearch.BadRequestError as error:
        if "media_type_header_exception" in str(error) or "compatible-with" in str(error):
            raise UnsupportedServerError(_version_advice(display_url, "older than 9")) from None
        raise
    except elasticsearch.SSLError as error:
        raise ElasticConnectionError(
            f"TLS handshake with Elasticsearch at {display_url} failed ({error}); set "
            "ES_CA_CERTS to the cluster's CA certificate"
        ) from None
    except elasticsearch.ConnectionError as error:
        raise ElasticConnectionError(
            f"Elasticsearch at {display_url} is not reachable ({error}); is the cluster up "
            "and ES_URL right?"
        ) from None
    return check_server_version(info, display_url)


def connect(options: ConnectionOptions, *, check: bool = True) -> Elasticsearch:
    """Build the client and (by default) verify the server before anything is written."""
    client = build_client(options)
    if check:
        version = check_server(client, options.display_url)
        log.info(
            "connected to Elasticsearch",
            extra={"es_url": options.display_url, "es_version": version},
        )
    return client


def _version_advice(display_url: str, version: str) -> str:
    client_version = ".".join(str(part) for part in elasticsearch.__versionstr__.split(".")[:2])
    return (
        f"Elasticsearch at {display_url} runs version {version}, but ernte uses the "
        f"elasticsearch Python client {client_version}, which only talks to Elasticsearch "
        f"{SUPPORTED_SERVER_MAJOR}.x (the client's major version must match the server's: it "
        f"sends compatible-with={SUPPORTED_SERVER_MAJOR} headers that other majors refuse). "
        f"Run an Elasticsearch {SUPPORTED_SERVER_MAJOR}.x cluster, or embedded mode "
        "(unset ES_URL)."
    )
