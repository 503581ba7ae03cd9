"""Scheduled harvests without waiting for the clock: beat entries built from a sources file,
judged with `is_due` at injected times, and RedBeat's lock keeping a second beat on standby."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from celery.schedules import crontab

from harvester.cluster.schedule import SWEEP_ENTRY, build_beat_schedule, entry_name
from harvester.settings import get_settings
from harvester.sources import SourceError, load_sources, parse_cron
from tests.redis_server import redis_server

pytestmark = pytest.mark.slow  # Celery beat on a real redis-server

SOURCES_YAML = """
sources:
  orlis:
    base_url: https://orlis.difu.de/server/oai/request
    metadata_prefix: dim
    schedule: "30 2 * * *"
  sets_weekly:
    base_url: https://repo.example.org/oai
    sets: [books, articles]
    schedule: "0 4 * * mon"
  manual:
    base_url: https://other.example.org/oai
"""


@pytest.fixture
def sources_file(tmp_path: Path) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(SOURCES_YAML, encoding="utf-8")
    return path


class Clock:
    """An injectable `now` for crontab.is_due."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_entries_per_scheduled_source_and_set(sources_file: Path) -> None:
    schedule = build_beat_schedule(load_sources(sources_file).values(), sweep_every=30)
    assert set(schedule) == {
        "harvest orlis *",
        "harvest sets_weekly books",
        "harvest sets_weekly articles",
        SWEEP_ENTRY,
    }
    orlis = schedule["harvest orlis *"]
    assert orlis["task"] == "ernte.scheduled_harvest"
    assert orlis["kwargs"] == {"payload": {"source": "orlis", "set_spec": ""}}
    assert orlis["options"] == {"queue": "harvest"}
    cron = orlis["schedule"]
    assert isinstance(cron, crontab)
    assert cron.minute == {30} and cron.hour == {2}
    assert cron.day_of_week == set(range(7)) and cron.day_of_month == set(range(1, 32))
    weekly = schedule["harvest sets_weekly books"]["schedule"]
    assert weekly.minute == {0} and weekly.hour == {4} and weekly.day_of_week == {1}
    assert schedule[SWEEP_ENTRY]["schedule"] == timedelta(seconds=30)


def test_is_due_at_injected_times(sources_file: Path) -> None:
    clock = Clock(datetime(2026, 3, 2, 2, 29, 0, tzinfo=UTC))  # a Monday, 02:29 UTC
    schedule = build_beat_schedule(load_sources(sources_file).values(), nowfun=clock)
    daily: crontab = schedule["harvest orlis *"]["schedule"]
    last_run = datetime(2026, 3, 1, 2, 30, 0, tzinfo=UTC)

    due, wait = daily.is_due(last_run)
    assert not due
    assert wait == pytest.approx(60, abs=1)  # one minute until 02:30

    clock.now = datetime(2026, 3, 2, 2, 30, 5, tzinfo=UTC)
    due, wait = daily.is_due(last_run)
    assert due
    assert wait == pytest.approx(24 * 3600 - 5, abs=1)  # next: tomorrow 02:30

    due, _ = daily.is_due(clock.now)  # just ran: not due again the same minute
    assert not due

    weekly: crontab = schedule[entry_name(load_sources(sources_file)["sets_weekly"], "books")][
        "schedule"
    ]
    clock.now = datetime(2026, 3, 3, 4, 0, 30, tzinfo=UTC)  # Tuesday: Monday's run was done
    assert not weekly.is_due(datetime(2026, 3, 2, 4, 0, 1, tzinfo=UTC))[0]
    clock.now = datetime(2026, 3, 9, 4, 0, 30, tzinfo=UTC)  # next Monday
    assert weekly.is_due(datetime(2026, 3, 2, 4, 0, 1, tzinfo=UTC))[0]


@pytest.mark.parametrize("expression", ["30 2 * *", "61 2 * * *", "every day"])
def test_bad_cron_expressions_are_refused_with_the_expression(expression: str) -> None:
    with pytest.raises(SourceError, match="schedule"):
        parse_cron(expression)


@pytest.fixture
def beat_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The ernte Celery app configured against a throwaway redis-server."""
    with redis_server() as url:
        monkeypatch.setenv("REDIS_URL", url)
        monkeypatch.setenv("ERNTE_BEAT_LOCK_TIMEOUT", "30")
        monkeypatch.setenv("ERNTE_BEAT_MAX_LOOP_INTERVAL", "1")
        from harvester.cluster import app as celery_app

        celery_app.configure()
        yield celery_app.app
        redis.Redis.from_url(url).flushall()
    get_settings.cache_clear()
    celery_app.configure()


def test_second_redbeat_waits_while_the_first_holds_the_lock(beat_app: object) -> None:
    from redbeat.schedulers import RedBeatScheduler, acquire_distributed_beat_lock

    first = RedBeatScheduler(app=beat_app, lazy=True)
    second = RedBeatScheduler(app=beat_app, lazy=True)
    assert first.lock_key == "ernte:redbeat:lock"
    assert first.lock_timeout == 30

    acquire_distributed_beat_lock(SimpleNamespace(scheduler=first))
    assert first.lock is not None and first.lock.owned()

    standby = threading.Thread(
        target=acquire_distributed_beat_lock, args=(SimpleNamespace(scheduler=second),), daemon=True
    )
    standby.start()
    standby.join(timeout=2.5)
    assert standby.is_alive(), "the second beat must wait while the first holds the lock"
    assert second.lock is None

    first.lock.release()  # the active beat stops
    standby.join(timeout=5)
    assert not standby.is_alive()
    assert second.lock is not None, "the standby beat took over"
    client = redis.Redis.from_url(str(get_settings().redis_url))
    assert client.pttl("ernte:redbeat:lock") > 0  # held again, by the second beat


def test_a_beat_left_without_its_lock_takes_it_at_its_next_tick(beat_app: object) -> None:
    """A standby beat whose wait for the lock met a Redis outage is left without a lock
    (Celery swallows the error of that start-up step); RedBeat's tick then died on
    `None.extend`. ernte's scheduler takes the lock (waiting while another beat holds it)
    and schedules from its next tick on."""
    from harvester.cluster.reconnect import RedBeatScheduler

    scheduler = RedBeatScheduler(app=beat_app, lazy=True)
    assert scheduler.lock_key and scheduler.lock is None  # as that swallowed error leaves it
    assert scheduler.tick() == 0.0
    assert scheduler.lock is not None and scheduler.lock.owned()
    client = redis.Redis.from_url(str(get_settings().redis_url))
    assert client.pttl("ernte:redbeat:lock") > 0
    assert scheduler.tick() >= 0.0  # an ordinary tick now, with the lock held
    scheduler.lock.release()
