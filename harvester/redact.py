"""Keeps secrets out of everything ernte shows: a password in a URL (`user:secret@host`, as in
`REDIS_URL` or an OAI base URL with credentials) becomes `user:***@host`.

Applied where text leaves the process: every log handler (`install_log_filter`, also on the
handlers Celery sets up), the dead-letter list, `ernte status` and error lines. Task arguments
never carry a password in the first place (`harvester.cluster.payloads.IndexBatch` holds the
redacted source URL; fetching reads the real one from the run ledger in Redis).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/@:'\"]*):(?P<secret>[^\s/@'\"]+)@"
)
_QUERY_PASSWORD = re.compile(r"(?P<name>[?&](?:password|passwd)=)[^&#\s'\"]+", re.IGNORECASE)
"""A password given as a URL parameter (`redis://host:6379/0?password=...`, which redis-py
accepts)."""
MASK = "***"


def redact(text: str) -> str:
    """`text` with every `scheme://user:password@` turned into `scheme://user:***@`, and every
    `?password=...` parameter into `?password=***`."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _mask_query_password(text)


def _mask_query_password(text: str) -> str:
    """`text` with every `?password=...` (or `&passwd=...`) value masked."""
    return _QUERY_PASSWORD.sub(lambda m: f"{m['name']}{MASK}", text)


def redact_url(url: str) -> str:
    """A URL without its password (`https://u:p@h/oai` -> `https://u:***@h/oai`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return _mask_query_password(url)
    host = parts.netloc.rpartition("@")[2]
    shown = urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))
    return _mask_query_password(shown)


def redact_data(value: Any) -> Any:
    """A copy of JSON-like data (dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}
"""The attributes every log record has (after formatting): the rest are a record's fields."""


class RedactingFilter(logging.Filter):
    """Redacts a record's message, its structured fields and its traceback before any handler
    formats it (attached to handlers, since filters on a logger miss its children's records)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key, value in list(record.__dict__.items()):
            if key not in RECORD_ATTRIBUTES and isinstance(value, str | list | tuple | dict):
                setattr(record, key, redact_data(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Attach the redacting filter to every handler of `logger` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
