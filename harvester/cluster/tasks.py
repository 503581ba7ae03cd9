"""The Celery tasks of cluster mode: thin shells that read their payload and call `work`.

    ernte.start_harvest   [harvest]  RunStep     -> work.start_harvest
    ernte.fetch_page      [harvest]  PageFetch   -> work.fetch_page (one OAI-PMH page)
    ernte.index_page      [index]    IndexBatch  -> work.index_page
    ernte.finalize_run    [harvest]  RunStep     -> work.finalize_run
    ernte.scheduled_harvest [harvest] ScheduledHarvest (beat) -> runs.request_harvest
    ernte.sweep           [harvest]  (beat)      -> runs.sweep_stale_runs

Retries, delivery counting and dead letters come from the base class (`task_base.ErnteTask`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from celery import Task

from harvester.cluster import work
from harvester.cluster.app import app
from harvester.cluster.payloads import (
    FETCH_PAGE,
    FINALIZE_RUN,
    INDEX_PAGE,
    SCHEDULED_HARVEST,
    START_HARVEST,
    SWEEP,
    IndexBatch,
    PageFetch,
    RunStep,
    ScheduledHarvest,
)
from harvester.cluster.runs import request_harvest, sweep_stale_runs
from harvester.cluster.task_base import ErnteTask
from harvester.store.redis_state import RunSpec

log = logging.getLogger(__name__)

P = TypeVar("P")


def _shell(name: str, read: Callable[[dict[str, Any]], P], do: Callable[[P], str]) -> Task:
    """A task named `name` that reads its payload with `read` and hands it to `do`."""

    @app.task(bind=True, base=ErnteTask, name=name)
    def task(self: Task, payload: dict[str, Any]) -> str:
        return do(read(payload))

    return cast(Task, task)


start_harvest = _shell(START_HARVEST, RunStep.from_json, work.start_harvest)
fetch_page = _shell(FETCH_PAGE, PageFetch.from_json, work.fetch_page)
index_page = _shell(INDEX_PAGE, IndexBatch.from_json, work.index_page)
finalize_run = _shell(FINALIZE_RUN, RunStep.from_json, work.finalize_run)


@app.task(bind=True, base=ErnteTask, name=SCHEDULED_HARVEST)
def scheduled_harvest(self: Task, payload: dict[str, Any]) -> str:
    """A beat tick: request an incremental harvest (refused if the last one still runs)."""
    tick = ScheduledHarvest.from_json(payload)
    line = request_harvest(RunSpec(tick.source, tick.set_spec))
    log.info(
        "scheduled harvest: %s", line, extra={"source": tick.source, "set": tick.set_spec or "*"}
    )
    return line


@app.task(bind=True, base=ErnteTask, name=SWEEP)
def sweep(self: Task) -> list[str]:
    return sweep_stale_runs()
