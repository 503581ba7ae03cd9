"""Harvest runs on the cluster: request one, recover it after a worker died, finish it, give up.

A run is one harvest of (source, set, prefix) under a lease with a fencing number; its request
(`RunSpec`) is stored in the run ledger in Redis, and its tasks carry only the run id and fence
(`harvester.cluster.payloads`). Everything here is a plain function over Redis: the tasks call
it, and so do the command line (`ernte harvest --queue`, `ernte dlq replay`) and the sweeper.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import asdict, replace

from harvester.cluster.payloads import (
    FETCH_PAGE,
    FINALIZE_RUN,
    INDEX_PAGE,
    RUN_TASKS,
    START_HARVEST,
    IndexBatch,
    PageFetch,
    RunStep,
    payload_of,
    send,
)
from harvester.errors import ErnteError
from harvester.oai.datestamps import iso_now
from harvester.redact import redact_url
from harvester.run import services
from harvester.run.harvest import Harvester, HarvestRequest, resumable
from harvester.run.progress import LogProgress
from harvester.settings import get_settings
from harvester.sources import Source, resolve_source
from harvester.store.cluster_store import cluster
from harvester.store.dead_letters import raw_entries, remove
from harvester.store.redis_state import FencedStateStore, RunInfo, RunSpec, StaleRun
from harvester.store.state import (
    HarvestKey,
    HarvestState,
    RunCounts,
    StateStore,
    harvest_run_id,
)

log = logging.getLogger(__name__)


def resolve(spec: RunSpec) -> Source:
    """The source a request names (configured key or base URL)."""
    return resolve_source(
        spec.source_ref, get_settings().sources_file, spec.requested_prefix or None
    )


def harvest_request(spec: RunSpec, source: Source) -> HarvestRequest:
    """The in-process harvest request of a cluster run (the one place the two meet)."""
    return HarvestRequest(
        source,
        spec.set_spec,
        spec.requested_prefix or None,
        spec.from_,
        spec.until,
        spec.full,
        resume_checkpoint=spec.resume,
    )


def harvester_for(source: Source, store: StateStore) -> Harvester:
    """A Harvester whose sink is passed per step (the sink factory of services is not used)."""
    return services.harvester(get_settings(), source, LogProgress(), None, store=store)


def context(run_id: str, **extra: object) -> dict[str, object]:
    return {"run": run_id, **extra}


def task_log_fields(payload: Mapping[str, object]) -> dict[str, object]:
    """What a task's log lines concern: its run, its page (counted from 1, as the harvest's
    lines count pages) and the source and set, from the payload and the run ledger. A lookup
    that fails (Redis down, the run gone, a source no longer configured) leaves fields out
    rather than failing the task: the task reports its own errors."""
    fields: dict[str, object] = {}
    if "source" in payload:  # a beat tick names its source and set itself
        fields["source"] = payload["source"]
        fields["set"] = payload.get("set_spec") or "*"
    page_no = payload.get("page_no")
    if isinstance(page_no, int):
        fields["page"] = page_no + 1
    if "run_id" not in payload:
        return fields
    run_id = str(payload["run_id"])
    fields["run"] = run_id
    try:
        run = cluster().ledger.get(run_id)
        if run is None:
            return fields
        fields["set"] = run.spec.set_spec or "*"
        fields["source"] = redact_url(run.spec.source_ref)  # as requested, until resolved
        fields["source"] = resolve(run.spec).key
    except Exception:
        pass
    return fields


def current(run_id: str, fence: int) -> RunInfo:
    """The run, if `fence` is still its fence; else StaleRun (the task is a duplicate/zombie)."""
    run = cluster().ledger.get(run_id)
    if run is None or run.fence != fence:
        raise StaleRun(f"run {run_id}: fence {fence} is not current")
    return run


# -- requesting -----------------------------------------------------------------------------


def _window(spec: RunSpec) -> tuple[str, str | None, str | None, bool]:
    return spec.requested_prefix, spec.from_, spec.until, spec.full


def _window_text(spec: RunSpec) -> str:
    """The options of a request as a user typed them (`--full`, `--from X`), or `incremental`."""
    options = [
        *(["--prefix " + spec.requested_prefix] if spec.requested_prefix else []),
        *(["--from " + spec.from_] if spec.from_ else []),
        *(["--until " + spec.until] if spec.until else []),
        *(["--full"] if spec.full else []),
    ]
    return " ".join(options) or "incremental"


def request_harvest(spec: RunSpec) -> str:
    """Request a harvest on the cluster; one human-readable line.

    Takes the harvest's lease here, so of two concurrent requests exactly one is queued and the
    other is told the harvest is already running."""
    return request_harvest_outcome(spec)[1]


def request_harvest_outcome(spec: RunSpec, *, resend_all: bool = False) -> tuple[bool, str]:
    """(whether this very request was queued, the line `request_harvest` returns). A run of
    the harvest that was interrupted (its worker died) is resumed first, as it was asked
    for; a request for another window then is not queued, and the line says so. An
    operator's request (`resend_all`: `ernte harvest --queue`, `ernte dlq replay`) sends every
    pending index page of such a run again; a beat tick only those never queued (`resume`)."""
    source = resolve(spec)
    run_id = harvest_run_id(source.key, spec.set_spec)
    c = cluster()
    fence = c.lease.acquire(run_id)
    if fence is None:
        run = c.ledger.get(run_id)
        holder = c.lease.holder(run_id)
        if run is not None and run.status == "failed":
            return False, _still_indexing(run, holder)
        detail = f", {run.status}, {run.done}/{run.pages} pages indexed" if run else ""
        return False, f"{run_id}: already running (fence {holder}{detail}); request refused"
    existing = c.ledger.get(run_id)
    if existing is not None and existing.status == "failed":
        # Given up, its pages still queued and nobody renewing its lease: they count once
        # indexed, so a new run must not replace it; asking again sends them again.
        resume(existing, resend_all=resend_all)
        return False, _still_indexing(existing, fence)
    if existing is not None:  # its worker died and no sweeper got to it yet: take it over
        resume(existing, resend_all=resend_all)
        line = f"{run_id}: resumed an interrupted run (fence {fence})"
        if _window(existing.spec) == _window(spec):
            return True, line
        return False, (
            f"{line} of {_window_text(existing.spec)}; this request ({_window_text(spec)}) is "
            "not queued: ask again when that run has ended"
        )
    c.ledger.open(run_id, fence, spec, time.time())
    send(START_HARVEST, RunStep(run_id, fence))
    return True, f"{run_id}: queued (fence {fence})"


# -- recovering -----------------------------------------------------------------------------


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
        log.warning("recovering a run whose lease expired", extra=context(run_id, fence=fence))
        try:
            resume(run)
        except Exception as exc:  # one run that cannot go on must not stop the others' recovery
            log.error(
                "cannot recover the run",
                extra=context(run_id, fence=fence, error=f"{type(exc).__name__}: {exc}"),
            )
            continue
        recovered.append(run_id)
    return recovered


def _still_indexing(run: RunInfo, fence: int | None) -> str:
    return (
        f"{run.run_id}: its failed run (fence {fence}) is still indexing the pages it fetched "
        f"({run.done}/{run.pages} indexed, by workers of the index queue: `ernte worker`); "
        "request refused, ask again when they are done"
    )


def resume(run: RunInfo, *, resend_all: bool = False) -> None:
    """Re-enqueue a run under its (new) fence: start, or its index pages plus the next page.

    The sweeper sends only the index pages whose message never reached the queue (a queued one
    waits for an index worker however long that takes); an operator's request (`resend_all`)
    sends every pending page again, for a message the broker lost."""
    c = cluster()
    if run.status == "queued":
        send(START_HARVEST, RunStep(run.run_id, run.fence))
        return
    pending = c.ledger.pending_pages if resend_all else c.ledger.unsent_pages
    for page_no, identifiers in pending(run.run_id):
        send_index_page(
            run.run_id, run.instance, run.spec.source_ref, run.state_prefix, page_no, identifiers
        )
    if run.done_fetching:
        maybe_finalize(run.run_id)
        return
    try:
        source = resolve(run.spec)
    except ErnteError as exc:  # no longer configured: nothing can fetch its pages
        log.warning(
            "run of a source that cannot be resolved any more; closing it",
            extra=context(run.run_id, error=str(exc)),
        )
        c.ledger.close(run.run_id, run.fence)
        return
    state = c.store.load(run.state_key(source.key))
    if state.state != "running":
        if c.ledger.pending_pages(run.run_id):
            # Given up (its worker died between marking the harvest failed and the run): its
            # queued pages still count once indexed.
            c.ledger.set_status(run.run_id, run.fence, "failed")
            maybe_finalize(run.run_id)
            return
        log.warning("run has no running harvest state; closing it", extra=context(run.run_id))
        c.ledger.close(run.run_id, run.fence)
        return
    if state.list_complete:  # the worker died between the last page and "fetched"
        c.ledger.set_status(run.run_id, run.fence, "fetched")
        maybe_finalize(run.run_id)
        return
    send(FETCH_PAGE, PageFetch(run.run_id, state.next_page, run.fence))


def close_failed_run(run: RunInfo, source: Source) -> int:
    """End a run that was given up once the pages it had queued are indexed (or its finalize
    failed): their counts are added to the failed harvest's, once per run instance; returns
    the run's indexed count."""
    c = cluster()
    store = FencedStateStore(c.store, run.run_id, run.fence, None)
    state = store.load(run.state_key(source.key))
    if state.state == "failed" and state.counted_run != run.instance:
        indexed, _dead = c.ledger.page_totals(run.run_id)
        state.run.add(indexed)
        state.counted_run = run.instance  # a redelivered finalize adds nothing again
        store.save(state)
    c.ledger.close(run.run_id, run.fence)
    return state.run.indexed


def send_index_page(
    run_id: str, instance: str, source_ref: str, prefix: str, page_no: int, identifiers: list[str]
) -> None:
    """Queue index_page for a page recorded in the ledger, and note that it is queued."""
    # Task arguments are visible (Flower, events, dead letters): never a password. Indexing
    # reads the archive only, so the source URL without credentials is all it needs.
    batch = IndexBatch(run_id, redact_url(source_ref), prefix, page_no, identifiers, instance)
    send(INDEX_PAGE, batch)
    cluster().ledger.mark_sent(run_id, page_no)


def maybe_finalize(run_id: str) -> None:
    """Queue finalize_run once every handed-off page is indexed (a set comparison: counts
    could match by accident)."""
    run = cluster().ledger.get(run_id)
    if run is not None and run.done_fetching and not cluster().ledger.pending_pages(run_id):
        send(FINALIZE_RUN, RunStep(run_id, run.fence))


# -- giving up and replaying ------------------------------------------------------------------


class DeadLettered(ErnteError):
    """A task of the run kept failing and went to the dead-letter list: the run's error, as
    `ernte status` shows it ("DeadLettered: HTTPFailure: HTTP 500 from ...")."""


def run_request(task: str, payload: dict[str, object]) -> dict[str, object] | None:
    """The stored request of the run a fetch-chain task belongs to (for its dead letter)."""
    if task not in RUN_TASKS or "run_id" not in payload:
        return None
    run = cluster().ledger.get(str(payload["run_id"]))
    return asdict(run.spec) if run is not None else None


def give_up(task: str, payload: dict[str, object], reason: str) -> None:
    """What a dead-lettered task leaves behind: a failed harvest releases its run (checkpoint
    kept, state `failed`) once the pages it fetched are indexed (until then the run stays in
    the ledger as `failed`, so their counts reach the state); a failed index page counts as
    done so the run can still complete."""
    if "run_id" not in payload:
        return
    c = cluster()
    if task == INDEX_PAGE:
        batch = IndexBatch.from_json(payload)
        stats = {"dead_lettered": 1}
        if c.ledger.page_done(batch.run_id, batch.instance, batch.page_no, stats):
            maybe_finalize(batch.run_id)
        elif batch.replayed:  # its run has ended
            with suppress(ErnteError):  # a source no longer configured: no state to note
                source = resolve_source(batch.source_ref, get_settings().sources_file, batch.prefix)
                note_failed_replay(batch, source.key)
        return
    if task not in RUN_TASKS:
        return
    run_id, fence = str(payload["run_id"]), int(str(payload["fence"]))
    run = c.ledger.get(run_id)
    if run is None or run.fence != fence:  # a superseded task must not end the current run
        return
    pending = bool(run.state_prefix and c.ledger.pending_pages(run_id))
    if run.status == "failed" and task != FINALIZE_RUN and pending:
        return  # given up already (a second dead letter): its pages drain
    try:
        source = resolve(run.spec)
    except ErnteError:  # the source is no longer configured: no harvest state to mark
        c.ledger.close(run_id, run.fence)
        return
    if run.status == "failed":  # its finalize was dead-lettered, or nothing is left to drain
        close_failed_run(run, source)
        return
    # A run that failed before it chose its prefix (Identify failed: a wrong URL, a server
    # down) gets its row in `ernte status` too, under the prefix it would have asked for.
    prefix = run.state_prefix or run.spec.requested_prefix or source.metadata_prefix
    store = FencedStateStore(c.store, run_id, run.fence, None)
    state = store.load(HarvestKey(source.key, run.spec.set_spec, prefix))
    if state.counted_run == run.instance and state.state != "running":
        # Its finalize saved the run's end, then was dead-lettered: it is over, not failed.
        c.ledger.close(run_id, run.fence)
        return
    draining = pending
    if run.state_prefix and not draining and state.counted_run != run.instance:
        # The pages indexed before the failure count, as they do when an in-process harvest
        # fails: closing the ledger below drops its per-page stats. (Pages still queued are
        # counted by finalize_run when they are done.)
        indexed, _dead = c.ledger.page_totals(run_id)
        state.run.add(indexed)
        state.counted_run = run.instance
    elif not run.state_prefix and not resumable(state):
        # This run never started: its row must not show the previous run's figures. (A
        # checkpoint a later run resumes keeps them: they are that run's too.)
        state.run = RunCounts()
        state.counted_run = ""
        state.rate = 0.0
        state.run_started = iso_now()
    try:
        harvester_for(source, store).fail(state, DeadLettered(reason))
    except StaleRun:
        return
    if draining and c.ledger.set_status(run_id, run.fence, "failed"):
        maybe_finalize(run_id)  # the last page may have been indexed meanwhile
        return
    c.ledger.close(run_id, run.fence)


def replay_dead_letters(ids: Iterable[str] | None = None) -> Iterator[str]:
    """Re-enqueue dead letters (all, or those with the given ids); one line per entry, each as
    soon as its entry is done (an error at a later entry leaves the earlier lines shown).

    An index page is simply indexed again (from the archive). A failed harvest is requested
    again like `ernte harvest --queue`, so it resumes from its checkpoint under a new lease,
    a `--full` or `--from`/`--until` run too while the checkpoint is still of its window."""
    wanted = _known_dead_letters(ids, "nothing replayed")
    for raw, entry in raw_entries():
        if wanted is not None and entry["id"] not in wanted:
            continue
        payload = payload_of(entry.get("kwargs"))
        if entry["task"] == INDEX_PAGE:
            batch = IndexBatch.from_json(payload)
            send(INDEX_PAGE, replace(batch, replayed=True))
            line = f"index page {batch.page_no + 1} of {batch.run_id} re-queued"
        elif "harvest" in entry:
            # Resumed from its checkpoint, even a --full or windowed run: its window is
            # stored with the checkpoint, and starting the list again would redo every page.
            queued, line = request_harvest_outcome(
                RunSpec(**{**entry["harvest"], "resume": True}), resend_all=True
            )
            if not queued:  # refused while the harvest runs: the entry stays for later
                yield f"{entry['id']}: {line}; kept in the dead letters"
                continue
        else:
            from harvester.cluster.app import app

            app.send_task(entry["task"], kwargs=entry.get("kwargs") or {})
            line = f"{entry['task']} re-queued"
        remove(raw)
        yield f"{entry['id']}: {line}"


DEAD_PAGES = (
    "index page(s) failed and are in the dead-letter list "
    "(`ernte dlq replay` re-indexes them from the archive)"
)


def dead_pages_note(count: int) -> str:
    """The harvest state's note on a run whose index pages went to the dead letters."""
    return f"{count} {DEAD_PAGES}"


def count_replayed_page(
    batch: IndexBatch, source_key: str, counts: RunCounts, *, counted_by_run: bool
) -> None:
    """A dead-lettered index page indexed again by `ernte dlq replay`. Counted by its run
    (`counted_by_run`: the run was still open), it is only remembered; after its run ended,
    its counts join the harvest state's totals, and the last run's counts too while that is
    still the page's run, whose dead-letter note then counts the pages still in the dead
    letters (none: no note). Once per page, in one transaction with the state (a redelivered
    replay adds nothing); the state of a harvest running now is left alone (its run saves
    it), as is the index, which is exact either way."""
    once = (f"ernte:replayed:{batch.instance}", str(batch.page_no))

    def add(state: HarvestState) -> bool:
        if counted_by_run or state.state == "running":
            return False
        state.totals.add(counts)
        if state.counted_run == batch.instance:
            state.run.add(counts)
            _note_dead_pages(state, _dead_pages_of(batch.instance))
        return True

    cluster().store.update(_state_key(batch, source_key), add, once=once)


def note_failed_replay(batch: IndexBatch, source_key: str) -> None:
    """A replayed index page of an ended run failed again: the run's note counts it again."""

    def note(state: HarvestState) -> bool:
        if state.state == "running" or state.counted_run != batch.instance:
            return False
        _note_dead_pages(state, _dead_pages_of(batch.instance))
        return True

    cluster().store.update(_state_key(batch, source_key), note)


def _state_key(batch: IndexBatch, source_key: str) -> HarvestKey:
    """The harvest state an index page's run wrote (run id: `source|set`, `*` for no set)."""
    set_spec = batch.run_id.rpartition("|")[2]
    return HarvestKey(source_key, "" if set_spec == "*" else set_spec, batch.prefix)


def _dead_pages_of(instance: str) -> int:
    """Index pages of the run `instance` in the dead-letter list now."""
    return sum(
        1
        for _, entry in raw_entries()
        if entry["task"] == INDEX_PAGE
        and payload_of(entry.get("kwargs")).get("instance") == instance
    )


def _note_dead_pages(state: HarvestState, count: int) -> None:
    """The state's note on its run's pages in the dead letters, when it has one or needs one
    (a note of another kind, the error of a failed run, stays)."""
    if state.last_error and not state.last_error.endswith(DEAD_PAGES):
        return
    state.last_error = dead_pages_note(count) if count else None


def discard_dead_letters(ids: Iterable[str] | None = None) -> Iterator[str]:
    """Remove dead letters (all, or those with the given ids) without running them: entries
    that can never succeed (a source removed from sources.yaml, a window given wrong) would
    otherwise stay in `ernte status` for good. One line per entry removed."""
    wanted = _known_dead_letters(ids, "nothing discarded")
    for raw, entry in raw_entries():
        if wanted is None or entry["id"] in wanted:
            remove(raw)
            yield f"{entry['id']}: {entry['task']} discarded"


def _known_dead_letters(ids: Iterable[str] | None, consequence: str) -> set[str] | None:
    """The ids asked for (None: all), or ErnteError naming those that are no dead letter."""
    wanted = set(ids) if ids is not None else None
    if wanted:
        unknown = wanted - {entry["id"] for _, entry in raw_entries()}
        if unknown:
            raise ErnteError(
                f"no dead letter {', '.join(sorted(unknown))} (`ernte dlq list` shows them); "
                f"{consequence}"
            )
    return wanted
