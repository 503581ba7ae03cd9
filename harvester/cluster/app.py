"""The Celery app of cluster mode: Redis broker, queues `harvest` and `index`, every setting that
matters set on purpose (see shared research `celery_pipeline.md` §2 for the sources).

The tasks (`harvester.cluster.tasks`) are page-sized and idempotent, and their correctness comes from
our own records in Redis (leases with fencing, checkpoints, the run ledger, a sweeper), not from
broker redelivery; the settings below make redelivery a working backup rather than a hazard.

The cluster-only knobs are fields of `harvester.settings.Settings` (env `ERNTE_<NAME>`), each
explained there.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import setup_logging
from kombu import Exchange, Queue

from harvester.cluster.time_limits import TimeLimits, time_limits
from harvester.logs import configure_logging
from harvester.settings import Settings, get_settings
from harvester.sources import SourceError, scheduled_sources
from harvester.store.cluster_store import cluster_settings, redis_url, reset

log = logging.getLogger(__name__)

HARVEST_QUEUE = "harvest"
INDEX_QUEUE = "index"


def celery_config(settings: Settings, url: str) -> dict[str, Any]:
    """Every Celery setting ernte depends on, each with the reason it is set."""
    limits = time_limits(settings)
    transport = {
        # Redis has no acks: an unacked message comes back after this many seconds. It must
        # exceed the longest task (time limit) plus any countdown, or a running task is
        # delivered a second time. Set on broker AND result backend (shortest one wins).
        "visibility_timeout": limits.visibility,
        # kombu >= 5.7: look for unacked messages to restore this often (was ~100 s fixed).
        "unacked_restore_interval": settings.unacked_restore_interval,
        "unacked_restore_throttle": 1,
        # Notice dead connections (idle load balancers, Redis restarts) instead of stalling.
        "health_check_interval": 25,
        "socket_keepalive": True,
    }
    return {
        "broker_url": url,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": limits.visibility},
        "visibility_timeout": limits.visibility,
        # Keep retrying the broker at start-up (compose starts workers next to Redis), and for
        # as long as Redis is away later (Celery's default gives up after 100 tries, about
        # 50 minutes): a worker on a bare host has no supervisor to start it again.
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # Status lives in our run ledger and HarvestState, not in task results; no chords.
        "task_ignore_result": True,
        "result_backend": None,
        # JSON only: a worker never unpickles what is on the queue.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        # Ack after the task returned, so a killed worker's page is redone (tasks are idempotent).
        "task_acks_late": True,
        # ... and re-queue (not ack) when the child process died under the task (SIGKILL, OOM).
        # Loops are bounded by our delivery counter (max_deliveries) -> dead-letter list.
        "task_reject_on_worker_lost": True,
        # A task that failed after its retries is acked; on_failure put it in our DLQ first.
        "task_acks_on_failure_or_timeout": True,
        # With acks_late a worker reserves only what it runs: no page waits behind a slow one.
        "worker_prefetch_multiplier": 1,
        # A late-ack task whose broker connection dropped would run twice; cancel it instead.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Celery 5.7's consumer dies of a Redis restart; this one reconnects (reconnect.py).
        "worker_consumer": "harvester.cluster.reconnect:Consumer",
        # A stopping worker finishes or re-queues what it holds (incl. ETA/countdown messages).
        "worker_soft_shutdown_timeout": 30.0,
        "worker_enable_soft_shutdown_on_idle": True,
        # Longer than one page's HTTP worst case (timeouts, retries, Retry-After), so that only
        # a hung task is interrupted (harvester/cluster/time_limits.py derives or checks them).
        "task_soft_time_limit": limits.soft,
        "task_time_limit": limits.hard,
        # Contain memory growth of long-lived children (lxml/tantivy high-water marks).
        "worker_max_tasks_per_child": 1000,
        "worker_max_memory_per_child": 512_000,
        # Flower and exporters need events.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # Separate queues so fetching (I/O) and indexing (CPU, one writer when embedded) scale
        # apart: `ernte worker -Q harvest -c 8`, `ernte worker -Q index -c 1`.
        # Each queue has its own exchange and routing key: a queue declared by name alone is
        # bound to the default exchange/key, and two such queues would both get every message.
        "task_queues": (
            Queue(HARVEST_QUEUE, Exchange(HARVEST_QUEUE), routing_key=HARVEST_QUEUE),
            Queue(INDEX_QUEUE, Exchange(INDEX_QUEUE), routing_key=INDEX_QUEUE),
        ),
        "task_default_queue": HARVEST_QUEUE,
        "task_default_exchange": HARVEST_QUEUE,
        "task_default_routing_key": HARVEST_QUEUE,
        "task_routes": {
            "ernte.index_page": {"queue": INDEX_QUEUE},
            "ernte.*": {"queue": HARVEST_QUEUE},
        },
        # Beat: RedBeat keeps the schedule in Redis behind a lock, so one beat is active per
        # cluster and a second one waits as standby. The lock lifetime is explicit (the default
        # 5 x max interval would make failover take 25 minutes).
        # RedBeat, waiting out a Redis restart instead of exiting (harvester/cluster/reconnect.py).
        "beat_scheduler": "harvester.cluster.reconnect:RedBeatScheduler",
        "redbeat_redis_url": url,
        # Explicit (the fallback to broker options is deprecated), with timeouts: a Redis that
        # drops packets instead of refusing must not hang a tick, nor beat's stop on SIGTERM
        # for long (docker kills 10 s after it).
        "redbeat_redis_options": {"socket_connect_timeout": 5, "socket_timeout": 10},
        "redbeat_key_prefix": "ernte:redbeat:",
        "redbeat_lock_key": "ernte:redbeat:lock",
        "redbeat_lock_timeout": settings.beat_lock_timeout,
        "beat_max_loop_interval": settings.beat_max_loop_interval,
        # Cron expressions in sources.yaml are UTC.
        "timezone": "UTC",
        "enable_utc": True,
    }


def task_limits() -> TimeLimits:
    """The time limits Celery runs with (derived, or as configured; `check()` says if they fit)."""
    return time_limits(cluster_settings())


def configure(target: Celery | None = None) -> Settings:
    """(Re-)read settings from the environment and apply them to the app.

    Called at import; tests call it again after pointing REDIS_URL at their own redis-server."""
    get_settings.cache_clear()
    reset()
    settings = cluster_settings()
    celery = target or app
    celery.conf.update(celery_config(settings, redis_url()))
    celery.conf.beat_schedule = _beat_schedule(settings)
    celery._pool = None  # drop broker connections made under an earlier configuration
    for cached in ("redbeat_redis", "redbeat_conf"):  # RedBeat caches both on the app
        if hasattr(celery, cached):
            delattr(celery, cached)
    limits = time_limits(settings)
    if limits.problems:  # `ernte worker`/`ernte beat` refuse to start; say so early, too
        log.warning("%s", "; ".join(limits.problems))
    return settings


def _beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The beat entries of the sources file. A file that cannot be read, or a schedule that is
    no cron expression, leaves only the sweeper and a warning: a worker (which imports this
    app too) runs on, and `ernte beat` refuses to start with the problem (`schedule_problem`)."""
    schedule, problem = _schedule_or_problem(settings)
    if problem is not None:
        log.warning("no scheduled harvests: %s", problem)
    return schedule


def schedule_problem(settings: Settings) -> str | None:
    """Why the sources file gives no beat schedule (unreadable, malformed, a schedule that is
    no cron expression), as one line naming the file; None when it gives one."""
    return _schedule_or_problem(settings)[1]


def _schedule_or_problem(settings: Settings) -> tuple[dict[str, dict[str, Any]], str | None]:
    from harvester.cluster.schedule import build_beat_schedule

    try:
        sources = scheduled_sources(settings.sources_file).values()
    except SourceError as exc:
        return build_beat_schedule((), sweep_every=settings.sweep_interval), str(exc)
    return build_beat_schedule(sources, sweep_every=settings.sweep_interval), None


@setup_logging.connect
def _keep_ernte_logging(**kwargs: Any) -> None:
    """Worker and beat log as every ernte command does: text or JSON (ERNTE_LOG_FORMAT,
    `--log-format`) with source, set and page, secrets redacted. Celery replaced the handler
    `ernte` had installed with its own plain-text one unless a receiver of this signal exists;
    with one, it installs none (in prefork children too). A process started without `ernte`
    (`celery -A harvester.cluster.app worker`) is set up from the settings here."""
    if not logging.getLogger().handlers:
        settings = get_settings()
        configure_logging(settings.log_format, settings.log_level)


app = Celery("ernte", include=["harvester.cluster.tasks", "harvester.cluster.worker"])
configure(app)
