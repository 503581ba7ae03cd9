"""OAI-PMH datestamps: parse what servers send, write what their granularity allows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from harvester.errors import DamagedData, UsageError

DAY = "YYYY-MM-DD"
SECONDS = "YYYY-MM-DDThh:mm:ssZ"
_EXTENDED_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def parse_datestamp(value: str) -> datetime | None:
    """A UTC datetime from `YYYY-MM-DD`, `YYYY-MM-DDThh:mm:ssZ` (or with an offset), or None."""
    value = value.strip()
    if not _EXTENDED_ISO_DATE.match(value):
        return None
    try:
        if len(value) == 10:
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # an offset that leaves year 1..9999: no datestamp
        return None


def format_datestamp(moment: datetime, granularity: str) -> str:
    """Write a moment in the repository's declared granularity."""
    moment = moment.astimezone(UTC)
    day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"  # %Y writes year 1 as "1"
    if "hh" in granularity:
        return f"{day}T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    return day


def coerce_to_granularity(value: str, granularity: str, *, end_of_day: bool = False) -> str:
    """A user-given date (`2024-01-01` or with time) written as the repository accepts it.

    With `end_of_day`, a bare day means its last second (an `until` of `2021-01-01` includes
    that day on a repository with seconds granularity, as it does on a day-granular one).
    """
    parsed = parse_datestamp(value)
    if parsed is None:
        raise UsageError(f"not a date: {value!r} (use YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)")
    if end_of_day and len(value.strip()) == 10:
        try:
            parsed += timedelta(days=1, seconds=-1)
        except OverflowError:  # 9999-12-31 already ends the calendar
            parsed = parsed.replace(hour=23, minute=59, second=59)
    return format_datestamp(parsed, granularity)


def window_start(
    watermark: str, overlap: timedelta, granularity: str, earliest: str | None = None
) -> str:
    """Where an incremental run starts: the watermark minus an overlap, never before earliest."""
    moment = parse_datestamp(watermark)
    if moment is None:
        raise DamagedData(f"stored watermark {watermark!r} is not a datestamp")
    start = moment - overlap
    earliest_moment = parse_datestamp(earliest) if earliest else None
    if earliest_moment is not None and start < earliest_moment:
        start = earliest_moment
    return format_datestamp(start, granularity)


def utc_now() -> datetime:
    return datetime.now(UTC)


_ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


def iso_now() -> str:
    return utc_now().strftime(_ISO_SECONDS)


def iso_from_timestamp(seconds: float) -> str:
    """A Unix time as `iso_now` writes it."""
    return datetime.fromtimestamp(seconds, UTC).strftime(_ISO_SECONDS)
