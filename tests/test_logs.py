"""The two log formats: a failure logged with its traceback keeps it in both (the server's
500 says "the server log has the details")."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from harvester.logs import JSONFormatter, KeyValueFormatter


def failure_record() -> logging.LogRecord:
    try:
        raise RuntimeError("tantivy said no")
    except RuntimeError:
        logger = logging.getLogger("harvester.web.app")
        return logger.makeRecord(
            logger.name,
            logging.ERROR,
            __file__,
            1,
            "unexpected error",
            (),
            exc_info=sys.exc_info(),
            extra={"path": "/api/search"},
        )


@pytest.mark.parametrize("formatter", [KeyValueFormatter(), JSONFormatter()])
def test_a_logged_exception_keeps_its_traceback(formatter: logging.Formatter) -> None:
    text = formatter.format(failure_record())
    if isinstance(formatter, JSONFormatter):
        entry = json.loads(text)
        assert entry["message"] == "unexpected error" and entry["path"] == "/api/search"
        text = entry["exception"]
    else:
        first = text.splitlines()[0]
        assert "unexpected error" in first and "path=/api/search" in first
    assert "Traceback" in text and "RuntimeError: tantivy said no" in text


def test_a_warning_with_an_exception_stays_one_line_in_the_text_format() -> None:
    """Libraries log retries as warnings with their exception (elastic_transport with ES
    down): on a terminal those stay one line each; only errors bring their traceback."""
    record = failure_record()
    record.levelno, record.levelname = logging.WARNING, "WARNING"
    assert len(KeyValueFormatter().format(record).splitlines()) == 1
    assert "Traceback" in json.loads(JSONFormatter().format(record))["exception"]


@pytest.mark.parametrize("formatter", [KeyValueFormatter(), JSONFormatter()])
def test_uvicorns_coloured_copy_of_its_message_is_not_shown(formatter: logging.Formatter) -> None:
    """uvicorn logs "Finished server process [%d]" with `extra={"color_message": ...}`, the
    template with terminal colour codes: `ernte serve` printed it as a context field."""
    logger = logging.getLogger("uvicorn.error")
    record = logger.makeRecord(
        logger.name,
        logging.INFO,
        __file__,
        1,
        "Finished server process [%d]",
        (4242,),
        None,
        extra={"color_message": "Finished server process [\x1b[36m%d\x1b[0m]"},
    )
    text = formatter.format(record)
    assert "Finished server process [4242]" in text
    assert "color_message" not in text and "\x1b" not in text and "%d" not in text
