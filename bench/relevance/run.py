"""Relevance of German search, variant by variant: one command, one Markdown table.

    python bench/relevance/run.py [--variants all|NAME,NAME] [--out bench/results/relevance.md]
    python bench/relevance/run.py --variants shipped --lower-case --out /tmp/lower.md

Why: the German analysis chain (stemming, umlaut folding, decompounding, field weights) is the
part of ernte most likely to regress silently. This harness indexes the 5,000 judged TIBKAT
records of `../shared/german-records/corpus.json` through the REAL pipeline (corpus entry ->
`RawRecord` as a DSpace `dim` record -> `harvester.normalize.normalizer.normalize` ->
`harvester.run.document.build_document` -> `EmbeddedBackend.upsert`), once per analysis variant,
each into its own temporary index; runs every query of `queries.yaml`
(`SearchRequest(query=..., limit=100)`); and scores the runs with `ranx` against the judgments
that `build_judgments.py` derives from the records' GND subject headings: MAP (over the 100
results), nDCG@10 and P@10, per query group and overall.

It skips (exit 0, with a message) where `../shared/german-records` is absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(PROJECT_ROOT))

from lxml import etree  # noqa: E402
from ranx import Qrels, Run, evaluate  # noqa: E402

from bench.relevance.build_judgments import (  # noqa: E402
    DEFAULT_CORPUS,
    DEFAULT_QUERIES,
    GROUPS,
    JudgedQuery,
    build_qrels,
    load_corpus,
    load_queries,
)
from bench.relevance.variants import (  # noqa: E402
    BASELINE,
    BEFORE,
    CHOSEN,
    CHOSEN_CONFIGURATION,
    PREVIOUS,
    Variant,
    build_variants,
    embedded_backend_for,
)
from harvester.model import RawRecord  # noqa: E402
from harvester.normalize.normalizer import QuarantineError, normalize  # noqa: E402
from harvester.run.document import build_document  # noqa: E402
from indexer.backend import IndexBackend, SearchDocument  # noqa: E402
from indexer.search_model import QuerySyntaxError, SearchRequest  # noqa: E402

DEFAULT_OUT = PROJECT_ROOT / "bench" / "results" / "relevance.md"
SOURCE_KEY = "orlis"
CROSSWALK = "dim"
RESULT_LIMIT = 100
FETCH_LIMIT = 2 * RESULT_LIMIT
"""Hits fetched per query before ties are ordered by id and the top RESULT_LIMIT kept, so a
tie across the 100th place is cut the same way in every run."""
BATCH_SIZE = 500

MEASURES: tuple[tuple[str, str], ...] = (
    ("map@100", "MAP"),
    ("ndcg@10", "nDCG@10"),
    ("precision@10", "P@10"),
)
"""ranx metric name -> column label. MAP is cut at the 100 results a run asks for."""

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
DIM_NS = "http://www.dspace.org/xmlns/dspace/dim"


VARIANTS: tuple[Variant, ...] = build_variants()
VARIANTS_BY_NAME = {v.name: v for v in VARIANTS}


# --------------------------------------------------------------------------- corpus -> pipeline


def _dim_field(parent: etree._Element, key: str, value: str) -> None:
    schema, element, *qualifier = key.split(".")
    attributes = {"mdschema": schema, "element": element}
    if qualifier:
        attributes["qualifier"] = ".".join(qualifier)
    node = etree.SubElement(parent, f"{{{DIM_NS}}}field", attributes)
    node.text = value


def corpus_entry_to_raw(entry: Mapping[str, Any]) -> RawRecord:
    """A corpus entry as the OAI-PMH `<record>` a DSpace server sends in `dim` format."""
    record = etree.Element(f"{{{OAI_NS}}}record", nsmap={None: OAI_NS})
    header = etree.SubElement(record, f"{{{OAI_NS}}}header")
    etree.SubElement(header, f"{{{OAI_NS}}}identifier").text = entry["id"]
    etree.SubElement(header, f"{{{OAI_NS}}}datestamp").text = entry["datestamp"]
    for set_spec in entry.get("sets", []):
        etree.SubElement(header, f"{{{OAI_NS}}}setSpec").text = set_spec
    metadata = etree.SubElement(record, f"{{{OAI_NS}}}metadata")
    dim = etree.SubElement(metadata, f"{{{DIM_NS}}}dim", nsmap={"dim": DIM_NS})
    for key, values in entry["dim"].items():
        for value in values:
            _dim_field(dim, key, value)
    return RawRecord(
        identifier=entry["id"],
        datestamp=entry["datestamp"],
        deleted=bool(entry.get("deleted", False)),
        sets=list(entry.get("sets", [])),
        xml=etree.tostring(record, encoding="utf-8"),
        metadata_prefix=CROSSWALK,
    )


def build_documents(entries: Sequence[Mapping[str, Any]]) -> tuple[list[SearchDocument], int]:
    """Search documents for the corpus via the real normalizer; also the quarantined count."""
    documents: list[SearchDocument] = []
    quarantined = 0
    for entry in entries:
        try:
            record = normalize(corpus_entry_to_raw(entry), SOURCE_KEY, CROSSWALK)
        except QuarantineError as exc:
            quarantined += 1
            print(f"  quarantined {entry['id']}: {exc}", file=sys.stderr)
            continue
        documents.append(build_document(record))
    return documents, quarantined


# --------------------------------------------------------------------------- index and search


def index_documents(backend: IndexBackend, documents: Sequence[SearchDocument]) -> None:
    backend.create(recreate=True)
    for start in range(0, len(documents), BATCH_SIZE):
        result = backend.upsert(documents[start : start + BATCH_SIZE])
        for error in result.errors:
            print(f"  refused {error.identifier}: {error.reason}", file=sys.stderr)


def search_all(
    backend: IndexBackend, queries: Sequence[JudgedQuery]
) -> dict[str, dict[str, float]]:
    """`{query id: {record id: score}}` for the top RESULT_LIMIT hits of every query."""
    run: dict[str, dict[str, float]] = {}
    for query in queries:
        try:
            response = backend.search(
                SearchRequest(query=query.query, limit=FETCH_LIMIT, highlight=False)
            )
        except QuerySyntaxError as exc:
            print(f"  query {query.id} refused: {exc}", file=sys.stderr)
            run[query.id] = {}
            continue
        # Equal scores are ordered by record id: the backend orders ties by document address,
        # which depends on how the indexing threads split the corpus into segments, and would
        # make runs differ in the fourth decimal.
        hits = sorted(response.hits, key=lambda hit: (-hit.score, hit.id))[:RESULT_LIMIT]
        # Rank, not raw score, decides: ranx re-sorts by score, so ties keep the order above.
        run[query.id] = {hit.id: float(len(hits) - rank) for rank, hit in enumerate(hits)}
    return run


def run_variant(
    variant: Variant, documents: Sequence[SearchDocument], queries: Sequence[JudgedQuery]
) -> dict[str, dict[str, float]]:
    """Index the documents into a fresh temporary index for the variant and run all queries."""
    with (
        tempfile.TemporaryDirectory(prefix=f"ernte-relevance-{variant.name}-") as tmp,
        embedded_backend_for(variant, Path(tmp)) as backend,
    ):
        index_documents(backend, documents)
        return search_all(backend, queries)


# --------------------------------------------------------------------------- evaluation


def per_query_scores(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], name: str
) -> dict[str, dict[str, float]]:
    """`{metric: {query id: score}}`; a query with no hits scores 0."""
    ranx_qrels = Qrels.from_dict({q: dict(d) for q, d in qrels.items()})
    ranx_run = Run.from_dict({q: dict(run.get(q, {})) for q in qrels}, name=name)
    evaluate(ranx_qrels, ranx_run, [m for m, _ in MEASURES], make_comparable=True)
    return {
        metric: {q: float(s) for q, s in ranx_run.scores[metric].items()} for metric, _ in MEASURES
    }


def group_means(
    scores: Mapping[str, Mapping[str, float]], queries: Sequence[JudgedQuery]
) -> dict[str, dict[str, float]]:
    """`{group or "all": {metric: mean over the group's queries}}`."""
    groups: dict[str, list[str]] = {g: [q.id for q in queries if q.group == g] for g in GROUPS}
    groups["all"] = [q.id for q in queries]
    return {
        group: {m: statistics.fmean(scores[m][q] for q in ids) for m, _ in MEASURES}
        for group, ids in groups.items()
        if ids
    }


# --------------------------------------------------------------------------- report


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "n/a"


def groups_worse(
    means: Mapping[str, Mapping[str, Mapping[str, float]]], variant: str, reference: str
) -> list[str]:
    """Query groups whose MAP under `variant` is below that under `reference`."""
    return [
        g
        for g in means[variant]
        if g != "all" and means[variant][g]["map@100"] < means[reference][g]["map@100"]
    ]


def target_lines(means: Mapping[str, Mapping[str, Mapping[str, float]]]) -> list[str]:
    """The issue's targets, checked where the variants involved were run."""
    lines: list[str] = []
    if {"unstemmed", BASELINE} <= means.keys():
        base, stem = means["unstemmed"]["all"]["map@100"], means[BASELINE]["all"]["map@100"]
        ok = stem >= 1.5 * base
        lines.append(
            f"- {BASELINE} MAP >= 1.5x unstemmed: {_ratio(stem, base)} "
            f"({stem:.4f} vs {base:.4f}) - {'met' if ok else 'NOT met'}"
        )
    for candidate in (BEFORE, CHOSEN):
        if {BASELINE, candidate} <= means.keys():
            stem, full = means[BASELINE]["all"]["map@100"], means[candidate]["all"]["map@100"]
            worse = groups_worse(means, candidate, BASELINE)
            ok = full >= 1.2 * stem and not worse
            lines.append(
                f"- {candidate} MAP >= 1.2x {BASELINE}, no group worse: {_ratio(full, stem)} "
                f"({full:.4f} vs {stem:.4f}); groups worse: {', '.join(worse) or 'none'}"
                f" - {'met' if ok else 'NOT met'}"
            )
    if {BEFORE, CHOSEN} <= means.keys():
        worse = groups_worse(means, CHOSEN, BEFORE)
        lines.append(
            f"- {CHOSEN} against {BEFORE} (before issue 9): MAP "
            f"{means[CHOSEN]['all']['map@100']:.4f} vs {means[BEFORE]['all']['map@100']:.4f}; "
            f"groups worse: {', '.join(worse) or 'none'}"
        )
    if {PREVIOUS, CHOSEN} <= means.keys():
        new, old = means[CHOSEN], means[PREVIOUS]
        worse = groups_worse(means, CHOSEN, PREVIOUS)
        up = all(new["all"][m] > old["all"][m] for m in ("map@100", "ndcg@10"))
        lines.append(
            f"- issue 15, {CHOSEN} against {PREVIOUS}: MAP {new['all']['map@100']:.4f} vs "
            f"{old['all']['map@100']:.4f}, nDCG@10 {new['all']['ndcg@10']:.4f} vs "
            f"{old['all']['ndcg@10']:.4f} ({'both up' if up else 'NOT both up'}); groups worse: "
            f"{', '.join(worse) or 'none'}"
        )
        if "compound_whole" in new:
            lines.append(
                f"- issue 15, compound_whole MAP {new['compound_whole']['map@100']:.4f} vs "
                f"{old['compound_whole']['map@100']:.4f} "
                f"({_ratio(new['compound_whole']['map@100'], old['compound_whole']['map@100'])})"
            )
    return lines


def render_report(
    variants: Sequence[Variant],
    means: Mapping[str, Mapping[str, Mapping[str, float]]],
    scores: Mapping[str, Mapping[str, Mapping[str, float]]],
    queries: Sequence[JudgedQuery],
    qrels: Mapping[str, Mapping[str, int]],
    corpus_size: int,
    indexed: int,
    seconds: float,
) -> str:
    """The Markdown results file: header, one table per measure, targets, per-query MAP."""
    groups = [g for g in (*GROUPS, "all") if g in next(iter(means.values()))]
    counts = {g: sum(1 for q in queries if q.group == g) for g in GROUPS}
    out = [
        "# Relevance of German search (embedded backend)",
        "",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- corpus: {corpus_size} records of ../shared/german-records/corpus.json, "
        f"{indexed} indexed through normalize -> build_document -> upsert",
        f"- queries: {len(queries)} ("
        + ", ".join(f"{g} {n}" for g, n in counts.items())
        + "), judged from GND subject headings by bench/relevance/build_judgments.py; "
        f"{sum(len(d) for d in qrels.values())} judgments",
        f"- each query: SearchRequest(query=..., limit={RESULT_LIMIT}); "
        "measures by ranx; MAP over the top 100",
        f"- command: `python bench/relevance/run.py`, {seconds:.0f} s",
        "",
        "Variants:",
        "",
        *[f"- `{v.name}`: {v.description}" for v in variants],
    ]
    for metric, label in MEASURES:
        out += ["", f"## {label}", "", "| variant | " + " | ".join(groups) + " |"]
        out.append("|---|" + "---:|" * len(groups))
        for variant in variants:
            row = means[variant.name]
            out.append(
                f"| {variant.name} | " + " | ".join(f"{row[g][metric]:.4f}" for g in groups) + " |"
            )
    targets = target_lines(means)
    if targets:
        out += ["", "## Targets", "", *targets]
    out += ["", "## Chosen configuration", "", CHOSEN_CONFIGURATION]
    out += [
        "",
        "## MAP per query",
        "",
        "| query | group | judged | " + " | ".join(v.name for v in variants) + " |",
    ]
    out.append("|---|---|---:|" + "---:|" * len(variants))
    for query in queries:
        cells = " | ".join(f"{scores[v.name]['map@100'][query.id]:.3f}" for v in variants)
        out.append(f"| `{query.query}` | {query.group} | {len(qrels[query.id])} | {cells} |")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- command


def select_variants(spec: str) -> list[Variant]:
    if spec == "all":
        return list(VARIANTS)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS_BY_NAME]
    if unknown:
        raise SystemExit(
            f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS_BY_NAME)}"
        )
    return [VARIANTS_BY_NAME[n] for n in names]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variants", default="all", help="all, or comma-separated names")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    parser.add_argument(
        "--lower-case",
        action="store_true",
        help="run every query lower-cased, as people type them (the judgments are unchanged)",
    )
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        print(f"skipped: corpus not found at {args.corpus} (needs ../shared/german-records)")
        return 0
    variants = select_variants(args.variants)
    started = time.monotonic()
    queries = load_queries(args.queries)
    if args.lower_case:
        queries = [dataclasses.replace(q, query=q.query.lower()) for q in queries]
    entries = load_corpus(args.corpus)
    qrels = build_qrels(queries, entries)
    print(f"normalizing {len(entries)} records ...")
    documents, quarantined = build_documents(entries)
    if quarantined:
        print(f"  {quarantined} records quarantined by normalize")
    scores: dict[str, dict[str, dict[str, float]]] = {}
    means: dict[str, dict[str, dict[str, float]]] = {}
    for variant in variants:
        print(
            f"variant {variant.name}: indexing {len(documents)} documents, {len(queries)} queries"
        )
        run = run_variant(variant, documents, queries)
        scores[variant.name] = per_query_scores(qrels, run, variant.name)
        means[variant.name] = group_means(scores[variant.name], queries)
        overall = means[variant.name]["all"]
        print("  " + ", ".join(f"{label} {overall[m]:.4f}" for m, label in MEASURES))
    report = render_report(
        variants,
        means,
        scores,
        queries,
        qrels,
        len(entries),
        len(documents),
        time.monotonic() - started,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
