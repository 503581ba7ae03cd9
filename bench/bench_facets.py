"""The facet pass of a search, counted the ways the embedded backend can count it.

    .venv/bin/python bench/bench_index.py --n 400000 --keep /tmp/ernte-bench-index
    .venv/bin/python bench/bench_facets.py --index /tmp/ernte-bench-index/index

For each query of bench_query.py's two mixes (and the empty query), on an index built by
bench_index.py: the share of records it matches, its hits pass (10 hits and the count), and
its facet pass (subject 20, year 50, type 10) counted directly and by subtraction from the
whole index's counts (`indexer.embedded.facets.aggregate_by_subtraction`; the whole counts are
counted once beforehand, as an index view keeps them). Then the cost of exact counts: the
subject and author facets with tantivy's default segment_size (ten times the size) against
SEGMENT_VALUES. Median of 9 calls each, one thread, library calls (no command start, no
highlighting). Where `EmbeddedBackend.search` switches to subtraction is SUBTRACTION_FROM_SHARE.
Appends to bench/results/facets.txt.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tantivy  # noqa: E402

from bench.bench_harvest import git_revision  # noqa: E402
from bench.bench_index import QUERIES as SIMPLE_QUERIES  # noqa: E402
from bench.bench_query import COMPOUND_QUERIES  # noqa: E402
from indexer.embedded.backend import EmbeddedBackend  # noqa: E402
from indexer.embedded.facets import SEGMENT_VALUES, aggregate, aggregate_by_subtraction  # noqa: E402
from indexer.query import parse_query  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "facets.txt"
FACETS = {"subject": 20, "year": 50, "type": 10}


def median_ms(call: Callable[[], Any], repeat: int = 9) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="an index built by bench_index")
    args = parser.parse_args()
    backend = EmbeddedBackend(args.index)
    view = backend._views.current()
    searcher = view.searcher
    total = int(searcher.num_docs)
    whole = view.whole_counts(FACETS, with_year_histogram=False)
    lines = [
        f"# bench_facets {datetime.now(UTC).isoformat(timespec='seconds')} docs={total:,} "
        f"rev={git_revision()} load(1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        "median of 9 calls, one thread",
        f"{'query':30} {'share':>6} {'hits':>8} {'facets direct':>14} {'by subtraction':>15}",
    ]
    for text in ["", *SIMPLE_QUERIES, *COMPOUND_QUERIES]:
        query = backend.queries.text_query(parse_query(text), searcher)
        share = searcher.search(query, 1, count=True).count / total
        hits = median_ms(functools.partial(searcher.search, query, 10, count=True))
        direct = median_ms(functools.partial(aggregate, searcher, query, FACETS))
        subtracted = median_ms(
            functools.partial(aggregate_by_subtraction, searcher, query, FACETS, whole)
        )
        lines.append(
            f"{text or '(empty query)':30} {share:6.0%} {hits:6.1f} ms {direct:11.1f} ms"
            f" {subtracted:12.1f} ms"
        )
    everything = tantivy.Query.all_query()
    for field, size in (("f_subject", 20), ("f_author", 10)):
        for segment_size in (10 * size, SEGMENT_VALUES):
            spec = {"x": {"terms": {"field": field, "size": size, "segment_size": segment_size}}}
            cost = median_ms(functools.partial(searcher.aggregate, everything, spec))
            lines.append(f"all records, terms on {field} size {size}, segment_size "
                         f"{segment_size}: {cost:.1f} ms")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(text + "\n")


if __name__ == "__main__":
    main()
