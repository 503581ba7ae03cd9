"""Derive graded relevance judgments (qrels) for the German query set from GND subject headings.

Why mechanical: hand judgments of 5,000 records are not repeatable and drift with whoever made
them. The records of `german-records/corpus.json` carry controlled GND subject headings assigned
by TIB's cataloguers, independently of any search engine. A query's judged set is therefore
written down as a rule over those headings, next to the query in `queries.yaml`, and anybody can
re-derive `qrels.json` with

    python bench/relevance/build_judgments.py

Rule syntax (every heading is matched case-sensitively, against the whole heading):

    grade2:                      # fully relevant if ANY of these clauses holds
      - Wohnung                  # a heading equal to this string
      - "re:.*[Pp]lanung"        # a heading the regular expression matches (re.fullmatch)
      - all: [Armut, "re:(Groß)?[Ss]tadt"]   # for EVERY pattern, some heading matches it
    grade1: [...]                # partly relevant (same syntax), if no grade-2 clause holds
    min_headings: 8              # optional: grade 2 also needs this many headings; a record
                                 # meeting a grade-2 clause with fewer headings gets grade 1

A record's grade is 2 if a `grade2` clause holds, else 1 if a `grade1` clause holds, else 0.
`qrels.json` keeps only graded records (`{query id: {record id: grade}}`, what `ranx` reads).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
DEFAULT_QUERIES = HERE / "queries.yaml"
DEFAULT_QRELS = HERE / "qrels.json"
DEFAULT_CORPUS = PROJECT_ROOT.parent / "shared" / "german-records" / "corpus.json"

GROUPS: tuple[str, ...] = (
    "inflected",
    "no_umlaut",
    "compound_part",
    "multi_word",
    "phrase",
    "control",
    "compound_whole",
    "well_catalogued",
)
"""Query groups; each isolates one thing the German analysis chain is meant to fix."""

SUBJECT_FIELD = "dc.subject"
REGEX_PREFIX = "re:"
JUDGED_SET_RANGE = (5, 400)
"""Judged-set sizes (grade >= 1) outside this range make a query trivial or unanswerable."""


class QueryFileError(ValueError):
    """`queries.yaml` is malformed; the message names the query and the problem."""


@dataclass(frozen=True, slots=True)
class HeadingPattern:
    """One pattern over a single subject heading, as written in the query file."""

    text: str
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> HeadingPattern:
        """`re:<regex>` is a regular expression; anything else is an exact heading."""
        if text.startswith(REGEX_PREFIX):
            return cls(text, re.compile(text[len(REGEX_PREFIX) :]))
        return cls(text, re.compile(re.escape(text)))

    def matches(self, heading: str) -> bool:
        return self.regex.fullmatch(heading) is not None


@dataclass(frozen=True, slots=True)
class Clause:
    """A conjunction: holds when every pattern is matched by at least one heading."""

    patterns: tuple[HeadingPattern, ...]

    def holds(self, headings: Sequence[str]) -> bool:
        return all(any(p.matches(h) for h in headings) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class JudgedQuery:
    """A query with its group, its rationale and the heading rules that grade records."""

    id: str
    group: str
    query: str
    why: str
    grade2: tuple[Clause, ...]
    grade1: tuple[Clause, ...]
    min_headings: int = 0

    def grade(self, headings: Sequence[str]) -> int:
        """2 (fully relevant), 1 (partly relevant) or 0, from the record's subject headings."""
        if any(clause.holds(headings) for clause in self.grade2):
            return 2 if len(headings) >= self.min_headings else 1
        if any(clause.holds(headings) for clause in self.grade1):
            return 1
        return 0


def _parse_clause(item: Any, where: str) -> Clause:
    if isinstance(item, str) and item:
        return Clause((HeadingPattern.parse(item),))
    if isinstance(item, Mapping) and set(item) == {"all"}:
        parts = item["all"]
        if isinstance(parts, list) and parts and all(isinstance(p, str) and p for p in parts):
            return Clause(tuple(HeadingPattern.parse(p) for p in parts))
    raise QueryFileError(f"{where}: a clause must be a heading string or {{all: [patterns]}}")


def _parse_clauses(items: Any, where: str) -> tuple[Clause, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise QueryFileError(f"{where}: expected a list of clauses")
    try:
        return tuple(_parse_clause(item, where) for item in items)
    except re.error as exc:
        raise QueryFileError(f"{where}: bad regular expression: {exc}") from exc


def parse_queries(data: Any) -> list[JudgedQuery]:
    """Validate the loaded YAML (`{queries: [...]}`) and build the judged queries."""
    if not isinstance(data, Mapping) or not isinstance(data.get("queries"), list):
        raise QueryFileError("the query file must be a mapping with a `queries` list")
    queries: list[JudgedQuery] = []
    seen: set[str] = set()
    for position, entry in enumerate(data["queries"]):
        where = f"query #{position}"
        if not isinstance(entry, Mapping):
            raise QueryFileError(f"{where}: expected a mapping")
        qid = entry.get("id")
        if not isinstance(qid, str) or not qid:
            raise QueryFileError(f"{where}: missing `id`")
        where = f"query {qid!r}"
        if qid in seen:
            raise QueryFileError(f"{where}: duplicate id")
        seen.add(qid)
        group = entry.get("group")
        if group not in GROUPS:
            raise QueryFileError(f"{where}: group {group!r} is not one of {', '.join(GROUPS)}")
        for key in ("query", "why"):
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                raise QueryFileError(f"{where}: missing `{key}`")
        grade2 = _parse_clauses(entry.get("grade2"), f"{where} grade2")
        if not grade2:
            raise QueryFileError(f"{where}: `grade2` needs at least one clause")
        min_headings = entry.get("min_headings", 0)
        if not isinstance(min_headings, int) or isinstance(min_headings, bool) or min_headings < 0:
            raise QueryFileError(f"{where}: `min_headings` must be a whole number >= 0")
        queries.append(
            JudgedQuery(
                id=qid,
                group=str(group),
                query=str(entry["query"]).strip(),
                why=" ".join(str(entry["why"]).split()),
                grade2=grade2,
                grade1=_parse_clauses(entry.get("grade1"), f"{where} grade1"),
                min_headings=min_headings,
            )
        )
    return queries


def load_queries(path: Path = DEFAULT_QUERIES) -> list[JudgedQuery]:
    """Read and validate `queries.yaml`."""
    with path.open(encoding="utf-8") as handle:
        return parse_queries(yaml.safe_load(handle))


def load_corpus(path: Path = DEFAULT_CORPUS) -> list[dict[str, Any]]:
    """The corpus records (`id`, `dim`, `dc`, ...) as stored in `corpus.json`."""
    with path.open(encoding="utf-8") as handle:
        records: list[dict[str, Any]] = json.load(handle)
    return records


def subject_headings(record: Mapping[str, Any]) -> list[str]:
    """The record's GND subject headings (and place names), from its `dim` fields."""
    return list(record.get("dim", {}).get(SUBJECT_FIELD, []))


def build_qrels(
    queries: Iterable[JudgedQuery], records: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, int]]:
    """`{query id: {record id: grade}}` for every record graded 1 or 2."""
    headings = [(str(r["id"]), subject_headings(r)) for r in records]
    qrels: dict[str, dict[str, int]] = {}
    for query in queries:
        graded = {rid: query.grade(hs) for rid, hs in headings}
        qrels[query.id] = {rid: g for rid, g in graded.items() if g > 0}
    return qrels


def count_report(queries: Sequence[JudgedQuery], qrels: Mapping[str, Mapping[str, int]]) -> str:
    """A plain table of judged-set sizes, flagging sizes outside JUDGED_SET_RANGE."""
    low, high = JUDGED_SET_RANGE
    lines = [f"{'id':<36} {'group':<14} {'g2':>4} {'g1':>4} {'all':>4}  query"]
    for query in queries:
        grades = list(qrels.get(query.id, {}).values())
        full, part = grades.count(2), grades.count(1)
        flag = "" if low <= full + part <= high else "  <-- outside judged-set range"
        lines.append(
            f"{query.id:<36} {query.group:<14} {full:>4} {part:>4} {full + part:>4}"
            f"  {query.query}{flag}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    parser.add_argument("--out", type=Path, default=DEFAULT_QRELS)
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        print(f"skipped: corpus not found at {args.corpus} (needs ../shared/german-records)")
        return 0
    queries = load_queries(args.queries)
    qrels = build_qrels(queries, load_corpus(args.corpus))
    args.out.write_text(
        json.dumps(qrels, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(count_report(queries, qrels))
    print(f"\n{len(queries)} queries; qrels written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
