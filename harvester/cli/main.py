"""The `ernte` command line: each command reads settings, builds what it needs through
`harvester.run.services`, and prints.

Errors a user can meet (ernte's own types, see `harvester.errors`) print one clear line and exit 1;
any other exception is a bug and keeps its traceback. `--debug` shows the traceback of every
error."""

from __future__ import annotations

import io
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harvester.errors import UsageError
from harvester.logs import configure_logging
from harvester.model import RawRecord
from harvester.oai.client import NotOAIResponse, OAIError, OAIProtocolError
from harvester.oai.http import HTTPFailure
from harvester.redact import redact
from harvester.run import interrupt, services
from harvester.run.harvest import HarvestRequest, check_window
from harvester.run.progress import PeriodicLog, progress_for
from harvester.run.user_errors import is_user_error, redis_problem, unreachable_redis
from harvester.settings import Settings, get_settings
from harvester.sources import (
    EarlierHarvestsUnreadable,
    Source,
    SourceError,
    harvest_command,
    load_sources,
    resolve_source,
    source_of_archive,
)
from harvester.store.archive import RawArchive, archives_for, archives_of
from harvester.store.locks import (
    LeaseGuardedStore,
    harvest_lock,
    index_write_lock,
)
from harvester.store.state import HarvestState, harvest_run_id
from indexer.search_model import MAX_FACET_SIZE, MAX_HITS, SORT_ORDERS

log = logging.getLogger(__name__)

# On a terminal rich fits its width; in cron logs and pipes it would cut every column to "…" at
# 80 characters, so tables are printed wide there.
# emoji=False: record identifiers such as `oai:x:13` would otherwise be shown as emoji.
console = Console(emoji=False) if sys.stdout.isatty() else Console(width=200, emoji=False)


def _debugging() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Turn the errors a user can meet into one readable line and exit status 1 (with `--debug`,
    after their traceback); any other exception propagates with its traceback."""
    try:
        yield
    except Exception as exc:
        if not is_user_error(exc):
            raise
        log.debug("user-facing error", exc_info=True)
        if _debugging():
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        click.echo(f"error: {redact(_user_message(exc))}", err=True)
        sys.exit(1)


def _user_message(exc: BaseException) -> str:
    if unreachable_redis(exc):
        return redis_problem(_settings().redis_url or "REDIS_URL", exc)
    return str(exc)


def _require_redis_url(what: str) -> None:
    """Cluster-only commands refuse at once, in one line, when REDIS_URL is not set."""
    if not _settings().redis_url:
        click.echo(f"error: {what} needs cluster mode: set REDIS_URL", err=True)
        sys.exit(1)


def _settings() -> Settings:
    return get_settings()


def _source(name_or_url: str, prefix: str | None = None) -> Source:
    """A configured source, a base URL, or the key of an earlier harvest of a base URL (as
    `ernte status` and the messages name it)."""
    settings = _settings()

    def earlier_urls() -> dict[str, str]:
        try:
            return services.earlier_base_urls(settings)
        except Exception as exc:
            if not unreachable_redis(exc):
                raise
            raise EarlierHarvestsUnreadable(redis_problem(settings.redis_url or "", exc)) from exc

    return resolve_source(name_or_url, settings.sources_file, prefix, earlier_urls)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


class _Commands(click.Group):
    """The `ernte` group: a Ctrl-C that reaches a command's end stops it in one line, exit 130.

    click's own answer was `Aborted!` and exit 1, which a script cannot tell from a failure.
    The harvest and the rebuild say more themselves (what was kept, how to go on)."""

    group_class = type  # `ernte dlq`, `ernte config`, ...: the same, named in full

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # `ernte dlq replay`: the innermost group answers (the program's own name may be
            # `main.py` when run as a module: the command is `ernte` to the user)
            words = ["ernte", *ctx.command_path.split()[1:], ctx.invoked_subcommand or ""]
            click.echo(f"`{' '.join(w for w in words if w)}` interrupted (Ctrl-C)", err=True)
            ctx.exit(130)


@click.group(cls=_Commands)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log line format (default: ERNTE_LOG_FORMAT or text).",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("--debug", is_flag=True, help="Show the traceback of every error, expected or not.")
def main(log_format: str | None, verbose: bool, debug: bool) -> None:
    """ernte: harvest OAI-PMH repositories into a German faceted search index."""
    with _clear_errors():
        settings = _settings()
    configure_logging(log_format or settings.log_format, "DEBUG" if verbose else settings.log_level)


# -- OAI-PMH inspection -----------------------------------------------------------------------


@main.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def identify(source: str, as_json: bool) -> None:
    """Show what a repository says about itself (SOURCE is a configured name or a URL)."""
    with _clear_errors():
        info = services.oai_client(_settings(), _source(source).base_url).identify()
    if as_json:
        _print_json(_asdict(info))
        return
    table = Table(show_header=False)
    for name, value in _asdict(info).items():
        table.add_row(name, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)


def _asdict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)


@main.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sets(source: str, as_json: bool) -> None:
    """List a repository's sets (all pages of ListSets)."""
    with _clear_errors():
        found = list(services.oai_client(_settings(), _source(source).base_url).list_sets())
    if as_json:
        _print_json([_asdict(s) for s in found])
        return
    table = Table("setSpec", "setName")
    for s in found:
        table.add_row(escape(s.spec), escape(s.name))
    console.print(table)
    click.echo(f"{len(found)} sets")


@main.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def formats(source: str, as_json: bool) -> None:
    """List a repository's metadata formats."""
    with _clear_errors():
        found = services.oai_client(_settings(), _source(source).base_url).list_formats()
    if as_json:
        _print_json([_asdict(f) for f in found])
        return
    table = Table("prefix", "schema", "namespace")
    for f in found:
        table.add_row(f.prefix, f.schema, f.namespace)
    console.print(table)


# -- harvesting -------------------------------------------------------------------------------


@main.command()
@click.argument("source")
@click.option(
    "--set", "set_spec", default=None, help="Harvest one set (default: the source's sets, or all)."
)
@click.option("--prefix", default=None, help="Metadata prefix (default: the source's).")
@click.option(
    "--from",
    "from_",
    default=None,
    help="Start date (YYYY-MM-DD[Thh:mm:ssZ]); overrides the watermark.",
)
@click.option("--until", default=None, help="End date.")
@click.option("--full", is_flag=True, help="Ignore the watermark: harvest everything.")
@click.option(
    "--reconcile",
    is_flag=True,
    help="With a full list: archive as deleted what the server no longer lists "
    "(for repositories whose deletedRecord is no or transient).",
)
@click.option("--no-index", is_flag=True, help="Archive and normalize only; do not index.")
@click.option("--queue", is_flag=True, help="Enqueue as a Celery task instead of running here.")
def harvest(
    source: str,
    set_spec: str | None,
    prefix: str | None,
    from_: str | None,
    until: str | None,
    full: bool,
    reconcile: bool,
    no_index: bool,
    queue: bool,
) -> None:
    """Harvest a repository incrementally (SOURCE is a configured name or an OAI-PMH base URL).

    Ctrl-C or SIGTERM stops after the page being stored, saves the checkpoint and exits 130
    (143); the next `ernte harvest SOURCE` continues from there."""
    settings = _settings()
    with _stops_cleanly(source, set_spec, prefix, queue=queue), _clear_errors():
        if queue:
            _require_redis_url("`ernte harvest --queue`")
        else:
            _require_writable_data_dir(settings)
            _batch_work(settings)
        src = _source(source, prefix)
        set_specs = [set_spec] if set_spec is not None else list(src.sets) or [""]
        for option, given in (("--reconcile", reconcile), ("--no-index", no_index)):
            if queue and given:
                raise click.UsageError(f"{option} runs in-process only; drop --queue")
        if queue:
            from harvester.cluster.runs import request_harvest_outcome
            from harvester.store.redis_state import RunSpec

            check_window(from_, until)  # a worker would only dead-letter it
            ref = src.key if src.key in _configured_sources() else src.base_url
            refused = 0
            for spec in set_specs:
                queued, line = request_harvest_outcome(
                    RunSpec(ref, spec, prefix or "", from_, until, full), resend_all=True
                )
                click.echo(line, err=not queued)
                refused += not queued
            if refused:
                sys.exit(1)
            return
        with ExitStack() as held:
            # Refuse at once if any of these harvests is running elsewhere; then hold the host's
            # index lock for the run (the embedded index's writer stays open), so a rebuild
            # waits instead of colliding. The backend is closed (writer committed and released)
            # before the lock is.
            lost = {
                spec: held.enter_context(harvest_lock(settings, src, spec)) for spec in set_specs
            }
            backend = None
            if not no_index:
                held.enter_context(index_write_lock(settings))
                backend = services.index_backend(settings)
                held.callback(backend.close)
            for spec in set_specs:
                progress = progress_for(sys.stderr.isatty())
                store = services.state_store(settings)
                event = lost[spec]
                if event is not None:  # cluster mode: stop saving once the lease is lost
                    store = LeaseGuardedStore(store, event, harvest_run_id(src.key, spec))
                runner = services.harvester(settings, src, progress, backend, store=store)
                request = HarvestRequest(src, spec, prefix, from_, until, full, reconcile)
                state = runner.run(request)
                _print_run_summary(state)
                if spec and not state.run.records:
                    _warn_if_unknown_set(settings, src, spec)


@contextmanager
def _stops_cleanly(
    source: str, set_spec: str | None, prefix: str | None, *, queue: bool = False
) -> Iterator[None]:
    """Ctrl-C and SIGTERM: the harvest saves its checkpoint (state `interrupted`), then one
    line says where it stopped and how to go on; exit 130 (SIGINT) or 143 (SIGTERM). With
    `--queue` nothing runs here: what was printed as queued is queued, nothing more."""
    try:
        with interrupt.stop_on_signals():
            yield
    except interrupt.Interrupted as exc:
        if queue:
            again = harvest_command(source, set_spec or "", prefix or "", "--queue")
            click.echo(
                f"interrupted: nothing more was queued; run `{again}` to queue the rest (a "
                "harvest already queued is refused, not queued twice)",
                err=True,
            )
            sys.exit(exc.exit_code)
        again = harvest_command(source, set_spec or "", prefix or "")
        where = f"at page {exc.page}" if exc.page is not None else "before the first page"
        click.echo(f"interrupted {where}; run `{again}` to continue", err=True)
        sys.exit(exc.exit_code)


@contextmanager
def _rebuild_stops_cleanly() -> Iterator[None]:
    """Ctrl-C and SIGTERM stop a rebuild in one line, exit 130 or 143 (it said `Aborted!`,
    exit 1, or nothing). Embedded: the live index was never touched, the partial new one is
    gone (a stop during the switch lets the switch finish, and the command ends as done)."""
    try:
        with interrupt.stop_on_signals():
            yield
    except interrupt.Interrupted as exc:
        where = (
            "the log says whether the alias was switched before the stop"  # then late records
            if _settings().es_url
            else "the live index is unchanged"
        )
        click.echo(
            f"index rebuild interrupted; {where}; run `ernte index rebuild` to rebuild it",
            err=True,
        )
        sys.exit(exc.exit_code)


def _batch_work(settings: Settings) -> None:
    """This command yields the CPU to searches on the same host (ERNTE_BATCH_NICENESS)."""
    from harvester.run.pipeline import yield_cpu_to_searches

    yield_cpu_to_searches(settings.batch_niceness)


def _require_writable_data_dir(settings: Settings) -> None:
    """Refuse at once, in one line, when the data directory cannot be created or written."""
    from harvester.store.files import from_os_error

    directory = settings.data_dir
    probe = directory / ".ernte-write-test"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"ERNTE_DATA_DIR {directory} cannot be used: {from_os_error(exc, probe)} "
            "(set ERNTE_DATA_DIR to a writable directory)"
        ) from exc


def _configured_sources() -> dict[str, Source]:
    """The configured sources, or none when the sources file is unreadable (for messages that
    only name a source)."""
    try:
        return load_sources(_settings().sources_file)
    except SourceError:
        return {}


def _warn_if_unknown_set(settings: Settings, source: Source, spec: str) -> None:
    """An empty harvest of a set: say so if the repository does not offer that set at all
    (servers answer a misspelt set with noRecordsMatch, which looks like 'nothing new')."""
    try:
        offered = {s.spec for s in services.oai_client(settings, source.base_url).list_sets()}
    except (OAIError, OAIProtocolError, HTTPFailure, NotOAIResponse):
        return
    if spec not in offered:
        click.echo(
            f"warning: the repository offers no set {spec!r} ({len(offered)} sets; "
            f"`ernte sets {source.key if source.key in _configured_sources() else source.base_url}` "
            "lists them)",
            err=True,
        )


def _print_run_summary(state: HarvestState) -> None:
    run = state.run
    # The counts are the run's work: a list restarted after an expired token is listed again,
    # so more records than the repository holds would otherwise read as a miscount.
    restarted = (
        f"; the list was restarted {run.list_restarts}x after an expired resumption token "
        "(records listed again count again)"
        if run.list_restarts
        else ""
    )
    click.echo(
        f"{state.source} [{state.set_spec or 'all sets'}, {state.prefix}]: "
        f"{run.records} records in {run.pages} pages ({run.added} new versions, "
        f"{run.deleted} deleted); normalized {run.normalized}, quarantined {run.quarantined}, "
        f"indexed {run.indexed}; repaired characters {run.repaired_chars}, "
        f"warnings {run.warnings}; watermark {state.watermark}{restarted}"
    )


def _runs_table(runs: list[dict[str, Any]]) -> Table:
    """The cluster's runs in progress (`ernte status` in cluster mode)."""
    table = Table(
        "cluster run",
        "status",
        "started",
        "pages fetched",
        "pages indexed",
        "indexed",
        "quarantined",
        "dead-lettered pages",
        title="runs in progress",
    )
    for run in runs:
        table.add_row(
            escape(redact(run["run"])),
            run["status"],
            run["started"],
            *(str(run[k]) for k in ("pages_fetched", "pages_indexed", "indexed", "quarantined")),
            str(run["index_pages_dead_lettered"]),
        )
    return table


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (documented in README).")
def status(as_json: bool) -> None:
    """Every harvest: state, watermark, last run, counts, last error.

    A run whose process is gone (killed, power loss) shows as `died`; reads only (works on a
    read-only data directory)."""
    with _clear_errors():
        report = services.status_report(_settings())
    if as_json:
        _print_json(report.to_dict())
        return
    states = report.harvests
    if not states:
        click.echo("no harvests yet")
    table = Table(
        "harvest",
        "state",
        "watermark",
        "last run",
        "records",
        "deleted",
        "indexed",
        "quarantined",
        "pages",
        "repaired",
        "warnings",
        "rate",
        "last error",
    )
    for s in states:
        table.add_row(
            str(s.key),
            s.state,
            s.watermark or "-",
            f"{s.run_started or '-'} → {s.run_ended or '…'}",
            str(s.run.records),
            str(s.run.deleted),
            str(s.run.indexed),
            str(s.run.quarantined),
            str(s.run.pages),
            str(s.run.repaired_chars),
            str(s.run.warnings),
            f"{s.rate}/s",
            escape(redact(s.last_error or "")),
        )
    if states:
        console.print(table)
    if report.runs:
        console.print(_runs_table(report.runs))
    for line in report.vanished:
        click.echo(f"warning: {line}", err=True)
    if report.dead_letters is not None:
        click.echo(f"dead_letters: {len(report.dead_letters)}")


@main.command()
@click.argument("source", required=False)
@click.option(
    "--repair",
    is_flag=True,
    help="Re-index live archived records the index lacks; remove documents it should not hold.",
)
def check(source: str | None, repair: bool) -> None:
    """Verify archive, state and index against each other (SQLite integrity, archived counts,
    index documents vs live archived records). Exits 1 when a problem remains."""
    from harvester.run.check import run_check

    settings = _settings()
    with _clear_errors():
        report = run_check(settings, source, repair)
        for line in report.ok:
            click.echo(f"ok: {line}")
        for line in report.problems:
            click.echo(f"problem: {line}")
        for line in report.repaired:
            click.echo(f"repaired: {line}")
        if repair and report.repaired:
            report = run_check(settings, source, repair=False)
            for line in report.problems:
                click.echo(f"still a problem: {line}")
    if not report.healthy:
        sys.exit(1)


# -- records ----------------------------------------------------------------------------------


def _lost_archives(source: str | None) -> list[str]:
    """Problems of archives that hold less than the state says was archived (for messages
    that would otherwise say only 'not found')."""
    from harvester.run.check import run_check

    try:
        report = run_check(_settings(), source, repair=False, index=False)
    except Exception:  # a second opinion only; the caller's own message stands
        log.debug("archive check failed", exc_info=True)
        return []
    return [p for p in report.problems if p.startswith("archive ")]


def _find_archived(identifier: str, source: str | None) -> tuple[str, RawArchive] | None:
    from harvester.run.records import find_archived

    return find_archived(_settings(), identifier, source)


@main.command()
@click.argument("identifier")
@click.option("--source", default=None, help="Look only in this source's archive.")
@click.option("--raw", "raw_only", is_flag=True, help="Print only the raw XML as harvested.")
@click.option("--json", "as_json", is_flag=True, help="Print only the normalized record as JSON.")
def show(identifier: str, source: str | None, raw_only: bool, as_json: bool) -> None:
    """Show one archived record: raw XML and normalized record."""
    from harvester.normalize.normalizer import QuarantineError, normalize
    from harvester.run.pipeline import crosswalk_for

    if raw_only and as_json:  # README: [--raw | --json]; --raw silently won
        raise click.UsageError("--raw and --json exclude each other: choose one")
    with _clear_errors():
        found = _find_archived(identifier, source)
    if found is None:
        lost = _lost_archives(source)
        if lost:
            click.echo(f"error: {identifier!r} is not in the archive, and {lost[0]}", err=True)
        else:
            click.echo(f"error: {identifier!r} is not in the archive", err=True)
        sys.exit(1)
    src_key, archive = found
    with archive:
        raw = archive.get(identifier)
    assert raw is not None
    if raw_only:
        click.echo(raw.xml.decode("utf-8"))
        return
    with _clear_errors():
        configured = load_sources(_settings().sources_file)
    src = source_of_archive(configured, src_key, raw.metadata_prefix)
    try:
        record = normalize(raw, src_key, crosswalk_for(src, raw.metadata_prefix))
    except QuarantineError as exc:
        if not as_json:
            click.echo(raw.xml.decode("utf-8"))
        click.echo(f"error: {identifier} is quarantined: {exc.reason}", err=True)
        sys.exit(1)
    if as_json:
        _print_json(record.to_dict())
        return
    click.echo(raw.xml.decode("utf-8"))
    click.echo()
    _print_json(record.to_dict())


@main.command()
@click.argument("source", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def quarantine(source: str | None, as_json: bool) -> None:
    """List quarantined records with their reasons."""
    rows = []
    with _clear_errors():
        archive_dir = _settings().archive_dir
        # A misspelt source is an error, not "0 quarantined".
        listed = archives_for(archive_dir, source) if source else archives_of(archive_dir)
        for src, prefix, path in listed:
            with RawArchive(path, readonly=True) as archive:
                rows += [
                    {"source": src, "prefix": prefix, **_asdict(e)} for e in archive.quarantined()
                ]
    if as_json:
        _print_json(rows)
        return
    table = Table("source", "prefix", "identifier", "stage", "reason", "at")
    for r in rows:
        table.add_row(
            r["source"],
            r["prefix"],
            escape(r["identifier"]),
            r["stage"],
            escape(r["reason"]),
            r["at"],
        )
    console.print(table)
    click.echo(f"{len(rows)} quarantined")


@main.command("normalize")
@click.argument("source")
def normalize_cmd(source: str) -> None:
    """Re-normalize a source from the raw archive (no server contact); report and quarantine."""
    from harvester.run.pipeline import normalize_batch

    with _clear_errors():
        configured = load_sources(_settings().sources_file)
        for src_key, prefix, path in archives_for(_settings().archive_dir, source):
            src = source_of_archive(configured, src_key, prefix)
            with RawArchive(path) as archive:
                total_ok = total_bad = 0
                for batch in _batches(archive):
                    _, counts = normalize_batch(batch, src, archive)
                    total_ok += counts.normalized
                    total_bad += counts.quarantined
            click.echo(f"{src_key} [{prefix}]: normalized {total_ok}, quarantined {total_bad}")


def _batches(archive: RawArchive) -> Iterator[list[RawRecord]]:
    """The archive's latest versions in batches, with a progress line every few seconds."""
    live, deleted = archive.count_latest()
    progress = PeriodicLog("records processed", live + deleted, archive=str(archive.path))
    for batch in archive.batches():
        yield batch
        progress.add(len(batch))


# -- index and search -------------------------------------------------------------------------


def _search_command_class() -> type[click.Command]:
    """`ernte search`'s command class: lets a query start with `-word` (see SearchCommand)."""
    from harvester.cli.search import SearchCommand

    return SearchCommand


def _harvested(settings: Settings, source: str) -> bool:
    """Whether `source` has a harvest state (a harvest ran, even one that found nothing)."""
    return any(s.source == source for s in services.state_store(settings, readonly=True).all())


@main.command()
@click.argument("target", metavar="SOURCE|rebuild")
def index(target: str) -> None:
    """Index a source from the raw archive (`ernte index SOURCE`), or build a fresh index from
    every archive and switch to it atomically (`ernte index rebuild`)."""
    _batch_work(_settings())
    if target == "rebuild":
        from harvester.run.rebuild import rebuild_from_archives

        with _clear_errors(), _rebuild_stops_cleanly():
            click.echo(rebuild_from_archives(_settings()))
        return
    from harvester.run.check import lost_archives
    from harvester.run.harvest import ArchiveLost
    from harvester.run.pipeline import process_batch, record_archive_position

    settings = _settings()
    with _clear_errors(), index_write_lock(settings):
        for lost in lost_archives(settings, target):
            raise ArchiveLost(lost.problem("nothing was indexed"))
        if not archives_of(settings.archive_dir, target) and _harvested(settings, target):
            click.echo(f"{target}: its harvests archived no records; nothing to index")
            return
        archives = archives_for(settings.archive_dir, target)
        configured = load_sources(settings.sources_file)
        backend = services.index_backend(settings)
        try:
            for src_key, prefix, path in archives:
                src = source_of_archive(configured, src_key, prefix)
                with RawArchive(path) as archive:
                    done = bad = 0
                    start = archive.last_seq()
                    for batch in _batches(archive):
                        counts = process_batch(batch, src, archive, backend)
                        done += counts.indexed
                        bad += counts.quarantined
                    record_archive_position(backend, archive, start)
                click.echo(f"{src_key} [{prefix}]: indexed {done}, quarantined {bad}")
        finally:
            backend.close()


@main.command(cls=_search_command_class())
@click.argument("query", default="")
@click.option("--filter", "filters", multiple=True, help="field=value, or year=2005..2010.")
@click.option("--facet", "facets", multiple=True, help="Facet field (subject, type, year, ...).")
@click.option(
    "--facet-size", default=10, show_default=True, type=click.IntRange(min=1, max=MAX_FACET_SIZE)
)
@click.option("--sort", type=click.Choice(SORT_ORDERS), default="relevance")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=0, max=MAX_HITS))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--year-histogram",
    is_flag=True,
    help="Also show the matches per year as a timeline (every year, not only the top ones).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the response model as JSON.")
def search(
    query: str,
    filters: tuple[str, ...],
    facets: tuple[str, ...],
    facet_size: int,
    sort: str,
    limit: int,
    offset: int,
    year_histogram: bool,
    as_json: bool,
) -> None:
    """Search the index: words (all of 1-2, all but one of 3+), "phrases", -exclusion, field:value."""
    from harvester.cli.search import print_response
    from indexer.user_request import build_request

    settings = _settings()
    with _clear_errors():
        request = build_request(
            query, filters, facets, facet_size, sort, limit, offset, year_histogram=year_histogram
        )
        backend = services.index_backend(settings, create=False)
        try:
            response = backend.search(request)
        finally:
            backend.close()
    if as_json:
        _print_json(response.to_dict())
    else:
        print_response(console, request, response)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes (one per core serves the most searches at once).",
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the search page and the JSON API (read-only) until interrupted."""
    from harvester.web.server import serve as run_server

    settings = _settings()
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an IPv6 address
    click.echo(
        f"ernte serve: search page http://{where}/ , API http://{where}/api/search"
        f" ({'Elasticsearch at ES_URL' if settings.es_url else settings.index_dir})",
        err=True,
    )
    with _clear_errors():
        run_server(settings, host, port, workers)


# -- vocabulary, demo, cluster ----------------------------------------------------------------


@main.group()
def compounds() -> None:
    """The compound-part list used for German decompounding."""


@compounds.command("build")
@click.argument("source")
def compounds_build(source: str) -> None:
    """Rebuild the part list from the base word list plus SOURCE's own subject vocabulary."""
    from harvester.run.vocabulary import build_parts_from_archive

    with _clear_errors():
        path, count = build_parts_from_archive(_settings(), source)
    click.echo(f"wrote {count} parts to {path}; run `ernte index rebuild` to apply them")


@main.command()
@click.option(
    "--port",
    default=0,
    type=click.IntRange(0, 65535),
    help="Port for the local demo OAI-PMH provider (0 = any).",
)
@click.option("--query", default="Stadtteile", show_default=True)
def demo(port: int, query: str) -> None:
    """Serve the bundled ORLIS-like sample over OAI-PMH, harvest, index, and search it."""
    from harvester.demo import DemoExtraMissing

    try:
        from harvester.cli.demo import run_demo
    except DemoExtraMissing as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)

    with _clear_errors():
        run_demo(_settings(), console, port, query)


@main.command()
@click.option("-Q", "--queues", default="harvest,index", show_default=True)
@click.option("-c", "--concurrency", default=2, show_default=True)
@click.option("--pool", default="prefork", show_default=True)
@click.option(
    "-n", "--hostname", default=None, help="Node name before the @ (default: ernte-<pid>)."
)
def worker(queues: str, concurrency: int, pool: str, hostname: str | None) -> None:
    """Start a Celery worker (needs REDIS_URL)."""
    from harvester.cluster.worker import run_worker

    run_worker(queues, concurrency, pool, hostname)


@main.command()
def beat() -> None:
    """Start Celery beat with the schedules of config/sources.yaml (one active per cluster)."""
    from harvester.cluster.worker import run_beat

    run_beat()


@main.group()
def dlq() -> None:
    """The dead-letter list of cluster mode: batches that kept failing, with their reasons."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def dlq_list(as_json: bool) -> None:
    """Show dead letters (needs REDIS_URL)."""
    _require_redis_url("`ernte dlq`")
    from harvester.store.dead_letters import entries as dead_letters

    with _clear_errors():
        entries = dead_letters()
    if as_json:
        _print_json(entries)
        return
    table = Table("id", "task", "attempts", "error", "at")
    for e in entries:
        table.add_row(
            str(e.get("id")),
            str(e.get("task")),
            str(e.get("attempts", "")),
            escape(str(e.get("error", ""))),
            str(e.get("at", "")),
        )
    console.print(table)
    click.echo(f"{len(entries)} dead letters")


@dlq.command("replay")
@click.argument("ids", nargs=-1)
def dlq_replay(ids: tuple[str, ...]) -> None:
    """Re-enqueue dead letters (all, or the given ids)."""
    _require_redis_url("`ernte dlq`")
    from harvester.cluster.runs import replay_dead_letters

    with _clear_errors():
        for line in replay_dead_letters(list(ids) or None):
            click.echo(line)


@dlq.command("discard")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Discard every dead letter.")
def dlq_discard(ids: tuple[str, ...], everything: bool) -> None:
    """Remove dead letters without running them (the given ids, or --all)."""
    _require_redis_url("`ernte dlq`")
    from harvester.cluster.runs import discard_dead_letters

    if bool(ids) == everything:
        raise click.UsageError("give the ids of the dead letters to discard, or --all")
    with _clear_errors():
        for line in discard_dead_letters(list(ids) or None):
            click.echo(line)


@main.command()
@click.option(
    "--port",
    default=9808,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port for /metrics.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
def metrics(port: int, host: str) -> None:
    """Serve Prometheus metrics of the cluster (needs REDIS_URL) until interrupted."""

    from harvester.cluster.metrics import serve
    from harvester.cluster.worker import require_redis
    from harvester.store.cluster_store import cluster

    require_redis()
    with _clear_errors():  # unreachable, or a wrong password: one line, before serving
        cluster().client.ping()
    try:
        serve(cluster().client, port, host)
    except OSError as exc:
        click.echo(f"error: cannot serve metrics on {host}:{port}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    click.echo(f"serving metrics on http://{host}:{port}/metrics")
    while True:
        time.sleep(3600)


@main.group()
def kibana() -> None:
    """Kibana saved objects."""


@kibana.command("setup")
def kibana_setup() -> None:
    """Import the Kibana saved objects (data view, saved search, dashboard) into KIBANA_URL."""
    with _clear_errors():
        count = services.import_kibana_objects(_settings())
    click.echo(f"imported {count} saved objects into Kibana")


# -- configuration files ----------------------------------------------------------------------


def _config_files() -> dict[str, Any]:
    """Each configuration file ernte reads, with the file in use and where it comes from."""
    from harvester.config_files import SHIPPED, config_file, packaged_file, part_list_file
    from indexer.resources import INDEX_TEMPLATE

    settings = _settings()
    used: dict[str, Any] = {}
    for name in SHIPPED:
        path = config_file(name, settings.config_dir)
        if name == "sources.yaml":
            path = settings.sources_file
        elif name == "german/compound_parts_de.txt":
            path = part_list_file(settings.data_dir, settings.config_dir)
        origin = "package" if path == packaged_file(name) else "override"
        if name == INDEX_TEMPLATE and origin == "override":
            # ernte installs the template it builds (with the stop list in use); a copy in the
            # config directory is for a manual PUT, never read (config/README.md)
            origin = "copy, not installed (ernte installs the template it builds)"
        used[name] = {"path": str(path), "origin": origin}
    return used


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def config(ctx: click.Context, as_json: bool) -> None:
    """List the configuration files in use: config directory ($ERNTE_CONFIG_DIR or ./config)
    over the packaged defaults, file by file."""
    if ctx.invoked_subcommand is not None:
        return
    used = _config_files()
    if as_json:
        _print_json({"config_dir": str(_settings().config_dir), "files": used})
        return
    click.echo(f"config directory: {_settings().config_dir} (a file there wins over the package)")
    for name, entry in used.items():
        click.echo(f"{name:<50} {entry['origin']:<8} {entry['path']}")


@config.command("show")
@click.argument("name")
@click.option(
    "--default",
    "packaged",
    is_flag=True,
    help="Print the packaged default, not the file in use (to start your own copy).",
)
def config_show(name: str, packaged: bool) -> None:
    """Print the configuration file NAME in use (e.g. sources.yaml), to copy and edit."""
    from harvester.config_files import packaged_file

    used = _config_files()
    if name not in used:
        click.echo(
            f"error: unknown configuration file {name!r} (known: {', '.join(used)})", err=True
        )
        sys.exit(1)
    path = str(packaged_file(name)) if packaged else used[name]["path"]
    if _is_standard_output(path):
        if os.stat(path).st_size == 0:
            # `ernte config show sources.yaml > config/sources.yaml`: the shell has emptied
            # the file before ernte ran, and that empty file is now the one in use.
            problem = (
                "which the shell emptied before ernte read it; remove it and run "
                f"`ernte config show --default {name} > {shlex.quote(path)}`"
            )
        else:  # `>>`: the file would hold its own text twice
            problem = "so its text would be appended to itself; nothing was written"
        click.echo(f"error: the output is {path} itself, {problem}", err=True)
        sys.exit(1)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:  # ERNTE_SOURCES_FILE missing, a directory, ...
        click.echo(f"error: cannot read {name} at {path}: {exc}", err=True)
        sys.exit(1)
    sys.stdout.write(text)


def _is_standard_output(path: str) -> bool:
    """Whether standard output is redirected into the file at `path`."""
    try:
        out, target = os.fstat(sys.stdout.fileno()), os.stat(path)
    except (OSError, ValueError, io.UnsupportedOperation):  # no such file; no real stdout
        return False
    return (out.st_dev, out.st_ino) == (target.st_dev, target.st_ino)


if __name__ == "__main__":
    main()
