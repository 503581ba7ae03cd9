"""The embedded index commits every few seconds, not per page (issue 14); it records with each
commit how far into the archive it is, and the next harvest catches up on the rest.

A harvest process is SIGKILLed after it archived and checkpointed pages but before any index
commit: the index holds none of them, the archive all of them, and the next run ends with
exactly the server's live records in the index although the server is not asked for those
pages again.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harvester.demo.generate import generate_records
from harvester.demo.provider import serve
from harvester.store.archive import RawArchive, archives_of
from harvester.store.state import SQLiteStateStore
from indexer.embedded.backend import EmbeddedBackend
from indexer.embedded.writer import POSITIONS_FILE
from tests.conftest import CLIResult, indexed_ids, kill_harvest_at_page

RECORDS = list(generate_records(400, seed=14, deleted_share=0.05))
LIVE = {r.identifier for r in RECORDS if not r.deleted}


def _archived_live(data_dir: Path) -> tuple[set[str], int]:
    [(_, _, path)] = archives_of(data_dir / "archive")
    with RawArchive(path) as archive:
        live = {r.identifier for r in archive.iter_latest() if not r.deleted}
        return live, archive.last_seq()


def _processes_using(data_dir: Path, wait: float = 5.0) -> list[int]:
    """Pids of live processes started with ERNTE_DATA_DIR=data_dir (after `wait` seconds
    for dying ones to go): the harvest's worker must die with it."""
    marker = f"ERNTE_DATA_DIR={data_dir}".encode()
    deadline = time.monotonic() + wait
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().split(") ")[-1][:1]
            except OSError:
                continue
            if marker in environ and state != "Z":
                found.append(int(entry.name))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _positions(data_dir: Path) -> dict[str, int]:
    return dict(json.loads((data_dir / "index" / POSITIONS_FILE).read_text()))


def test_sigkill_between_archive_write_and_index_commit_is_caught_up(
    ernte: Callable[..., CLIResult],
    data_dir: Path,
    source: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ERNTE_PAGE_DELAY", "0.1")
    monkeypatch.setenv("ERNTE_INDEX_COMMIT_INTERVAL", "3600")  # no commit before the kill
    with serve(RECORDS, batch_size=20) as url:
        kill_harvest_at_page(data_dir / "state.sqlite", 5, source(url, "dim"))
        assert _processes_using(data_dir) == [], "a worker process outlived the killed harvest"
        killed = SQLiteStateStore(data_dir / "state.sqlite").all()[0]
        archived, last_seq = _archived_live(data_dir)
        assert killed.state == "running" and killed.next_page >= 5
        assert len(archived) >= 5 * 20 * 0.9 and last_seq > 0
        # Archived and checkpointed, but never committed to the index:
        assert indexed_ids(data_dir / "index") == []
        assert _positions(data_dir) == {}

        monkeypatch.setenv("ERNTE_INDEX_COMMIT_INTERVAL", "5")
        resumed = ernte("harvest", "t")
    assert resumed.exit_code == 0, resumed.stderr
    state = SQLiteStateStore(data_dir / "state.sqlite").all()[0]
    assert state.state == "idle"
    indexed = indexed_ids(data_dir / "index")
    assert len(indexed) == len(set(indexed)), "a record is in the index twice"
    assert set(indexed) == LIVE
    [(key, prefix, _)] = archives_of(data_dir / "archive")
    _, last_seq = _archived_live(data_dir)
    assert _positions(data_dir) == {f"{key}/{prefix}": last_seq}


def test_a_lost_index_is_refilled_from_the_archive_by_the_next_harvest(
    ernte: Callable[..., CLIResult], data_dir: Path, source: Callable[..., str]
) -> None:
    with serve(RECORDS, batch_size=50) as url:
        name = source(url, "dim")
        assert ernte("harvest", name).exit_code == 0
        assert set(indexed_ids(data_dir / "index")) == LIVE
        backend = EmbeddedBackend(data_dir / "index")
        backend.create(recreate=True)  # an empty index, as after a lost or new index dir
        backend.close()
        again = ernte("harvest", name)  # incremental: the server sends (almost) nothing
    assert again.exit_code == 0, again.stderr
    assert set(indexed_ids(data_dir / "index")) == LIVE


def test_rebuild_records_each_archives_position(
    ernte: Callable[..., CLIResult], data_dir: Path, source: Callable[..., str]
) -> None:
    with serve(RECORDS, batch_size=50) as url:
        assert ernte("harvest", source(url, "dim"), "--no-index").exit_code == 0
    rebuilt = ernte("index", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    [(key, prefix, _)] = archives_of(data_dir / "archive")
    _, last_seq = _archived_live(data_dir)
    assert _positions(data_dir) == {f"{key}/{prefix}": last_seq}
    assert set(indexed_ids(data_dir / "index")) == LIVE


def test_index_source_records_its_archives_position(
    ernte: Callable[..., CLIResult], data_dir: Path, source: Callable[..., str]
) -> None:
    """`ernte index SOURCE` notes how far into the archive the index now holds, so the next
    harvest does not index the whole archive again as a catch-up."""
    with serve(RECORDS, batch_size=50) as url:
        name = source(url, "dim")
        assert ernte("harvest", name, "--no-index").exit_code == 0
        indexed = ernte("index", name)
        assert indexed.exit_code == 0, indexed.stderr
        [(key, prefix, _)] = archives_of(data_dir / "archive")
        _, last_seq = _archived_live(data_dir)
        assert _positions(data_dir) == {f"{key}/{prefix}": last_seq}
        assert set(indexed_ids(data_dir / "index")) == LIVE
        again = ernte("harvest", name)
    assert again.exit_code == 0, again.stderr
    assert "catching up" not in again.stderr + again.output


def test_deferred_writes_replace_by_id_and_refuse_older_copies(tmp_path: Path) -> None:
    """Before a commit the searcher cannot see the writes; the backend still must."""
    backend = EmbeddedBackend(tmp_path / "index")
    backend.create()
    backend.defer_commits()
    doc = {"id": "x", "datestamp": "2024-01-01T00:00:00Z", "title": "Stadt"}
    assert backend.upsert([doc]).written == 1
    newer = {**doc, "datestamp": "2025-01-01T00:00:00Z", "title": "Land"}
    assert backend.upsert([newer]).written == 1
    older = backend.upsert([{**doc, "datestamp": "2023-01-01T00:00:00Z"}])
    assert (older.written, older.skipped_stale) == (0, 1)
    assert backend.count() == 0  # nothing committed yet
    backend.commit({"t/dim": 7})
    assert backend.count() == 1
    assert backend.archive_positions() == {"t/dim": 7}
    assert backend.delete(["x"], {"x": "2026-01-01T00:00:00Z"}).deleted == 1
    assert backend.upsert([doc]).written == 1  # deleted since the commit: written again
    backend.close()
    assert backend.count() == 1


def test_the_normalizing_workers_yield_the_cpu_to_interactive_work() -> None:
    """A harvest or rebuild on the host of `ernte serve` must not starve its searches: the
    worker processes run at a lower priority than the command."""
    from harvester.run.pipeline import WORKER_NICENESS, worker_pool

    if os.nice(0) >= 19:  # (in-process harvests of earlier tests leave this process at 10)
        pytest.skip(f"the tests run at niceness {os.nice(0)}: a worker cannot be seen lower")
    pool = worker_pool(1)
    try:
        niceness = pool.submit(os.nice, 0).result(timeout=120)
    finally:
        pool.shutdown()
    assert niceness == min(19, os.nice(0) + WORKER_NICENESS)


def test_the_normalizing_workers_outlive_a_stop_signal_sent_to_the_whole_command(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C in a terminal and `systemctl stop` signal every process of the command. A worker
    died of SIGTERM, or of Ctrl-C while still importing (with a KeyboardInterrupt traceback),
    which broke the pool, so the stop was recorded as a failed run (found in review). The
    workers leave both signals to the command, from their first instruction on."""
    from harvester.run.pipeline import worker_pool

    pool = worker_pool(1)
    try:
        [pid] = list(pool._processes)  # the worker, signalled while it still starts up
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
            os.kill(pid, signum)
        assert pool.submit(os.getpid).result(timeout=120) == pid
        for signum in (signal.SIGTERM, signal.SIGINT):
            os.kill(pid, signum)
        assert pool.submit(os.getpid).result(timeout=120) == pid
    finally:
        pool.shutdown()
    assert "KeyboardInterrupt" not in capfd.readouterr().err


def test_a_catch_up_commits_step_by_step_so_a_stopped_one_keeps_its_progress(
    ernte: Callable[..., CLIResult],
    data_dir: Path,
    source: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A catch-up recorded its position only at its end: stopped after an hour, the next
    run began it again from the start (found in review)."""
    from harvester.run import pipeline

    monkeypatch.setenv("ERNTE_PAGE_DELAY", "0.1")
    monkeypatch.setenv("ERNTE_INDEX_COMMIT_INTERVAL", "3600")  # no commit before the kill
    with serve(RECORDS, batch_size=20) as url:
        kill_harvest_at_page(data_dir / "state.sqlite", 8, source(url, "dim"))
        _, last_seq = _archived_live(data_dir)
        assert _positions(data_dir) == {} and last_seq >= 8 * 20
        monkeypatch.setattr(pipeline, "CATCH_UP_STEP", 50)
        committed: list[dict[str, int]] = []
        commit = EmbeddedBackend.commit

        def recording_commit(
            self: EmbeddedBackend, positions: dict[str, int] | None = None
        ) -> None:
            commit(self, positions)
            if positions:
                committed.append(dict(positions))

        monkeypatch.setattr(EmbeddedBackend, "commit", recording_commit)
        assert ernte("harvest", source(url, "dim")).exit_code == 0
    steps = [next(iter(p.values())) for p in committed]
    assert steps[: last_seq // 50] == [50 * n for n in range(1, last_seq // 50 + 1)], steps
    assert set(indexed_ids(data_dir / "index")) == LIVE
