"""The `ernte worker` and `ernte beat` processes: start-up checks, node name, the sweeper.

A worker sweeps for runs whose lease expired (their worker died) at start and every
`ERNTE_SWEEP_INTERVAL` seconds, and serves /metrics when `ERNTE_METRICS_PORT` is set. Both
processes refuse to start without REDIS_URL or with time limits that do not fit together; beat
also refuses a sources file that gives no schedule (unreadable, or a bad cron expression).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import redis
from celery.signals import worker_ready, worker_shutdown

from harvester.cluster import metrics
from harvester.cluster.app import HARVEST_QUEUE, INDEX_QUEUE, app, schedule_problem, task_limits
from harvester.cluster.redis_persistence import warn_if_redis_not_persistent
from harvester.cluster.runs import sweep_stale_runs
from harvester.cluster.time_limits import TimeLimitError
from harvester.run.user_errors import redis_problem, unreachable_redis
from harvester.settings import get_settings
from harvester.store.cluster_store import cluster, cluster_settings

log = logging.getLogger(__name__)

_sweeper_stop = threading.Event()


def _sweep_forever(interval: float, stop: threading.Event) -> None:
    """Sweep at worker start, then every `interval` seconds until the worker stops."""
    redis_down = False  # one line when Redis goes away and one when it is back, not a
    # traceback every `interval` (411 of them in 3.5 minutes of a Redis restart)
    while True:
        try:
            recovered = sweep_stale_runs()
            if redis_down:
                log.warning("sweeper: Redis answers again; sweeping")
                redis_down = False
            if recovered:
                log.warning("sweeper re-enqueued %d run(s)", len(recovered))
        except Exception as exc:  # a Redis blip must not end the sweeper
            if not unreachable_redis(exc):
                log.exception("sweep failed")
            elif not redis_down:
                redis_down = True
                log.warning(
                    "sweeper: %s; sweeping again once it answers",
                    redis_problem(get_settings().redis_url or "", exc),
                )
        if stop.wait(interval):
            return


@worker_ready.connect
def _start_worker_services(sender: Any = None, **kwargs: Any) -> None:
    settings = cluster_settings()
    _sweeper_stop.clear()
    threading.Thread(
        target=_sweep_forever,
        args=(settings.sweep_interval, _sweeper_stop),
        name="ernte-sweeper",
        daemon=True,
    ).start()
    if settings.metrics_port:
        try:
            metrics.serve(cluster().client, settings.metrics_port, settings.metrics_host)
        except OSError as exc:  # a busy port: say so, keep working without metrics
            log.error("cannot serve metrics on port %s: %s", settings.metrics_port, exc.strerror)


@worker_shutdown.connect
def _stop_worker_services(sender: Any = None, **kwargs: Any) -> None:
    _sweeper_stop.set()


def require_redis() -> None:
    """Exit with one line when REDIS_URL is not set (worker, beat, `ernte metrics`)."""
    if not get_settings().redis_url:
        raise SystemExit("error: REDIS_URL is not set; cluster mode needs a Redis broker")


def _check_start() -> None:
    """What `ernte worker` and `ernte beat` check before starting: a broker, coherent limits."""
    require_redis()
    try:
        task_limits().check()
    except TimeLimitError as exc:
        raise SystemExit(f"error: {exc}") from None
    warn_if_redis_not_persistent(get_settings().redis_url or "")


def worker_hostname(name: str | None = None) -> str:
    """The Celery node name of `ernte worker`: unique per process, so that several workers on
    one host (or `--scale worker=N` in compose) never share a mailbox.

    Celery expands only `%h` (host), `%n` (host name) and `%d` (domain) in a node name (and
    `%i`/`%I` in file names); the process id is filled in here, since `%p` is not one of them."""
    return f"{name}@%h" if name else f"ernte-{os.getpid()}@%h"


def run_worker(queues: str, concurrency: int, pool: str, hostname: str | None = None) -> None:
    """`ernte worker`: a Celery worker on the given queues, with task events for Flower."""
    unknown = [q for q in queues.split(",") if q.strip() not in (HARVEST_QUEUE, INDEX_QUEUE)]
    if unknown:  # `-Q harvst` consumed a queue nothing sends to, silently
        raise SystemExit(
            f"error: unknown queue {', '.join(map(repr, unknown))}: "
            f"ernte's queues are {HARVEST_QUEUE} and {INDEX_QUEUE} (-Q {HARVEST_QUEUE},{INDEX_QUEUE})"
        )
    _check_start()
    settings = get_settings()
    if settings.embedded and "index" in queues.split(",") and concurrency > 1:
        log.info("embedded index: index writes on this host are serialized by a file lock")
    argv = [
        "worker",
        f"--queues={queues}",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--loglevel={settings.log_level}",
        f"--hostname={worker_hostname(hostname)}",
        "--task-events",
    ]
    app.worker_main(argv)


def run_beat() -> None:
    """`ernte beat`: Celery beat with RedBeat; only the holder of the Redis lock schedules.
    Refuses to start when the sources file gives no schedule (a worker runs on without one)."""
    problem = schedule_problem(cluster_settings())
    if problem is not None:
        raise SystemExit(f"error: {problem}")
    _check_start()
    settings = get_settings()
    try:
        app.start(["beat", f"--loglevel={settings.log_level}"])
    except redis.AuthenticationError as exc:  # no outage to wait out (cluster/reconnect.py)
        raise SystemExit(f"error: {redis_problem(settings.redis_url or '', exc)}") from None
