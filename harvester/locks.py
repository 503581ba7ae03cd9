"""Who may write what, at once: one run per harvest, one writer per embedded index.

Embedded mode uses advisory file locks under the data directory (released by the kernel when a
process dies, so a SIGKILLed harvest never leaves a stale lock). Cluster mode uses the Redis
lease of `harvester.redis_state.HarvestLease`, the same one Celery tasks take, so a harvest run
from the command line and one started by the schedule can never run side by side.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harvester.settings import Settings
from harvester.sources import Source
from harvester.state import harvest_run_id


class AlreadyRunning(RuntimeError):
    """Another process holds the harvest: the message says which harvest and who holds it."""


def _lock_path(settings: Settings, name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return settings.data_dir / "locks" / f"{safe}.lock"


@contextmanager
def file_lock(path: Path, *, wait: bool, what: str) -> Iterator[None]:
    """An exclusive advisory lock on `path`; without `wait`, AlreadyRunning if it is held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise AlreadyRunning(f"{what} is already running ({holder}); not started") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def index_write_lock(settings: Settings) -> Iterator[None]:
    """The embedded (tantivy) index allows one writer at a time: serialize the index writes of
    every process and thread on this host. Each holder commits and releases its writer before
    unlocking, so searchers in other processes see committed data. Elasticsearch needs none."""
    if not settings.embedded:
        yield
        return
    with file_lock(settings.data_dir / "index.lock", wait=True, what="an index writer"):
        yield


@contextmanager
def harvest_lock(settings: Settings, source: Source, set_spec: str) -> Iterator[None]:
    """One run at a time per (source, set), cluster-wide with REDIS_URL (the lease Celery's
    `start_harvest` takes for the same key), else on this host (a file lock)."""
    run_id = harvest_run_id(source.key, set_spec)
    if not settings.redis_url:
        with file_lock(_lock_path(settings, run_id), wait=False, what=f"harvest {run_id}"):
            yield
        return
    from harvester.redis_state import HarvestLease
    from harvester.tasks import cluster

    lease = HarvestLease(cluster().client, settings.lease_seconds)
    fence = lease.acquire(run_id)
    if fence is None:
        raise AlreadyRunning(f"harvest {run_id} is already running in the cluster; not started")
    try:
        with lease.heartbeat(run_id, fence):
            yield
    finally:
        lease.release(run_id, fence)
