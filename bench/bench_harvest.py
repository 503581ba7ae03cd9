"""Harvest throughput and memory: `ernte harvest` against a bare sickle loop over the same server.

    .venv/bin/python bench/bench_harvest.py                 # N = 10,000 and 100,000, 3 runs each
    .venv/bin/python bench/bench_harvest.py --n 10000 --repeat 5
    .venv/bin/python bench/bench_harvest.py --workers 0 --workers 1   # compare ERNTE_INDEX_WORKERS
    .venv/bin/python bench/bench_harvest.py --no-indexed    # skip the indexed harvest

The figure that counts (issue 14) is `ernte harvest` as a user runs it (archive + normalize +
embedded index, every record searchable when the command exits; the benchmark checks that the
index holds every live record afterwards) over the bare sickle record loop in the same run:
target 2.0x, aim 1.5x, at 10,000 and 100,000 records. `--no-index` is measured too, and says
so: it leaves out the index, the step that costs most.

Why: a harvester's own overhead (strict parsing, archiving, checkpointing, normalizing) must not
dominate the time a harvest of ORLIS (~400,000 records) takes, and its memory must not grow
with the size of the repository. The aim (issue 2): `ernte harvest --no-index` within 1.5x the
time of the simplest possible client, a bare sickle loop, and a peak RSS that is the same for
10,000 and 100,000 records.

How: the demo provider, its lists rendered before any client runs
(`bench/prerendered_provider.py --generate N`, pages of 100, see `Provider`), runs in its own
process, so its CPU is not charged to the clients. Every client runs as a subprocess
too, so that its peak RSS is its own (`os.wait4` returns the rusage of exactly that child):

1. sickle, records   `Sickle(url).ListRecords(metadataPrefix='oai_dc')`, every record parsed
                     into a sickle `Record` (the baseline);
2. sickle, pages     the same with `iterator=OAIResponseIterator` (HTTP + one parse per page:
                     what the network and the server alone cost);
3. ernte --no-index  `ernte harvest URL --prefix oai_dc --no-index --full`: strict parse,
                     raw archive (zstd + SQLite), checkpoint per page, normalization;
4. ernte harvest     the same without `--no-index`: also the embedded index, what the
                     command does by default (the headline figure).

Times are wall-clock times of the whole subprocess (interpreter start and imports included:
what a user waits for); ernte's own rate without start-up, read back from its state store, is
printed alongside. The ratio is ernte's time over the sickle record loop's. Clients run
interleaved, `--repeat` times each; the median run counts, and every run is listed with the
load average at its start (the machine may be shared). Results are appended to
bench/results/harvest.txt with the date and git revision.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harvester.store.state import SQLiteStateStore  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "harvest.txt"
PYTHON = sys.executable
ERNTE = str(Path(PYTHON).parent / "ernte")
"""The `ernte` command beside this Python, the console script a user runs (with the start-up
and Ctrl-C handling of `harvester.cli.launch`, which `python -m harvester.cli.main` skips)."""
AIM_RATIO = 1.5
TARGET_RATIO = 2.0
PAGE_SIZE = 100
PROVIDER_START_TIMEOUT = 300.0
PREFIX = "dim"
REVISION = "unknown"

SICKLE_WORKER = """
import sys, time
from sickle import Sickle
from sickle.iterator import OAIResponseIterator
url, mode = sys.argv[1], sys.argv[2]
started = time.perf_counter()
if mode == "pages":
    client = Sickle(url, iterator=OAIResponseIterator)
else:
    client = Sickle(url)
count = sum(1 for _ in client.ListRecords(metadataPrefix=sys.argv[3]))
print(count, time.perf_counter() - started)
"""
"""A bare sickle client: prints how many items it iterated and its loop time."""


@dataclass(slots=True)
class Measurement:
    """One client run: its wall time, peak RSS, records seen and (ernte) in-run rate."""

    label: str
    records: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    loop_s: float | None = None
    rss_samples_mb: list[tuple[float, float]] = field(default_factory=list)
    load: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.wall_s if self.wall_s else 0.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Provider:
    """The demo OAI-PMH provider in its own process, serving N generated records, its lists
    rendered before any client runs (`bench/prerendered_provider.py`): a real repository
    renders its pages on another machine, while the demo provider, rendering each page when
    asked, was the slowest party here and hid the clients' own cost behind its own."""

    def __init__(self, n: int, batch_size: int, prefix: str = "dim") -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                PYTHON,
                str(ROOT / "bench" / "prerendered_provider.py"),
                "--generate",
                str(n),
                "--port",
                str(self.port),
                "--batch-size",
                str(batch_size),
                "--prefix",
                prefix,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        """The base URL the provider prints once its records are generated and it listens."""
        stdout = self.process.stdout
        assert stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(PROVIDER_START_TIMEOUT)
        match = re.search(r"(http://\S+)", lines[0]) if lines else None
        if match is None:
            self.stop()
            raise RuntimeError(f"demo provider on port {self.port} did not start: {lines!r}")
        return match.group(1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _rss_mb(pid: int) -> tuple[float, float] | None:
    """(resident set size, its anonymous part) of a process and its child processes (the
    index worker), from /proc; None once it is gone.

    The anonymous part is the memory the processes allocated themselves; the rest of the RSS
    is file pages mapped in, mostly the index's segment files that tantivy memory-maps, which
    grow with the index and which the kernel reclaims as page cache when memory is short.
    """
    total = anonymous = 0.0
    for process in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except OSError:
            if process == pid:
                return None
            continue
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        anon = re.search(r"^RssAnon:\s+(\d+) kB", status, re.MULTILINE)
        total += int(rss.group(1)) / 1024 if rss else 0.0
        anonymous += int(anon.group(1)) / 1024 if anon else 0.0
    return total, anonymous


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def run_measured(
    argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path = ROOT
) -> tuple[float, float, float, str, list[tuple[float, float]]]:
    """Run a command; (wall s, CPU s, peak RSS MB, stdout, (RSS, anonymous RSS) samples of
    the command and its children every 0.25 s, see `_rss_mb`).

    `os.wait4` gives the rusage of this one child, so its CPU time and ru_maxrss are its own.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        samples: list[tuple[float, float]] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                rss = _rss_mb(process.pid)
                if rss is not None:
                    samples.append(rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({process.returncode}):\n{stderr[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, stdout, samples


def sickle_loop(url: str, mode: str, n: int) -> Measurement:
    load = os.getloadavg()[0]
    wall, cpu, peak, stdout, samples = run_measured(
        [PYTHON, "-c", SICKLE_WORKER, url, mode, PREFIX]
    )
    count, loop = stdout.split()
    label = "sickle, records" if mode == "records" else "sickle, pages"
    items = int(count)
    expected = n if mode == "records" else -(-n // PAGE_SIZE)
    if items != expected:
        raise RuntimeError(f"{label}: iterated {items} items, expected {expected}")
    return Measurement(label, n, wall, cpu, peak, float(loop), samples, load)


def ernte_harvest(url: str, n: int, index: bool, workers: int | None = None) -> Measurement:
    """`ernte harvest` in a fresh data dir, page delay 0; checks it harvested all N records
    and, indexed, that the index holds every live record when the command has exited."""
    data_dir = Path(tempfile.mkdtemp(prefix="ernte-bench-harvest-"))
    load = os.getloadavg()[0]
    try:
        env = {
            **os.environ,
            "ERNTE_DATA_DIR": str(data_dir),
            "ERNTE_PAGE_DELAY": "0",
        }
        env.pop("ES_URL", None)
        env.pop("REDIS_URL", None)
        if workers is not None:
            env["ERNTE_INDEX_WORKERS"] = str(workers)
        argv = [ERNTE, "harvest", url, "--prefix", PREFIX, "--full"]
        if not index:
            argv.append("--no-index")
        # cwd is the empty data dir, so no project `.env` changes the settings.
        wall, cpu, peak, stdout, samples = run_measured(argv, env=env, cwd=data_dir)
        summary = re.search(r"(\d+) records in", stdout)
        harvested = int(summary.group(1)) if summary else -1
        if harvested != n:
            raise RuntimeError(f"ernte harvested {harvested} records, expected {n}: {stdout}")
        if index:
            _check_searchable(data_dir, stdout)
        loop = _ernte_run_seconds(data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    label = "ernte --no-index" if not index else "ernte harvest"
    if index and workers is not None:
        label += f" w={workers}"
    return Measurement(label, n, wall, cpu, peak, loop, samples, load)


def _check_searchable(data_dir: Path, stdout: str) -> None:
    """Every record the harvest normalized live is in the index once the command exited."""
    from indexer.embedded.backend import EmbeddedBackend

    normalized = re.search(r"normalized (\d+)", stdout)
    backend = EmbeddedBackend(data_dir / "index")
    try:
        count = backend.count()
    finally:
        backend.close()
    if normalized is None or count != int(normalized.group(1)):
        raise RuntimeError(f"index holds {count} documents after the harvest: {stdout}")


def _ernte_run_seconds(data_dir: Path) -> float | None:
    """The harvest's own duration (records / the rate it stored), start-up excluded."""
    states = SQLiteStateStore(data_dir / "state.sqlite").all()
    if len(states) != 1 or not states[0].rate:
        return None
    return states[0].run.records / states[0].rate


def median_run(runs: Sequence[Measurement]) -> Measurement:
    """The run with the median wall time (with the highest peak RSS seen in any of them)."""
    ordered = sorted(runs, key=lambda m: m.wall_s)
    middle = ordered[(len(ordered) - 1) // 2]
    middle.peak_rss_mb = max(m.peak_rss_mb for m in runs)
    return middle


@dataclass(slots=True)
class SizeResult:
    """All clients for one N, and the machine's load around them (other work skews times)."""

    n: int
    measurements: list[Measurement]
    load_before: float
    load_after: float
    runs: list[list[Measurement]] = field(default_factory=list)


def bench_one(
    n: int, repeat: int, indexed: bool, workers: Sequence[int | None] = (None,)
) -> SizeResult:
    """Every client over one provider of N records; repeats interleaved, the median counts."""
    with Provider(n, PAGE_SIZE, PREFIX) as provider:
        sickle_loop(provider.url, "pages", n)  # warm-up: the provider's first pages
        load_before = os.getloadavg()[0]
        plan: list[Callable[[], Measurement]] = [
            lambda: sickle_loop(provider.url, "records", n),
            lambda: sickle_loop(provider.url, "pages", n),
            lambda: ernte_harvest(provider.url, n, index=False),
        ]
        if indexed:
            for count in workers:
                plan.append(lambda c=count: ernte_harvest(provider.url, n, True, c))  # type: ignore[misc]
        runs: list[list[Measurement]] = [[] for _ in plan]
        for _ in range(repeat):
            for client, run in zip(plan, runs, strict=True):
                run.append(client())
                print(f"  {format_line(run[-1], runs[0][0])}", flush=True)
        return SizeResult(n, [median_run(r) for r in runs], load_before, os.getloadavg()[0], runs)


def format_line(m: Measurement, baseline: Measurement) -> str:
    """One client: wall time, rate, ratio to the baseline, CPU, in-run rate, memory."""
    in_run = f"{m.records / m.loop_s:7,.0f}" if m.loop_s else "      -"
    rss = [anonymous for _, anonymous in m.rss_samples_mb]
    mid_end = f"{max(rss):4.0f}, {rss[len(rss) // 2]:4.0f}/{rss[-1]:4.0f}" if rss else "-"
    return (
        f"{m.label:<17} {m.wall_s:7.2f} s {m.rate:7,.0f} rec/s  x{m.wall_s / baseline.wall_s:4.2f}"
        f"  cpu {m.cpu_s:6.2f} s x{m.cpu_s / baseline.cpu_s:4.2f}  in-run {in_run} rec/s"
        f"  peak RSS {m.peak_rss_mb:4.0f} MB (anonymous, with workers: peak, mid/end {mid_end})"
        f"  load {m.load:4.1f}"
    )


def machine() -> str:
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu or platform.processor()}), python "
        f"{platform.python_version()}, {platform.system()} {platform.machine()}"
    )


def report(results: Sequence[SizeResult], repeat: int, note: str) -> str:
    when = datetime.now(UTC).isoformat(timespec="seconds")
    tree = os.environ.get("PYTHONPATH") or str(ROOT)
    lines = [
        f"# bench_harvest {when} rev {REVISION}  pages of {PAGE_SIZE}, {PREFIX},"
        f" median of {repeat}" + (f"  [{note}]" if note else ""),
        f"harvester from: {tree}",
        f"machine: {machine()}; load: the 1-minute load average when each run started"
        " (the machine may be shared)",
        "wall: whole subprocess incl. start-up; xR: over the sickle record loop; cpu: the"
        " client's user+sys; in-run: the client's own loop (sickle) or ernte's stored rate",
    ]
    for size in results:
        baseline = size.measurements[0]
        lines.append(
            f"N = {size.n:,}  (load average {size.load_before:.1f} before,"
            f" {size.load_after:.1f} after)"
        )
        for runs in size.runs:
            lines += [f"    run: {format_line(m, baseline)}" for m in runs]
        lines += [f"  median {format_line(m, baseline)}" for m in size.measurements]
        for m in size.measurements:
            if m.label.startswith("ernte harvest"):
                ratio = m.wall_s / baseline.wall_s
                verdict = (
                    "meets the 1.5x aim"
                    if ratio <= AIM_RATIO
                    else f"meets the {TARGET_RATIO}x target"
                    if ratio <= TARGET_RATIO
                    else f"MISSES the {TARGET_RATIO}x target"
                )
                lines.append(
                    f"  {m.label} (as a user runs it, records searchable at exit) / sickle records"
                    f" = {ratio:.2f} ({verdict})"
                )
        ernte = next((m for m in size.measurements if m.label == "ernte --no-index"), None)
        if ernte is not None:
            lines.append(
                f"  ernte --no-index / sickle records = {ernte.wall_s / baseline.wall_s:.2f}"
                " (leaves out the index)"
            )
    if len(results) > 1:
        small, large = min(results, key=lambda r: r.n), max(results, key=lambda r: r.n)
        for m_small, m_large in zip(small.measurements, large.measurements, strict=True):
            lines.append(
                f"peak RSS {m_small.label:<17} N={small.n:,}: {m_small.peak_rss_mb:.0f} MB,"
                f" N={large.n:,}: {m_large.peak_rss_mb:.0f} MB"
                f" ({m_large.peak_rss_mb - m_small.peak_rss_mb:+.0f} MB)"
            )
    return "\n".join(lines) + "\n"


def git_revision() -> str:
    """The checked-out commit, with `+dirty` when tracked files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        rev = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", type=int, action="append", help="records to serve (repeatable; default 10k, 100k)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per client; the median counts")
    parser.add_argument("--prefix", default="dim", help="metadata format (dim, as ORLIS; oai_dc)")
    parser.add_argument(
        "--workers",
        type=int,
        action="append",
        help="ERNTE_INDEX_WORKERS for the indexed harvest (repeatable; default: ernte's own)",
    )
    parser.add_argument(
        "--no-indexed", dest="indexed", action="store_false", help="skip the indexed harvest"
    )
    parser.add_argument("--no-write", dest="write", action="store_false", help="print only")
    parser.add_argument("--note", default="", help="a label for this run in the results file")
    args = parser.parse_args(argv)
    global PREFIX, REVISION
    PREFIX = args.prefix
    REVISION = git_revision()  # of the code the runs measure (taken before they start)
    sizes = args.n or [10_000, 100_000]
    results = []
    for n in sizes:
        print(f"N = {n:,}", flush=True)
        results.append(bench_one(n, args.repeat, args.indexed, args.workers or [None]))
    text = report(results, args.repeat, args.note)
    print(text)
    if args.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
        print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
