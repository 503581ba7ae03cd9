"""Load check of `ernte serve`: concurrent clients sending faceted searches to the real server
process over an index of ORLIS size.

    .venv/bin/python bench/bench_serve.py                      # 400,000 records, 20 clients
    .venv/bin/python bench/bench_serve.py --index-dir /tmp/big # reuse (or build there) an index

The index is built by bench_index.py's generator and archive, then `ernte index rebuild`
(`bench_index.build_archive` + `bench_index.rebuild`) unless `--index-dir` already holds one. The server is
started as a user starts it, `ernte serve --port N` with ERNTE_DATA_DIR pointing at the index's
data directory. Each client is a thread with its own HTTP connection that sends the page's
search: `/api/search` with the six facets of the search page (subject, type, year, author,
journal, language), the year histogram, and in half the requests one or two filters.

Three loads are measured: `closed` (every client sends its next search as soon as the answer
is in: the server is never idle, the worst case), `paced` (every client waits 0.5-1.5 s
between searches, like a person reading the hits) and `fresh` (paced, each search new to the
server). The mix repeats: 7 queries and 29 sets of filters, about 200 searches, so by the
`paced` load the server has counted the facets of nearly every one of them before and finds
them kept (`indexer.embedded.views.KeptCounts`), as it does for people paging through hits
or coming back to a search; `fresh` gives each search a facet size no earlier search of the
run asked with, so every one is counted afresh. Server-side time is what the server reports
in its `Server-Timing` header (from the request entering the application to the response
starting, including any wait for a thread or the CPU); client time adds HTTP and the client.
Target: server-side p95 under 50 ms with 20 clients. Results are appended to
bench/results/serve.txt.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_index  # noqa: E402
from bench.bench_harvest import git_revision  # noqa: E402
from tests.web_server import ernte_serve  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "serve.txt"
PAGE_FACETS = ("subject", "type", "year", "author", "journal", "language")
FILTERS = [
    "subject:Soziale Stadt",
    "subject:Stadtentwicklungsplanung",
    "subject:Verkehrsplanung",
    "type:Zeitschriftenaufsatz",
    "type:Monographie",
    "year:2005..2015",
    "year:2010",
]
_SERVER_TIMING = re.compile(r"app;dur=([\d.]+)")


@dataclass
class Load:
    name: str
    think: tuple[float, float]
    server_ms: list[float] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    hits: int = 0
    errors: int = 0
    seconds: float = 0.0
    seen: set[object] | None = None
    """For a load of searches that are each new to the server (see `_params`)."""


FRESH_SIZES = range(11, 61)
"""facet_size of the `fresh` load: the same search with another size is another search to
the counts a server keeps, at the same cost (each segment hands on 1,000 values whatever
the size, see `indexer.embedded.facets.SEGMENT_VALUES`)."""


def _params(rng: random.Random, seen: set[object] | None = None) -> list[tuple[str, str]]:
    """The page's search: one of the queries, half of them with one or two filters. With
    `seen` (the `fresh` load), a facet size that no earlier search of the run asked with,
    so that no search finds its facet counts kept from an earlier one."""
    while True:
        query = rng.choice(bench_index.QUERIES)
        filters = rng.sample(FILTERS, rng.choice((1, 2))) if rng.random() < 0.5 else []
        params = [("q", query), ("year_histogram", "1")]
        params += [("facet", name) for name in PAGE_FACETS]
        params += [("filter", f) for f in filters]
        if seen is None:
            return params
        unused = [n for n in FRESH_SIZES if (query, frozenset(filters), n) not in seen]
        if unused:  # else this search has had every size: draw another
            size = rng.choice(unused)
            seen.add((query, frozenset(filters), size))
            return [*params, ("facet_size", str(size))]


def _client(url: str, load: Load, count: int, seed: int, lock: threading.Lock) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    for _ in range(count):
        if load.think[1]:
            time.sleep(rng.uniform(*load.think))
        with lock:
            params = _params(rng, load.seen)
        started = time.perf_counter()
        try:
            answer = session.get(f"{url}/api/search", params=params, timeout=60)
        except requests.RequestException:
            with lock:
                load.errors += 1  # counted, not lost with the client's thread
            continue
        client_ms = (time.perf_counter() - started) * 1000
        timing = _SERVER_TIMING.search(answer.headers.get("server-timing", ""))
        with lock:
            if answer.status_code != 200 or timing is None:
                load.errors += 1
                continue
            load.client_ms.append(client_ms)
            load.server_ms.append(float(timing[1]))
            load.hits += answer.json()["total"]


def _run(url: str, load: Load, clients: int, per_client: int) -> None:
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_client, args=(url, load, per_client, seed, lock))
        for seed in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - started


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * share) - 1))]


def _line(load: Load, clients: int) -> str:
    done = len(load.server_ms)
    if not done:
        return f"{load.name}: no successful requests ({load.errors} errors)"
    p95 = _percentile(load.server_ms, 0.95)
    return (
        f"{load.name:<7} {clients} clients, {done} searches in {load.seconds:.1f} s "
        f"({done / load.seconds:.1f}/s), {load.errors} errors, avg {load.hits / done:,.0f} hits\n"
        f"        server-side p50 {statistics.median(load.server_ms):.1f} ms, "
        f"p95 {p95:.1f} ms, p99 {_percentile(load.server_ms, 0.99):.1f} ms "
        f"-> target p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'}\n"
        f"        client-side p50 {statistics.median(load.client_ms):.1f} ms, "
        f"p95 {_percentile(load.client_ms, 0.95):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=400_000, help="records (when building)")
    parser.add_argument("--index-dir", type=Path, help="data directory holding index/")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="ernte serve --workers"
    )
    parser.add_argument("--closed", type=int, default=30, help="searches per client, closed")
    parser.add_argument("--paced", type=int, default=20, help="searches per client, paced")
    args = parser.parse_args()

    data_dir = args.index_dir or Path(tempfile.mkdtemp(prefix="ernte-bench-serve-"))
    built = ""
    if not (data_dir / "index").exists():
        live, archive_s = bench_index.build_archive(data_dir, args.n)
        made = bench_index.rebuild(data_dir, None)  # `ernte index rebuild`, as a user runs it
        built = (
            f"built: {args.n:,} generated records ({live:,} live) archived in {archive_s:.0f} s,"
            f" indexed by `ernte index rebuild` in {made.wall_s:.0f} s"
        )
    revision = git_revision()
    load_before = os.getloadavg()[0]
    options = ("--workers", str(args.workers))
    with ernte_serve(data_dir, data_dir / "serve.log", *options, timeout=120) as server:
        count = requests.get(f"{server.url}/api/search?limit=0", timeout=60).json()["total"]
        warm = Load("warm-up", (0.0, 0.0))
        _run(server.url, warm, 2, 10)
        closed = Load("closed", (0.0, 0.0))
        _run(server.url, closed, args.clients, args.closed)
        paced = Load("paced", (0.5, 1.5))
        _run(server.url, paced, args.clients, args.paced)
        fresh = Load("fresh", (0.5, 1.5), seen=set())
        _run(server.url, fresh, args.clients, args.paced)
    report = "\n".join(
        [
            f"# bench_serve {datetime.now(UTC).isoformat(timespec='seconds')} rev {revision} "
            f"records={count:,} cpus={os.cpu_count()} workers={args.workers} "
            f"load average at start {load_before:.1f}",
            "search: /api/search, 6 facets + year histogram, half with 1-2 filters; the mix "
            "repeats (7 queries x 29 filter sets), as people page and come back; `fresh`: "
            "the same mix, each search new to the server (no kept facet counts)",
            _line(closed, args.clients),
            _line(paced, args.clients),
            _line(fresh, args.clients),
            "",
        ]
    )
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(report + "\n")
    if built:
        print(built)


if __name__ == "__main__":
    main()
