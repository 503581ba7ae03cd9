"""Scheduled harvests: the cron expressions of `config/sources.yaml` as Celery beat entries.

Beat runs with RedBeat (`harvester.cluster.app`): the schedule and each entry's last run live in
Redis behind a lock, so however many `ernte beat` processes run, one is active and the others
wait as standby. Each entry enqueues `ernte.scheduled_harvest(source, set)`, which takes the
harvest's lease like `ernte harvest --queue` does, so a tick that finds the previous run still
going is refused rather than doubled. A second entry runs the sweeper that recovers runs whose
worker died (workers also sweep on start-up and every `sweep_interval`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from harvester.sources import Source, parse_cron

SWEEP_ENTRY = "ernte sweep stale runs"


def entry_name(source: Source, set_spec: str) -> str:
    return f"harvest {source.key} {set_spec or '*'}"


def build_beat_schedule(
    sources: Iterable[Source],
    sweep_every: float | None = 30.0,
    nowfun: Callable[[], datetime] | None = None,
) -> dict[str, dict[str, Any]]:
    """Beat entries: one per (scheduled source, set), plus the periodic sweeper."""
    schedule: dict[str, dict[str, Any]] = {}
    for source in sources:
        if not source.schedule:
            continue
        cron = parse_cron(source.schedule, nowfun)
        for set_spec in source.sets or ("",):
            schedule[entry_name(source, set_spec)] = {
                "task": "ernte.scheduled_harvest",
                "schedule": cron,
                "kwargs": {"payload": {"source": source.key, "set_spec": set_spec}},
                "options": {"queue": "harvest"},
            }
    if sweep_every:
        schedule[SWEEP_ENTRY] = {
            "task": "ernte.sweep",
            "schedule": timedelta(seconds=sweep_every),
            "options": {"queue": "harvest"},
        }
    return schedule
