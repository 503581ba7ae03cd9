"""What travels through the queues: one typed payload per task, sent and read by field name.

Every task takes a single JSON object (`payload`), built from and read into one of these
dataclasses, so that no code indexes task arguments by position and a dead letter says what
it carried (`ernte dlq list --json`). Sending goes by task name through the app, so the code
that requests work does not import the tasks that do it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Self

from harvester.cluster.app import app

START_HARVEST = "ernte.start_harvest"
FETCH_PAGE = "ernte.fetch_page"
INDEX_PAGE = "ernte.index_page"
FINALIZE_RUN = "ernte.finalize_run"
SCHEDULED_HARVEST = "ernte.scheduled_harvest"
SWEEP = "ernte.sweep"

RUN_TASKS = (START_HARVEST, FETCH_PAGE, FINALIZE_RUN)
"""Tasks that belong to the fetch chain of one run (and carry its fence)."""


class Payload:
    """Conversion to and from the JSON object a task receives."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class RunStep(Payload):
    """start_harvest and finalize_run: the run and the fence the task acts under."""

    run_id: str
    fence: int


@dataclass(frozen=True, slots=True)
class PageFetch(Payload):
    """fetch_page: fetch page `page_no` of the run, under `fence`."""

    run_id: str
    page_no: int
    fence: int


@dataclass(frozen=True, slots=True)
class IndexBatch(Payload):
    """index_page: index the archived records of one page. `source_ref` never holds a
    password (the archive is all indexing reads); `instance` tells runs of one id apart;
    `replayed`: sent by `ernte dlq replay` (its run may be over, see `count_replayed_page`)."""

    run_id: str
    source_ref: str
    prefix: str
    page_no: int
    identifiers: list[str] = field(default_factory=list)
    instance: str = ""
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ScheduledHarvest(Payload):
    """scheduled_harvest: a beat tick for one (source, set)."""

    source: str
    set_spec: str = ""


def send(task: str, payload: Payload, countdown: float | None = None) -> None:
    """Queue `task` with `payload` (routed to its queue by name, see `app.task_routes`)."""
    app.send_task(task, kwargs={"payload": payload.to_json()}, countdown=countdown)


def payload_of(kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """The payload object of a task's keyword arguments ({} when it has none)."""
    value = (kwargs or {}).get("payload")
    return value if isinstance(value, dict) else {}
