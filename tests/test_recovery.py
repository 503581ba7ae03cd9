"""Faults as operators meet them, one test per row of issue 13, each ending with exactly the
provider's live records in the archive and in the index.

Ctrl-C and SIGTERM are sent to a real `ernte harvest` process; full disks are small tmpfs
mounts (skipped, with the reason, where mounting is not allowed); damaged files are damaged
on disk. The provider is the real demo OAI-PMH server on loopback.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from harvester.demo.generate import generate_records
from harvester.demo.provider import serve
from harvester.normalize.normalizer import normalize
from harvester.run import progress
from harvester.run.document import build_document
from harvester.store.archive import RawArchive, archives_of
from harvester.store.state import SQLiteStateStore
from indexer.backend import SearchDocument
from indexer.embedded.backend import EmbeddedBackend
from tests.conftest import (
    ERNTE,
    PROJECT_ROOT,
    CLIResult,
    assert_exactly,
    harvest_process,
    indexed_ids,
    wait_for_page,
    wait_until,
)
from tests.faults import Fault, fault_proxy

Ernte = Callable[..., CLIResult]

RECORDS = list(generate_records(600, seed=11, deleted_share=0.04))
LIVE = {r.identifier for r in RECORDS if not r.deleted}
ALL = {r.identifier for r in RECORDS}
BATCH = 30


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with serve(RECORDS, batch_size=BATCH) as url:
        yield url


def assert_exact(data_dir: Path) -> None:
    """The archive holds every record once, the index exactly the live ones."""
    assert_exactly(data_dir, ALL, LIVE)


def one_line_error(result: CLIResult) -> str:
    """The failure is one `error:` line on stderr, with no traceback."""
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr + result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def ernte_process(*args: str) -> CLIResult:
    """`ernte ARGS` as its own process, as an operator runs it (a failed index writer's lock
    goes with its process)."""
    done = subprocess.run(
        [str(ERNTE), *args],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return CLIResult(done.returncode, done.stdout, done.stderr)


def state_of(data_dir: Path) -> dict[str, object]:
    [state] = SQLiteStateStore(data_dir / "state.sqlite").all()
    return state.to_dict()


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at `path` (a full volume on demand); skips where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'not permitted'}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


# -- Ctrl-C and SIGTERM ---------------------------------------------------------------------


def test_a_harvest_yields_the_cpu_to_searches_on_its_host(
    data_dir: Path, source: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ernte harvest` is batch work: it runs ERNTE_BATCH_NICENESS (10) below the searches
    of its host, and its normalizing workers lower still, so `ernte serve` stays quick while
    a harvest writes (bench/results/index.txt)."""
    monkeypatch.setenv("ERNTE_PAGE_DELAY", "0.1")
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    with serve(RECORDS, batch_size=BATCH) as url:
        process = harvest_process(source(url, "dim"))
        try:
            wait_for_page(data_dir / "state.sqlite", 2, process)
            assert os.getpriority(os.PRIO_PROCESS, process.pid) == max(mine, 10)
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
            levels = [os.getpriority(os.PRIO_PROCESS, int(c)) for c in children.split()]
            assert all(level >= max(mine, 10) for level in levels), levels
            # the normalizing worker (one on two cores; none on one), lower still
            assert os.cpu_count() == 1 or max(levels) == min(19, max(mine, 10) + 10), levels
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def test_ctrl_c_then_sigterm_mid_harvest_then_resume_gives_exactly_the_live_records(
    ernte: Ernte, data_dir: Path, source: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped three ways: Ctrl-C in a terminal and `systemctl stop` signal the command's whole
    process group, its normalizing worker too (which died of SIGTERM, so the stop was recorded
    as a failed run: found in review); `docker stop` signals the main process only."""
    monkeypatch.setenv("ERNTE_PAGE_DELAY", "0.1")  # slow enough to be stopped mid-way
    state_file = data_dir / "state.sqlite"
    ctrl_c, systemctl_stop, docker_stop = (
        (signal.SIGINT, True, 130, 3),
        (signal.SIGTERM, True, 143, 8),
        (signal.SIGTERM, False, 143, 13),
    )
    with serve(RECORDS, batch_size=BATCH) as url:
        name = source(url, "dim")
        for signum, whole_group, code, at_least in (ctrl_c, systemctl_stop, docker_stop):
            process = harvest_process(name, stderr=subprocess.PIPE)
            try:
                wait_for_page(state_file, at_least, process)
                if whole_group:
                    os.killpg(process.pid, signum)
                    time.sleep(0.05)  # an impatient operator signals again while it stops
                    with suppress(ProcessLookupError):
                        os.killpg(process.pid, signum)
                else:
                    process.send_signal(signum)
                _, stderr = process.communicate(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
            assert process.returncode == code, stderr
            message = stderr.decode()
            assert "Traceback" not in message and "Exception ignored" not in message, message
            assert "interrupted at page " in message
            assert "run `ernte harvest t` to continue" in message
            stopped = state_of(data_dir)
            assert stopped["state"] == "interrupted" and stopped["token"]
            assert stopped["watermark"] is None
            status = json.loads(ernte("status", "--json").output)["harvests"][0]
            assert status["state"] == "interrupted"

        resumed = ernte("harvest", "t")
    assert resumed.exit_code == 0, resumed.stderr
    done = state_of(data_dir)
    assert done["state"] == "idle" and done["watermark"]
    run = done["run"]
    assert isinstance(run, dict)
    # Pages fetched again after a stop still count their versions as new, once.
    assert run["added"] == len(ALL) and run["records"] >= len(ALL)
    assert f"({len(ALL)} new versions" in resumed.output
    assert_exact(data_dir)


def test_a_page_whose_storing_failed_is_fetched_again_and_its_next_token_accepted(
    ernte: Ernte,
    data_dir: Path,
    provider: str,
    source: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cause of the stuck runs: the loop guard must not hold the token of a page that was
    never checkpointed. An index write in mid-list fails (a full index volume); the index
    commits after every page here, so that the failure comes while pages remain."""
    monkeypatch.setenv("ERNTE_INDEX_COMMIT_INTERVAL", "0")
    with tmpfs(data_dir / "index", "400k"):
        failed = ernte_process("harvest", source(provider, "dim"))
        line = one_line_error(failed)
        assert "no space left" in line and str(data_dir / "index") in line
        stuck = state_of(data_dir)
        assert stuck["state"] == "failed" and stuck["token"]
        recent = stuck["recent_tokens"]
        assert isinstance(recent, list) and recent[-1] == stuck["token"]
        remount(data_dir / "index", "size=64m")  # space freed
        for _ in range(2):  # each later run ends, and nothing is asked for a second time
            again = ernte_process("harvest", "t")
            assert again.exit_code == 0, again.stderr
            assert "repeated resumption token" not in again.stderr
        assert_exact(data_dir)


def _command_process(*args: str, **options: Any) -> subprocess.Popen[bytes]:
    """`ernte ARGS` in a process group of its own (as from a terminal), its stderr piped;
    `options` go to Popen."""
    return subprocess.Popen(
        [str(ERNTE), *args],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **options,
    )


def test_a_rebuild_stopped_by_ctrl_c_or_sigterm_says_so_and_keeps_the_live_index(
    ernte: Ernte, data_dir: Path, source: Callable[..., str]
) -> None:
    """It said `Aborted!` with exit 1 on Ctrl-C and nothing on SIGTERM, and left its partial
    new index behind (found in review)."""
    many = list(generate_records(4000, seed=12))
    live = {r.identifier for r in many if not r.deleted}
    with serve(many, batch_size=200) as url:
        assert ernte("harvest", source(url, "dim")).exit_code == 0
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        process = _command_process("index", "rebuild")
        try:
            # once documents reach the new index: past the start, well before the end
            wait_until(lambda: (data_dir / "index.rebuild" / "meta.json").exists(), 60, "a rebuild")
            time.sleep(0.3)
            os.killpg(process.pid, signum)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        message = stderr.decode()
        assert process.returncode == code, message
        assert "Traceback" not in message and "Aborted" not in message
        assert "index rebuild interrupted; the live index is unchanged" in message
        assert not (data_dir / "index.rebuild").exists()
        assert set(indexed_ids(data_dir / "index")) == live
    assert ernte("index", "rebuild").exit_code == 0
    assert set(indexed_ids(data_dir / "index")) == live


# -- full disks -----------------------------------------------------------------------------


def test_ctrl_c_in_ernte_index_is_one_line_exit_130_and_the_next_run_completes(
    ernte: Ernte, data_dir: Path, source: Callable[..., str]
) -> None:
    """Every command but the harvest and the rebuild ended a Ctrl-C with click's `Aborted!`
    and exit 1, which a script cannot tell from a failure (found in review)."""
    many = list(generate_records(6000, seed=13))
    live = {r.identifier for r in many if not r.deleted}
    with serve(many, batch_size=500) as url:
        assert ernte("harvest", source(url, "dim"), "--no-index").exit_code == 0
    assert not (data_dir / "index" / "meta.json").exists()
    process = _command_process("index", "t")
    try:
        wait_until(lambda: (data_dir / "index" / "meta.json").exists(), 60, "the index")
        time.sleep(0.3)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    message = stderr.decode()
    assert process.returncode == 130, message
    assert "Traceback" not in message and "Aborted" not in message
    assert message.strip().splitlines()[-1] == "`ernte index` interrupted (Ctrl-C)"
    assert ernte_process("index", "t").exit_code == 0
    assert set(indexed_ids(data_dir / "index")) == live


def test_a_rebuild_on_a_full_disk_is_one_line_and_removes_its_partial_index(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    """It printed two chained tracebacks and left `index.rebuild/` on the full disk (found in
    review); the live index was and is untouched."""
    with tmpfs(data_dir, "16m"):
        assert ernte_process("harvest", source(provider, "dim")).exit_code == 0
        free = os.statvfs(data_dir).f_bavail * os.statvfs(data_dir).f_frsize
        filler = data_dir / "filler"
        filler.write_bytes(b"\0" * max(0, free - 96 * 1024))
        failed = ernte_process("index", "rebuild")
        line = one_line_error(failed)
        assert "no space left" in line and "index.rebuild" in line, line
        assert not (data_dir / "index.rebuild").exists()
        assert_exact(data_dir)
        filler.unlink()
        assert ernte_process("index", "rebuild").exit_code == 0
        assert_exact(data_dir)


def test_index_volume_full_then_freed_ends_exact(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    with tmpfs(data_dir / "index", "400k"):
        failed = ernte_process("harvest", source(provider, "dim"))
        line = one_line_error(failed)
        assert "free space on" in line
        status = json.loads(ernte("status", "--json").output)["harvests"][0]
        assert status["state"] == "failed"  # not `running`
        retried = ernte_process("harvest", "t")  # still full: the same clear line, nothing lost
        assert "no space left" in one_line_error(retried)
        remount(data_dir / "index", "size=64m")
        resumed = ernte_process("harvest", "t")
        assert resumed.exit_code == 0, resumed.stderr
        assert_exact(data_dir)


def test_an_index_that_cannot_even_be_created_on_a_full_disk_says_the_disk_is_full(
    data_dir: Path,
) -> None:
    """tantivy words a full disk as an IO error; it was taken for a damaged index, and the
    advice was the rebuild that had just failed (found in review)."""
    from harvester.run.guarded_index import GuardedIndex
    from harvester.store.files import StorageFull

    with tmpfs(data_dir / "small", "200k") as small:
        free = os.statvfs(small).f_bavail * os.statvfs(small).f_frsize
        (small / "filler").write_bytes(b"\0" * max(0, free - 8 * 1024))
        index = small / "index"
        with pytest.raises(StorageFull, match="no space left"):
            GuardedIndex(EmbeddedBackend(index), index).create()


def test_data_disk_full_then_freed_ends_exact(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    with tmpfs(data_dir, "1m"):
        failed = ernte_process("harvest", source(provider, "dim"))
        line = one_line_error(failed)
        assert "no space left" in line and str(data_dir) in line
        status = json.loads(ernte("status", "--json").output)["harvests"][0]
        assert status["state"] in ("failed", "died")  # never `running` with nobody running it
        retried = ernte_process("harvest", "t")  # still full: the same clear line
        assert "no space left" in one_line_error(retried)
        remount(data_dir, "size=64m")
        resumed = ernte_process("harvest", "t")
        assert resumed.exit_code == 0, resumed.stderr
        assert_exact(data_dir)


# -- damaged files --------------------------------------------------------------------------


def _damage(path: Path) -> None:
    """Overwrite the file's pages after the first with garbage (a bad sector, a bad copy)."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(4096)
        handle.write(os.urandom(max(size - 4096, 4096)))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_damaged_state_file_is_one_line_naming_it_and_moving_it_aside_recovers(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    assert ernte("harvest", source(provider, "dim")).exit_code == 0
    # A real `ernte harvest` is a process: its state connection is closed when it exits.
    # In-process, an unreferenced connection would be closed by the garbage collector at any
    # later moment, and its WAL checkpoint would write the state back over the damage below.
    gc.collect()
    state_file = data_dir / "state.sqlite"
    state_file.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{state_file}{suffix}").unlink(missing_ok=True)
    for command in (("status",), ("harvest", "t")):
        line = one_line_error(ernte(*command))
        assert str(state_file) in line and "damaged" in line and "move it aside" in line
    state_file.rename(data_dir / "state.sqlite.damaged")
    again = ernte("harvest", "t")
    assert again.exit_code == 0, again.stderr
    assert "(0 new versions" in again.output  # a full run that archived nothing twice
    assert_exact(data_dir)


@pytest.mark.parametrize("loss", ["truncated to 0 bytes", "deleted"])
def test_a_lost_archive_stops_the_run_and_full_reharvest_recovers(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str], loss: str
) -> None:
    assert ernte("harvest", source(provider, "dim")).exit_code == 0
    [(_, _, path)] = archives_of(data_dir / "archive")
    if loss == "deleted":
        path.unlink()
    else:
        path.write_bytes(b"")
    line = one_line_error(ernte("harvest", "t"))
    assert str(path) in line and f"{len(ALL)} were archived" in line and "--full" in line
    shown = ernte("show", sorted(LIVE)[0])
    assert shown.exit_code == 1 and str(path) in shown.stderr and "--full" in shown.stderr
    # `ernte index t` said "no archive ...: harvest it first", or indexed 0 records, exit 0
    line = one_line_error(ernte("index", "t"))
    assert str(path) in line and "nothing was indexed" in line and "--full" in line
    checked = ernte("check")
    assert checked.exit_code == 1 and str(path) in checked.output
    # it said "ok: index: N documents, exactly the live archived records" beside the problem
    assert "exactly the live archived records" not in checked.output
    assert f"index: 0 documents, exactly the live records of the sound archives; {len(LIVE)}" in (
        checked.output
    )
    full = ernte("harvest", "t", "--full")
    assert full.exit_code == 0, full.stderr
    assert ernte("check").exit_code == 0
    assert_exact(data_dir)


def test_damaged_archive_is_one_line_everywhere_and_full_reharvest_recovers(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    assert ernte("harvest", source(provider, "dim")).exit_code == 0
    [(_, _, path)] = archives_of(data_dir / "archive")
    _damage(path)
    for command in (("harvest", "t"), ("show", sorted(LIVE)[0]), ("index", "t")):
        line = one_line_error(ernte(*command))
        assert str(path) in line and "--full" in line, command
    checked = ernte("check")
    assert checked.exit_code == 1 and str(path) in checked.output
    full = ernte("harvest", "t", "--full")
    assert full.exit_code == 0, full.stderr
    assert "moved aside" in full.stderr
    assert any(p.name.startswith(f"{path.name}.damaged-") for p in path.parent.iterdir())
    assert_exact(data_dir)


def _damage_meta(index: Path) -> None:
    (index / "meta.json").write_text("{ not json")


def _truncate_segment_file(suffix: str) -> Callable[[Path], None]:
    def damage(index: Path) -> None:
        biggest = max(index.glob(f"*.{suffix}"), key=lambda p: p.stat().st_size)
        with open(biggest, "r+b") as handle:
            handle.truncate(biggest.stat().st_size // 3)

    return damage


def _delete_segment_file(index: Path) -> None:
    next(index.glob("*.term")).unlink()


def test_a_damaged_index_is_one_line_naming_the_rebuild_and_the_rebuild_repairs_it(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    """`ernte search` and `ernte check` printed tantivy's tracebacks, `ernte serve` answered
    500 and a harvest called the index unwritable, with no way out (found in review). Each
    damage in turn, each repaired by the rebuild. The harvest runs in a process of its own:
    this one must not hold the files it then damages mapped (a truncated mapped file is a bus
    error)."""
    assert ernte_process("harvest", source(provider, "dim")).exit_code == 0
    index = data_dir / "index"
    damages = {
        "meta.json": _damage_meta,
        "truncated .idx": _truncate_segment_file("idx"),
        "truncated .store": _truncate_segment_file("store"),
        "missing .term": _delete_segment_file,
    }
    for name, damage in damages.items():
        damage(index)
        for command in (("search", "Stadt", "--limit", "100"), ("check",), ("harvest", "t")):
            result = ernte_process(*command)
            assert "Traceback" not in result.stderr, (name, command, result)
            line = one_line_error(result)
            assert f"the index at {index} is damaged" in line, (name, command, line)
            assert "run `ernte index rebuild`" in line
        rebuilt = ernte_process("index", "rebuild")
        assert rebuilt.exit_code == 0, (name, rebuilt.stderr)
        assert_exact(data_dir)


def test_a_damaged_archive_positions_file_is_caught_up_from_the_archive(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    """The file beside the index that says how far it holds each archive: damaged, every
    harvest stopped with a JSON traceback."""
    assert ernte("harvest", source(provider, "dim")).exit_code == 0
    (data_dir / "index" / "ernte-archive-positions.json").write_text('{"t/dim": 12')
    again = ernte_process("harvest", "t")
    assert again.exit_code == 0, again.stderr
    assert "is damaged" in again.stderr and "Traceback" not in again.stderr
    assert_exact(data_dir)


def test_the_way_out_printed_for_a_bare_url_is_a_command_that_runs(
    ernte: Ernte, data_dir: Path, provider: str
) -> None:
    """A harvest of a base URL is known by its key (`ernte status` shows it): the commands
    that messages print name it so, with its metadata prefix, and they run as printed. They
    said `ernte harvest 127.0.0.1_..._oai --full`, which was an unknown source and harvested
    the default prefix besides."""
    assert ernte("harvest", provider, "--prefix", "dim").exit_code == 0
    [(key, _, path)] = archives_of(data_dir / "archive")
    path.unlink()
    checked = ernte("check")
    assert checked.exit_code == 1
    [printed] = re.findall(r"`(ernte harvest [^`]*)`", checked.output)
    assert shlex.split(printed) == ["ernte", "harvest", key, "--prefix", "dim", "--full"]
    again = ernte(*shlex.split(printed)[1:])
    assert again.exit_code == 0, again.stderr
    assert ernte("check").exit_code == 0
    assert_exact(data_dir)
    assert ernte("sets", key).exit_code == 0  # the key names the source for every command


def test_a_password_in_a_bare_url_is_not_kept_in_the_state(
    ernte: Ernte, data_dir: Path, provider: str
) -> None:
    with_password = provider.replace("http://", "http://harvester:s3cret@", 1)
    assert ernte("harvest", with_password, "--prefix", "dim", "--no-index").exit_code == 0
    kept = [p for p in data_dir.rglob("*") if p.is_file() and b"s3cret" in p.read_bytes()]
    assert kept == []
    [(key, _, _)] = archives_of(data_dir / "archive")
    again = ernte("harvest", key, "--prefix", "dim", "--no-index")
    assert again.exit_code == 1 and "password, which ernte does not keep" in again.stderr
    assert ernte("harvest", with_password, "--prefix", "dim", "--no-index").exit_code == 0
    # A failing request names its URL, as requests built it (user:password@ included): the
    # error kept in the state is masked too.
    with fault_proxy(provider, lambda n: Fault.http_error(500) if n >= 3 else None) as proxy:
        failing = proxy.url.replace("http://", "http://harvester:s3cret@", 1)
        failed = ernte("harvest", failing, "--prefix", "dim", "--no-index")
    assert failed.exit_code == 1
    [error] = [
        s["last_error"]
        for s in json.loads(ernte("status", "--json").output)["harvests"]
        if s["last_error"]
    ]
    assert "harvester:***@" in error
    kept = [p for p in data_dir.rglob("*") if p.is_file() and b"s3cret" in p.read_bytes()]
    assert kept == []


def test_a_source_removed_from_the_sources_file_is_unknown_not_its_old_url(
    ernte: Ernte, provider: str, source: Callable[..., str], tmp_path: Path
) -> None:
    """Every harvest state keeps its base URL; only a bare URL's key may stand for one, or a
    configured name removed from sources.yaml harvested its old URL under another key."""
    assert ernte("harvest", source(provider, "dim"), "--no-index").exit_code == 0
    (tmp_path / "sources.yaml").write_text("sources: {}\n")
    gone = ernte("harvest", "t", "--no-index")
    assert gone.exit_code == 1 and "unknown source 't'" in gone.stderr


def _document(data_dir: Path, identifier: str, **changes: object) -> SearchDocument:
    """The search document of an archived record, with `changes`."""
    [(_, prefix, path)] = archives_of(data_dir / "archive")
    with RawArchive(path) as archive:
        raw = archive.get(identifier)
    assert raw is not None
    return {**build_document(normalize(raw, "t", prefix)), **changes}


# -- ernte check ----------------------------------------------------------------------------


def test_check_finds_what_the_index_lacks_or_should_not_hold_and_repair_fixes_it(
    ernte: Ernte,
    data_dir: Path,
    provider: str,
    source: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ernte("harvest", source(provider, "dim")).exit_code == 0
    healthy = ernte("check", "t")
    assert healthy.exit_code == 0, healthy.output
    assert "exactly the live archived records" in healthy.output
    lost = sorted(LIVE)[:7]
    backend = EmbeddedBackend(data_dir / "index")
    backend.delete(lost)
    backend.upsert([_document(data_dir, sorted(LIVE)[-1], id="oai:nowhere:1")])
    backend.close()
    found = ernte("check", "t")
    assert found.exit_code == 1
    assert "7 live archived records missing, 1 documents it should not hold" in found.output
    monkeypatch.setattr(progress, "PROGRESS_EVERY", 0.0)  # a line per step, not per 5 s
    repaired = ernte("check", "t", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "re-indexed 7 records, removed 1 documents" in repaired.output
    for step in ("check: reading the archive", "check: reading the index", "check: re-indexing"):
        assert step in repaired.stderr, step  # progress: ORLIS's 400,000 records take minutes
    assert_exact(data_dir)


def test_check_judges_no_document_of_a_lost_prefix_beside_a_sound_one(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    """A source harvested in two formats, one archive lost: its records were counted as
    documents the index should not hold (the sound prefix does not list them), and
    `ernte check --repair` deleted them from search."""
    assert ernte("harvest", source(provider, "dim")).exit_code == 0
    others = [r for r in generate_records(60, seed=3) if r.identifier not in ALL]
    with serve(others, batch_size=BATCH) as url:
        assert ernte("harvest", source(url, "oai_dc")).exit_code == 0
    searchable = json.loads(ernte("search", "--json", "--limit", "0").output)["total"]
    assert searchable > len(LIVE)  # the second format's own records are searchable
    lost = data_dir / "archive" / "t" / "oai_dc.sqlite"
    for file in lost.parent.glob("oai_dc.sqlite*"):
        file.unlink()
    for args in (["check", "t"], ["check", "t", "--repair"]):
        checked = ernte(*args)
        assert checked.exit_code == 1, checked.output
        assert f"archive {lost} is missing" in checked.output
        assert "should not hold" not in checked.output and "removed" not in checked.output
        assert f"{len(LIVE)} documents, exactly the live records of the sound archives" in (
            checked.output
        )
    assert json.loads(ernte("search", "--json", "--limit", "0").output)["total"] == searchable


def test_check_expects_no_quarantined_record_in_the_index_and_refuses_a_misspelt_source(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    """A record that could not be normalized is quarantined, not indexed: `ernte check` said
    it was missing, and `--repair` could never fix that. A source that was never harvested is
    an error, not "ok" (nor "0 quarantined")."""
    assert ernte("harvest", source(provider, "dim")).exit_code == 0
    held = sorted(LIVE)[0]
    [(_, _prefix, path)] = archives_of(data_dir / "archive")
    with RawArchive(path) as archive:
        archive.quarantine(held, "normalize", "no title", None)  # as a failed normalize does
    backend = EmbeddedBackend(data_dir / "index")
    backend.delete([held])
    backend.close()
    checked = ernte("check", "t")
    assert checked.exit_code == 0, checked.output
    assert "1 live archived records quarantined, not expected" in checked.output
    for command in (["check", "nosuch"], ["quarantine", "nosuch"]):
        misspelt = ernte(*command)
        assert misspelt.exit_code == 1 and "'nosuch'" in misspelt.stderr, command


def test_quarantine_and_show_print_what_is_there_and_errors_in_a_line(
    ernte: Ernte,
    data_dir: Path,
    provider: str,
    source: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The quarantine table turned `oai:x:13` into an emoji; `ernte show` printed a traceback
    for an unreadable sources file."""
    assert ernte("harvest", source(provider, "dim")).exit_code == 0
    [(_, _prefix, path)] = archives_of(data_dir / "archive")
    with RawArchive(path) as archive:
        archive.quarantine("oai:x:13", "normalize", "no title :x:", None)
    listed = ernte("quarantine", "t")
    assert "oai:x:13" in listed.output and "no title :x:" in listed.output
    broken = data_dir / "broken.yaml"
    broken.write_text("sources: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("ERNTE_SOURCES_FILE", str(broken))
    shown = ernte("show", sorted(LIVE)[0])
    assert shown.exit_code == 1 and "Traceback" not in shown.stderr
    assert shown.stderr.startswith("error: cannot read sources file")


# -- settings, data directory, HTTP ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("ERNTE_PAGE_DELAY", "abc", "ERNTE_PAGE_DELAY='abc'"),
        ("ERNTE_BACKOFF_BASE", "-1", "ERNTE_BACKOFF_BASE='-1'"),
        ("ERNTE_LOG_FORMAT", "xml", "ERNTE_LOG_FORMAT='xml'"),
    ],
)
def test_invalid_settings_are_refused_at_start_in_one_line(
    ernte: Ernte, monkeypatch: pytest.MonkeyPatch, name: str, value: str, named: str
) -> None:
    monkeypatch.setenv(name, value)
    result = ernte("status")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert named in line and "invalid setting" in line


def test_an_impossible_data_dir_is_one_line(
    ernte: Ernte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ERNTE_DATA_DIR", str(blocker / "data"))
    line = one_line_error(ernte("harvest", provider, "--prefix", "dim"))
    assert "ERNTE_DATA_DIR" in line and str(blocker / "data") in line


def test_status_works_on_a_read_only_data_dir(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    with tmpfs(data_dir, "64m"):
        assert ernte_process("harvest", source(provider, "dim")).exit_code == 0
        remount(data_dir, "ro")
        status = ernte("status", "--json")
        assert status.exit_code == 0, status.stderr
        assert json.loads(status.output)["harvests"][0]["state"] == "idle"
        line = one_line_error(ernte("harvest", "t"))
        assert "ERNTE_DATA_DIR" in line and "Read-only" in line
        remount(data_dir, "rw")
        assert_exact(data_dir)


def test_a_refused_connection_on_identify_fails_in_seconds(
    ernte: Ernte, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import time

    monkeypatch.setenv("ERNTE_BACKOFF_BASE", "5")  # a retry would take seconds
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    line = one_line_error(ernte("harvest", f"http://127.0.0.1:{port}/oai", "--prefix", "dim"))
    assert time.monotonic() - started < 5
    assert f"connection refused by 127.0.0.1:{port}" in line
    assert "urllib3" not in line and "object at 0x" not in line
    unknown = one_line_error(ernte("identify", "http://no-such-host.invalid/oai"))
    assert "unknown host no-such-host.invalid" in unknown


def test_a_response_over_the_size_cap_is_refused_clearly(
    ernte: Ernte, data_dir: Path, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERNTE_MAX_RESPONSE_BYTES", "20000")
    line = one_line_error(ernte("harvest", provider, "--prefix", "dim"))
    assert "larger than 20000 bytes" in line and "ERNTE_MAX_RESPONSE_BYTES" in line
    monkeypatch.delenv("ERNTE_MAX_RESPONSE_BYTES")
    resumed = ernte("harvest", provider, "--prefix", "dim")
    assert resumed.exit_code == 0, resumed.stderr
    assert_exact(data_dir)


def test_cluster_commands_without_redis_url_are_one_line(ernte: Ernte, provider: str) -> None:
    for command in (("harvest", provider, "--queue"), ("dlq", "list"), ("dlq", "replay")):
        line = one_line_error(ernte(*command))
        assert "REDIS_URL" in line, command


def test_a_harvest_whose_process_died_shows_as_died_not_running(
    ernte: Ernte, data_dir: Path, source: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERNTE_PAGE_DELAY", "0.1")
    with serve(RECORDS, batch_size=BATCH) as url:
        process = harvest_process(source(url, "dim"))
        try:
            wait_for_page(data_dir / "state.sqlite", 2, process)
            alive = json.loads(ernte("status", "--json").output)["harvests"][0]
            assert alive["state"] == "running"  # its process holds the lock
            process.kill()  # a power loss, the OOM killer: no handler runs
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
        status = ernte("status")
        assert status.exit_code == 0 and " died " in status.output
        assert json.loads(ernte("status", "--json").output)["harvests"][0]["state"] == "died"
        resumed = ernte("harvest", "t")
    assert resumed.exit_code == 0, resumed.stderr
    assert_exact(data_dir)


def test_ctrl_c_while_the_command_starts_is_one_line(data_dir: Path) -> None:
    """The installed `ernte` imports its libraries for most of a second; Ctrl-C then printed
    a KeyboardInterrupt traceback from inside them (found in review). The later moments fall
    around the end of `ernte status` (about 0.6 s here), where a Ctrl-C while the interpreter
    shut down printed "Exception ignored ... KeyboardInterrupt"."""
    for delay in (0.1, 0.2, 0.3, 0.45, 0.55, 0.6, 0.65, 0.7):
        process = _command_process("status")
        time.sleep(delay)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        message = stderr.decode()
        assert "Traceback" not in message and "KeyboardInterrupt" not in message, (delay, message)
        assert process.returncode in (0, 1, 130, -signal.SIGINT), (delay, process.returncode)


def test_a_command_started_with_ctrl_c_ignored_keeps_ignoring_it(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    """A command started with SIGINT ignored (`cmd &` in a script) is not to be stopped by it:
    the start-up handler noted it anyway and exited 130 while importing, and `ernte harvest`
    and `ernte index rebuild` stopped at the next page (found in review)."""
    name = source(provider, "dim")
    for command in (["status"], ["harvest", name], ["index", "rebuild"]):
        process = _command_process(
            *command, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
        )
        while process.poll() is None:  # many land while it imports, and while it works
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            time.sleep(0.02)
        assert process.returncode == 0, (command, process.stderr.read() if process.stderr else "")
    assert_exact(data_dir)


def test_a_full_index_disk_releases_the_writer_so_the_same_process_writes_again(
    data_dir: Path,
) -> None:
    """A Celery worker keeps each failed task's traceback: a commit that failed on a full disk
    kept the tantivy writer with it, and every later index page of that worker process failed
    with LockBusy, replays too, until the worker was restarted (found in a cluster audit)."""
    from harvester.run.document import build_document
    from tests.test_backend_contract import make_record

    abstract = "Quartiermanagement in benachteiligten Stadtteilen der Sozialen Stadt " * 40
    documents = [
        build_document(make_record(n, f"Stadtteil {n}", ["Soziale Stadt"], abstract=abstract))
        for n in range(3000)
    ]
    kept: list[BaseException] = []  # as Celery keeps them
    with tmpfs(data_dir / "index", "400k"):
        backend = EmbeddedBackend(data_dir / "index")
        try:
            for start in range(0, len(documents), 100):
                backend.upsert(documents[start : start + 100])
        except (OSError, ValueError) as exc:
            kept.append(exc)
        finally:
            with suppress(OSError, ValueError):
                backend.close()
        assert kept, "the small volume filled up"
        remount(data_dir / "index", "size=64m")  # space freed
        again = EmbeddedBackend(data_dir / "index")
        try:
            assert again.upsert(documents[:10]).written == 10
        finally:
            again.close()
