"""Progress of a harvest: a live bar on a terminal, one structured log line per page otherwise."""

from __future__ import annotations

import logging
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from harvester.oai.client import Page
from harvester.store.state import HarvestState

log = logging.getLogger("harvester.run.progress")


def harvest_log_fields(harvest: HarvestState, **extra: object) -> dict[str, object]:
    """Log context: which harvest a line concerns (source, set, prefix), plus `extra`."""
    return {
        "source": harvest.source,
        "set": harvest.set_spec or "*",
        "prefix": harvest.prefix,
        **extra,
    }


PROGRESS_EVERY = 5.0
"""Seconds between the progress lines of long batch work."""


class PeriodicLog:
    """A progress line for long batch work (index, normalize, rebuild, check), at most every
    PROGRESS_EVERY seconds: how many records are done, of how many, and how fast."""

    def __init__(
        self, message: str, total: int | None = None, every: float | None = None, **context: object
    ) -> None:
        every = PROGRESS_EVERY if every is None else every
        self.message, self.total, self.every, self.context = message, total, every, context
        self.done = 0
        self._started = time.monotonic()
        self._next = every

    def add(self, count: int) -> None:
        self.done += count
        elapsed = time.monotonic() - self._started
        if elapsed >= self._next:
            self._next = elapsed + self.every
            rate = round(self.done / max(elapsed, 1e-6), 1)
            log.info(
                self.message,
                extra={**self.context, "done": self.done, "total": self.total, "rate": rate},
            )


class LogProgress:
    """Structured log lines: source, set, page, records so far, rate, list size."""

    def start(self, state: HarvestState) -> None:
        about = harvest_log_fields(
            state,
            window_from=state.window_from,
            window_until=state.window_until,
            resume_page=state.next_page + 1,  # the page it fetches first, counted from 1
        )
        log.info("harvest started", extra=about)

    def page(self, state: HarvestState, page: Page) -> None:
        about = harvest_log_fields(
            state,
            page=state.next_page,
            records=state.run.records,
            deleted=state.run.deleted,
            total=state.complete_list_size,
            rate=state.rate,
        )
        log.info("page stored", extra=about)

    def finish(self, state: HarvestState) -> None:
        about = harvest_log_fields(
            state,
            state=state.state,
            pages=state.run.pages,
            records=state.run.records,
            normalized=state.run.normalized,
            quarantined=state.run.quarantined,
            watermark=state.watermark,
        )
        log.info("harvest finished", extra=about)


class BarProgress:
    """A rich progress bar: records, pages, rate and the total when the server gives one."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("records · page {task.fields[page]} · {task.fields[rate]} rec/s"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: TaskID | None = None

    def start(self, state: HarvestState) -> None:
        self._progress.start()
        label = f"{state.source} {state.set_spec or ''} {state.prefix}".replace("  ", " ")
        self._task = self._progress.add_task(
            label, total=state.complete_list_size, page=state.next_page, rate=0
        )

    def page(self, state: HarvestState, page: Page) -> None:
        if self._task is not None:
            self._progress.update(
                self._task,
                completed=state.run.records,
                total=state.complete_list_size,
                page=state.next_page,
                rate=state.rate,
            )

    def finish(self, state: HarvestState) -> None:
        if self._task is not None:
            self._progress.update(
                self._task, completed=state.run.records, total=state.run.records or None
            )
        self._progress.stop()


def progress_for(interactive: bool) -> LogProgress | BarProgress:
    return BarProgress() if interactive else LogProgress()
