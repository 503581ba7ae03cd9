"""Builds the pieces a command needs from the one settings object, so that no command wires them
by hand: HTTP client, OAI client, state store, index backend, harvester."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from harvester.config_files import KIBANA_OBJECTS, STOPWORDS, config_file, part_list_file
from harvester.errors import ErnteError
from harvester.oai.client import OAIClient
from harvester.oai.http import HTTPClient, RetryPolicy
from harvester.redact import redact_data
from harvester.run.harvest import Harvester, HarvestOptions, PageSink, Progress
from harvester.run.pipeline import (
    IndexingSink,
    NormalizeOnlySink,
    check_crosswalk,
    warn_without_crosswalk,
)
from harvester.settings import Settings
from harvester.sources import Source, adhoc_key, harvest_command, source_key
from harvester.store.archive import RawArchive
from harvester.store.state import HarvestState, SQLiteStateStore, StateStore, harvest_run_id
from indexer import word_lists
from indexer.backend import IndexBackend

if TYPE_CHECKING:
    from indexer.elastic.connection import ConnectionOptions


class NoIndexYet(ErnteError, ValueError):
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
        max_response_bytes=settings.max_response_bytes,
    )


def oai_client(settings: Settings, base_url: str) -> OAIClient:
    return OAIClient(base_url, http_client(settings))


def state_store(settings: Settings, *, readonly: bool = False) -> StateStore:
    """Redis when REDIS_URL is set (cluster mode), else the local SQLite file (`readonly`:
    for reading only, also in a read-only data directory)."""
    if settings.redis_url:
        from harvester.store.redis_state import RedisStateStore

        return RedisStateStore.from_url(settings.redis_url, mirror=True)
    return SQLiteStateStore(settings.state_file, readonly=readonly)


def use_configured_word_lists(settings: Settings) -> None:
    """Analyze with the word lists the configuration selects (config directory, or a part list
    grown under the data directory, else the packaged ones)."""
    word_lists.use_word_lists(
        stopwords=config_file(STOPWORDS, settings.config_dir),
        compound_parts=part_list_file(settings.data_dir, settings.config_dir),
    )


def es_connection(settings: Settings) -> ConnectionOptions:
    """How to reach ES_URL, with the credentials and TLS settings from the environment."""
    from indexer.elastic.connection import ConnectionOptions, ElasticConnectionError

    if not settings.es_url:
        raise ElasticConnectionError(
            "ES_URL is not set: ernte runs in embedded mode and has no Elasticsearch to use"
        )
    return ConnectionOptions(
        url=settings.es_url,
        api_key=settings.es_api_key,
        username=settings.es_username,
        password=settings.es_password,
        ca_certs=settings.es_ca_certs,
        verify_certs=settings.es_verify_certs,
    )


def import_kibana_objects(settings: Settings) -> int:
    """`ernte kibana setup`: the configured saved objects into KIBANA_URL; returns their count."""
    from indexer.elastic.kibana import import_saved_objects

    verify: bool | str = settings.es_verify_certs
    if settings.es_verify_certs and settings.es_ca_certs is not None:
        verify = str(settings.es_ca_certs)
    return import_saved_objects(
        settings.kibana_url,
        [config_file(KIBANA_OBJECTS, settings.config_dir)],
        es_connection(settings) if settings.es_url else None,
        verify=verify,
    )


def index_backend(settings: Settings, *, create: bool = True) -> IndexBackend:
    """Elasticsearch when ES_URL is set, else the embedded on-disk index.

    With `create` (writers), the index (and in Elasticsearch its template and alias) is made
    if missing; searches pass `create=False` and leave the cluster untouched.
    """
    use_configured_word_lists(settings)
    backend: IndexBackend
    if settings.es_url:
        from indexer.elastic.backend import ElasticBackend

        backend = ElasticBackend.connect(es_connection(settings), settings.es_index_alias)
    else:
        from indexer.embedded.backend import EmbeddedBackend

        if not create and not settings.index_dir.exists():
            # A search must not create an index (it could land in the middle of a rebuild's
            # directory swap); there is simply nothing to search yet.
            raise NoIndexYet(
                f"no index at {settings.index_dir} yet: run `ernte harvest SOURCE` "
                "or `ernte index SOURCE` first"
            )
        from harvester.run.guarded_index import GuardedIndex

        backend = GuardedIndex(EmbeddedBackend(settings.index_dir), settings.index_dir)
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
    check_crosswalk(source)

    def sink(src: Source, prefix: str, archive: RawArchive) -> PageSink:
        warn_without_crosswalk(src, prefix)
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


@dataclass
class StatusReport:
    """Every harvest (a run whose process is gone shown as `died`), and in cluster mode the
    runs in progress, the dead letters and the runs Redis forgot: what `ernte status` and
    `/api/status` show."""

    harvests: list[HarvestState]
    dead_letters: list[dict[str, Any]] | None = None
    vanished: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `ernte status --json` (passwords in URLs masked)."""
        report: dict[str, Any] = {"harvests": [s.to_dict() for s in self.harvests]}
        if self.runs is not None:
            report["runs"] = self.runs
        if self.dead_letters is not None:
            report["dead_letters"] = self.dead_letters
        if self.vanished:
            report["vanished"] = self.vanished
        return dict(redact_data(report))


def earlier_base_urls(settings: Settings) -> dict[str, str]:
    """Key -> base URL of the harvests of bare URLs (what `ernte status` and the messages name
    them by), also those whose state only the data directory kept after a Redis restart."""
    store = state_store(settings, readonly=True)
    states = store.all()
    if settings.redis_url:
        from harvester.store.redis_state import RedisStateStore

        if isinstance(store, RedisStateStore):
            states += [s for s, _ in store.vanished()]
    # A configured source's state has a base URL too: a name removed from sources.yaml must be
    # an unknown source, not a harvest of its old URL under another key.
    return {
        s.source: s.base_url for s in states if s.base_url and s.source == adhoc_key(s.base_url)
    }


def _cluster_runs(harvests: list[HarvestState]) -> list[dict[str, Any]]:
    """The cluster's runs in progress, from the run ledger: a run waiting for a worker
    (`queued`, no harvest state yet), fetching, `fetched` with index pages still queued, or
    `failed` (given up) while the pages it fetched are still being indexed.
    A running harvest's counts take in its pages indexed so far (a cluster run adds them to
    its state only when it completes, so `indexed` read 0 until the end)."""
    from harvester.oai.datestamps import iso_from_timestamp
    from harvester.store.cluster_store import cluster

    ledger = cluster().ledger
    by_key = {str(s.key): s for s in harvests}
    runs = []
    for run_id in ledger.run_ids():
        run = ledger.get(run_id)
        if run is None:  # completed meanwhile
            continue
        totals, dead = ledger.page_totals(run_id)
        key = source_key(run.spec.source_ref)
        harvest = by_key.get(str(run.state_key(key))) if run.state_prefix else None
        draining = run.status == "failed"  # given up; its fetched pages are being indexed
        states = ("failed",) if draining else ("running", "died")
        if harvest is not None and harvest.state in states and harvest.counted_run != run.instance:
            harvest.run.add(totals)
        runs.append(
            {
                "run": run_id,
                "source": key,
                "set": run.spec.set_spec,
                "prefix": run.state_prefix or run.spec.requested_prefix,
                "status": run.status,
                "started": iso_from_timestamp(run.started),
                "pages_fetched": run.pages,
                "pages_indexed": run.done,
                "indexed": totals.indexed,
                "quarantined": totals.quarantined,
                "index_pages_dead_lettered": dead,
            }
        )
    return runs


def status_report(settings: Settings) -> StatusReport:
    """Read every harvest's state (read-only: works on a read-only data directory)."""
    from harvester.store.locks import run_is_held

    store = state_store(settings, readonly=True)
    harvests = store.all()
    for s in harvests:
        if s.state == "running" and not run_is_held(settings, harvest_run_id(s.source, s.set_spec)):
            s.state = "died"
    report = StatusReport(harvests)
    if settings.redis_url:
        from harvester.store.dead_letters import entries
        from harvester.store.redis_state import RedisStateStore

        report.dead_letters = entries()
        report.runs = _cluster_runs(harvests)
        if isinstance(store, RedisStateStore):
            report.vanished = [
                f"harvest {s.key} ({s.state}, page {s.next_page}, watermark {s.watermark}) is "
                f"gone from Redis (restarted without persistence?); its last checkpoint is kept "
                f"in {path}, and `{harvest_command(s.source, s.set_spec, s.prefix)}` continues "
                "from it"
                for s, path in store.vanished()
            ]
    return report
