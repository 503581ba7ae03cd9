"""Celery tasks of cluster mode: one OAI-PMH page per task, indexing on its own queue.

    enqueue_harvest ─ takes the lease (fence n) ─► start_harvest(run, n)              [harvest]
    start_harvest: Harvester.prepare (resume checkpoint or open window) ─► fetch_page(run, 0, n)
    fetch_page(run, p, n): CAS (fence n current, checkpoint.next_page == p), else no-op
        backlog > index_backlog ─► re-enqueue itself with a countdown (no sleeping in a slot)
        Harvester.step: fetch ─► archive ─► sink enqueues index_page(page ids) ─► fenced checkpoint
        more pages ─► fetch_page(run, p+1, n) ; list ended ─► status fetched ─► maybe finalize
    index_page(run, source, prefix, ids, p): latest archived versions ─► process_batch  [index]
        ─► per-page stats (HSET by page number) + done set ─► maybe finalize
    finalize_run(run, n): once per fence ─► Harvester.complete (watermark) ─► release lease
    sweep: runs whose lease expired (worker died) ─► new fence ─► fetch_page from the checkpoint
        and index_page for handed-off pages not yet indexed            (worker start + every N s)

Every task is idempotent: archive appends skip identical versions, index writes are upserts by
OAI identifier, stats are per page, and checkpoint writes are fenced compare-and-sets, so a
message delivered twice (acks_late, visibility timeout, a sweeper re-enqueue) changes nothing.
Transient errors are retried with exponential backoff and jitter; a task that keeps failing (or
keeps killing its worker) goes to the dead-letter list `ernte:dlq` with its reason, and
`replay_dead_letters()` (CLI: `ernte dlq replay`) re-enqueues it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, cast

import redis
import requests
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready, worker_shutdown
from celery.utils.time import get_exponential_backoff_interval

from harvester import metrics, services
from harvester.archive import RawArchive
from harvester.celery_app import app, cluster_settings, redis_url
from harvester.datestamps import iso_now
from harvester.harvest import Harvester, HarvestRequest
from harvester.http import HTTPFailure
from harvester.locks import index_write_lock
from harvester.model import RawRecord
from harvester.oai import NotOAIResponse
from harvester.pipeline import process_batch
from harvester.progress import LogProgress
from harvester.redis_persistence import warn_if_redis_not_persistent
from harvester.redis_state import (
    FencedStateStore,
    HarvestLease,
    RedisStateStore,
    RunInfo,
    RunLedger,
    RunSpec,
    StaleRun,
    redis_client,
)
from harvester.settings import Settings, get_settings
from harvester.sources import Source, resolve_source
from harvester.state import RunCounts, StateStore, harvest_run_id
from indexer.backend import IndexBackend

log = logging.getLogger(__name__)

DLQ_KEY = metrics.DLQ_KEY
STALE = "stale"


# -- what the tasks share -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cluster:
    """The Redis-held pieces of cluster mode, built once per process and Redis URL."""

    client: redis.Redis
    store: RedisStateStore
    lease: HarvestLease
    ledger: RunLedger


@lru_cache(maxsize=4)
def _cluster_for(url: str, lease_seconds: float) -> Cluster:
    client = redis_client(url)
    return Cluster(
        client=client,
        store=RedisStateStore(client, mirror=True),
        lease=HarvestLease(client, lease_seconds),
        ledger=RunLedger(client),
    )


def cluster() -> Cluster:
    return _cluster_for(redis_url(), cluster_settings().lease_seconds)


def _resolve(source_ref: str, prefix: str | None) -> Source:
    return resolve_source(source_ref, get_settings().sources_file, prefix or None)


def _harvester(source: Source, store: StateStore) -> Harvester:
    """A Harvester whose sink is passed per step (the sink factory of services is not used)."""
    return services.harvester(get_settings(), source, LogProgress(), None, store=store)


def run_id_for(source: Source, spec: RunSpec) -> str:
    """The lease key of a harvest (see `harvest_run_id`)."""
    return harvest_run_id(source.key, spec.set_spec)


def _ctx(run_id: str, **extra: object) -> dict[str, object]:
    return {"run": run_id, **extra}


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying later: network, server overload, Redis or index unavailable."""
    if isinstance(
        exc,
        HTTPFailure
        | NotOAIResponse
        | requests.RequestException
        | OSError  # includes ConnectionError, TimeoutError; disk and lock trouble pass too
        | redis.ConnectionError
        | redis.TimeoutError,
    ):
        return True
    try:
        import elasticsearch
    except ImportError:  # pragma: no cover - a dependency, but keep the worker alive without it
        return False
    if isinstance(exc, elasticsearch.ConnectionError | elasticsearch.ConnectionTimeout):
        return True
    return isinstance(exc, elasticsearch.ApiError) and exc.status_code in (429, 502, 503, 504)


# -- the task base: retries, delivery counting, dead letters ---------------------------------


class ErnteTask(Task):
    """Retry transient errors with capped exponential backoff and full jitter; dead-letter the
    rest, and tasks whose worker keeps dying under them.

    Retries are done here rather than with `autoretry_for`, because Celery binds autoretry's
    backoff cap when the task is created, and ours comes from settings read at configure time.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        settings = cluster_settings()
        if self._delivered_too_often(settings.max_deliveries):
            reason = (
                f"delivered more than {settings.max_deliveries} times without finishing "
                "(the worker process died under it each time)"
            )
            dead_letter(self.name, args, kwargs, reason, "", self.request.retries + 1)
            _give_up(self.name, args, reason)
            return "dead-lettered"
        try:
            return self.run(*args, **kwargs)
        except StaleRun as exc:
            log.info("stale task, nothing to do: %s", exc, extra={"task": self.name})
            return STALE
        except Exception as exc:
            if not is_transient(exc) or isinstance(exc, SoftTimeLimitExceeded):
                raise
            countdown = get_exponential_backoff_interval(
                factor=1,
                retries=self.request.retries,
                maximum=settings.retry_backoff_max,
                full_jitter=True,
            )
            log.warning(
                "transient error, retrying in %ss: %s",
                countdown,
                exc,
                extra={"task": self.name, "attempt": self.request.retries + 1},
            )
            raise self.retry(
                exc=exc, countdown=countdown, max_retries=settings.task_max_retries
            ) from exc

    def _delivered_too_often(self, limit: int) -> bool:
        """Count deliveries of this task id; after_return clears the count, so only deliveries
        that never returned (worker lost: SIGKILL, OOM) add up."""
        if not self.request.id:
            return False
        key = f"ernte:deliveries:{self.request.id}"
        client = cluster().client
        deliveries = cast(int, client.incr(key))
        client.expire(key, 86400)
        return deliveries > limit

    def after_return(self, *args: Any, **kwargs: Any) -> None:
        if self.request.id:
            cluster().client.delete(f"ernte:deliveries:{self.request.id}")

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        dead_letter(self.name, args, kwargs, reason, str(einfo), self.request.retries + 1)
        _give_up(self.name, tuple(args), reason)


def dead_letter(
    task: str, args: Sequence[Any], kwargs: dict[str, Any], reason: str, trace: str, attempts: int
) -> None:
    """Append a failed task to the dead-letter list with what is needed to understand and replay
    it (Redis has no dead-letter exchange; this list is ours)."""
    entry = {
        "id": uuid.uuid4().hex,
        "task": task,
        "args": list(args),
        "kwargs": kwargs,
        "error": reason,
        "traceback": trace[-4000:],
        "attempts": attempts,
        "at": iso_now(),
    }
    if task in (start_harvest.name, fetch_page.name, finalize_run.name) and args:
        run = cluster().ledger.get(str(args[0]))
        if run is not None:
            entry["harvest"] = asdict(run.spec)
    cluster().client.rpush(DLQ_KEY, json.dumps(entry))
    log.error("task dead-lettered: %s", reason, extra={"task": task, "task_args": list(args)[:2]})


def dead_letters() -> list[dict[str, Any]]:
    """The dead-letter list, oldest first (`ernte status`, `ernte dlq list`)."""
    raw = cast(list[str], cluster().client.lrange(DLQ_KEY, 0, -1))
    return [json.loads(item) for item in raw]


def replay_dead_letters(ids: Iterable[str] | None = None) -> list[str]:
    """Re-enqueue dead letters (all, or those with the given ids); returns one line per entry.

    An index page is simply indexed again (from the archive). A failed harvest is requested
    again like `ernte harvest --queue`, so it resumes from its checkpoint under a new lease."""
    wanted = set(ids) if ids is not None else None
    client = cluster().client
    lines = []
    for raw in cast(list[str], client.lrange(DLQ_KEY, 0, -1)):
        entry = json.loads(raw)
        if wanted is not None and entry["id"] not in wanted:
            continue
        if entry["task"] == index_page.name:
            index_page.apply_async(entry["args"], entry.get("kwargs") or {})
            line = f"{entry['id']}: index page {entry['args'][4]} of {entry['args'][0]} re-queued"
        elif "harvest" in entry:
            line = f"{entry['id']}: {_request_run(RunSpec(**entry['harvest']))}"
        else:
            app.send_task(entry["task"], entry["args"], entry.get("kwargs") or {})
            line = f"{entry['id']}: {entry['task']} re-queued"
        client.lrem(DLQ_KEY, 1, raw)
        lines.append(line)
    return lines


def _give_up(task: str, args: tuple[Any, ...], reason: str) -> None:
    """What a dead-lettered task leaves behind: a failed harvest releases its run (checkpoint
    kept, state `failed`); a failed index page counts as done so the run can still complete."""
    if not args:
        return
    run_id = str(args[0])
    c = cluster()
    if task == index_page.name:
        instance = str(args[5]) if len(args) > 5 else ""
        c.ledger.page_done(run_id, instance, int(args[4]), {"dead_lettered": 1})
        _maybe_finalize(run_id)
        return
    if task not in (start_harvest.name, fetch_page.name, finalize_run.name):
        return
    fence = int(args[2] if task == fetch_page.name else args[1])
    run = c.ledger.get(run_id)
    if run is None or run.fence != fence:  # a superseded task must not end the current run
        return
    source = _resolve(run.spec.source_ref, run.spec.requested_prefix)
    if run.state_prefix:
        store = FencedStateStore(c.store, run_id, run.fence, None)
        state = store.load(run.state_key(source.key))
        try:
            _harvester(source, store).fail(state, RuntimeError(reason))
        except StaleRun:
            return
    c.ledger.close(run_id, run.fence)


# -- requesting and recovering runs --------------------------------------------------------


def enqueue_harvest(
    source: str,
    set_spec: str | None,
    prefix: str | None,
    from_: str | None,
    until: str | None,
    full: bool,
) -> str:
    """Request a harvest of (source, set, prefix) on the cluster; one human-readable line.

    Takes the harvest's lease here, so of two concurrent requests exactly one is queued and the
    other is told the harvest is already running."""
    spec = RunSpec(source, set_spec or "", prefix or "", from_, until, full)
    return _request_run(spec)


def _request_run(spec: RunSpec) -> str:
    source = _resolve(spec.source_ref, spec.requested_prefix)
    run_id = run_id_for(source, spec)
    c = cluster()
    fence = c.lease.acquire(run_id)
    if fence is None:
        run = c.ledger.get(run_id)
        detail = f", {run.status}, {run.done}/{run.pages} pages indexed" if run else ""
        return (
            f"{run_id}: already running (fence {c.lease.holder(run_id)}{detail}); request refused"
        )
    existing = c.ledger.get(run_id)
    if existing is not None:  # its worker died and no sweeper got to it yet: take it over
        _resume(existing)
        return f"{run_id}: resumed an interrupted run (fence {fence})"
    c.ledger.open(run_id, fence, spec, time.time())
    start_harvest.apply_async((run_id, fence))
    return f"{run_id}: queued (fence {fence})"


def sweep_stale_runs() -> list[str]:
    """Take over every run whose lease expired (its worker died) and re-enqueue what it lacks."""
    c = cluster()
    recovered = []
    for run_id in c.ledger.run_ids():
        if c.lease.holder(run_id) is not None:
            continue
        fence = c.lease.acquire(run_id)
        if fence is None:
            continue
        run = c.ledger.get(run_id)
        if run is None:  # finished between the two reads
            c.lease.release(run_id, fence)
            continue
        log.warning("recovering a run whose lease expired", extra=_ctx(run_id, fence=fence))
        _resume(run)
        recovered.append(run_id)
    return recovered


def _resume(run: RunInfo) -> None:
    """Re-enqueue a run under its (new) fence: start, or pending index pages plus the next page."""
    if run.status == "queued":
        start_harvest.apply_async((run.run_id, run.fence))
        return
    for page_no, identifiers in cluster().ledger.pending_pages(run.run_id):
        index_page.apply_async(
            (run.run_id, run.spec.source_ref, run.state_prefix, identifiers, page_no, run.instance)
        )
    if run.status == "fetched":
        _maybe_finalize(run.run_id)
        return
    source = _resolve(run.spec.source_ref, run.spec.requested_prefix)
    state = cluster().store.load(run.state_key(source.key))
    if state.state != "running":
        log.warning("run has no running harvest state; closing it", extra=_ctx(run.run_id))
        cluster().ledger.close(run.run_id, run.fence)
        return
    if state.list_complete:  # the worker died between the last page and "fetched"
        cluster().ledger.set_status(run.run_id, run.fence, "fetched")
        _maybe_finalize(run.run_id)
        return
    fetch_page.apply_async((run.run_id, state.next_page, run.fence))


def _maybe_finalize(run_id: str) -> None:
    run = cluster().ledger.get(run_id)
    # Every handed-off page indexed (a set comparison: counts could match by accident).
    if run is not None and run.status == "fetched" and not cluster().ledger.pending_pages(run_id):
        finalize_run.apply_async((run_id, run.fence))


def _current(run_id: str, fence: int) -> RunInfo:
    run = cluster().ledger.get(run_id)
    if run is None or run.fence != fence:
        raise StaleRun(f"run {run_id}: fence {fence} is not current")
    return run


# -- the tasks ------------------------------------------------------------------------------


class IndexQueueSink:
    """Page sink of cluster mode: records the page's identifiers in the run ledger, then
    enqueues index_page for them (the records themselves stay in the raw archive)."""

    def __init__(
        self, ledger: RunLedger, run_id: str, instance: str, source_ref: str, prefix: str
    ) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.instance = instance
        self.source_ref = source_ref
        self.prefix = prefix

    def handle(self, records: Sequence[RawRecord], page_no: int) -> RunCounts:
        identifiers = list(dict.fromkeys(r.identifier for r in records))
        self.ledger.add_page(self.run_id, page_no, identifiers)
        index_page.apply_async(
            (self.run_id, self.source_ref, self.prefix, identifiers, page_no, self.instance)
        )
        return RunCounts()

    def close(self) -> RunCounts:
        return RunCounts()


@app.task(bind=True, base=ErnteTask, name="ernte.start_harvest")
def start_harvest(self: Task, run_id: str, fence: int) -> str:
    """Open the run: Identify, choose the prefix, resume the checkpoint or open a window."""
    c = cluster()
    run = _current(run_id, fence)
    source = _resolve(run.spec.source_ref, run.spec.requested_prefix)
    with c.lease.heartbeat(run_id, fence):
        runner = _harvester(source, FencedStateStore(c.store, run_id, fence, None))
        request = HarvestRequest(
            source,
            run.spec.set_spec,
            run.spec.requested_prefix or None,
            run.spec.from_,
            run.spec.until,
            run.spec.full,
        )
        state = runner.prepare(request)
        log.info(
            "harvest run started",
            extra=_ctx(
                run_id,
                fence=fence,
                source=source.key,
                prefix=state.prefix,
                window_from=state.window_from,
                window_until=state.window_until,
                resume_page=state.next_page,
            ),
        )
        if not c.ledger.set_status(run_id, fence, "fetching", state.prefix):
            raise StaleRun(f"run {run_id}: fence {fence} lost while starting")
    if state.list_complete:  # resumed after the last page was stored: only finalizing is left
        c.ledger.set_status(run_id, fence, "fetched")
        _maybe_finalize(run_id)
        return "list already complete; finalizing"
    fetch_page.apply_async((run_id, state.next_page, fence))
    return f"started at page {state.next_page}"


@app.task(bind=True, base=ErnteTask, name="ernte.fetch_page")
def fetch_page(self: Task, run_id: str, page_no: int, fence: int) -> str:
    """Fetch, archive, hand off and checkpoint page `page_no` of the run, then chain the next."""
    c = cluster()
    limits = cluster_settings()
    run = _current(run_id, fence)
    if run.status != "fetching":
        raise StaleRun(f"run {run_id} is {run.status}, not fetching")
    if run.backlog > limits.index_backlog:
        c.lease.renew(run_id, fence)
        fetch_page.apply_async((run_id, page_no, fence), countdown=limits.backpressure_delay)
        return "backpressure"
    source = _resolve(run.spec.source_ref, run.spec.requested_prefix)
    with c.lease.heartbeat(run_id, fence):
        state = c.store.load(run.state_key(source.key))
        if state.state != "running" or state.next_page != page_no:
            raise StaleRun(f"run {run_id}: checkpoint is at page {state.next_page}, not {page_no}")
        runner = _harvester(source, FencedStateStore(c.store, run_id, fence, page_no))
        state.rate = round(state.run.records / max(time.time() - run.started, 1e-6), 1)
        records_before = state.run.records
        sink = IndexQueueSink(c.ledger, run_id, run.instance, run.spec.source_ref, state.prefix)
        with RawArchive.open(get_settings().archive_dir, source.key, state.prefix) as archive:
            more = runner.step(state, archive, sink)
    metrics.count(c.client, "records_harvested", source.key, state.run.records - records_before)
    if more:
        fetch_page.apply_async(
            (run_id, state.next_page, fence), countdown=runner.options.page_delay
        )
        return f"page {page_no} stored"
    c.ledger.set_status(run_id, fence, "fetched")
    _maybe_finalize(run_id)
    return f"page {page_no} stored; list complete"


_INDEX_READY: set[str] = set()
"""Indexes this worker process has created or checked already."""


def _index_for_writing(settings: Settings) -> IndexBackend:
    """The index backend for one page. Making sure the index (and in Elasticsearch its
    template and alias) exists is done once per worker process, not once per page: that is a
    template PUT and an alias lookup on every page of a 4,000-page harvest otherwise."""
    target = settings.es_url or str(settings.index_dir)
    backend = services.index_backend(settings, create=target not in _INDEX_READY)
    _INDEX_READY.add(target)
    return backend


@app.task(bind=True, base=ErnteTask, name="ernte.index_page")
def index_page(
    self: Task,
    run_id: str,
    source_ref: str,
    prefix: str,
    identifiers: list[str],
    page_no: int,
    instance: str = "",
) -> str:
    """Normalize and index the latest archived versions of one page's records."""
    settings = get_settings()
    c = cluster()
    run = c.ledger.get(run_id)
    if run is not None:
        c.lease.renew(run_id, run.fence)  # the run is alive while its pages are being indexed
    source = _resolve(source_ref, prefix)
    # Wait for the index lock well below the soft time limit; if a rebuild or an in-process
    # harvest holds it longer, IndexBusy (transient) retries the page later with backoff.
    with index_write_lock(settings, timeout=settings.task_soft_time_limit / 2):
        backend = _index_for_writing(settings)
        try:
            with RawArchive.open(settings.archive_dir, source.key, prefix) as archive:
                records = [archive.get(i) for i in identifiers]
                missing = [i for i, r in zip(identifiers, records, strict=True) if r is None]
                if missing:
                    log.warning(
                        "identifiers not in the archive: %s",
                        ", ".join(missing[:5]),
                        extra=_ctx(run_id, source=source.key, page=page_no),
                    )
                present = [r for r in records if r is not None]
                counts = process_batch(present, source, archive, backend)
        finally:
            backend.close()
    c.ledger.page_done(run_id, instance, page_no, asdict(counts))
    metrics.count(c.client, "records_indexed", source.key, counts.indexed)
    metrics.count(c.client, "records_failed", source.key, counts.quarantined)
    _maybe_finalize(run_id)
    return f"page {page_no}: indexed {counts.indexed}, quarantined {counts.quarantined}"


@app.task(bind=True, base=ErnteTask, name="ernte.finalize_run")
def finalize_run(self: Task, run_id: str, fence: int) -> str:
    """All pages fetched and indexed: add the index stats, move the watermark, end the run."""
    c = cluster()
    run = _current(run_id, fence)
    if run.status != "fetched" or run.done < run.pages:
        return "not ready"
    if not c.ledger.claim_finalize(run_id, fence):
        return "already finalizing"
    source = _resolve(run.spec.source_ref, run.spec.requested_prefix)
    store = FencedStateStore(c.store, run_id, fence, None)
    state = store.load(run.state_key(source.key))
    if state.state == "running":
        indexed, dead = _sum_page_stats(c.ledger.page_stats(run_id))
        state.run.add(indexed)
        if dead:
            state.last_error = (
                f"{dead} index page(s) failed and are in the dead-letter list "
                "(`ernte dlq replay` re-indexes them from the archive)"
            )
        duration = max(time.time() - run.started, 1e-6)
        state.rate = round(state.run.records / duration, 1)
        runner = _harvester(source, store)
        runner.complete(state)
        metrics.harvest_completed(c.client, source.key, duration, time.time())
    c.ledger.close(run_id, fence)
    log.info(
        "harvest run complete",
        extra=_ctx(
            run_id,
            fence=fence,
            pages=state.run.pages,
            records=state.run.records,
            indexed=state.run.indexed,
            quarantined=state.run.quarantined,
            watermark=state.watermark,
        ),
    )
    return f"run complete: watermark {state.watermark}"


def _sum_page_stats(pages: list[dict[str, Any]]) -> tuple[RunCounts, int]:
    known = {f.name for f in fields(RunCounts)}
    total = RunCounts()
    dead = 0
    for stats in pages:
        dead += int(stats.get("dead_lettered", 0))
        total.add(RunCounts(**{k: v for k, v in stats.items() if k in known}))
    return total, dead


@app.task(bind=True, base=ErnteTask, name="ernte.scheduled_harvest")
def scheduled_harvest(self: Task, source: str, set_spec: str) -> str:
    """A beat tick: request an incremental harvest (refused if the last one still runs)."""
    line = enqueue_harvest(source, set_spec, None, None, None, False)
    log.info("scheduled harvest: %s", line, extra={"source": source, "set": set_spec or "*"})
    return line


@app.task(bind=True, base=ErnteTask, name="ernte.sweep")
def sweep(self: Task) -> list[str]:
    return sweep_stale_runs()


# -- worker and beat processes ---------------------------------------------------------------

_sweeper_stop = threading.Event()


def _sweep_forever(interval: float, stop: threading.Event) -> None:
    """Sweep at worker start, then every `interval` seconds until the worker stops."""
    while True:
        try:
            recovered = sweep_stale_runs()
            if recovered:
                log.warning("sweeper re-enqueued %d run(s)", len(recovered))
        except Exception:  # a Redis blip must not end the sweeper
            log.exception("sweep failed")
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
            metrics.serve(cluster().client, settings.metrics_port)
        except OSError as exc:  # a busy port: say so, keep working without metrics
            log.error("cannot serve metrics on port %s: %s", settings.metrics_port, exc.strerror)


@worker_shutdown.connect
def _stop_worker_services(sender: Any = None, **kwargs: Any) -> None:
    _sweeper_stop.set()


def _require_redis() -> None:
    if not get_settings().redis_url:
        raise SystemExit("error: REDIS_URL is not set; cluster mode needs a Redis broker")


def run_worker(queues: str, concurrency: int, pool: str) -> None:
    """`ernte worker`: a Celery worker on the given queues, with task events for Flower."""
    _require_redis()
    warn_if_redis_not_persistent(redis_url())
    settings = get_settings()
    if settings.embedded and "index" in queues.split(",") and concurrency > 1:
        log.info("embedded index: index writes on this host are serialized by a file lock")
    argv = [
        "worker",
        f"--queues={queues}",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--loglevel={settings.log_level}",
        "--hostname=ernte-%p@%h",
        "--task-events",
    ]
    app.worker_main(argv)


def run_beat() -> None:
    """`ernte beat`: Celery beat with RedBeat; only the holder of the Redis lock schedules."""
    _require_redis()
    warn_if_redis_not_persistent(redis_url())
    app.start(["beat", f"--loglevel={get_settings().log_level}"])
