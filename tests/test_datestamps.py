"""Datestamps: parsing what servers send, writing the granularity, where a window starts."""

from datetime import UTC, datetime, timedelta

import pytest

from harvester.oai.datestamps import (
    DAY,
    SECONDS,
    coerce_to_granularity,
    format_datestamp,
    parse_datestamp,
    window_start,
)


def test_parse_day_seconds_and_offsets() -> None:
    assert parse_datestamp("2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_datestamp("2024-03-01T10:00:00Z") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert parse_datestamp("2024-03-01T10:00:00+05:45") == datetime(2024, 3, 1, 4, 15, tzinfo=UTC)
    assert parse_datestamp("20210311") is None
    assert parse_datestamp("") is None


def test_granularity_is_respected() -> None:
    moment = datetime(2024, 3, 1, 10, 30, 5, tzinfo=UTC)
    assert format_datestamp(moment, DAY) == "2024-03-01"
    assert format_datestamp(moment, SECONDS) == "2024-03-01T10:30:05Z"
    assert coerce_to_granularity("2024-03-01T10:30:05Z", DAY) == "2024-03-01"
    assert coerce_to_granularity("2024-03-01", SECONDS) == "2024-03-01T00:00:00Z"
    with pytest.raises(ValueError, match="not a date"):
        coerce_to_granularity("yesterday", DAY)


def test_window_start_overlaps_and_respects_earliest() -> None:
    assert (
        window_start("2024-03-02T00:00:00Z", timedelta(days=1), SECONDS) == "2024-03-01T00:00:00Z"
    )
    assert window_start("2024-03-02T00:00:00Z", timedelta(days=1), DAY) == "2024-03-01"
    assert (
        window_start("2024-03-02T00:00:00Z", timedelta(days=30), SECONDS, "2024-02-20T00:00:00Z")
        == "2024-02-20T00:00:00Z"
    )
