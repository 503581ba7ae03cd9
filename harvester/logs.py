"""Structured logging: every line says which source, set and page (and URL, record) it concerns.

`ERNTE_LOG_FORMAT=json` writes one JSON object per line (for log shippers); the default text
format writes `time level logger message key=value ...`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from harvester.redact import RECORD_ATTRIBUTES, install_log_filter

_NOT_CONTEXT = RECORD_ATTRIBUTES | {"color_message"}
"""Record attributes that are not context: the standard ones, and uvicorn's `color_message`,
its own message again as a template with terminal colour codes (`ernte serve` printed it
after every start and stop)."""


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _NOT_CONTEXT}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_text:  # already formatted (and redacted) by harvester.redact
            data["exception"] = record.exc_text
        elif record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{k}={v}" for k, v in _context(record).items())
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.getMessage()}"
        line = f"{line}  {context}" if context else line
        # The traceback of an error (`log.exception(...)`), as the JSON format keeps it: without
        # it the server's "internal error (the server log has the details)" had none. Not of
        # warnings: a library's retry warning, or a user error, stays one line on a terminal.
        if record.levelno < logging.ERROR:
            return line
        if record.exc_text:  # already formatted (and redacted) by harvester.redact
            return f"{line}\n{record.exc_text}"
        if record.exc_info:
            return f"{line}\n{self.formatException(record.exc_info)}"
        return line


_LOG_CONTEXT: ContextVar[Mapping[str, object]] = ContextVar(
    "ernte_log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Within this block (in this thread, or a thread started with `log_context_now()`),
    every log line carries these fields unless it names them itself: so a line from code that
    does not know the harvest (an HTTP retry, an XML repair) still says which source, set and
    page it concerns."""
    token = _LOG_CONTEXT.set({**_LOG_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        _LOG_CONTEXT.reset(token)


def log_context_now() -> dict[str, object]:
    """The fields `log_context` has set here: to hand to a thread this code starts."""
    return dict(_LOG_CONTEXT.get())


class _ContextFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _LOG_CONTEXT.get().items():
            if key not in record.__dict__:
                setattr(record, key, value)
        return True


def logging_choice() -> tuple[str, str]:
    """(format, level) of this process's logging as `configure_logging` installed it: what a
    process started afresh (an `ernte serve` worker) must be configured with."""
    root = logging.getLogger()
    json_format = any(isinstance(h.formatter, JSONFormatter) for h in root.handlers)
    return ("json" if json_format else "text"), logging.getLevelName(root.level)


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    """Install one stderr handler with the chosen format (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else KeyValueFormatter())
    handler.addFilter(_ContextFields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    install_log_filter(root)
    root.setLevel(level.upper())
    for noisy in ("urllib3", "elastic_transport", "sickle"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
