"""Search latency with query-side compound splitting and norm-free subject scoring (issue 15).

    .venv/bin/python bench/bench_index.py --n 400000 --keep /tmp/ernte-bench-index
    .venv/bin/python bench/bench_query.py --index /tmp/ernte-bench-index/index

Opens an embedded index built by bench_index.py (the same ORLIS-like records) and times the
search a user's `ernte search` runs (3 facets, 10 hits, highlights) for two query mixes:
bench_index's mix (simple words, no compounds) and a mix of compounds typed whole, which the
query splits into parts. Each mix runs under the configuration before issue 15 (compound
splitting off, BM25 norms on the subject fields) and under the shipped one, interleaved round
by round in one process, so both see the same machine load (the machine is shared). Besides
wall-clock latency it reports the process CPU time per search, which other processes on a
busy machine inflate far less. Every search is counted afresh (`kept_searches=0`), as in the
one process of an `ernte search`: the queries repeat, and a server would find their facet
counts kept (bench_serve.py measures that). Appends the figures, with the date, the load average and the
git revision, to bench/results/query.txt.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_index import QUERIES as SIMPLE_QUERIES  # noqa: E402
from bench.bench_index import publish  # noqa: E402
from indexer.embedded.backend import EmbeddedBackend  # noqa: E402
from indexer.embedded.schema import TEXT_FIELDS  # noqa: E402
from indexer.search_model import SearchRequest  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "query.txt"
COMPOUND_QUERIES = [
    "Stadtentwicklung",
    "Stadtplanung",
    "Quartiersmanagement",
    "Sozialraum",
    "Verkehrsentwicklungsplanung",
    "Wohnungsbaupolitik",
    "Stadtteilentwicklung Berlin",
]
"""Compounds typed whole (not all of them headings), each split into parts by the query."""

SUBJECT_FIELDS = ("subject", "subject_exact", "subject_parts")


def backends(index: Path) -> dict[str, EmbeddedBackend]:
    before = tuple(
        dataclasses.replace(f, norms=True) if f.name in SUBJECT_FIELDS else f for f in TEXT_FIELDS
    )
    return {
        "before issue 15": EmbeddedBackend(
            index, text_fields=before, compound_boost=0.0, kept_searches=0
        ),
        "shipped": EmbeddedBackend(index, kept_searches=0),
    }


def time_mix(
    backend: EmbeddedBackend, queries: list[str], count: int, seed: int
) -> list[tuple[float, float]]:
    """(wall ms, process CPU ms) of `count` searches drawn from `queries`."""
    rng = random.Random(seed)
    latencies = []
    for _ in range(count):
        request = SearchRequest(
            query=rng.choice(queries), facets={"subject": 20, "year": 50, "type": 10}, limit=10
        )
        started, cpu = time.perf_counter(), time.process_time()
        backend.search(request)
        latencies.append(
            ((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
        )
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def git_revision() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(["git", "diff", "--quiet"], cwd=ROOT).returncode != 0
    return result.stdout.strip() + ("+changes" if dirty else "")


def run(index: Path, rounds: int, count: int) -> str:
    configured = backends(index)
    mixes = {
        "simple words (bench_index mix)": SIMPLE_QUERIES,
        "compounds typed whole": COMPOUND_QUERIES,
    }
    loads = [os.getloadavg()[0]]
    latencies: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for backend in configured.values():  # warm the caches once, untimed
        for mix in mixes.values():
            time_mix(backend, mix, 20, seed=1)
    for number in range(rounds):
        for mix_name, mix in mixes.items():
            for name, backend in configured.items():
                key = (mix_name, name)
                latencies.setdefault(key, []).extend(time_mix(backend, mix, count, seed=number))
        loads.append(os.getloadavg()[0])
    documents = configured["shipped"].count()
    lines = [
        f"# bench_query {datetime.now(UTC).isoformat(timespec='seconds')} docs={documents:,} "
        f"rev={git_revision()} load(1 min) {min(loads):.1f}-{max(loads):.1f} on "
        f"{os.cpu_count()} cores; {rounds} interleaved rounds x {count} searches "
        "(3 facets, 10 hits, highlights)",
    ]
    for mix_name in mixes:
        for name in configured:
            wall = [w for w, _ in latencies[(mix_name, name)]]
            cpu = [c for _, c in latencies[(mix_name, name)]]
            lines.append(
                f"{mix_name:<32} {name:<16} wall p50 {statistics.median(wall):6.1f} ms  "
                f"p95 {percentile(wall, 0.95):6.1f} ms | CPU p50 {statistics.median(cpu):6.1f} ms"
                f"  p95 {percentile(cpu, 0.95):6.1f} ms"
            )
    for backend in configured.values():
        backend.close()
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--index", type=Path, required=True, help="index dir (bench_index --keep)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=100, help="searches per mix and round")
    args = parser.parse_args()
    if not (args.index / "meta.json").exists():
        raise SystemExit(f"no index at {args.index}: build one with bench_index.py --keep DIR")
    publish(run(args.index, args.rounds, args.count), RESULTS)


if __name__ == "__main__":
    main()
