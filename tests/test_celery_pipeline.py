"""Cluster mode for real: Celery workers on a real redis-server harvesting a real OAI-PMH provider
(pyoai on loopback) into the embedded index. No eager mode, no fake Redis.

- the lease, fencing and ledger primitives against Redis;
- an in-process worker (threads pool) harvests a multi-page provider end to end;
- two concurrent requests for one harvest: one queued, one refused;
- an index batch that keeps failing lands in the dead-letter list and is replayed;
- a worker process is SIGKILLed mid-harvest and a new one finishes it: exactly the live records.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from harvester.demo.generate import generate_records
from harvester.demo.provider import serve
from harvester.demo.sample import SampleRecord
from harvester.settings import get_settings
from harvester.sources import resolve_source
from harvester.store.state import HarvestKey, HarvestState
from tests.conftest import wait_until
from tests.redis_server import redis_server
from tests.shipped import service, shipped_service

pytestmark = pytest.mark.slow  # Celery workers on a real redis-server

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "dim"

CLUSTER_ENV = {
    # recovery within seconds: short lease, frequent sweeps, short broker redelivery
    "ERNTE_LEASE_SECONDS": "3",
    "ERNTE_SWEEP_INTERVAL": "1",
    "ERNTE_VISIBILITY_TIMEOUT": "30",
    "ERNTE_UNACKED_RESTORE_INTERVAL": "1",
    # task time limits derived from these (harvester/cluster/time_limits.py): soft 18 s, hard 21 s
    "ERNTE_TASK_MARGIN": "3",
    "ERNTE_MAX_RETRIES": "1",
    "ERNTE_CONNECT_TIMEOUT": "2",
    "ERNTE_RETRY_AFTER_CAP": "1",
    # a failing batch reaches the dead-letter list after two quick retries
    "ERNTE_TASK_MAX_RETRIES": "2",
    "ERNTE_RETRY_BACKOFF_MAX": "1",
    "ERNTE_BACKPRESSURE_DELAY": "0.2",
    # HTTP politeness off for loopback
    "ERNTE_PAGE_DELAY": "0",
    "ERNTE_BACKOFF_BASE": "0.05",
    "ERNTE_BACKOFF_MAX": "0.2",
    "ERNTE_READ_TIMEOUT": "5",
    "ERNTE_LOG_LEVEL": "INFO",
}


def enqueue_harvest(base_url: str) -> str:
    """What `ernte harvest BASE_URL --prefix dim --queue` requests."""
    from harvester.cluster.runs import request_harvest
    from harvester.store.redis_state import RunSpec

    return request_harvest(RunSpec(base_url, "", PREFIX))


def live_ids(records: list[SampleRecord]) -> set[str]:
    return {r.identifier for r in records if not r.deleted}


def indexed_ids(index_dir: Path) -> list[str]:
    """Every identifier in the embedded index, read by a fresh searcher (as another process).

    Taken under the workers' index lock: opening an EmbeddedBackend rewrites its schema marker
    file, which a concurrently opening writer can read half-written (reported to the lead)."""
    from harvester.store.locks import index_write_lock
    from indexer.embedded.backend import EmbeddedBackend
    from indexer.search_model import SearchRequest

    with index_write_lock(get_settings()):
        backend = EmbeddedBackend(index_dir)
        try:
            response = backend.search(SearchRequest(query="", limit=10_000, highlight=False))
            assert response.total == len(response.hits) == backend.count()
            return [hit.id for hit in response.hits]
        finally:
            backend.close()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A password-protected redis-server, as docker-compose.yml runs it."""
    with redis_server(password=f"pw-{uuid.uuid4().hex}") as url:
        yield url


@pytest.fixture(scope="module")
def cluster_env(redis_url: str) -> Iterator[dict[str, str]]:
    """Cluster mode for this module: REDIS_URL, short leases and retries; the Celery app is
    re-configured from it. Each test points ERNTE_DATA_DIR somewhere fresh."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REDIS_URL", redis_url)
        for name in ("ES_URL", "ERNTE_ES_URL", "ERNTE_REDIS_URL"):
            patch.delenv(name, raising=False)
        for name, value in CLUSTER_ENV.items():
            patch.setenv(name, value)
        from harvester.cluster import app as celery_app

        celery_app.configure()
        yield {**CLUSTER_ENV, "REDIS_URL": redis_url}
    get_settings.cache_clear()
    celery_app.reset()


@pytest.fixture
def data_dir(
    cluster_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    directory = tmp_path / "data"
    monkeypatch.setenv("ERNTE_DATA_DIR", str(directory))
    get_settings.cache_clear()
    redis.Redis.from_url(cluster_env["REDIS_URL"]).flushall()
    yield directory
    get_settings.cache_clear()


@pytest.fixture
def worker(cluster_env: dict[str, str]) -> Iterator[Any]:
    """A real Celery worker in this process (threads pool) consuming both queues; one per test,
    so that no worker is left consuming when the fault test runs its own processes."""
    from celery.contrib.testing.worker import start_worker

    from harvester.cluster.app import app

    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=15
    ) as running:
        yield running


def _state(base_url: str) -> HarvestState:
    from harvester.store.cluster_store import cluster

    source = resolve_source(base_url, get_settings().sources_file, PREFIX)
    return cluster().store.load(HarvestKey(source.key, "", PREFIX))


def _run_finished(base_url: str) -> bool:
    from harvester.store.cluster_store import cluster

    return not cluster().ledger.run_ids() and _state(base_url).state == "idle"


# -- primitives -------------------------------------------------------------------------------


def test_lease_fencing_and_checkpoint_compare_and_set(data_dir: Path) -> None:
    from harvester.store.cluster_store import cluster
    from harvester.store.redis_state import FencedStateStore, RunSpec, StaleRun

    c = cluster()
    run_id = "src|*|dim"
    first = c.lease.acquire(run_id)
    assert first is not None
    assert c.lease.acquire(run_id) is None, "a held lease must refuse a second run"
    c.ledger.open(run_id, first, RunSpec("src"), time.time())

    state = HarvestState.new(HarvestKey("src", "", "dim"))
    FencedStateStore(c.store, run_id, first, None).save(state)
    state.next_page = 1
    FencedStateStore(c.store, run_id, first, 0).save(state)  # page 0 checkpointed
    with pytest.raises(StaleRun, match="already checkpointed"):
        FencedStateStore(c.store, run_id, first, 0).save(state)  # a duplicate of page 0

    c.client.delete(c.lease.keys.lease(run_id))  # the lease lapses (holder paused or dead)
    second = c.lease.acquire(run_id)
    assert second == first + 1
    assert c.ledger.get(run_id).fence == second  # type: ignore[union-attr]
    with pytest.raises(StaleRun, match="no longer current"):
        FencedStateStore(c.store, run_id, first, 1).save(state)  # the zombie is fenced off
    assert not c.lease.renew(run_id, first)
    assert c.lease.renew(run_id, second)
    assert c.store.load(state.key).next_page == 1


def test_a_late_index_page_of_an_earlier_run_never_counts_for_the_next(data_dir: Path) -> None:
    from harvester.store.cluster_store import cluster
    from harvester.store.redis_state import RunSpec

    c = cluster()
    run_id = "late|*|dim"
    c.ledger.open(run_id, 1, RunSpec("late"), time.time())
    earlier = c.ledger.get(run_id)
    assert earlier is not None and earlier.instance
    c.ledger.open(run_id, 2, RunSpec("late"), time.time())  # the next run, same run id
    current = c.ledger.get(run_id)
    assert current is not None and current.instance != earlier.instance
    c.ledger.add_page(run_id, 0, ["oai:x:1"])
    assert not c.ledger.page_done(run_id, earlier.instance, 0, {"indexed": 1})
    assert c.ledger.pending_pages(run_id) == [(0, ["oai:x:1"])]  # still waiting for its own
    assert c.ledger.page_done(run_id, current.instance, 0, {"indexed": 1})
    assert c.ledger.pending_pages(run_id) == []


def test_a_replayed_index_page_counts_once_and_only_for_its_own_run(data_dir: Path) -> None:
    """What `ernte status` shows of index pages replayed from the dead letters: a page the
    open run counted is not counted again when its message comes back after the run ended
    (a worker lost before the ack); a page indexed after the run ended counts once, in the
    totals, and in the last run while that is its run; the run's note on pages in the dead
    letters follows what is left there, and comes back when a replayed page fails again."""
    from harvester.cluster.payloads import INDEX_PAGE, IndexBatch
    from harvester.cluster.runs import (
        count_replayed_page,
        dead_pages_note,
        give_up,
    )
    from harvester.store import dead_letters
    from harvester.store.cluster_store import cluster
    from harvester.store.state import RunCounts

    source = resolve_source("http://127.0.0.1:9/oai", get_settings().sources_file, "dim")
    key = HarvestKey(source.key, "", "dim")
    state = HarvestState.new(key)
    state.counted_run = "first-run"
    state.run.indexed = state.totals.indexed = 10
    state.last_error = dead_pages_note(2)
    store = cluster().store
    store.save(state)

    def page(number: int, instance: str = "first-run") -> IndexBatch:
        run_id = f"{source.key}|*"
        return IndexBatch(run_id, source.base_url, "dim", number, ["oai:x:1"], instance, True)

    def shown() -> tuple[int, int, str | None]:
        now = store.load(key)
        return now.run.indexed, now.totals.indexed, now.last_error

    five = RunCounts(indexed=5)
    count_replayed_page(page(0), source.key, five, counted_by_run=True)  # the open run's
    count_replayed_page(page(0), source.key, five, counted_by_run=False)  # delivered again
    assert shown() == (10, 10, dead_pages_note(2))
    dead_letters.record(INDEX_PAGE, {"payload": page(1).to_json()}, "failed again", "", 3)
    count_replayed_page(page(2), source.key, five, counted_by_run=False)
    assert shown() == (15, 15, dead_pages_note(1))
    count_replayed_page(page(2), source.key, five, counted_by_run=False)  # delivered again
    assert shown() == (15, 15, dead_pages_note(1))
    cluster().client.delete(dead_letters.DLQ_KEY)
    count_replayed_page(page(3), source.key, five, counted_by_run=False)
    assert shown() == (20, 20, None)
    # A replayed page that fails again after its run ended: the note is back.
    dead_letters.record(INDEX_PAGE, {"payload": page(4).to_json()}, "failed again", "", 3)
    give_up(INDEX_PAGE, page(4).to_json(), "failed again")
    assert shown() == (20, 20, dead_pages_note(1))
    # A later run (started in-process: its counts are no cluster run's) keeps its own counts.
    later = store.load(key)
    later.counted_run, later.run, later.last_error = "", RunCounts(indexed=3), None
    store.save(later)
    count_replayed_page(page(5), source.key, five, counted_by_run=False)
    assert shown() == (3, 25, None)


def test_status_shows_a_queued_run_and_the_pages_indexed_so_far(data_dir: Path) -> None:
    """A requested run showed nowhere until a worker started it, and a running one said
    `indexed 0` until it completed (its pages' counts reach its state only then)."""
    from harvester.store.cluster_store import cluster
    from harvester.store.redis_state import RunSpec

    c = cluster()
    queued_id, running_id = "waiting|*", "src|*"
    c.ledger.open(queued_id, c.lease.acquire(queued_id) or 0, RunSpec("waiting"), time.time())
    fence = c.lease.acquire(running_id)
    assert fence is not None
    c.ledger.open(running_id, fence, RunSpec("src", "", "dim"), time.time())
    assert c.ledger.set_status(running_id, fence, "fetching", "dim")
    state = HarvestState.new(HarvestKey("src", "", "dim"))
    state.state = "running"
    state.run.records = state.run.normalized = 150
    c.store.save(state)
    instance = c.ledger.get(running_id).instance  # type: ignore[union-attr]
    for page_no in range(3):
        c.ledger.add_page(running_id, page_no, [f"oai:x:{page_no}"])
    c.ledger.page_done(running_id, instance, 0, {"indexed": 48, "quarantined": 2})
    c.ledger.page_done(running_id, instance, 1, {"indexed": 50})

    report = json.loads(_ernte("status", "--json"))
    runs = {run["run"]: run for run in report["runs"]}
    assert runs[queued_id]["status"] == "queued" and runs[queued_id]["source"] == "waiting"
    running = runs[running_id]
    assert (running["status"], running["prefix"]) == ("fetching", "dim")
    assert (running["pages_fetched"], running["pages_indexed"]) == (3, 2)
    assert (running["indexed"], running["quarantined"]) == (98, 2)
    [harvest] = report["harvests"]
    assert harvest["state"] == "running"
    assert (harvest["run"]["indexed"], harvest["run"]["records"]) == (98, 150)
    text = _ernte("status")
    assert "runs in progress" in text and queued_id in text and "queued" in text


def test_heartbeat_keeps_the_lease_beyond_its_lifetime(data_dir: Path) -> None:
    from harvester.store.cluster_store import cluster
    from harvester.store.redis_state import HarvestLease

    # A lifetime of 1 s, renewed every third of it: a renewal may come up to 0.67 s late (a
    # busy CI machine stalled a 0.3 s lifetime's heartbeat once) before the lease expires.
    lease = HarvestLease(cluster().client, ttl_seconds=1.0)
    fence = lease.acquire("hb|*|dim")
    assert fence is not None
    with lease.heartbeat("hb|*|dim", fence) as lost:
        time.sleep(3.5)  # more than three lifetimes
        assert lease.holder("hb|*|dim") == fence
        assert not lost.is_set()
    wait_until(lambda: lease.holder("hb|*|dim") is None, 4, "the lease to expire")


def test_a_run_waiting_out_its_page_delay_keeps_its_lease(
    data_dir: Path, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page delay longer than the lease (3 s here; a polite `page_delay: 75` against the
    default 60 s): between two pages no task works on the run, so no heartbeat renews its
    lease. It expired, and the sweeper "recovered" the healthy run and fetched the next page
    before the delay was over. The lease now outlasts the delay."""
    from harvester.cluster.runs import sweep_stale_runs
    from harvester.store.cluster_store import cluster

    monkeypatch.setenv("ERNTE_PAGE_DELAY", "5")
    get_settings.cache_clear()
    records = list(generate_records(100, seed=5, deleted_share=0.0))
    with serve(records, batch_size=50) as base_url:
        run_id = enqueue_harvest(base_url).split(":")[0]
        wait_until(lambda: _state(base_url).next_page == 1, 30, "the first page")
        time.sleep(4)  # past the 3 s lease, inside the 5 s page delay
        assert cluster().lease.holder(run_id) is not None, "the lease lapsed during the delay"
        assert sweep_stale_runs() == []
        wait_until(lambda: _run_finished(base_url), 60, "the harvest to finish")
    state = _state(base_url)
    assert state.last_error is None and state.run.pages == 2 and state.run.records == 100


def test_each_task_lands_on_its_own_queue_only(data_dir: Path) -> None:
    from harvester.cluster.payloads import FETCH_PAGE, INDEX_PAGE, IndexBatch, PageFetch, send
    from harvester.store.cluster_store import cluster

    client = cluster().client
    send(INDEX_PAGE, IndexBatch("r|*|dim", "https://x.example/oai", "dim", 0, ["oai:x:1"]))
    send(FETCH_PAGE, PageFetch("r|*|dim", 0, 1))
    assert (client.llen("index"), client.llen("harvest")) == (1, 1)
    client.delete("index", "harvest")


# -- with an in-process worker -----------------------------------------------------------------


def test_worker_harvests_multi_page_provider_into_embedded_index(
    data_dir: Path, worker: Any
) -> None:
    from harvester.store.cluster_store import cluster

    records = list(generate_records(300, seed=11, deleted_share=0.1))
    with serve(records, batch_size=50) as base_url:
        line = enqueue_harvest(base_url)
        assert "queued" in line
        wait_until(lambda: _run_finished(base_url), 60, "the harvest to finish")
    state = _state(base_url)
    assert state.last_error is None
    assert state.run.pages == 6
    assert state.run.records == 300
    assert state.run.deleted == 30
    assert state.run.indexed == 270
    assert state.watermark is not None
    ids = indexed_ids(data_dir / "index")
    assert len(ids) == len(set(ids))
    assert set(ids) == live_ids(records)
    assert cluster().lease.holder(line.split(":")[0]) is None, "the lease is released"

    from prometheus_client import generate_latest

    from harvester.cluster.metrics import registry_for

    scrape = generate_latest(registry_for(cluster().client)).decode()
    assert f'ernte_records_harvested_total{{source="{state.source}"}} 300.0' in scrape
    assert f'ernte_records_indexed_total{{source="{state.source}"}} 270.0' in scrape
    assert f'ernte_harvest_duration_seconds_count{{source="{state.source}"}} 1.0' in scrape
    assert f'ernte_harvest_last_success_timestamp_seconds{{source="{state.source}"}}' in scrape
    assert "ernte_dead_letters 0.0" in scrape


def test_two_concurrent_requests_one_runs_one_is_refused(data_dir: Path, worker: Any) -> None:

    records = list(generate_records(60, seed=5, deleted_share=0.0))
    with serve(records, batch_size=50) as base_url:
        barrier = threading.Barrier(2)
        answers: list[str] = []

        def request() -> None:
            barrier.wait(timeout=5)
            answers.append(enqueue_harvest(base_url))

        threads = [threading.Thread(target=request) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert sorted(a.split(": ", 1)[1].split(" ")[0] for a in answers) == [
            "already",
            "queued",
        ], answers
        refused = next(a for a in answers if "already running" in a)
        assert "already running (fence 1" in refused and "refused" in refused
        wait_until(lambda: _run_finished(base_url), 30, "the accepted harvest to finish")
        assert "queued" in enqueue_harvest(base_url)
        wait_until(lambda: _run_finished(base_url), 30, "the second harvest to finish")
    assert set(indexed_ids(data_dir / "index")) == live_ids(records)


def _ernte(*args: str) -> str:
    """`ernte ARGS` in-process, with this module's cluster environment."""
    from click.testing import CliRunner

    from harvester.cli.main import main

    get_settings.cache_clear()
    result = CliRunner().invoke(main, list(args), env=dict(os.environ), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_failing_index_batch_is_dead_lettered_and_replayed(data_dir: Path, worker: Any) -> None:

    data_dir.mkdir(parents=True)
    (data_dir / "index").write_text("not a directory")  # every index write fails
    records = list(generate_records(100, seed=3, deleted_share=0.05))
    with serve(records, batch_size=50) as base_url:
        enqueue_harvest(base_url)
        wait_until(lambda: _run_finished(base_url), 45, "the run to finish despite failures")
    letters = json.loads(_ernte("dlq", "list", "--json"))
    assert "2 dead letters" in _ernte("dlq", "list")
    assert [letter["task"] for letter in letters] == ["ernte.index_page"] * 2
    assert all(letter["error"].startswith("FileExistsError") for letter in letters)
    assert all(letter["attempts"] == 3 for letter in letters)  # first try + 2 retries
    assert sorted(letter["kwargs"]["payload"]["page_no"] for letter in letters) == [0, 1]
    state = _state(base_url)
    assert state.state == "idle"
    assert state.last_error is not None and "dead-letter" in state.last_error
    from prometheus_client import generate_latest

    from harvester.cluster.metrics import registry_for
    from harvester.store.cluster_store import cluster

    # Nothing reached the index: no success for an alert on its age to miss.
    scrape = generate_latest(registry_for(cluster().client)).decode()
    assert f'ernte_harvest_duration_seconds_count{{source="{state.source}"}} 1.0' in scrape
    assert "ernte_harvest_last_success_timestamp_seconds{" not in scrape

    (data_dir / "index").unlink()  # the index is fixed
    # A mistyped id replays nothing and says so (it printed nothing and exited 0).
    from click.testing import CliRunner

    from harvester.cli.main import main

    mistyped = CliRunner().invoke(main, ["dlq", "replay", "nosuch"], env=dict(os.environ))
    assert mistyped.exit_code == 1 and "no dead letter nosuch" in mistyped.stderr
    assert len(json.loads(_ernte("dlq", "list", "--json"))) == 2
    lines = _ernte("dlq", "replay").splitlines()
    assert len(lines) == 2 and all("re-queued" in line for line in lines)
    assert json.loads(_ernte("dlq", "list", "--json")) == []

    def all_indexed() -> bool:
        return (data_dir / "index").is_dir() and set(indexed_ids(data_dir / "index")) == live_ids(
            records
        )

    wait_until(all_indexed, 30, "the replayed pages to be indexed")
    # The run ended before its pages were replayed: `ernte status` counts them now, and
    # its note on pages in the dead letters is gone with them (it kept both).
    live = len(live_ids(records))
    wait_until(lambda: _state(base_url).run.indexed == live, 15, "the replayed pages' counts")
    replayed = _state(base_url)
    assert replayed.totals.indexed == live and replayed.last_error is None


def test_dead_letters_that_can_never_succeed_can_be_discarded(data_dir: Path) -> None:
    """A dead letter of a source removed from sources.yaml, or of a window given wrong, stayed
    in `ernte status` for good: replaying it can only fail again."""
    from click.testing import CliRunner

    from harvester.cli.main import main
    from harvester.store import dead_letters

    for n in range(3):
        dead_letters.record("ernte.fetch_page", {"payload": {"n": n}}, "gone", "", 6)
    first, second, third = (entry["id"] for entry in dead_letters.entries())
    assert _ernte("dlq", "discard", first).strip() == f"{first}: ernte.fetch_page discarded"
    assert [e["id"] for e in dead_letters.entries()] == [second, third]
    for wrong in ([], ["nosuch"], [second, "--all"]):
        refused = CliRunner().invoke(main, ["dlq", "discard", *wrong], env=dict(os.environ))
        assert refused.exit_code in (1, 2), refused.output
    assert len(dead_letters.entries()) == 2, "a refused discard removes nothing"
    assert len(_ernte("dlq", "discard", "--all").splitlines()) == 2
    assert dead_letters.entries() == []


# -- a worker process killed mid-harvest -------------------------------------------------------


def _start_worker_process(
    redis_url: str, data_dir: Path, log_file: Path, **extra: str
) -> subprocess.Popen[bytes]:
    """`ernte worker` exactly as docker-compose.yml's `worker` service runs it, leading a process
    group of its own as from a terminal (Ctrl-C reaches the group)."""
    command, env = shipped_service("worker", redis_url, data_dir, **{**CLUSTER_ENV, **extra})
    with log_file.open("ab") as log:
        return subprocess.Popen(
            command,
            cwd=data_dir.parent,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


@contextmanager
def _worker_processes(
    redis_url: str, data_dir: Path, log_file: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Yields `start(**env)`, which starts a shipped `ernte worker`; on failure prints the
    workers' log, and at the end stops those still running and removes the index."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**extra: str) -> subprocess.Popen[bytes]:
        started.append(_start_worker_process(redis_url, data_dir, log_file, **extra))
        return started[-1]

    try:
        yield start
    except BaseException:
        print(log_file.read_text(errors="replace")[-6000:] if log_file.exists() else "")
        raise
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        shutil.rmtree(data_dir / "index", ignore_errors=True)


def _worker_stop_grace() -> float:
    """Seconds docker-compose.yml gives the worker to stop (`stop_grace_period`)."""
    period = str(service("worker")["stop_grace_period"])
    assert period.endswith("s") and period[:-1].isdigit(), period
    return float(period[:-1])


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(lambda p: os.kill(p.pid, signal.SIGTERM), id="docker-stop-sigterm"),
        pytest.param(lambda p: os.killpg(p.pid, signal.SIGINT), id="terminal-ctrl-c"),
    ],
)
def test_a_worker_stopped_mid_harvest_as_operators_stop_it_leaves_a_run_the_next_finishes(
    data_dir: Path, cluster_env: dict[str, str], tmp_path: Path, stop: Any
) -> None:
    """`docker compose stop` (SIGTERM to the worker) and Ctrl-C (SIGINT to the terminal's process
    group) mid-harvest: the worker ends within its grace time without a traceback, and the next
    worker finishes the run with every live record indexed once."""
    records = list(generate_records(600, seed=29, deleted_share=0.05))
    log_file = tmp_path / "workers.log"
    with _worker_processes(cluster_env["REDIS_URL"], data_dir, log_file) as start_worker:
        with serve(records, batch_size=50) as base_url:
            first = start_worker(ERNTE_PAGE_DELAY="0.3")
            enqueue_harvest(base_url)
            wait_until(lambda: _state(base_url).next_page >= 3, 45, "page 3 to be checkpointed")
            stop(first)
            # Within the grace docker compose gives it before a kill, which leaves room for
            # Celery's soft shutdown (30 s); one CI run saw a Ctrl-C'd worker take just over
            # 30 s, so the bound is the shipped one, not a tighter guess.
            assert first.wait(timeout=_worker_stop_grace()) in (0, -signal.SIGTERM, 130)
            assert not _run_finished(base_url), "stopped before the end of the list"
            stopped_log = log_file.read_text(errors="replace")
            assert "Traceback" not in stopped_log, stopped_log[-4000:]

            start_worker(ERNTE_PAGE_DELAY="0")
            wait_until(lambda: _run_finished(base_url), 60, "the second worker to finish the run")
        state = _state(base_url)
        assert state.run.records == 600 and state.state == "idle"
        ids = indexed_ids(data_dir / "index")
        assert len(ids) == len(set(ids)), "no record indexed twice"
        assert set(ids) == live_ids(records)


def test_worker_killed_mid_harvest_is_recovered_exactly_once(
    data_dir: Path, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    records = list(generate_records(600, seed=23, deleted_share=0.05))
    log_file = tmp_path / "workers.log"
    with _worker_processes(cluster_env["REDIS_URL"], data_dir, log_file) as start_worker:
        with serve(records, batch_size=50) as base_url:
            first = start_worker(ERNTE_PAGE_DELAY="0.3")
            run_id = enqueue_harvest(base_url).split(": ")[0]
            wait_until(lambda: _state(base_url).next_page >= 3, 45, "page 3 to be checkpointed")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            assert not _run_finished(base_url), "killed before the end of the list"

            start_worker(ERNTE_PAGE_DELAY="0.3")
            wait_until(lambda: _run_finished(base_url), 60, "the second worker to finish the run")
        fences = redis.Redis.from_url(cluster_env["REDIS_URL"]).get(f"ernte:fence:{run_id}")
        assert int(fences or 0) >= 2, "the sweeper took the run over under a new fence"
        state = _state(base_url)
        assert state.run.records == 600  # a page re-fetched after the kill is counted once
        ids = indexed_ids(data_dir / "index")
        assert len(ids) == len(set(ids)), "no record indexed twice"
        assert set(ids) == live_ids(records)


def test_a_replay_refused_while_the_harvest_runs_keeps_its_dead_letter(
    data_dir: Path, cluster_env: dict[str, str]
) -> None:
    """A dead-lettered harvest replayed while that harvest runs again is refused: the entry
    used to be removed anyway, so the failure could not be replayed later."""
    from dataclasses import asdict

    from harvester.cluster.runs import harvest_run_id, replay_dead_letters
    from harvester.store import dead_letters
    from harvester.store.cluster_store import cluster
    from harvester.store.redis_state import RunSpec

    spec = RunSpec("http://127.0.0.1:9/oai", "", PREFIX)  # nothing listens there
    dead_letters.record("ernte.fetch_page", {}, "HTTPFailure: refused", "", 3, asdict(spec))
    run_id = harvest_run_id("127.0.0.1_9_oai", "")
    holder = cluster().lease.acquire(run_id)  # the harvest runs again
    try:
        assert holder is not None
        (line,) = list(replay_dead_letters())
        assert "request refused" in line and "kept in the dead letters" in line
        assert len(dead_letters.entries()) == 1
    finally:
        cluster().lease.release(run_id, holder)  # type: ignore[arg-type]
        cluster().client.delete(dead_letters.DLQ_KEY)


def _new_state(base_url: str) -> HarvestState:
    """A fresh harvest state of `base_url` (never contacted: giving up reads Redis only)."""
    source = resolve_source(base_url, get_settings().sources_file, PREFIX)
    return HarvestState.new(HarvestKey(source.key, "", PREFIX))


def _open_run(base_url: str, state: HarvestState) -> tuple[str, int]:
    """A cluster run of `base_url` as a worker leaves it (lease taken, ledger opened, `state`
    stored under the run's fence): (run id, fence)."""
    from harvester.store.cluster_store import cluster
    from harvester.store.redis_state import FencedStateStore, RunSpec

    c = cluster()
    from harvester.store.state import harvest_run_id

    run_id = harvest_run_id(state.source, state.set_spec)  # as a request takes it
    fence = c.lease.acquire(run_id)
    assert fence is not None
    c.ledger.open(run_id, fence, RunSpec(base_url, "", state.prefix), time.time())
    FencedStateStore(c.store, run_id, fence, None).save(state)
    return run_id, fence


def _fetching_run(base_url: str, next_page: int) -> tuple[str, int, Any]:
    """A cluster run of `base_url` that has stored `next_page` pages and is fetching the next:
    (run id, fence, its ledger entry)."""
    from harvester.store.cluster_store import cluster

    state = _new_state(base_url)
    state.state, state.next_page = "running", next_page
    run_id, fence = _open_run(base_url, state)
    assert cluster().ledger.set_status(run_id, fence, "fetching", PREFIX)
    run = cluster().ledger.get(run_id)
    assert run is not None
    return run_id, fence, run


def test_a_given_up_run_keeps_the_index_counts_of_its_pages(data_dir: Path) -> None:
    """A fetch page that is dead-lettered ends its run as failed; the pages indexed before
    still count in `ernte status` (closing the run's ledger dropped them, so a failed cluster
    run showed 0 indexed where the same in-process harvest shows what it indexed)."""
    from harvester.cluster.payloads import FETCH_PAGE, PageFetch
    from harvester.cluster.runs import give_up
    from harvester.store.cluster_store import cluster

    base_url = "http://127.0.0.1:9/oai"
    state = _new_state(base_url)
    state.state, state.next_page = "running", 2
    state.run.records = state.run.pages = 2
    run_id, fence = _open_run(base_url, state)
    c = cluster()
    assert c.ledger.set_status(run_id, fence, "fetching", PREFIX)
    run = c.ledger.get(run_id)
    assert run is not None
    for page_no, indexed in ((0, 40), (1, 37)):
        c.ledger.add_page(run_id, page_no, [f"oai:x:{page_no}"])
        assert c.ledger.page_done(run_id, run.instance, page_no, {"indexed": indexed})

    give_up(FETCH_PAGE, PageFetch(run_id, 2, fence).to_json(), "HTTPFailure: 500")

    stored = _state(base_url)
    assert stored.state == "failed"
    assert stored.last_error == "DeadLettered: HTTPFailure: 500"
    assert stored.run.indexed == 77 and stored.next_page == 2
    assert run_id not in c.ledger.run_ids()


def test_a_given_up_run_counts_the_pages_indexed_after_it_failed(data_dir: Path) -> None:
    """Pages a failed run had handed to the index queue are indexed after the failure; closing
    the run at once dropped their counts, so `ernte status` showed fewer indexed records than
    the index holds. The run stays in the ledger as `failed` until they are done."""
    from harvester.cluster.payloads import FETCH_PAGE, PageFetch, RunStep
    from harvester.cluster.runs import give_up, request_harvest, request_harvest_outcome
    from harvester.cluster.work import finalize_run
    from harvester.store.cluster_store import cluster
    from harvester.store.redis_state import RunSpec

    base_url = "http://127.0.0.1:9/oai"
    run_id, fence, run = _fetching_run(base_url, 2)
    c = cluster()
    c.ledger.add_page(run_id, 0, ["oai:x:0"])
    c.ledger.add_page(run_id, 1, ["oai:x:1"])
    assert c.ledger.page_done(run_id, run.instance, 0, {"indexed": 40})

    give_up(FETCH_PAGE, PageFetch(run_id, 2, fence).to_json(), "HTTPFailure: 500")

    assert _state(base_url).state == "failed"
    draining = c.ledger.get(run_id)
    assert draining is not None and draining.status == "failed"
    report = json.loads(_ernte("status", "--json"))
    assert report["harvests"][0]["run"]["indexed"] == 40  # indexed so far
    assert [r["status"] for r in report["runs"]] == ["failed"]
    refused = request_harvest(RunSpec(base_url, "", PREFIX))
    assert "still indexing the pages it fetched (1/2 indexed, by workers of the index" in refused

    # A second dead letter of the run changes nothing; with its lease lapsed (no worker
    # renews it), a request is still refused, and sends the queued pages again.
    give_up(FETCH_PAGE, PageFetch(run_id, 2, fence).to_json(), "HTTPFailure: 500")
    c.client.delete(c.lease.keys.lease(run_id))
    c.client.delete("index")
    refused = request_harvest(RunSpec(base_url, "", PREFIX))  # as a beat tick asks
    assert "still indexing the pages it fetched (1/2 indexed, by workers of the index" in refused
    assert _queued_index_pages() == [1]  # the page never queued, once
    c.client.delete(c.lease.keys.lease(run_id))
    request_harvest(RunSpec(base_url, "", PREFIX))  # the next tick: no copy
    assert _queued_index_pages() == [1]
    c.client.delete(c.lease.keys.lease(run_id))
    request_harvest_outcome(RunSpec(base_url, "", PREFIX), resend_all=True)  # an operator
    assert _queued_index_pages() == [1, 1]
    again = c.ledger.get(run_id)
    assert again is not None and again.status == "failed"

    assert c.ledger.page_done(run_id, run.instance, 1, {"indexed": 37})  # the queued page
    # The worker finalizing it is killed after saving the counts, before closing the run; the
    # sweeper's next fence lets a redelivered finalize run again: the counts are added once.
    closing = c.ledger.close
    c.ledger.close = lambda *args: False  # type: ignore[method-assign]
    try:
        assert finalize_run(RunStep(run_id, again.fence)) == "failed run closed: 77 indexed"
    finally:
        c.ledger.close = closing  # type: ignore[method-assign]
    c.client.delete(c.lease.keys.lease(run_id))
    fence = c.lease.acquire(run_id)
    assert fence is not None
    assert finalize_run(RunStep(run_id, fence)) == "failed run closed: 77 indexed"
    stored = _state(base_url)
    assert stored.state == "failed" and stored.run.indexed == 77
    assert stored.last_error == "DeadLettered: HTTPFailure: 500"
    assert run_id not in c.ledger.run_ids() and c.lease.holder(run_id) is None
    c.client.delete("index", "harvest")


def test_a_failed_run_whose_finalize_is_dead_lettered_is_closed(data_dir: Path) -> None:
    """The finalize of a run given up can keep failing too (its dead letter returned early
    while the run was `failed`): the run stayed, refusing every request, forever."""
    from harvester.cluster.payloads import FETCH_PAGE, FINALIZE_RUN, PageFetch, RunStep
    from harvester.cluster.runs import give_up
    from harvester.store.cluster_store import cluster

    base_url = "http://127.0.0.1:9/oai"
    run_id, fence, run = _fetching_run(base_url, 1)
    c = cluster()
    c.ledger.add_page(run_id, 0, ["oai:x:0"])
    give_up(FETCH_PAGE, PageFetch(run_id, 1, fence).to_json(), "HTTPFailure: 500")
    assert c.ledger.page_done(run_id, run.instance, 0, {"indexed": 40})
    for _ in range(2):  # delivered twice: counted once
        give_up(FINALIZE_RUN, RunStep(run_id, fence).to_json(), "ResponseError: busy")
    assert run_id not in c.ledger.run_ids()
    stored = _state(base_url)
    assert (stored.state, stored.run.indexed) == ("failed", 40)
    c.client.delete("index", "harvest")


def test_the_sweep_closes_a_run_it_cannot_resolve_and_recovers_the_others(
    data_dir: Path,
) -> None:
    """A run of a source removed from sources.yaml made every sweep raise before it reached
    the runs after it; and a retried start_harvest that had already started sends its page."""
    from harvester.cluster.payloads import RunStep
    from harvester.cluster.runs import sweep_stale_runs
    from harvester.cluster.work import start_harvest
    from harvester.store.cluster_store import cluster
    from harvester.store.redis_state import RunSpec

    c = cluster()
    c.ledger.open("0-gone|*", c.lease.acquire("0-gone|*") or 0, RunSpec("0-gone"), time.time())
    assert c.ledger.set_status("0-gone|*", c.ledger.get("0-gone|*").fence, "fetching", "dim")  # type: ignore[union-attr]
    base_url = "http://127.0.0.1:9/oai"
    state = _new_state(base_url)
    state.state, state.next_page = "running", 3
    run_id, fence = _open_run(base_url, state)
    assert run_id > "0-gone|*"  # swept after the one that cannot be resolved
    assert c.ledger.set_status(run_id, fence, "fetching", PREFIX)
    assert start_harvest(RunStep(run_id, fence)) == "already started; page 4 sent"
    c.client.delete("harvest")
    for lapsed in ("0-gone|*", run_id):
        c.client.delete(c.lease.keys.lease(lapsed))
    assert sweep_stale_runs() == ["0-gone|*", run_id]  # the first one closed
    assert c.ledger.run_ids() == [run_id]
    assert c.client.llen("harvest") == 1  # its next page, sent again
    c.client.delete("index", "harvest")


def test_no_harvest_takes_over_a_cluster_run_in_progress(data_dir: Path) -> None:
    """A redelivered start_harvest of a run under way is stale; an in-process harvest of a
    harvest whose cluster run waits (lease lapsed) is refused: it took the run's lease, fenced
    its tasks off, and the run's finalize then ended with the new run's lease."""
    from click.testing import CliRunner

    from harvester.cli.main import main
    from harvester.cluster.payloads import RunStep
    from harvester.cluster.work import start_harvest
    from harvester.store.cluster_store import cluster
    from harvester.store.redis_state import StaleRun

    base_url = "http://127.0.0.1:9/oai"
    state = _new_state(base_url)
    state.state = "running"
    run_id, fence = _open_run(base_url, state)
    c = cluster()
    assert c.ledger.set_status(run_id, fence, "fetched", PREFIX)
    with pytest.raises(StaleRun, match="is fetched, not queued"):
        start_harvest(RunStep(run_id, fence))
    c.client.delete(c.lease.keys.lease(run_id))  # nobody renews it: no index worker
    get_settings.cache_clear()
    refused = CliRunner().invoke(
        main, ["harvest", base_url, "--prefix", PREFIX], env=dict(os.environ)
    )
    assert refused.exit_code == 1
    assert "has a cluster run in progress (fetched, 0/0 pages indexed)" in refused.stderr
    assert c.ledger.get(run_id).fence == fence  # type: ignore[union-attr]  # untouched


def _queued_index_pages() -> list[int]:
    """The page numbers of the index_page messages waiting in the broker's `index` queue."""
    import base64

    from harvester.store.cluster_store import cluster

    pages = []
    for message in cluster().client.lrange("index", 0, -1):
        body = json.loads(base64.b64decode(json.loads(message)["body"]))
        pages.append(body[1]["payload"]["page_no"])
    return sorted(pages)


def test_a_recovered_run_sends_only_the_index_pages_never_queued(data_dir: Path) -> None:
    """With no worker on the index queue, a fetched run's lease lapses and every sweep took it
    over: each sent every pending page again, so the queue grew by the run's backlog per
    sweep. Queued messages wait; only a page whose message never went out is sent."""
    from harvester.cluster.runs import send_index_page, sweep_stale_runs
    from harvester.store.cluster_store import cluster

    base_url = "http://127.0.0.1:9/oai"
    state = _new_state(base_url)
    state.state, state.list_complete = "running", True
    run_id, fence = _open_run(base_url, state)
    c = cluster()
    assert c.ledger.set_status(run_id, fence, "fetched", PREFIX)
    run = c.ledger.get(run_id)
    assert run is not None
    for page_no in range(3):
        c.ledger.add_page(run_id, page_no, [f"oai:x:{page_no}"])
        if page_no < 2:  # the worker died after recording page 3, before sending it
            send_index_page(run_id, run.instance, base_url, PREFIX, page_no, [f"oai:x:{page_no}"])
    assert _queued_index_pages() == [0, 1]
    for _ in range(3):
        c.client.delete(c.lease.keys.lease(run_id))  # the lease lapses: nobody renews it
        assert sweep_stale_runs() == [run_id]
    assert _queued_index_pages() == [0, 1, 2]
    c.client.delete("index", "harvest")


def test_a_run_that_fails_before_choosing_its_prefix_still_shows_in_status(data_dir: Path) -> None:
    """start_harvest dead-lettered (Identify failed: a wrong URL, a server down) left no
    harvest state, so `ernte status` did not show the failed harvest at all."""
    from harvester.cluster.payloads import START_HARVEST, RunStep
    from harvester.cluster.runs import give_up
    from harvester.store.cluster_store import cluster

    base_url = "http://127.0.0.1:9/wrong"
    earlier = _new_state(base_url)  # an earlier, completed run
    earlier.watermark, earlier.run.records, earlier.run_started = "2026-01-01T00:00:00Z", 5, "x"
    run_id, fence = _open_run(base_url, earlier)

    give_up(START_HARVEST, RunStep(run_id, fence).to_json(), "HTTPFailure: connection refused")

    stored = _state(base_url)
    assert stored.state == "failed" and stored.watermark == "2026-01-01T00:00:00Z"
    assert stored.run.records == 0 and stored.run_started != "x", "the earlier run's figures"

    # A checkpoint that a later run resumes keeps its figures: they are that run's too.
    stopped = _new_state(base_url)
    stopped.state, stopped.token, stopped.next_page, stopped.run.records = "failed", "t1", 3, 7
    run_id, fence = _open_run(base_url, stopped)
    give_up(START_HARVEST, RunStep(run_id, fence).to_json(), "HTTPFailure: connection refused")
    kept = _state(base_url)
    assert kept.run.records == 7 and kept.token == "t1" and kept.next_page == 3
    assert stored.last_error == "DeadLettered: HTTPFailure: connection refused"
    assert run_id not in cluster().ledger.run_ids()
    rows = json.loads(_ernte("status", "--json"))["harvests"]
    assert any(row["source"] == stopped.source and row["state"] == "failed" for row in rows), rows


def test_a_queued_harvest_of_a_format_no_crosswalk_reads_warns_as_it_starts(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The in-process harvest warned; a run queued to the workers archived and quarantined
    every record without a word in the workers' log."""
    from harvester.cluster.payloads import RunStep
    from harvester.cluster.work import start_harvest

    with serve(list(generate_records(20, seed=5))) as base_url:
        source = resolve_source(base_url, get_settings().sources_file, "xoai")
        run_id, fence = _open_run(base_url, HarvestState.new(HarvestKey(source.key, "", "xoai")))
        with caplog.at_level("WARNING"):
            assert start_harvest(RunStep(run_id, fence)) == "started at page 1"
    [warning] = [r for r in caplog.records if "no crosswalk reads" in r.getMessage()]
    assert "'xoai'" in warning.getMessage() and getattr(warning, "source", None) == source.key
