"""Fixtures every test module may use: where shared/ is, an isolated data directory, and a way to
run the real `ernte` command line in-process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from harvester.cli.main import main
from harvester.settings import get_settings
from harvester.store.state import SQLiteStateStore
from tests.replay_server import replay, sample_library  # noqa: F401  (fixtures for every module)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ERNTE = Path(sys.executable).parent / "ernte"
"""The installed `ernte` command (the console script beside the running Python, as the README
runs `.venv/bin/ernte`): tests that start the command as a process run this, not
`python -m harvester.cli.main`, which skipped its entry point (`harvester.cli.launch`)."""
SHARED_DIR = PROJECT_ROOT.parent / "shared"
OAI_SAMPLES = SHARED_DIR / "oai-samples"
GERMAN_RECORDS = SHARED_DIR / "german-records"


@pytest.fixture
def oai_samples() -> Path:
    """The captured real-server responses; tests using them skip where the folder is absent."""
    if not (OAI_SAMPLES / "index.json").exists():
        pytest.skip(f"{OAI_SAMPLES} is absent: the replay suite needs ../shared/oai-samples")
    return OAI_SAMPLES


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ERNTE_DATA_DIR, embedded mode (no Redis, no ES), fast politeness settings."""
    directory = tmp_path / "data"
    monkeypatch.setenv("ERNTE_DATA_DIR", str(directory))
    monkeypatch.setenv("ERNTE_PAGE_DELAY", "0")
    monkeypatch.setenv("ERNTE_BACKOFF_BASE", "0.05")
    monkeypatch.setenv("ERNTE_BACKOFF_MAX", "0.2")
    monkeypatch.setenv("ERNTE_RETRY_AFTER_CAP", "2")
    monkeypatch.setenv("ERNTE_READ_TIMEOUT", "5")
    for name in ("REDIS_URL", "ES_URL", "ERNTE_REDIS_URL", "ERNTE_ES_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield directory
    get_settings.cache_clear()


@dataclass
class CLIResult:
    exit_code: int
    output: str
    stderr: str


@pytest.fixture
def ernte(data_dir: Path) -> Callable[..., CLIResult]:
    """Run `ernte ARGS...` in-process against the isolated data directory."""

    def run(*args: str) -> CLIResult:
        get_settings.cache_clear()
        runner = CliRunner()
        result = runner.invoke(main, list(args), env=dict(os.environ), catch_exceptions=False)
        return CLIResult(result.exit_code, result.stdout, result.stderr)

    return run


def wait_for_page(state_file: Path, page: int, process: subprocess.Popen[bytes]) -> int:
    """Wait until a harvest process has checkpointed `page` pages (it must still be running)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the harvest ended before the test could act on it"
        if state_file.exists():
            states = SQLiteStateStore(state_file).all()
            if states and states[0].next_page >= page:
                return states[0].next_page
        time.sleep(0.05)
    raise AssertionError(f"the harvest did not reach page {page} within 60 s")


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Configure the source `t` at a URL (again, to move it); returns the name to harvest."""
    sources_file = tmp_path / "sources.yaml"
    monkeypatch.setenv("ERNTE_SOURCES_FILE", str(sources_file))

    def point_at(url: str, prefix: str = "oai_dc") -> str:
        sources_file.write_text(
            f"sources:\n  t:\n    base_url: {url}\n    metadata_prefix: {prefix}\n"
        )
        return "t"

    return point_at


def harvest_process(*args: str, stderr: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """`ernte harvest ARGS` as a real separate process (to kill it, or to race it), with the
    test's environment (data directory, sources file, page delay). It leads a process group
    of its own, as a command started from a terminal or by systemd does, so a test can signal
    the command with its workers (`os.killpg(process.pid, ...)`), as Ctrl-C and
    `systemctl stop` do."""
    return subprocess.Popen(
        [str(ERNTE), "harvest", *args],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port that something listens on (and never answers) while the block runs:
    a busy port for a server to refuse, or a Redis that accepts but stays silent."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` every 50 ms; fail the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def indexed_ids(index_dir: Path) -> list[str]:
    """Every document id in the embedded index at `index_dir` (duplicates kept, to be seen)."""
    from indexer.embedded.backend import EmbeddedBackend
    from indexer.search_model import SearchRequest

    backend = EmbeddedBackend(index_dir)
    try:
        ids: list[str] = []
        offset = 0
        while True:
            page = backend.search(
                SearchRequest(query="", limit=200, offset=offset, highlight=False)
            )
            ids += [hit.id for hit in page.hits]
            offset += 200
            if offset >= page.total:
                return ids
    finally:
        backend.close()


def assert_exactly(data_dir: Path, every: set[str], live: set[str]) -> None:
    """The one archive under `data_dir` holds each of `every` once, with exactly `live` not
    deleted, and the embedded index holds exactly `live`, each once."""
    from harvester.store.archive import RawArchive, archives_of

    [(_, _, path)] = archives_of(data_dir / "archive")
    with RawArchive(path) as archive:
        latest = {r.identifier: r.deleted for r in archive.iter_latest()}
        assert set(latest) == every
        assert {i for i, deleted in latest.items() if not deleted} == live
        assert all(archive.versions(i) == 1 for i in every), "a record was archived twice"
    indexed = indexed_ids(data_dir / "index")
    assert len(indexed) == len(set(indexed)), "a record is in the index twice"
    assert set(indexed) == live


def kill_harvest_at_page(state_file: Path, page: int, *args: str) -> int:
    """Start `ernte harvest ARGS` as its own process, SIGKILL it once it has checkpointed
    `page` pages; returns the page it had reached."""
    process = harvest_process(*args)
    try:
        reached = wait_for_page(state_file, page, process)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    return reached
