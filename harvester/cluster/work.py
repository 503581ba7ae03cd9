"""The work of each cluster task as a plain function of its payload (the tasks are shells).

    start_harvest(RunStep)   open the run: Identify, prefix, resume the checkpoint or a window
    fetch_page(PageFetch)    fetch -> archive -> hand off (IndexQueueSink) -> fenced checkpoint
    index_page(IndexBatch)   latest archived versions -> normalize -> index -> per-page stats
    finalize_run(RunStep)    all pages indexed: add the stats, move the watermark, end the run

Every function is idempotent: archive appends skip identical versions, index writes are upserts
by OAI identifier, stats are per page, and checkpoint writes are fenced compare-and-sets, so a
payload delivered twice (acks_late, visibility timeout, a sweeper re-enqueue) changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict

from harvester.cluster import metrics
from harvester.cluster.app import task_limits
from harvester.cluster.payloads import FETCH_PAGE, IndexBatch, PageFetch, RunStep, send
from harvester.cluster.runs import (
    close_failed_run,
    context,
    count_replayed_page,
    current,
    dead_pages_note,
    harvest_request,
    harvester_for,
    maybe_finalize,
    resolve,
    send_index_page,
)
from harvester.model import RawRecord
from harvester.run import services
from harvester.run.pipeline import process_batch, warn_without_crosswalk
from harvester.settings import Settings, get_settings
from harvester.sources import resolve_source
from harvester.store.archive import RawArchive
from harvester.store.cluster_store import cluster, cluster_settings
from harvester.store.locks import index_write_lock
from harvester.store.redis_state import FencedStateStore, RunLedger, StaleRun
from harvester.store.state import RunCounts
from indexer.backend import IndexBackend

log = logging.getLogger(__name__)


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
        send_index_page(
            self.run_id, self.instance, self.source_ref, self.prefix, page_no, identifiers
        )
        return RunCounts()

    def close(self) -> RunCounts:
        return RunCounts()


def start_harvest(step: RunStep) -> str:
    """Open the run: Identify, choose the prefix, resume the checkpoint or open a window."""
    run_id, fence = step.run_id, step.fence
    c = cluster()
    run = current(run_id, fence)
    source = resolve(run.spec)
    if run.status == "fetching":
        # A retry (or a redelivery) after it had started: the first page may never have been
        # sent. Sending it (again) is safe: checkpoints are compare-and-sets on the page.
        state = c.store.load(run.state_key(source.key))
        if state.state == "running" and not state.list_complete:
            send(FETCH_PAGE, PageFetch(run_id, state.next_page, fence))
            return f"already started; page {state.next_page + 1} sent"
    if run.status != "queued":  # the run is under way, or given up
        raise StaleRun(f"run {run_id} is {run.status}, not queued")
    with c.lease.heartbeat(run_id, fence):
        runner = harvester_for(source, FencedStateStore(c.store, run_id, fence, None))
        state = runner.prepare(harvest_request(run.spec, source))
        log.info(
            "harvest run started",
            extra=context(
                run_id,
                fence=fence,
                source=source.key,
                prefix=state.prefix,
                window_from=state.window_from,
                window_until=state.window_until,
                resume_page=state.next_page + 1,  # the page it fetches first, from 1
            ),
        )
        warn_without_crosswalk(source, state.prefix)
        if not c.ledger.set_status(run_id, fence, "fetching", state.prefix):
            raise StaleRun(f"run {run_id}: fence {fence} lost while starting")
    if state.list_complete:  # resumed after the last page was stored: only finalizing is left
        c.ledger.set_status(run_id, fence, "fetched")
        maybe_finalize(run_id)
        return "list already complete; finalizing"
    send(FETCH_PAGE, PageFetch(run_id, state.next_page, fence))
    return f"started at page {state.next_page + 1}"  # pages count from 1, as in the logs


def fetch_page(page: PageFetch) -> str:
    """Fetch, archive, hand off and checkpoint page `page_no` of the run, then chain the next."""
    run_id, page_no, fence = page.run_id, page.page_no, page.fence
    c = cluster()
    limits = cluster_settings()
    run = current(run_id, fence)
    if run.status != "fetching":
        raise StaleRun(f"run {run_id} is {run.status}, not fetching")
    if run.backlog > limits.index_backlog:
        c.lease.renew(run_id, fence, waiting=limits.backpressure_delay)
        send(FETCH_PAGE, page, countdown=limits.backpressure_delay)
        return "backpressure"
    source = resolve(run.spec)
    with c.lease.heartbeat(run_id, fence):
        state = c.store.load(run.state_key(source.key))
        if state.state != "running" or state.next_page != page_no:
            raise StaleRun(f"run {run_id}: checkpoint is at page {state.next_page}, not {page_no}")
        runner = harvester_for(source, FencedStateStore(c.store, run_id, fence, page_no))
        state.rate = round(state.run.records / max(time.time() - run.started, 1e-6), 1)
        records_before = state.run.records
        sink = IndexQueueSink(c.ledger, run_id, run.instance, run.spec.source_ref, state.prefix)
        with RawArchive.open(get_settings().archive_dir, source.key, state.prefix) as archive:
            more = runner.step(state, archive, sink)
    metrics.count(c.client, "records_harvested", source.key, state.run.records - records_before)
    if more:
        # The page delay passes with no task on the run: the lease must outlast it, or a
        # sweeper takes the healthy run for one whose worker died (a `page_delay: 75` run
        # was "recovered" after 66 s and its next page fetched before the delay was over).
        c.lease.renew(run_id, fence, waiting=runner.options.page_delay)
        send(
            FETCH_PAGE,
            PageFetch(run_id, state.next_page, fence),
            countdown=runner.options.page_delay,
        )
        return f"page {page_no + 1} stored"
    c.ledger.set_status(run_id, fence, "fetched")
    maybe_finalize(run_id)
    return f"page {page_no + 1} stored; list complete"


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


def index_page(batch: IndexBatch) -> str:
    """Normalize and index the latest archived versions of one page's records."""
    run_id, prefix, identifiers, page_no = (
        batch.run_id,
        batch.prefix,
        batch.identifiers,
        batch.page_no,
    )
    settings = get_settings()
    c = cluster()
    run = c.ledger.get(run_id)
    if run is not None:
        c.lease.renew(run_id, run.fence)  # the run is alive while its pages are being indexed
    source = resolve_source(batch.source_ref, settings.sources_file, prefix)
    # Wait for the index lock well below the soft time limit; if a rebuild or an in-process
    # harvest holds it longer, IndexBusy (transient) retries the page later with backoff.
    with index_write_lock(settings, timeout=task_limits().soft / 2):
        backend = _index_for_writing(settings)
        try:
            with RawArchive.open(settings.archive_dir, source.key, prefix) as archive:
                records = [archive.get(i) for i in identifiers]
                missing = [i for i, r in zip(identifiers, records, strict=True) if r is None]
                if missing:
                    log.warning(
                        "identifiers not in the archive: %s",
                        ", ".join(missing[:5]),
                        extra=context(run_id, source=source.key, page=page_no + 1),
                    )
                present = [r for r in records if r is not None]
                counts = process_batch(present, source, archive, backend)
        finally:
            backend.close()
    counted = c.ledger.page_done(run_id, batch.instance, page_no, asdict(counts))
    if batch.replayed:
        count_replayed_page(batch, source.key, counts, counted_by_run=counted)
    metrics.count(c.client, "records_indexed", source.key, counts.indexed)
    metrics.count(c.client, "records_failed", source.key, counts.quarantined)
    maybe_finalize(run_id)
    return f"page {page_no + 1}: indexed {counts.indexed}, quarantined {counts.quarantined}"


def finalize_run(step: RunStep) -> str:
    """All pages fetched and indexed: add the index stats, move the watermark, end the run."""
    run_id, fence = step.run_id, step.fence
    c = cluster()
    run = current(run_id, fence)
    if not run.done_fetching or run.done < run.pages:
        return "not ready"
    if not c.ledger.claim_finalize(run_id, fence):
        return "already finalizing"
    source = resolve(run.spec)
    if run.status == "failed":
        # A run given up while pages of it were still queued for indexing: they are indexed
        # now, and count, as the pages an in-process harvest stored before failing do.
        total = close_failed_run(run, source)
        log.info("failed run: its queued pages are indexed", extra=context(run_id, fence=fence))
        return f"failed run closed: {total} indexed"
    store = FencedStateStore(c.store, run_id, fence, None)
    state = store.load(run.state_key(source.key))
    if state.state == "running":
        indexed, dead = c.ledger.page_totals(run_id)
        state.run.add(indexed)
        state.counted_run = run.instance
        if dead:
            state.last_error = dead_pages_note(dead)
        duration = max(time.time() - run.started, 1e-6)
        state.rate = round(state.run.records / duration, 1)
        runner = harvester_for(source, store)
        runner.complete(state)
        metrics.harvest_completed(
            c.client, source.key, duration, time.time(), fully_indexed=not dead
        )
    c.ledger.close(run_id, fence)
    log.info(
        "harvest run complete",
        extra=context(
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
