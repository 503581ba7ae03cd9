"""`ernte check [SOURCE] [--repair]`: archive, state and index verified against each other.

- The sources file reads, and each schedule in it is a cron expression.
- The state file (embedded mode) and every archive pass SQLite's integrity check.
- Every archive holds at least what the state says was archived (identifiers, sequence
  numbers): less means the file was deleted, emptied or replaced.
- The index holds exactly the live records of the archives: no live record missing, nothing
  that the archive does not hold live (deleted since, or from nowhere).

`--repair` re-indexes the live records the index lacks (from the archive, no server contact)
and removes the documents it should not hold. A lost or damaged archive cannot be repaired
from here: the way out is printed (`ernte harvest SOURCE --full`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harvester.run import services
from harvester.run.pipeline import check_crosswalk
from harvester.run.progress import PeriodicLog
from harvester.settings import Settings
from harvester.sources import SourceError, load_sources, scheduled_sources, source_of_archive
from harvester.store.archive import (
    LostArchive,
    RawArchive,
    archive_path,
    archives_of,
    damaged_remedy,
)
from harvester.store.files import StorageError
from harvester.store.locks import index_write_lock
from harvester.store.state import HarvestState, SQLiteStateStore, archived_by
from indexer.backend import IndexBackend
from indexer.search_model import SearchRequest

log = logging.getLogger(__name__)

PAGE = 5000


@dataclass(slots=True)
class CheckReport:
    """What `check` found: lines that are fine, problems, and what a repair did."""

    ok: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def lost_archives(settings: Settings, source: str | None = None) -> list[LostArchive]:
    """The archives (of `source`, or all) that hold fewer identifiers or a lower sequence
    number than the harvest state recorded as archived, or are missing: the check of
    `ernte index rebuild` and `ernte index SOURCE` before they index anything (a count, not a
    read of every record as `ernte check` does)."""
    states = services.state_store(settings, readonly=True).all()
    lost = []
    wanted = archived_by(s for s in states if source is None or s.source == source)
    for (src, prefix), archived in wanted.items():
        path = archive_path(settings.archive_dir, src, prefix)
        held: tuple[int, int] | None = None
        if path.exists():
            with RawArchive(path, readonly=True) as archive:
                held = (archive.count_identifiers(), archive.last_seq())
        found = LostArchive.compared(src, prefix, path, held, archived)
        if found is not None:
            lost.append(found)
    return lost


def _states(settings: Settings, report: CheckReport) -> list[HarvestState]:
    store = services.state_store(settings, readonly=True)
    if isinstance(store, SQLiteStateStore):
        try:
            problems = store.check()
            states = store.all()
        except StorageError as exc:
            report.problems.append(str(exc))
            return []
        if problems:
            report.problems.append(
                f"harvest state {settings.state_file} fails SQLite's integrity check: "
                + "; ".join(problems[:3])
            )
        else:
            report.ok.append(f"harvest state {settings.state_file}: {len(states)} harvests, sound")
        return states
    return store.all()


def _sources_file(settings: Settings, report: CheckReport) -> None:
    """The sources file reads (no repeated key, values of the right kind), every schedule is a
    cron expression and every crosswalk exists: otherwise `ernte beat` refuses to start, which an operator may find
    out only when the scheduled harvests are due."""
    path = settings.sources_file
    try:
        sources = scheduled_sources(path)
    except SourceError as exc:
        report.problems.append(str(exc))
        return
    for source in sources.values():
        try:
            check_crosswalk(source)
        except SourceError as exc:
            report.problems.append(f"{path}: {exc}")
            return
    scheduled = sum(1 for s in sources.values() if s.schedule)
    report.ok.append(f"sources file {path}: {len(sources)} source(s), {scheduled} scheduled")


def _live_in_archive(archive: RawArchive, progress: PeriodicLog) -> set[str]:
    live = set()
    for raw in archive.iter_latest():
        progress.add(1)
        if not raw.deleted:
            live.add(raw.identifier)
    return live


def _indexed(backend: IndexBackend) -> Iterator[tuple[str, str]]:
    """(identifier, source) of every document in the index."""
    cursor = None
    while True:
        page = backend.search(
            SearchRequest(query="", limit=PAGE, highlight=False, search_after=cursor)
        )
        for hit in page.hits:
            yield hit.id, hit.source
        cursor = page.next_search_after
        if not page.hits or cursor is None:
            return


def run_check(
    settings: Settings, source: str | None, repair: bool, *, index: bool = True
) -> CheckReport:
    """Check (and with `repair`, fix the index of) one source or all; without `index`, only
    the state and the archives."""
    report = CheckReport()
    _sources_file(settings, report)
    states = _states(settings, report)
    expected = archived_by(s for s in states if source is None or s.source == source)

    live: dict[str, set[str]] = defaultdict(set)  # source -> live identifiers
    held: set[str] = set()  # quarantined: not normalized or refused by the index
    where: dict[str, tuple[str, Path]] = {}  # identifier -> (prefix, archive path)
    # Sources with an archive (of any prefix) that is lost or damaged: their documents that no
    # sound archive holds live cannot be judged (a lost prefix's records are not extra).
    unsound: set[str] = set()
    seen = set()
    listed = archives_of(settings.archive_dir, source)
    if source and not listed and not expected:
        # A misspelt source is an error, not "ok" about nothing (a source whose harvest state
        # exists but whose archive is gone is a problem the check reports).
        raise SourceError(f"no archive and no harvest of source {source!r}")
    for src, prefix, path in listed:
        seen.add((src, prefix))
        try:
            with RawArchive(path, readonly=True) as archive:
                problems = archive.integrity_problems()
                records, seq = archive.count_identifiers(), archive.last_seq()
                reading = PeriodicLog("check: reading the archive", records, source=src)
                ids = _live_in_archive(archive, reading) if not problems else set()
                held |= {q.identifier for q in archive.quarantined() if q.identifier in ids}
        except StorageError as exc:
            report.problems.append(str(exc))
            unsound.add(src)
            continue
        if problems:
            unsound.add(src)
            report.problems.append(
                f"archive {path} fails SQLite's integrity check ({'; '.join(problems[:3])}); "
                f"{damaged_remedy(src, prefix)}"
            )
            continue
        lost = LostArchive.compared(
            src, prefix, path, (records, seq), expected.get((src, prefix), (0, 0))
        )
        if lost is not None:
            report.problems.append(lost.problem("its records are not checked"))
            unsound.add(src)
            continue
        report.ok.append(f"archive {path}: {records} records ({len(ids)} live), sound")
        live[src] |= ids
        for identifier in ids:
            where[identifier] = (prefix, path)
    for (src, prefix), archived in expected.items():
        if (src, prefix) in seen:
            continue
        path = archive_path(settings.archive_dir, src, prefix)
        lost = LostArchive.compared(src, prefix, path, None, archived)
        if lost is not None:
            report.problems.append(lost.problem("its records are not checked"))
            unsound.add(src)

    if not index:
        return report
    if settings.embedded and not settings.index_dir.exists():
        if any(live.values()):
            report.problems.append(
                f"no index at {settings.index_dir}, but the archives hold records"
            )
            if repair:
                _repair(settings, report, live, where, set(), source, held)
        return report
    backend = services.index_backend(settings, create=False)
    try:
        extra: set[str] = set()
        present: set[str] = set()
        unchecked = 0  # documents of a source whose archive is lost or damaged (a problem above)
        reading = PeriodicLog("check: reading the index", int(backend.count()))
        for identifier, src in _indexed(backend):
            reading.add(1)
            if source is not None and src != source:
                continue
            present.add(identifier)
            if identifier in live.get(src, ()):
                continue
            if src in unsound:
                unchecked += 1  # perhaps a record of the lost archive: not judged
            else:
                extra.add(identifier)  # deleted since, or of a source with no archive at all
    finally:
        backend.close()
    # A quarantined record is not expected in the index: `ernte quarantine` lists them with
    # their reasons.
    wanted = (set().union(*live.values()) if live else set()) - held
    missing = wanted - present
    if held:
        report.ok.append(f"index: {len(held)} live archived records quarantined, not expected")
    if missing or extra:
        examples = ", ".join(sorted(missing)[:3] + sorted(extra)[:3])
        report.problems.append(
            f"index: {len(missing)} live archived records missing, {len(extra)} documents it "
            f"should not hold (such as {examples})"
            + ("" if repair else " (`ernte check --repair` fixes it)")
        )
        if repair:
            _repair(settings, report, live, where, extra, source, held)
    else:
        report.ok.append(
            f"index: {len(present) - unchecked} documents, exactly the live records of the sound "
            f"archives; {unchecked} documents of the archives with a problem above not checked"
            if unchecked
            else f"index: {len(present)} documents, exactly the live archived records"
        )
    return report


def _repair(
    settings: Settings,
    report: CheckReport,
    live: dict[str, set[str]],
    where: dict[str, tuple[str, Path]],
    extra: set[str],
    source: str | None,
    held: set[str],
) -> None:
    from harvester.run.pipeline import process_batch

    configured = load_sources(settings.sources_file)
    with index_write_lock(settings):
        backend = services.index_backend(settings)
        try:
            present = {i for i, _ in _indexed(backend)}
            indexed = 0
            for src, ids in live.items():
                todo = sorted(ids - present - held)
                by_archive: dict[tuple[str, Path], list[str]] = defaultdict(list)
                for identifier in todo:
                    by_archive[where[identifier]].append(identifier)
                repairing = PeriodicLog("check: re-indexing", len(todo), source=src)
                for (prefix, path), identifiers in by_archive.items():
                    with RawArchive(path) as archive:
                        for start in range(0, len(identifiers), 500):
                            batch = [archive.get(i) for i in identifiers[start : start + 500]]
                            raws = [r for r in batch if r is not None]
                            counts = process_batch(
                                raws, source_of_archive(configured, src, prefix), archive, backend
                            )
                            indexed += counts.indexed
                            repairing.add(len(raws))
            if extra:
                backend.delete(sorted(extra))
        finally:
            backend.close()
    report.repaired.append(f"re-indexed {indexed} records, removed {len(extra)} documents")
