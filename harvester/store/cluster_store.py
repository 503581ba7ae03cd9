"""The Redis-held pieces of cluster mode (state store, leases, run ledger), one bundle per process.

Plain Redis: importing this module does not configure Celery, so the command line's harvest
lock (`harvester.store.locks`) can take the same lease the tasks take without loading the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import redis

from harvester.settings import Settings, get_settings
from harvester.store.redis_state import HarvestLease, RedisStateStore, RunLedger, redis_client

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


@lru_cache(maxsize=1)
def cluster_settings() -> Settings:
    """The settings as Celery uses them, read once per `app.configure` (which clears this cache,
    so tests that change the environment see their values)."""
    return Settings()


def redis_url() -> str:
    return get_settings().redis_url or DEFAULT_REDIS_URL


@dataclass(frozen=True, slots=True)
class Cluster:
    """The Redis-held pieces of cluster mode, built once per process and Redis URL."""

    client: redis.Redis
    store: RedisStateStore
    lease: HarvestLease
    ledger: RunLedger


@lru_cache(maxsize=4)
def _cluster_for(url: str, lease_seconds: float) -> Cluster:
    client = redis_client(url)
    return Cluster(
        client=client,
        store=RedisStateStore(client, mirror=True),
        lease=HarvestLease(client, lease_seconds),
        ledger=RunLedger(client),
    )


def cluster() -> Cluster:
    """The bundle for the configured Redis (cached per URL and lease lifetime)."""
    return _cluster_for(redis_url(), cluster_settings().lease_seconds)


def reset() -> None:
    """Forget cached settings and connections (after the environment changed)."""
    cluster_settings.cache_clear()
    _cluster_for.cache_clear()
