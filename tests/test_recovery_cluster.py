"""Cluster mode's faults (issue 13) against a real redis-server: Redis down, Redis restarted
without persistence mid-run, workers and beat that warn about a Redis that persists nothing."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from harvester.cluster.redis_persistence import warn_if_redis_not_persistent
from harvester.demo.provider import serve
from tests.conftest import ERNTE, PROJECT_ROOT, CLIResult, taken_port
from tests.faults import Fault, fault_proxy
from tests.redis_server import free_port, redis_server
from tests.test_recovery import BATCH, RECORDS, assert_exact, one_line_error

Ernte = Callable[..., CLIResult]


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with serve(RECORDS, batch_size=BATCH) as url:
        yield url


@pytest.fixture
def cluster_mode(data_dir: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """REDIS_URL on a fixed port (so the test can stop and restart Redis there); embedded index."""
    from harvester.store import cluster_store

    port = free_port()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    cluster_store.reset()
    yield port
    cluster_store.reset()


def test_redis_down_is_one_line_and_a_restart_without_persistence_is_reported_and_resumed(
    ernte: Ernte,
    data_dir: object,
    provider: str,
    source: Callable[..., str],
    cluster_mode: int,
) -> None:
    from pathlib import Path

    assert isinstance(data_dir, Path)
    with redis_server(port=cluster_mode):
        with fault_proxy(provider, lambda n: Fault.html_page() if n >= 5 else None) as proxy:
            failed = ernte("harvest", source(proxy.url, "dim"))
        assert failed.exit_code == 1
        status = ernte("status", "--json")
        assert status.exit_code == 0, status.stderr
    # Redis is down now.
    down = ernte("status")
    line = one_line_error(down)
    assert f"127.0.0.1:{cluster_mode}" in line and "unreachable" in line
    with redis_server(port=cluster_mode):  # restarted, empty: it persisted nothing
        reported = ernte("status")
        assert reported.exit_code == 0, reported.stderr
        assert "is gone from Redis" in reported.stderr and "t|*|dim" in reported.stderr
        assert "`ernte harvest t --prefix dim` continues from it" in reported.stderr
        with fault_proxy(provider) as proxy:
            resumed = ernte("harvest", source(proxy.url, "dim"))
            asked = [r.params for r in proxy.requests if r.params.get("verb") == "ListRecords"]
        assert resumed.exit_code == 0, resumed.stderr
        assert "resumptionToken" in asked[0]  # continued from the kept checkpoint
        assert "is gone from Redis" not in ernte("status").stderr
    assert_exact(data_dir)


def test_redis_persistence_check(cluster_mode: int, capsys: pytest.CaptureFixture[str]) -> None:
    with redis_server(port=cluster_mode) as url:
        problem = warn_if_redis_not_persistent(url)
        assert problem is not None and "persists nothing" in problem
        assert "WARNING: Redis persists nothing" in capsys.readouterr().err
        redis.Redis.from_url(url).config_set("appendonly", "yes")
        assert warn_if_redis_not_persistent(url) is None


def _first_lines_until(process: subprocess.Popen[bytes], needle: str, timeout: float) -> str:
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and needle.encode() not in seen:
        ready, _, _ = select.select([process.stderr], [], [], 0.5)
        if ready:
            chunk = os.read(process.stderr.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def ernte_process(*args: str) -> subprocess.CompletedProcess[str]:
    """`ernte ARGS` as a process of its own (worker and beat take the process over), with
    this test's environment; its exit code and output."""
    return subprocess.run(
        [str(ERNTE), *args],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", ["worker", "beat"])
def test_worker_and_beat_warn_loudly_at_start_when_redis_persists_nothing(
    data_dir: object, cluster_mode: int, command: str
) -> None:
    with redis_server(port=cluster_mode):
        process = subprocess.Popen(
            [str(ERNTE), command],
            cwd=PROJECT_ROOT,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            output = _first_lines_until(process, "WARNING: Redis persists", timeout=60)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    assert "WARNING: Redis persists nothing" in output


def test_a_busy_metrics_port_is_one_line(ernte: Ernte, cluster_mode: int) -> None:
    with redis_server(port=cluster_mode), taken_port() as port:
        line = one_line_error(ernte("metrics", "--port", str(port)))
    assert f"cannot serve metrics on 127.0.0.1:{port}" in line and "in use" in line


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_worker_and_beat_with_redis_down_say_so_in_one_line(
    data_dir: object, cluster_mode: int, command: str
) -> None:
    done = ernte_process(command)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"error: Redis at redis://127.0.0.1:{cluster_mode}/0 is unreachable" in done.stderr


def test_a_schedule_that_is_no_cron_expression_stops_beat_only(
    ernte: Ernte,
    data_dir: object,
    cluster_mode: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`61 * * * *` in sources.yaml ended `ernte worker`, `ernte beat` and every command that
    loads the Celery app with a traceback at import. Now beat refuses with one line naming the
    file and the source, the worker starts (here it meets the Redis that is down), and
    `ernte check` reports it."""
    sources = tmp_path / "bad-schedule.yaml"
    sources.write_text(
        'sources:\n  nightly:\n    base_url: http://127.0.0.1:9/oai\n    schedule: "61 * * * *"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("ERNTE_SOURCES_FILE", str(sources))
    beat = ernte_process("beat")
    assert beat.returncode == 1 and "Traceback" not in beat.stderr, beat.stderr
    assert beat.stderr.splitlines()[-1] == (
        f"error: {sources}: source 'nightly': schedule '61 * * * *': Invalid end range: 61 > 59."
    )
    worker = ernte_process("worker")
    assert worker.returncode == 1 and "Traceback" not in worker.stderr, worker.stderr
    assert f"Redis at redis://127.0.0.1:{cluster_mode}/0 is unreachable" in worker.stderr
    monkeypatch.delenv("REDIS_URL")  # the check of an embedded installation
    checked = ernte("check")
    assert checked.exit_code == 1
    assert f"problem: {sources}: source 'nightly': schedule '61 * * * *'" in checked.output


def test_a_misspelt_worker_queue_is_refused(data_dir: object, cluster_mode: int) -> None:
    """`ernte worker -Q harvst` consumed a queue nothing sends to, and said nothing."""
    done = ernte_process("worker", "-Q", "harvst")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error: unknown queue 'harvst': ernte's queues are harvest and index" in done.stderr


def test_worker_with_a_silent_redis_says_so_in_one_line(
    data_dir: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that accepts the connection but never answers (a hung server, a half-open
    proxy) ended `ernte worker` at start with a traceback (a TimeoutError, no ConnectionError)."""
    with taken_port() as port:
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
        done = ernte_process("worker")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"error: Redis at redis://127.0.0.1:{port}/0 is unreachable" in done.stderr


def test_harvest_and_queue_with_redis_down_are_one_line(
    ernte: Ernte, provider: str, cluster_mode: int
) -> None:
    for command in (("harvest", provider, "--prefix", "dim"), ("harvest", provider, "--queue")):
        line = one_line_error(ernte(*command))
        assert f"Redis at redis://127.0.0.1:{cluster_mode}/0 is unreachable" in line, command


def test_metrics_with_a_wrong_password_is_one_line_and_scrapes_say_redis_is_down(
    ernte: Ernte, cluster_mode: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ernte metrics` served with a wrong password, and every scrape was a 500 with a
    traceback; a scrape while Redis restarts is the same case."""
    from prometheus_client import CollectorRegistry, generate_latest

    from harvester.cluster.metrics import RedisMetricsCollector
    from harvester.store import cluster_store

    with redis_server(port=cluster_mode, password="right-password"):
        monkeypatch.setenv("REDIS_URL", f"redis://:wrong-password@127.0.0.1:{cluster_mode}/0")
        cluster_store.reset()
        line = one_line_error(ernte("metrics", "--port", str(free_port())))
        assert "wrong-password" not in line
        assert "refused the password in REDIS_URL" in line and "unreachable" not in line, line
        worker = ernte_process("worker")  # its start-up check says the same
        assert worker.returncode == 1 and "Traceback" not in worker.stderr
        assert "refused the password in REDIS_URL" in worker.stderr, worker.stderr
        assert "wrong-password" not in worker.stderr
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{cluster_mode}/0")  # none given
        cluster_store.reset()
        line = one_line_error(ernte("status"))
        assert "needs a password: put it in REDIS_URL" in line, line
        registry = CollectorRegistry()
        registry.register(RedisMetricsCollector(redis.Redis(port=cluster_mode, password="x")))
        assert b"ernte_redis_up 0.0" in generate_latest(registry)  # what /metrics serves


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--no-index",), "--no-index runs in-process only; drop --queue"),  # was ignored
        (("--from", "yesterday"), "not a date: 'yesterday'"),
        (("--from", "2020-01-02", "--until", "2020-01-01"), "--from 2020-01-02 is after --until"),
    ],
)
def test_queue_refuses_at_once_what_a_worker_could_only_dead_letter(
    ernte: Ernte, provider: str, cluster_mode: int, options: tuple[str, ...], message: str
) -> None:
    """`--queue --from yesterday` printed `queued`, exited 0, and the run went to the dead
    letters; `--queue --no-index` indexed everything. Refused before Redis is even asked."""
    result = ernte("harvest", provider, "--prefix", "dim", "--queue", *options)
    assert result.exit_code in (1, 2) and "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr


def test_a_refused_queue_request_exits_1_and_a_different_window_is_not_taken_for_it(
    provider: str, cluster_mode: int
) -> None:
    from harvester.settings import get_settings
    from harvester.store import cluster_store

    def queue(*options: str) -> subprocess.CompletedProcess[str]:
        return ernte_process("harvest", provider, "--prefix", "dim", "--queue", *options)

    with redis_server(port=cluster_mode):
        first = queue("--from", "2020-01-01")
        assert first.returncode == 0 and "queued" in first.stdout, first.stderr
        again = queue()
        assert again.returncode == 1 and "already running" in again.stderr
        # The worker of the first run died (its lease lapsed, no sweeper came by yet): a
        # request for a full harvest resumes that run, as it was asked for, and says that
        # the full harvest itself was not queued.
        get_settings.cache_clear()
        cluster_store.reset()
        cluster = cluster_store.cluster()
        [run_id] = cluster.ledger.run_ids()
        holder = cluster.lease.holder(run_id)
        assert holder is not None and cluster.lease.release(run_id, holder)
        full = queue("--full")
        assert full.returncode == 1
        assert "resumed an interrupted run" in full.stderr
        assert (
            "of --prefix dim --from 2020-01-01; this request (--prefix dim --full)" in full.stderr
        )
        assert "is not queued" in full.stderr


def test_an_unknown_name_with_redis_down_says_it_is_unknown(
    ernte: Ernte, cluster_mode: int
) -> None:
    """A name that is not configured may be the key of an earlier harvest of a bare URL, which
    the state store (Redis) knows: with Redis down, `ernte sets nosuch` reported only Redis."""
    line = one_line_error(ernte("sets", "nosuch"))
    assert "unknown source 'nosuch'" in line and "or give a URL" in line
    assert f"Redis at redis://127.0.0.1:{cluster_mode}/0 is unreachable" in line
