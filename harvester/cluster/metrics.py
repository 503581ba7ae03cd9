"""Prometheus metrics of the harvest cluster, kept in Redis and exported from one small endpoint.

Counters are HINCRBY'd in one Redis hash by whichever worker did the work, so they are
cluster-wide without prometheus_client's multiprocess mode (which prefork workers would need,
with its limits). A scrape reads the hash through a custom collector. Counters count work done,
so a page processed twice after a crash counts twice; the exact per-run numbers are the
idempotent per-page stats that `ernte status` shows.

    ernte_records_harvested_total{source}   records fetched and archived
    ernte_records_indexed_total{source}     documents written to the index
    ernte_records_failed_total{source}      records quarantined (normalize or index refused)
    ernte_harvest_duration_seconds{source}  duration of completed runs (sum and count)
    ernte_harvest_last_success_timestamp_seconds{source}   the last run that indexed every page
                                            (a run whose index pages were dead-lettered is no
                                            success: an alert on this gauge's age must fire)
    ernte_dead_letters                      tasks waiting in the dead-letter list
    ernte_redis_up                          1 if this scrape could read Redis, else 0
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import cast

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from harvester.store.dead_letters import DLQ_KEY
from harvester.store.redis_state import NAMESPACE

log = logging.getLogger(__name__)

METRICS_KEY = f"{NAMESPACE}:metrics"

_COUNTERS = {
    "records_harvested": "Records fetched from OAI-PMH and archived.",
    "records_indexed": "Documents written to the search index.",
    "records_failed": "Records quarantined (could not be normalized, or refused by the index).",
}


def _field(name: str, source: str) -> str:
    return f"{name}|{source}"


def count(client: redis.Redis, name: str, source: str, amount: int | float) -> None:
    """Add to a cluster-wide counter (`name` is one of the counters above, or duration)."""
    if amount:
        client.hincrbyfloat(METRICS_KEY, _field(name, source), float(amount))


def harvest_completed(
    client: redis.Redis, source: str, seconds: float, at: float, *, fully_indexed: bool
) -> None:
    """A run finished: its duration, and when, if every page of it was indexed."""
    pipe = client.pipeline()
    pipe.hincrbyfloat(METRICS_KEY, _field("harvest_duration_sum", source), seconds)
    pipe.hincrbyfloat(METRICS_KEY, _field("harvest_duration_count", source), 1)
    if fully_indexed:
        pipe.hset(METRICS_KEY, _field("harvest_last_success", source), at)
    pipe.execute()


REDIS_UP = "ernte_redis_up"
REDIS_UP_HELP = "1 when the metrics could be read from Redis at this scrape, else 0."


class RedisMetricsCollector(Collector):
    """Reads the counters from Redis at scrape time."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | SummaryMetricFamily]:
        try:
            raw = cast(dict[str, str], self.client.hgetall(METRICS_KEY))
        except redis.RedisError as exc:  # Redis restarting, a wrong password: say so, once
            log.warning("cannot read the metrics from Redis", extra={"error": str(exc)})
            yield GaugeMetricFamily(REDIS_UP, REDIS_UP_HELP, value=0)
            return
        yield GaugeMetricFamily(REDIS_UP, REDIS_UP_HELP, value=1)
        values: dict[str, dict[str, float]] = {}
        for field, text in raw.items():
            name, _, source = field.partition("|")
            values.setdefault(name, {})[source] = float(text)
        for name, help_text in _COUNTERS.items():
            family = CounterMetricFamily(f"ernte_{name}", help_text, labels=["source"])
            for source, value in sorted(values.get(name, {}).items()):
                family.add_metric([source], value)
            yield family
        duration = SummaryMetricFamily(
            "ernte_harvest_duration_seconds", "Duration of completed runs.", labels=["source"]
        )
        for source, total in sorted(values.get("harvest_duration_sum", {}).items()):
            runs = values.get("harvest_duration_count", {}).get(source, 0.0)
            duration.add_metric([source], count_value=int(runs), sum_value=total)
        yield duration
        last = GaugeMetricFamily(
            "ernte_harvest_last_success_timestamp_seconds",
            "When the last run of a source completed (Unix time).",
            labels=["source"],
        )
        for source, value in sorted(values.get("harvest_last_success", {}).items()):
            last.add_metric([source], value)
        yield last
        yield GaugeMetricFamily(
            "ernte_dead_letters",
            "Tasks in the dead-letter list (see `ernte dlq`).",
            value=float(cast(int, self.client.llen(DLQ_KEY))),
        )


def registry_for(client: redis.Redis) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisMetricsCollector(client))
    return registry


def serve(client: redis.Redis, port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on a background thread (worker process or `ernte metrics`)."""
    start_http_server(port, addr=host, registry=registry_for(client))
