"""One harvest run of (source, set, prefix): page by page, archive first, checkpoint after each page.

Order per page: fetch -> archive raw (durable) -> hand to the sink (normalize+index, or enqueue)
-> checkpoint. The checkpoint is one step: the resumption token, the loop guards (tokens seen,
empty pages in a row) and the counts change together, in memory and in the store, only after
the page is stored; a page whose storing failed or was interrupted leaves the previous
checkpoint exactly as it was, so the next run asks for that page again and accepts the
server's own next token. A run killed or stopped anywhere resumes from its last checkpoint;
a page fetched twice changes nothing (the archive skips identical versions, index writes are
upserts), and its new versions still count as new. An expired token (`badResumptionToken`)
restarts the run's window instead of the whole repository. The watermark moves only when a run
completes. Before a run, the archive must hold at least what the state says was archived.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from lxml import etree

from harvester.errors import ErnteError, UsageError
from harvester.logs import log_context, log_context_now
from harvester.model import RawRecord
from harvester.oai.client import (
    OAI_NS,
    BadResumptionToken,
    OAIClient,
    OAIProtocolError,
    Page,
    RepeatedResumptionToken,
    TooManyEmptyPages,
)
from harvester.oai.datestamps import coerce_to_granularity, iso_now, parse_datestamp, window_start
from harvester.redact import redact, redact_url
from harvester.run import interrupt
from harvester.run.progress import harvest_log_fields
from harvester.run.user_errors import is_user_error
from harvester.sources import Source, harvest_command
from harvester.store.archive import LostArchive, RawArchive, archive_path
from harvester.store.files import DamagedFile
from harvester.store.state import HarvestKey, HarvestState, RunCounts, StateStore

log = logging.getLogger(__name__)


class HarvestError(ErnteError, RuntimeError):
    """A harvest that had to stop; the message names source, set, page and URL."""


class ArchiveLost(HarvestError):
    """The archive holds less than the state says was archived (missing, emptied, replaced)."""


RESUMABLE = ("running", "failed", "interrupted")
"""States whose checkpoint the next run continues from."""


def check_window(from_: str | None, until: str | None) -> None:
    """The errors `--from`/`--until` would meet in a run, at once and in the same words:
    a value that is no date, a window that ends before it starts. (A run also fits them to
    the server's granularity; this checks them at the finest.)"""
    finest = "YYYY-MM-DDThh:mm:ssZ"
    start = parse_datestamp(coerce_to_granularity(from_, finest)) if from_ else None
    end = parse_datestamp(coerce_to_granularity(until, finest, end_of_day=True)) if until else None
    if start is not None and end is not None and start > end:
        raise UsageError(f"--from {from_} is after --until {until}")


def resumable(state: HarvestState) -> bool:
    """Whether a stored checkpoint is a run to continue: stopped mid-list (with its token), or
    after its last page but before it completed."""
    return state.state in RESUMABLE and (state.token is not None or state.list_complete)


def _moved_anchor(anchor: str | None, token: str, page: int) -> str | None:
    """The loop guard's anchor after page `page` (from 1) carried `token`.

    `recent_tokens` catches a token repeated within 50 pages; a server that cycles through more
    (its last page pointing back to its first, on a list of thousands of pages) would be
    followed for ever. So the token of every page whose number is a power of two is also kept
    (Brent's cycle detection): a list that loops meets its anchor again within about three
    times the length of the loop and of the pages before it, one token kept whatever the
    list's length."""
    return token if page & (page - 1) == 0 else anchor


@dataclass(slots=True)
class _Checkpoint:
    """What storing one page changes in the state, applied all at once after it is stored."""

    token: str | None
    recent_tokens: list[str]
    token_anchor: str | None
    empty_streak: int
    pending_watermark: str | None
    retries: int


class PageSink(Protocol):
    """What happens to a page's records once they are archived."""

    def handle(self, records: Sequence[RawRecord], page_no: int) -> RunCounts:
        """Process (or enqueue) one page; returns what it did."""
        ...

    def close(self) -> RunCounts:
        """Flush what is pending; returns what that did."""
        ...


class Progress(Protocol):
    """Progress reporting: a bar on a terminal, structured log lines elsewhere."""

    def start(self, state: HarvestState) -> None: ...

    def page(self, state: HarvestState, page: Page) -> None: ...

    def finish(self, state: HarvestState) -> None: ...


SinkFactory = Callable[[Source, str, RawArchive], PageSink]


@dataclass(slots=True)
class HarvestRequest:
    """What the user asked for; `from_`/`until` override the watermark, `full` ignores it."""

    source: Source
    set_spec: str = ""
    prefix: str | None = None
    from_: str | None = None
    until: str | None = None
    full: bool = False
    reconcile: bool = False
    resume_checkpoint: bool = False
    """Resume a stored, resumable checkpoint of the very window asked for even if `full` or a
    window is asked for: a replayed failed run goes on where it stopped rather than starting
    its list again. Without such a checkpoint (none, or one of another window) the request
    runs as asked."""


@dataclass(slots=True)
class HarvestOptions:
    overlap: timedelta = timedelta(days=1)
    page_delay: float = 0.5
    max_empty_pages: int = 5
    max_token_restarts: int = 3
    # Reconciling refuses to delete more than this share of the live records at once: a list
    # that ended early (a server fault) must not empty the index.
    reconcile_max_share: float = 0.1


class _PrefetchedPage:
    """The next ListRecords page, fetched on a daemon thread while the current one is stored.

    The page delay is slept on that thread too, before its request, so a harvest still never
    asks sooner than `page_delay` after the previous answer. Its retries are counted here
    because the step that uses the page starts after they happened.
    """

    def __init__(
        self,
        client: OAIClient,
        prefix: str,
        token: str,
        delay: float,
        sleep: Callable[[float], None],
        context: Mapping[str, object],
    ) -> None:
        self.token = token
        self.retries = 0
        self._context = context  # the log context of the page it fetches
        self._page: Page | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._fetch,
            args=(client, prefix, delay, sleep),
            name="ernte-prefetch",
            daemon=True,
        )
        self._thread.start()

    def _fetch(
        self, client: OAIClient, prefix: str, delay: float, sleep: Callable[[float], None]
    ) -> None:
        before = client.http.retries
        try:
            with log_context(**self._context):
                if delay:
                    sleep(delay)
                self._page = client.list_records_page(metadata_prefix=prefix, token=self.token)
        except BaseException as exc:  # handed to the harvest thread by result()
            self._error = exc
        finally:
            self.retries = client.http.retries - before

    def result(self) -> Page:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._page is not None
        return self._page


class Harvester:
    """Runs harvests against one OAI-PMH endpoint.

    Within `run`, the next page is requested while the current one is archived, normalized
    and checkpointed (the server's time and ernte's overlap); `step` alone, as the Celery
    task calls it, fetches its own page.
    """

    def __init__(
        self,
        client: OAIClient,
        store: StateStore,
        archive_dir: Path,
        sink_factory: SinkFactory,
        progress: Progress,
        options: HarvestOptions,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.store = store
        self.archive_dir = archive_dir
        self.sink_factory = sink_factory
        self.progress = progress
        self.options = options
        self.sleep = sleep
        self._prefetching = False
        self._prefetched: _PrefetchedPage | None = None

    def choose_prefix(self, source: Source, requested: str | None) -> str:
        """The requested prefix, else the source's, else its fallback if the server lacks it."""
        if requested:
            return requested
        if not source.fallback_prefix:
            return source.metadata_prefix
        offered = {f.prefix for f in self.client.list_formats()}
        if source.metadata_prefix in offered or source.fallback_prefix not in offered:
            return source.metadata_prefix
        log.warning(
            "metadata prefix not offered, using fallback",
            extra={
                "source": source.key,
                "prefix": source.metadata_prefix,
                "fallback": source.fallback_prefix,
            },
        )
        return source.fallback_prefix

    def prepare(self, request: HarvestRequest) -> HarvestState:
        """Identify, pick the prefix, and either resume the stored checkpoint or open a window.

        Returns the state marked `running` and saved.
        """
        info = self.client.identify()
        prefix = self.choose_prefix(request.source, request.prefix)
        state = self.store.load(HarvestKey(request.source.key, request.set_spec, prefix))
        explicit_window = bool(request.from_ or request.until)
        asked_as_stored = request.resume_checkpoint and self._same_window(
            state, request, info.granularity
        )
        resume = resumable(state) and (asked_as_stored or not (request.full or explicit_window))
        if resume:
            # The run goes on under its stored window; a full run resumed mid-list is no
            # longer one that may start the archive again (`_check_archive`).
            request = replace(request, full=False, from_=None, until=None)
            log.info("resuming harvest from checkpoint", extra=self._ctx(state))
            state.token_restarts = 0  # the loop guards count within one run
            state.empty_streak = 0
        else:
            self._begin_window(state, request, info.granularity, info.earliest_datestamp)
        state.deleted_record = info.deleted_record
        state.base_url = redact_url(request.source.base_url)  # a password is never stored
        if info.deleted_record in ("no", "transient") and state.window_from:
            log.warning(
                "repository declares deletedRecord=%s: an incremental harvest cannot see all "
                "deletions; run `%s` now and then",
                info.deleted_record,
                harvest_command(
                    state.source, state.set_spec, state.prefix, "--full", "--reconcile"
                ),
                extra=self._ctx(state),
            )
        self._check_archive(state, request, resume)
        state.state = "running"
        state.last_error = None
        self.store.save(state)
        return state

    @staticmethod
    def _same_window(state: HarvestState, request: HarvestRequest, granularity: str) -> bool:
        """Whether the stored checkpoint is a run of the window `request` asks for: a replayed
        dead letter resumes its own run, not a later one of another window that failed too."""
        until = (
            coerce_to_granularity(request.until, granularity, end_of_day=True)
            if request.until
            else None
        )
        if state.window_until != until:
            return False
        if request.from_:
            return state.window_from == coerce_to_granularity(request.from_, granularity)
        return state.window_from is None or not request.full  # --until alone: from the watermark

    def _check_archive(self, state: HarvestState, request: HarvestRequest, resume: bool) -> None:
        """Stop (with the way out) if the archive holds less than this harvest archived: it was
        deleted, emptied, replaced or damaged. With `--full` a damaged file is moved aside and
        an emptied one accepted: the run archives everything again."""
        path = archive_path(self.archive_dir, state.source, state.prefix)
        records = seq = 0
        if path.exists() and path.stat().st_size > 0:
            try:
                with RawArchive(path) as archive:
                    records, seq = archive.count_identifiers(), archive.last_seq()
            except DamagedFile:
                if not request.full:
                    raise
                aside = _move_aside(path)
                log.warning(
                    "damaged archive moved aside to %s; harvesting everything again",
                    aside,
                    extra=self._ctx(state),
                )
        lost = LostArchive.compared(
            state.source,
            state.prefix,
            path,
            (records, seq) if path.exists() else None,
            (state.archived_records, state.archive_seq),
        )
        if lost is not None:
            if not request.full:
                raise ArchiveLost(lost.problem("the harvest did not start"))
            log.warning(
                "%s; the full run archives everything again", lost.finding, extra=self._ctx(state)
            )
        lost_now = lost is not None
        state.archived_records = records if lost_now else max(records, state.archived_records)
        if lost_now or not resume:
            # A resumed run keeps its checkpoint's point, so that a page stored before the stop
            # but not checkpointed still counts its versions as new when it is fetched again.
            state.archive_seq = seq

    def run(self, request: HarvestRequest) -> HarvestState:
        """Harvest until the list ends; returns the final state (raises HarvestError on failure)."""
        state = self.prepare(request)
        self.progress.start(state)
        started = time.monotonic()
        with (
            log_context(**harvest_log_fields(state)),
            RawArchive.open(self.archive_dir, request.source.key, state.prefix) as archive,
        ):
            # The sink is made inside the `try`: making it may catch the index up from the
            # archive, which a stop or a failure may cut short like any page.
            sink: PageSink | None = None
            self._prefetching = True
            try:
                sink = self.sink_factory(request.source, state.prefix, archive)
                if state.reconcile and state.next_page == 0:
                    archive.forget_seen(str(state.key))
                while not state.list_complete and self.step(state, archive, sink):
                    state.rate = round(state.run.records / max(time.monotonic() - started, 1e-6), 1)
                    if self.options.page_delay and self._prefetched is None:
                        self.sleep(self.options.page_delay)
                if state.reconcile:
                    self._reconcile(state, archive, sink)
                state.run.add(sink.close())
            except BaseException as exc:
                if isinstance(exc, interrupt.Interrupted):
                    exc.page = state.next_page
                elif isinstance(exc, Exception) and sink is not None:
                    self._finish_stored_pages(state, sink)
                wrapped = self.fail(state, exc)
                self.progress.finish(state)
                if wrapped is not exc:
                    raise wrapped from exc
                raise
            finally:
                self._prefetching = False
                self._prefetched = None  # a page still in flight is dropped (daemon thread)
        state.rate = round(state.run.records / max(time.monotonic() - started, 1e-6), 1)
        self.complete(state)
        self.progress.finish(state)
        return state

    def _finish_stored_pages(self, state: HarvestState, sink: PageSink) -> None:
        """After a bad page, normalize and index the pages stored before it (the sink works a
        page or two behind the archive), so they are searchable now rather than at the next
        run's catch-up. Best effort: when this fails too (a full disk), the catch-up does it,
        and the error reported stays the first one."""
        try:
            state.run.add(sink.close())
        except BaseException as exc:  # an operator's stop too: the failure is reported first
            log.warning(
                "could not index the pages stored before the failure; the next run will",
                extra={**self._ctx(state), "error": str(exc) or type(exc).__name__},
            )

    def fail(self, state: HarvestState, exc: BaseException) -> BaseException:
        """Record a failed or interrupted run (the checkpoint of the last stored page is kept
        for the next run); returns the error to raise."""
        with interrupt.critical():
            if isinstance(exc, interrupt.Interrupted | KeyboardInterrupt):
                state.state = "interrupted"
                state.last_error = str(exc) or "interrupted"
            else:
                state.state = "failed"
                # An HTTP error names the URL requests built, user:password@ included.
                state.last_error = redact(f"{type(exc).__name__}: {exc}")
            state.run_ended = iso_now()
            try:
                self.store.save(state)
            except Exception as save_error:  # a full disk: the stored checkpoint stays as it was
                log.error(
                    "could not record the stop (%s); the last checkpoint stays",
                    save_error,
                    extra=self._ctx(state),
                )
        # The page that failed: the one after the `next_page` pages stored, numbered from 1 as
        # the `page stored` lines are.
        failed_page = state.next_page + 1
        if state.state == "interrupted":
            log.warning("harvest interrupted; checkpoint saved", extra=self._ctx(state))
        else:
            log.error(
                "harvest failed", extra=self._ctx(state, page=failed_page, error=state.last_error)
            )
        # An error the operator can act on (a server failing, a full disk) is named with the
        # harvest and page; anything else is a bug in ernte and keeps its own traceback.
        if (
            isinstance(exc, Exception)
            and not isinstance(exc, (HarvestError, OAIProtocolError))
            and is_user_error(exc)
        ):
            return HarvestError(f"harvest of {state.key} stopped at page {failed_page}: {exc}")
        return exc

    def complete(self, state: HarvestState) -> None:
        """The list has ended: move the watermark, clear the checkpoint, add to the totals."""
        state.state = "idle"
        if state.moves_watermark:
            state.watermark = _later(state.watermark, state.pending_watermark)
        state.token = None
        state.recent_tokens = []
        state.token_anchor = None
        state.run_ended = iso_now()
        state.totals.add(state.run)
        self.store.save(state)

    def _begin_window(
        self, state: HarvestState, request: HarvestRequest, granularity: str, earliest: str
    ) -> None:
        if request.from_:
            window_from: str | None = coerce_to_granularity(request.from_, granularity)
        elif state.watermark and not request.full:
            window_from = window_start(state.watermark, self.options.overlap, granularity, earliest)
        else:
            window_from = None
        until = (
            coerce_to_granularity(request.until, granularity, end_of_day=True)
            if request.until
            else None
        )
        if request.reconcile and (window_from or until):
            raise UsageError(
                "--reconcile needs a full list: use it with --full (and no --from/--until)"
            )
        start, end = parse_datestamp(window_from or ""), parse_datestamp(until or "")
        if start is not None and end is not None and start > end:
            if request.from_:
                raise UsageError(f"--from {request.from_} is after --until {request.until}")
            raise UsageError(
                f"the window would start at the watermark ({window_from}), after --until "
                f"{request.until}; add --from (or --full) to harvest an older window"
            )
        state.window_from = window_from
        state.window_until = until
        state.pending_watermark = until
        # Only a window that starts at or before the watermark (or at the beginning) may move
        # it: a run from a later date never saw what lies between, and must not claim it.
        mark = parse_datestamp(state.watermark or "")
        state.moves_watermark = window_from is None or (
            start is not None and mark is not None and start <= mark
        )
        state.token = None
        state.cursor = None
        state.complete_list_size = None
        state.next_page = 0
        state.list_complete = False
        state.reconcile = request.reconcile
        state.recent_tokens = []
        state.token_anchor = None
        state.empty_streak = 0
        state.token_restarts = 0
        state.run = RunCounts()
        state.counted_run = ""  # these counts are no cluster run's (a late replay adds none)
        state.run_started = iso_now()
        state.run_ended = None

    def _fetch(self, state: HarvestState) -> Page:
        return self.client.list_records_page(
            metadata_prefix=state.prefix,
            token=state.token,
            set_spec=state.set_spec or None,
            from_=state.window_from,
            until=state.window_until,
        )

    def step(self, state: HarvestState, archive: RawArchive, sink: PageSink) -> bool:
        """Fetch, archive, hand on and checkpoint one page; False when the list has ended.

        Nothing in `state` changes before the page is stored (see the module doc)."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched.token != state.token:
            with suppress(Exception):  # not the page this state asks for: let it end, drop it
                prefetched.result()
            prefetched = None
        retries_before = self.client.http.retries

        def retries_of_this_page() -> int:
            if prefetched is not None:
                return prefetched.retries
            return self.client.http.retries - retries_before

        try:
            with log_context(page=state.next_page + 1):
                page = prefetched.result() if prefetched is not None else self._fetch(state)
        except BadResumptionToken as exc:
            if state.token is None:
                raise
            self._restart_window(state, exc)
            return True
        except Exception:
            # The page failed after its retries: they count in the failed run (the stop is
            # saved with `run`; `ernte status` showed retries=0 after five).
            state.run.retries += retries_of_this_page()
            raise
        retries = retries_of_this_page()
        pending = state.pending_watermark
        server_now = _server_now(page)
        if pending is None:
            pending = server_now or state.run_started
        elif server_now and _later(server_now, pending) != server_now:
            pending = server_now  # an --until in the future covers only up to now
        if page.token is not None and (
            page.token in state.recent_tokens or page.token == state.token_anchor
        ):
            raise RepeatedResumptionToken(
                f"{state.key}: server repeated resumption token {page.token!r} at page "
                f"{state.next_page + 1} ({page.url}); stopping to avoid a loop"
            )
        empty_streak = 0 if page.records or page.token is None else state.empty_streak + 1
        if empty_streak >= self.options.max_empty_pages:
            raise TooManyEmptyPages(
                f"{state.key}: {empty_streak} empty pages in a row that still carry a "
                f"resumption token (last {page.url}); stopping"
            )
        recent = state.recent_tokens
        anchor = state.token_anchor
        if page.token is not None:
            recent = [*recent[-49:], page.token]
            anchor = _moved_anchor(anchor, page.token, state.next_page + 1)
            if self._prefetching:
                self._prefetched = _PrefetchedPage(
                    self.client,
                    state.prefix,
                    page.token,
                    self.options.page_delay,
                    self.sleep,
                    {**log_context_now(), "page": state.next_page + 2},  # after this one
                )
        checkpoint = _Checkpoint(page.token, recent, anchor, empty_streak, pending, retries)
        self._store_page(state, archive, sink, page, checkpoint)
        return page.token is not None

    def _reconcile(self, state: HarvestState, archive: RawArchive, sink: PageSink) -> None:
        """After a complete full list: records the archive holds live but the server no longer
        listed are archived as deletions and removed from the index, unless there are
        suspiciously many (then nothing is deleted and the run fails with the count)."""
        run = str(state.key)
        gone = archive.unseen_live(run, state.set_spec)
        live, _ = archive.count_latest()
        if gone and len(gone) > self.options.reconcile_max_share * max(live, 1):
            raise HarvestError(
                f"{state.key}: the full list lacks {len(gone)} of {live} archived records, more "
                f"than {self.options.reconcile_max_share:.0%}; not deleting them (check the "
                "server, or raise ERNTE_RECONCILE_MAX_SHARE)"
            )
        now = iso_now()
        tombstones = [
            RawRecord(
                identifier=r.identifier,
                datestamp=now,
                deleted=True,
                sets=r.sets,
                xml=_tombstone_xml(r.identifier, now, r.sets),
                metadata_prefix=state.prefix,
            )
            for r in gone
        ]
        if tombstones:
            archive.append(tombstones, page_url=f"reconcile:{state.run_started}")
            state.run.add(sink.handle(tombstones, state.next_page))
            state.run.deleted += len(tombstones)
            log.warning(
                "archived %d records the server no longer lists as deleted",
                len(tombstones),
                extra=self._ctx(state),
            )
        archive.forget_seen(run)

    def _restart_window(self, state: HarvestState, exc: BadResumptionToken) -> None:
        """An expired token: ask for the run's window again (idempotent writes make it safe)."""
        state.token_restarts += 1
        state.run.list_restarts += 1
        if state.token_restarts > self.options.max_token_restarts:
            # Give up for this run, but do not leave the dead token as the checkpoint: the next
            # run asks for the window again instead of failing on the same token forever.
            state.token = None
            state.cursor = None
            raise exc
        log.warning(
            "resumption token rejected (expired?); restarting the run's window",
            extra=self._ctx(state, url=exc.url, window_from=state.window_from),
        )
        state.token = None
        state.cursor = None
        state.recent_tokens = []
        state.token_anchor = None
        self.store.save(state)

    def _store_page(
        self,
        state: HarvestState,
        archive: RawArchive,
        sink: PageSink,
        page: Page,
        checkpoint: _Checkpoint,
    ) -> None:
        """Archive the page, hand it to the sink, then apply and save the checkpoint. A signal
        arriving meanwhile takes effect after the checkpoint (the page is finished)."""
        with interrupt.critical():
            appended = archive.append(page.records, page.url, fresh_after=state.archive_seq)
            if state.reconcile:
                archive.mark_seen(str(state.key), [r.identifier for r in page.records])
            for n, xml in enumerate(page.headers_without_identifier):
                archive.quarantine(
                    f"(no identifier) {redact_url(page.url)} #{n}",
                    "harvest",
                    "record header has no identifier",
                    xml,
                )
            counts = RunCounts(
                pages=1,
                records=len(page.records),
                added=appended.appended,
                unchanged=appended.unchanged,
                deleted=sum(1 for r in page.records if r.deleted),
                repaired_chars=page.repaired_chars,
                warnings=len(page.warnings),
                quarantined=len(page.headers_without_identifier),
                retries=checkpoint.retries,
            )
            counts.add(sink.handle(page.records, state.next_page))
            archive_seq = archive.last_seq()
            self._commit(state, page, checkpoint, counts, appended.new_identifiers, archive_seq)
        for warning in page.warnings:
            log.warning("page warning: %s", warning, extra=self._ctx(state, url=page.url))
        if page.repaired_chars:
            log.warning(
                "removed %d invalid XML characters",
                page.repaired_chars,
                extra=self._ctx(state, url=page.url),
            )
        self.progress.page(state, page)

    def _commit(
        self,
        state: HarvestState,
        page: Page,
        checkpoint: _Checkpoint,
        counts: RunCounts,
        new_identifiers: int,
        archive_seq: int,
    ) -> None:
        """The checkpoint after a stored page: saved as a whole, or (if saving fails) the state
        in memory is left as it was before the page."""
        before = state.to_dict()
        state.run.add(counts)
        state.token = checkpoint.token
        state.recent_tokens = checkpoint.recent_tokens
        state.token_anchor = checkpoint.token_anchor
        state.empty_streak = checkpoint.empty_streak
        state.pending_watermark = checkpoint.pending_watermark
        state.list_complete = page.token is None
        state.cursor = page.cursor
        state.complete_list_size = page.complete_list_size or state.complete_list_size
        state.archived_records += new_identifiers
        state.archive_seq = max(state.archive_seq, archive_seq)
        state.next_page += 1
        try:
            self.store.save(state)
        except BaseException:
            restored = HarvestState.from_dict(before)
            for name in before:
                setattr(state, name, getattr(restored, name))
            raise

    @staticmethod
    def _ctx(state: HarvestState, **extra: object) -> dict[str, object]:
        """Log context: the harvest, and `page`, by default the number of pages stored (the
        page a line about a stored page concerns; `extra` may name another)."""
        return harvest_log_fields(state, **{"page": state.next_page, **extra})


def _server_now(page: Page) -> str | None:
    """The server's own clock (responseDate) as a watermark candidate, if it is readable."""
    moment = parse_datestamp(page.response_date) if page.response_date else None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _later(current: str | None, candidate: str | None) -> str | None:
    """The watermark after a completed run: it never moves backwards (an old window harvested
    with `--from`/`--until` or `--full --until` leaves it where it was)."""
    if candidate is None:
        return current
    if current is None:
        return candidate
    now, new = parse_datestamp(current), parse_datestamp(candidate)
    if now is not None and new is not None and new < now:
        return current
    return candidate


def _move_aside(path: Path) -> Path:
    """Rename a damaged SQLite file (and its WAL files) out of the archive's way."""
    stamp = iso_now().replace(":", "")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            extra.rename(aside.with_name(aside.name + suffix))
    path.rename(aside)
    return aside


def _tombstone_xml(identifier: str, datestamp: str, sets: Sequence[str]) -> bytes:
    """An OAI header with status="deleted", as a repository that kept deletions would send."""
    header = etree.Element(f"{{{OAI_NS}}}header", status="deleted")
    etree.SubElement(header, f"{{{OAI_NS}}}identifier").text = identifier
    etree.SubElement(header, f"{{{OAI_NS}}}datestamp").text = datestamp
    for spec in sets:
        etree.SubElement(header, f"{{{OAI_NS}}}setSpec").text = spec
    record = etree.Element(f"{{{OAI_NS}}}record")
    record.append(header)
    record.append(etree.Comment(" archived as deleted by ernte: not in a complete full list "))
    return etree.tostring(record, encoding="utf-8")
