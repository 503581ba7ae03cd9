"""Who may write what, at once: one run per harvest, one writer per embedded index.

Embedded mode uses advisory file locks under the data directory (released by the kernel when a
process dies, so a SIGKILLed harvest never leaves a stale lock). Cluster mode uses the Redis
lease of `harvester.store.redis_state.HarvestLease`, the same one Celery tasks take, so a harvest run
from the command line and one started by the schedule can never run side by side.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harvester.settings import Settings
from harvester.sources import Source
from harvester.store.state import HarvestKey, HarvestState, StateStore, harvest_run_id


class AlreadyRunning(RuntimeError):
    """Another process holds the harvest: the message says which harvest and who holds it."""


class IndexBusy(OSError):
    """The index lock was not free in time (a transient condition: retry later)."""


def _lock_path(settings: Settings, name: str) -> Path:
    """A safe, unique file name for any run id (setSpecs may hold `:`, `/` or be very long)."""
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:12]
    return settings.data_dir / "locks" / f"{readable}.{digest}.lock"


@contextmanager
def file_lock(path: Path, *, wait: bool, what: str, timeout: float | None = None) -> Iterator[None]:
    """An exclusive advisory lock on `path`. Without `wait`: AlreadyRunning if it is held; with
    `wait` and a `timeout`: IndexBusy when it is still held after that many seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                blocking = wait and deadline is None
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                if not wait:
                    raise AlreadyRunning(
                        f"{what} is already running ({holder}); not started"
                    ) from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise IndexBusy(f"{what}: lock held by {holder} for over {timeout} s") from None
                time.sleep(0.2)
        try:  # who holds it, for the messages of others; a full disk must not stop the run here
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
        except OSError:
            pass
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def index_write_lock(settings: Settings, timeout: float | None = None) -> Iterator[None]:
    """The embedded (tantivy) index allows one writer at a time: serialize the index writes of
    every process and thread on this host. Each holder commits and releases its writer before
    unlocking, so searchers in other processes see committed data. Elasticsearch needs none.
    With `timeout`, IndexBusy after that many seconds (Celery tasks retry later instead of
    running into their time limit)."""
    if not settings.embedded:
        yield
        return
    with file_lock(
        settings.data_dir / "index.lock", wait=True, what="the index writer", timeout=timeout
    ):
        yield


def run_is_held(settings: Settings, run_id: str) -> bool:
    """Whether a live process holds the harvest `run_id` (its file lock, or its cluster lease).
    Reads only: a lock file that does not exist is not held."""
    if settings.redis_url:
        from harvester.store.redis_state import HarvestLease, redis_client

        client = redis_client(settings.redis_url)
        try:
            return HarvestLease(client, settings.lease_seconds).holder(run_id) is not None
        finally:
            client.close()
    path = _lock_path(settings, run_id)
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


class LeaseGuardedStore:
    """A state store that refuses to save once the harvest's cluster lease was lost (Redis
    unreachable for longer than the lease): another run may own the harvest by then."""

    def __init__(self, inner: StateStore, lost: threading.Event, run_id: str) -> None:
        self.inner = inner
        self.lost = lost
        self.run_id = run_id

    def load(self, key: HarvestKey) -> HarvestState:
        return self.inner.load(key)

    def save(self, state: HarvestState) -> None:
        if self.lost.is_set():
            raise AlreadyRunning(f"harvest {self.run_id}: lease lost; another run may own it now")
        self.inner.save(state)

    def all(self) -> list[HarvestState]:
        return self.inner.all()


@contextmanager
def harvest_lock(
    settings: Settings, source: Source, set_spec: str
) -> Iterator[threading.Event | None]:
    """One run at a time per (source, set), cluster-wide with REDIS_URL (the lease Celery's
    `start_harvest` takes for the same key, kept alive by a heartbeat; yields the event that
    says it was lost), else on this host (a file lock; yields None)."""
    run_id = harvest_run_id(source.key, set_spec)
    if not settings.redis_url:
        with file_lock(_lock_path(settings, run_id), wait=False, what=f"harvest {run_id}"):
            yield None
        return
    from harvester.store.cluster_store import cluster
    from harvester.store.redis_state import HarvestLease

    # A cluster run of it whose lease lapsed (a fetched or given-up run waiting for index
    # workers, a worker that died) is not free to take: taking its lease would fence its tasks
    # off, and its finalize would end with this run's lease.
    waiting = cluster().ledger.get(run_id)
    if waiting is not None:
        raise AlreadyRunning(
            f"harvest {run_id} has a cluster run in progress ({waiting.status}, "
            f"{waiting.done}/{waiting.pages} pages indexed); not started (workers finish it; "
            "`ernte harvest SOURCE --queue` sends what it waits for again)"
        )
    lease = HarvestLease(cluster().client, settings.lease_seconds)
    fence = lease.acquire(run_id)
    if fence is None:
        raise AlreadyRunning(f"harvest {run_id} is already running in the cluster; not started")
    try:
        with lease.heartbeat(run_id, fence) as lost:
            yield lost
    finally:
        lease.release(run_id, fence)
