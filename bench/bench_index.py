"""`ernte index rebuild` end to end, and faceted search while a harvest writes.

    .venv/bin/python bench/bench_index.py                  # 400,000 records (the ORLIS size)
    .venv/bin/python bench/bench_index.py --n 100000 --repeat 3

What a user waits for after changing the analysis is `ernte index rebuild`: read every raw
archive, normalize, build documents, analyze, write a fresh embedded index, swap it in. So
this benchmark runs exactly that command as a subprocess (interpreter start-up included) over a
raw archive of N generated ORLIS-like `dim` records (harvester.demo.generate: German titles,
abstracts, subject headings, authors; 3 % tombstones), written straight into the archive the
way a harvest stores them. Per run: wall time, records/s (live records indexed / wall), the
command's CPU time (its worker processes included) and peak RSS (the largest single process:
the command or one worker), and the machine's load average before the run. The median of
`--repeat` runs is the figure (target: >= 10,000 records/s on 2 cores, 400,000 in < 40 s).

Then the rebuilt index is searched 200 times with three facets (subject, year, type): once
with the machine otherwise quiet, and once while `ernte harvest` writes 20,000 more records
into the same index (target: p95 < 30 ms at 400,000 records while a harvest writes).

Every run is appended to bench/results/index.txt with date, git revision and load average.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_harvest import ERNTE, Provider, git_revision, machine, run_measured  # noqa: E402
from harvester.demo.generate import generate_records  # noqa: E402
from harvester.demo.provider import NS_DIM, write_dim  # noqa: E402
from harvester.model import RawRecord  # noqa: E402
from harvester.oai.client import OAI_NS  # noqa: E402
from harvester.sources import adhoc_key  # noqa: E402
from harvester.store.archive import RawArchive, archive_path  # noqa: E402
from indexer.embedded.backend import EmbeddedBackend  # noqa: E402
from indexer.search_model import SearchRequest  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "index.txt"
QUERIES = ["Stadt", "Planung", "Quartier", "Verkehr", "Wohnen", "Entwicklung Stadt", "Klima"]
TARGET_RATE = 10_000
TARGET_P95_MS = 30.0
REVISION = "unknown"


def _record_xml(sample: object) -> bytes:
    """The `<record>` element as a DSpace server sends it (header + dim metadata)."""
    record = etree.Element(f"{{{OAI_NS}}}record", nsmap={None: OAI_NS, "dim": NS_DIM})
    header = etree.SubElement(record, f"{{{OAI_NS}}}header")
    if sample.deleted:  # type: ignore[attr-defined]
        header.set("status", "deleted")
    etree.SubElement(header, f"{{{OAI_NS}}}identifier").text = sample.identifier  # type: ignore[attr-defined]
    etree.SubElement(header, f"{{{OAI_NS}}}datestamp").text = sample.datestamp  # type: ignore[attr-defined]
    for spec in sample.sets:  # type: ignore[attr-defined]
        etree.SubElement(header, f"{{{OAI_NS}}}setSpec").text = spec
    if not sample.deleted:  # type: ignore[attr-defined]
        write_dim(etree.SubElement(record, f"{{{OAI_NS}}}metadata"), sample)  # type: ignore[arg-type]
    return etree.tostring(record, encoding="utf-8")


def build_archive(data_dir: Path, n: int) -> tuple[int, float]:
    """A raw archive of n generated records, as `ernte harvest` would store it; (live, s)."""
    started = time.perf_counter()
    live = 0
    with RawArchive(archive_path(data_dir / "archive", "bench", "dim")) as archive:
        page: list[RawRecord] = []
        for sample in generate_records(n, seed=2026):
            live += not sample.deleted
            page.append(
                RawRecord(
                    identifier=sample.identifier,
                    datestamp=sample.datestamp,
                    deleted=sample.deleted,
                    sets=list(sample.sets),
                    xml=_record_xml(sample),
                    metadata_prefix="dim",
                )
            )
            if len(page) == 1000:
                archive.append(page, "bench")
                page = []
        archive.append(page, "bench")
    return live, time.perf_counter() - started


@dataclass(slots=True)
class RebuildRun:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    documents: int
    load_before: float
    anonymous_peak_mb: float = 0.0
    """The largest sum of anonymous RSS of the command and its workers (bench_harvest._rss_mb)."""

    @property
    def rate(self) -> float:
        return self.documents / self.wall_s


def rebuild(data_dir: Path, workers: int | None) -> RebuildRun:
    env = {**os.environ, "ERNTE_DATA_DIR": str(data_dir)}
    for name in ("ES_URL", "REDIS_URL", "ERNTE_ES_URL", "ERNTE_REDIS_URL"):
        env.pop(name, None)
    if workers is not None:
        env["ERNTE_INDEX_WORKERS"] = str(workers)
    load = os.getloadavg()[0]
    argv = [ERNTE, "index", "rebuild"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, cpu, peak, stdout, samples = run_measured(argv, env=env, cwd=data_dir)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # run_measured's wait4 counts the command only; its workers are its children, whose
    # time reaches this process's RUSAGE_CHILDREN once the command reaped them.
    cpu_all = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak_all = max(peak, after.ru_maxrss / 1024)
    match = re.search(r": (\d+) documents", stdout)
    if match is None:
        raise RuntimeError(f"unexpected rebuild output: {stdout!r}")
    anonymous = max((a for _, a in samples), default=0.0)
    return RebuildRun(wall, max(cpu, cpu_all), peak_all, int(match.group(1)), load, anonymous)


def search_latencies(
    index_dir: Path, queries: int, stop: threading.Event | None = None
) -> list[float]:
    """Milliseconds per faceted search; with `stop`, searches until it is set (at least
    `queries` of them)."""
    backend = EmbeddedBackend(index_dir, kept_searches=0)  # as `ernte search`: one search each
    rng = random.Random(7)
    latencies: list[float] = []
    try:
        while len(latencies) < queries or (stop is not None and not stop.is_set()):
            request = SearchRequest(
                query=rng.choice(QUERIES), facets={"subject": 20, "year": 50, "type": 10}, limit=10
            )
            started = time.perf_counter()
            backend.search(request)
            latencies.append((time.perf_counter() - started) * 1000)
            if stop is not None and stop.is_set() and len(latencies) >= queries:
                break
    finally:
        backend.close()
    return latencies


def percentiles(latencies: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def search_during_harvest(data_dir: Path, harvest_n: int, queries: int) -> tuple[list[float], int]:
    """Search the index while `ernte harvest` writes harvest_n more records into it."""
    with Provider(harvest_n, 100) as provider:
        env = {**os.environ, "ERNTE_DATA_DIR": str(data_dir), "ERNTE_PAGE_DELAY": "0"}
        for name in ("ES_URL", "REDIS_URL", "ERNTE_ES_URL", "ERNTE_REDIS_URL"):
            env.pop(name, None)
        harvest = subprocess.Popen(
            [
                ERNTE,
                "harvest",
                provider.url,
                "--prefix",
                "dim",
                "--full",
            ],
            env=env,
            cwd=data_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stop = threading.Event()
        watcher = threading.Thread(target=lambda: (harvest.wait(), stop.set()), daemon=True)
        watcher.start()
        latencies = search_latencies(data_dir / "index", queries, stop)
        harvest.wait()
        if harvest.returncode != 0:
            raise RuntimeError(f"the concurrent harvest failed ({harvest.returncode})")
        forget_harvest(data_dir, adhoc_key(provider.url))
    return latencies, len(latencies)


def forget_harvest(data_dir: Path, source: str) -> None:
    """Remove the concurrent harvest's archives and state rows, so that a `--keep` directory
    holds the bench archive alone again and the next run's rebuild indexes only that (the
    provider's port, and so its source key, differs each run). The index keeps the harvested
    records until that rebuild replaces it."""
    shutil.rmtree(data_dir / "archive" / source, ignore_errors=True)
    with sqlite3.connect(data_dir / "state.sqlite") as state:
        state.execute("DELETE FROM harvests WHERE key LIKE ?", (f"{source}|%",))


def report(
    n: int, live: int, archive_s: float, runs: list[RebuildRun], quiet: list[float],
    during: list[float] | None, harvest_n: int, workers: int | None, note: str,
) -> str:  # fmt: skip
    when = datetime.now(UTC).isoformat(timespec="seconds")
    median_wall = statistics.median(r.wall_s for r in runs)
    median_rate = statistics.median(r.rate for r in runs)
    verdict = "meets" if median_rate >= TARGET_RATE else "MISSES"
    lines = [
        f"# bench_index {when} rev {REVISION}  `ernte index rebuild`, n={n:,} dim records"
        f" ({live:,} live), median of {len(runs)}"
        + (f", ERNTE_INDEX_WORKERS={workers}" if workers is not None else "")
        + (f"  [{note}]" if note else ""),
        f"machine: {machine()}; shared with other work: see each run's load average",
        f"archive built in {archive_s:.1f} s (not part of the figure)",
    ]
    for number, run in enumerate(runs, 1):
        lines.append(
            f"  run {number}: {run.wall_s:7.2f} s  {run.rate:8,.0f} records/s  cpu {run.cpu_s:6.1f} s"
            f"  peak RSS {run.peak_rss_mb:5.0f} MB (anonymous, with workers: {run.anonymous_peak_mb:.0f})"
            f"  load average before {run.load_before:.1f}"
        )
    lines.append(
        f"ernte index rebuild (as a user runs it): median {median_wall:.2f} s ="
        f" {median_rate:,.0f} records/s ({verdict} the {TARGET_RATE:,}/s target)"
    )
    p50, p95 = percentiles(quiet)
    lines.append(
        f"search, 3 facets, {len(quiet)} queries, nothing writing: p50 {p50:.1f} ms, p95 {p95:.1f} ms"
        f" (load average {os.getloadavg()[0]:.1f})"
    )
    if during is not None:
        p50, p95 = percentiles(during)
        verdict = "meets" if p95 < TARGET_P95_MS else "MISSES"
        lines.append(
            f"search, 3 facets, {len(during)} queries while `ernte harvest` writes {harvest_n:,}"
            f" records: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({verdict} the {TARGET_P95_MS:.0f} ms"
            " target)"
        )
    return "\n".join(lines) + "\n"


def publish(report: str, results: Path) -> None:
    """Print a report and append it to its results file (bench/results/...)."""
    print(report)
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a", encoding="utf-8") as handle:
        handle.write(report + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400_000, help="records in the archive")
    parser.add_argument("--repeat", type=int, default=3, help="rebuild runs (median counts)")
    parser.add_argument("--queries", type=int, default=200, help="searches to time")
    parser.add_argument(
        "--harvest-n",
        type=int,
        default=20_000,
        help="records the concurrent harvest writes (0: skip)",
    )
    parser.add_argument("--workers", type=int, help="ERNTE_INDEX_WORKERS for the rebuild")
    parser.add_argument("--keep", type=Path, help="data directory to keep (and reuse)")
    parser.add_argument("--note", default="", help="a label for this run in the results file")
    parser.add_argument("--no-write", dest="write", action="store_false", help="print only")
    args = parser.parse_args(argv)
    global REVISION
    REVISION = git_revision()  # of the code the runs measure (taken before they start)
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="ernte-bench-index-"))
    try:
        if args.keep and (data_dir / "archive").exists():
            for left in sorted((data_dir / "archive").iterdir()):
                if left.is_dir() and left.name != "bench":  # a stopped run's concurrent harvest
                    print(f"removing {left.name}, left by a run that did not finish", flush=True)
                    forget_harvest(data_dir, left.name)
            with RawArchive(archive_path(data_dir / "archive", "bench", "dim")) as archive:
                live, archive_s = archive.count_latest()[0], 0.0
        else:
            live, archive_s = build_archive(data_dir, args.n)
        print(f"archive: {args.n:,} records ({live:,} live) in {archive_s:.1f} s", flush=True)
        runs = []
        for number in range(args.repeat):
            runs.append(rebuild(data_dir, args.workers))
            run = runs[-1]
            print(f"  run {number + 1}: {run.wall_s:.2f} s, {run.rate:,.0f} records/s,"
                  f" peak RSS {run.peak_rss_mb:.0f} MB, load {run.load_before:.1f}", flush=True)  # fmt: skip
            if run.documents != live:
                raise RuntimeError(f"rebuild indexed {run.documents}, expected {live}")
        quiet = search_latencies(data_dir / "index", args.queries)
        during = None
        if args.harvest_n:
            during, _ = search_during_harvest(data_dir, args.harvest_n, args.queries)
        text = report(
            args.n, live, archive_s, runs, quiet, during, args.harvest_n, args.workers, args.note
        )
    finally:
        if args.keep is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(text)
    if args.write:
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
        print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
