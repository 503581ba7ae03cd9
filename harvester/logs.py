"""Structured logging: every line says which source, set and page (and URL, record) it concerns.

`ERNTE_LOG_FORMAT=json` writes one JSON object per line (for log shippers); the default text
format writes `time level logger message key=value ...`.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from harvester.redact import install_log_filter

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


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
        # The traceback of `log.exception(...)`, as the JSON format keeps it: without it the
        # server's "internal error (the server log has the details)" had no details to point to.
        if record.exc_text:  # already formatted (and redacted) by harvester.redact
            return f"{line}\n{record.exc_text}"
        if record.exc_info:
            return f"{line}\n{self.formatException(record.exc_info)}"
        return line


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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    install_log_filter(root)
    root.setLevel(level.upper())
    for noisy in ("urllib3", "elastic_transport", "sickle"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
