"""The dead-letter list: tasks that kept failing, with their reason, kept in Redis for replay.

Redis has no dead-letter exchange; this list is ours. Entries are written with their error and
traceback redacted; `entries()` redacts again for showing (`ernte dlq list`, `ernte status`),
while `raw_entries()` gives replay what was stored.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any, cast

from harvester.oai.datestamps import iso_now
from harvester.redact import redact, redact_data
from harvester.store.cluster_store import cluster
from harvester.store.redis_state import NAMESPACE

log = logging.getLogger(__name__)

DLQ_KEY = f"{NAMESPACE}:dlq"
"""The Redis list holding the dead letters."""


def record(
    task: str,
    kwargs: dict[str, Any],
    reason: str,
    trace: str,
    attempts: int,
    harvest: dict[str, Any] | None = None,
) -> None:
    """Append a failed task with what is needed to understand and replay it; `harvest` is the
    run's request for tasks of a fetch chain (replay requests the harvest again)."""
    entry: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "task": task,
        "kwargs": kwargs,
        "error": redact(reason),
        "traceback": redact(trace)[-4000:],
        "attempts": attempts,
        "at": iso_now(),
    }
    if harvest is not None:
        entry["harvest"] = harvest
    cluster().client.rpush(DLQ_KEY, json.dumps(entry))
    log.error("task dead-lettered: %s", entry["error"], extra={"task": task})


def entries() -> list[dict[str, Any]]:
    """The dead-letter list, oldest first, for showing: passwords in URLs are masked."""
    return [redact_data(entry) for _, entry in raw_entries()]


def raw_entries() -> Iterator[tuple[str, dict[str, Any]]]:
    """Each stored entry with its raw text (to remove it once replayed)."""
    for raw in cast(list[str], cluster().client.lrange(DLQ_KEY, 0, -1)):
        yield raw, json.loads(raw)


def remove(raw: str) -> None:
    cluster().client.lrem(DLQ_KEY, 1, raw)
