"""Builds the pieces a command needs from the one settings object, so that no command wires them
by hand: HTTP client, OAI client, state store, index backend, harvester."""

from __future__ import annotations

import os
from datetime import timedelta

from harvester.archive import RawArchive
from harvester.harvest import Harvester, HarvestOptions, PageSink, Progress
from harvester.http import HTTPClient, RetryPolicy
from harvester.oai import OAIClient
from harvester.pipeline import IndexingSink, NormalizeOnlySink
from harvester.settings import Settings
from harvester.sources import Source
from harvester.state import SQLiteStateStore, StateStore
from indexer.backend import IndexBackend


class NoIndexYet(ValueError):
    """A search before anything was indexed."""


def http_client(settings: Settings) -> HTTPClient:
    return HTTPClient(
        user_agent=settings.user_agent,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        policy=RetryPolicy(
            max_retries=settings.max_retries,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            retry_after_cap=settings.retry_after_cap,
        ),
    )


def oai_client(settings: Settings, base_url: str) -> OAIClient:
    return OAIClient(base_url, http_client(settings))


def state_store(settings: Settings) -> StateStore:
    """Redis when REDIS_URL is set (cluster mode), else the local SQLite file."""
    if settings.redis_url:
        from harvester.redis_state import RedisStateStore

        return RedisStateStore.from_url(settings.redis_url)
    return SQLiteStateStore(settings.state_file)


def index_backend(settings: Settings, *, create: bool = True) -> IndexBackend:
    """Elasticsearch when ES_URL is set, else the embedded on-disk index.

    With `create` (writers), the index (and in Elasticsearch its template and alias) is made
    if missing; searches pass `create=False` and leave the cluster untouched.
    """
    backend: IndexBackend
    if settings.es_url:
        from indexer.elastic.backend import ElasticBackend

        backend = ElasticBackend.from_settings(settings)
    else:
        from indexer.embedded import EmbeddedBackend

        if not create and not settings.index_dir.exists():
            # A search must not create an index (it could land in the middle of a rebuild's
            # directory swap); there is simply nothing to search yet.
            raise NoIndexYet(
                f"no index at {settings.index_dir} yet: run `ernte harvest SOURCE` "
                "or `ernte index SOURCE` first"
            )
        backend = EmbeddedBackend(settings.index_dir)
    if create:
        backend.create()
    return backend


def index_workers(settings: Settings) -> int:
    """Worker processes for normalizing and analyzing (settings.index_workers, or per core)."""
    if settings.index_workers is not None:
        return max(0, settings.index_workers)
    cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, 2)


def harvester(
    settings: Settings,
    source: Source,
    progress: Progress,
    backend: IndexBackend | None,
    store: StateStore | None = None,
) -> Harvester:
    """A harvester for one source; with no backend, pages are normalized but not indexed."""

    def sink(src: Source, prefix: str, archive: RawArchive) -> PageSink:
        if backend is None:
            return NormalizeOnlySink(src, archive)
        return IndexingSink(
            src,
            archive,
            backend,
            workers=min(1, index_workers(settings)),
            commit_interval=settings.index_commit_interval,
        )

    delay = source.page_delay if source.page_delay is not None else settings.page_delay
    return Harvester(
        client=oai_client(settings, source.base_url),
        store=store or state_store(settings),
        archive_dir=settings.archive_dir,
        sink_factory=sink,
        progress=progress,
        options=HarvestOptions(
            overlap=timedelta(seconds=settings.overlap_seconds),
            page_delay=delay,
            max_empty_pages=settings.max_empty_pages,
            reconcile_max_share=settings.reconcile_max_share,
        ),
    )
