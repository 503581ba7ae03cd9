"""Benchmark of the embedded backend: indexing throughput, index size, faceted search latency.

    .venv/bin/python bench/bench_index.py            # 400,000 records (the ORLIS size)
    .venv/bin/python bench/bench_index.py --n 50000

Records are generated ORLIS-like (German title, 3-8 subject headings, an abstract of 3-6
sentences, 1-3 authors, type, year, journal) from the vocabulary of
`../shared/german-records/corpus.json` when present, else from built-in word lists. Every
record goes through the real path: harvester.model.Record -> build_document (including
decompounding) -> EmbeddedBackend.upsert in batches. Results are appended to
bench/results/index.txt. Targets: 400,000 records in under 5 minutes on 2 cores; p95 of a
query with three facets under 50 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harvester.model import Abstract, HostPublication, Person, Record  # noqa: E402
from harvester.run.document import build_document  # noqa: E402
from indexer.embedded import EmbeddedBackend  # noqa: E402
from indexer.search_model import SearchRequest  # noqa: E402

SHARED_CORPUS = ROOT.parent / "shared" / "german-records" / "corpus.json"
RESULTS = ROOT / "bench" / "results" / "index.txt"

BUILTIN_SUBJECTS = [
    "Stadtentwicklungsplanung", "Stadtforschung", "Stadtteil", "Stadtquartier", "Segregation",
    "Partizipation", "Sozialpolitik", "Arbeitsförderung", "Soziale Stadt", "Sozialraumanalyse",
    "Wohnquartier", "Quartiermanagement", "Verkehrsplanung", "Wohnungsbau", "Klimaanpassung",
    "Bürgerbeteiligung", "Regionalplanung", "Stadtumbau", "Denkmalschutz", "Einzelhandel",
]  # fmt: skip
BUILTIN_WORDS = [
    "Stadt",
    "Städte",
    "Entwicklung",
    "Planung",
    "Verkehr",
    "Wohnen",
    "Quartier",
    "Kommune",
    "Gemeinde",
    "Region",
    "Umwelt",
    "Klima",
    "Bürger",
    "Beteiligung",
    "Förderung",
    "Programm",
    "Analyse",
    "Strategie",
    "Konzept",
    "Straße",
    "Raum",
    "Politik",
    "Verwaltung",
    "Mobilität",
    "Integration",
    "Wohnungsmarkt",
    "Innenstadt",
    "Nachhaltigkeit",
    "Energie",
    "Bauleitplanung",
]
TYPES = ["Zeitschriftenaufsatz", "Monographie", "Graue Literatur", "Aufsatz aus Sammelwerk"]
JOURNALS = ["Informationen zur Raumentwicklung", "Raumforschung und Raumordnung", "Der Städtetag"]
QUERIES = ["Stadt", "Planung", "Quartier", "Verkehr", "Wohnen", "Entwicklung Stadt", "Klima"]


def load_vocabulary(rng: random.Random) -> tuple[list[str], list[str], list[str], list[str]]:
    """(titles, subjects, sentences, authors) to draw from."""
    if not SHARED_CORPUS.exists():
        sentences = [" ".join(rng.choices(BUILTIN_WORDS, k=12)) + "." for _ in range(500)]
        titles = [" ".join(rng.choices(BUILTIN_WORDS, k=5)) for _ in range(500)]
        return titles, BUILTIN_SUBJECTS, sentences, ["Kocks, Martina", "Güles, Orhan"]
    records = json.loads(SHARED_CORPUS.read_text(encoding="utf-8"))
    titles, subjects, sentences, authors = [], set(), [], set()
    for record in records:
        dim = record["dim"]
        titles.extend(t.rstrip(".") for t in dim.get("dc.title", []))
        subjects.update(dim.get("dc.subject", []))
        authors.update(dim.get("dc.contributor.author", []))
        for abstract in dim.get("dc.description.abstract", []):
            sentences.extend(s.strip() + "." for s in abstract.split(". ") if len(s) > 20)
    return titles, sorted(subjects), sentences, sorted(authors)


def generate(n: int, seed: int = 42) -> list[Record]:
    rng = random.Random(seed)
    titles, subjects, sentences, authors = load_vocabulary(rng)
    records = []
    for number in range(n):
        year = rng.randint(1975, 2025)
        records.append(
            Record(
                identifier=f"oai:orlis.difu.de:difu/{number}",
                source="orlis",
                metadata_prefix="dim",
                datestamp=f"{rng.randint(2019, 2025)}-01-01T00:00:00Z",
                sets=["col_difu_1"],
                title=rng.choice(titles),
                authors=[
                    Person(display=a, family=a.split(",")[0])
                    for a in rng.sample(authors, rng.randint(1, 3))
                ],
                year=year,
                issued=str(year),
                abstracts=[Abstract(" ".join(rng.sample(sentences, rng.randint(3, 6))), "de")],
                subjects=rng.sample(subjects, rng.randint(3, 8)),
                type=rng.choice(TYPES),
                language="de",
                host=HostPublication(title=rng.choice(JOURNALS)),
            )
        )
    return records


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run(n: int, batch: int, queries: int, keep: Path | None) -> str:
    started = time.perf_counter()
    records = generate(n)
    generated = time.perf_counter() - started
    workdir = keep or Path(tempfile.mkdtemp(prefix="ernte-bench-"))
    backend = EmbeddedBackend(workdir / "index")
    backend.create(recreate=True)
    build_seconds = 0.0
    started = time.perf_counter()
    for start in range(0, n, batch):
        chunk = records[start : start + batch]
        t0 = time.perf_counter()
        documents = [build_document(r) for r in chunk]
        build_seconds += time.perf_counter() - t0
        result = backend.upsert(documents)
        assert not result.errors, result.errors[:3]
    backend.close()
    index_seconds = time.perf_counter() - started
    size = directory_size(workdir / "index")

    rng = random.Random(7)
    latencies = []
    total = 0
    for _ in range(queries):
        request = SearchRequest(
            query=rng.choice(QUERIES),
            facets={"subject": 20, "year": 50, "type": 10},
            limit=10,
        )
        t0 = time.perf_counter()
        response = backend.search(request)
        latencies.append((time.perf_counter() - t0) * 1000)
        total += response.total
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    source = "shared corpus vocabulary" if SHARED_CORPUS.exists() else "built-in vocabulary"
    return "\n".join(
        [
            f"# bench_index {datetime.now(UTC).isoformat(timespec='seconds')} "
            f"n={n} batch={batch} ({source})",
            f"generate records:        {generated:8.1f} s",
            f"index (build+upsert):    {index_seconds:8.1f} s  = {n / index_seconds:,.0f} records/s",
            f"  of which build_document {build_seconds:7.1f} s",
            f"index size on disk:      {size / 1e6:8.1f} MB",
            f"search, 3 facets, {queries} queries: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
            f"(avg {total / queries:,.0f} hits)",
            f"peak memory (maxrss):    {peak_mb:8.0f} MB",
            "",
        ]
    )


def publish(report: str, results: Path) -> None:
    """Print a report and append it to its results file (bench/results/...)."""
    print(report)
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a", encoding="utf-8") as handle:
        handle.write(report + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=400_000, help="records to index")
    parser.add_argument("--batch", type=int, default=5_000, help="records per upsert")
    parser.add_argument("--queries", type=int, default=200, help="searches to time")
    parser.add_argument("--keep", type=Path, help="index directory to keep (default: temp)")
    args = parser.parse_args()
    publish(run(args.n, args.batch, args.queries, args.keep), RESULTS)


if __name__ == "__main__":
    main()
