"""The judged German query set (bench/relevance/queries.yaml) and how its judgments are derived.

These tests check the mechanism (the file is well-formed, every rule grades records the way the
rule syntax says), never relevance scores: scores are measured by `bench/relevance/run.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.relevance.build_judgments import (
    DEFAULT_QRELS,
    DEFAULT_QUERIES,
    GROUPS,
    JUDGED_SET_RANGE,
    QueryFileError,
    build_qrels,
    load_corpus,
    load_queries,
    parse_queries,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT_ROOT.parent / "shared" / "german-records" / "corpus.json"


def _record(identifier: str, *headings: str) -> dict[str, Any]:
    return {"id": identifier, "dim": {"dc.subject": list(headings), "dc.title": ["x."]}}


TINY_CORPUS = [
    _record("r-exact", "Wohnung", "Berlin"),
    _record("r-compound", "Wohnungsbau"),
    _record("r-qualified", "Sozialer Wohnungsbau"),
    _record("r-partial", "Wohnen"),
    _record("r-both", "Armut", "Großstadt"),
    _record("r-poverty-only", "Armut"),
    _record("r-nothing", "Logistik"),
    {"id": "r-no-subjects", "dim": {"dc.title": ["Ohne Schlagwort."]}},
]

TINY_QUERIES = {
    "queries": [
        {
            "id": "exact-and-regex",
            "group": "compound_part",
            "query": "Wohnung",
            "why": "an exact heading plus a regex over compounds",
            "grade2": ["Wohnung", "re:.*[Ww]ohnungsbau"],
            "grade1": ["Wohnen"],
        },
        {
            "id": "conjunction",
            "group": "multi_word",
            "query": "Armut in Großstädten",
            "why": "both headings fully, poverty alone partly",
            "grade2": [{"all": ["Armut", "re:(Groß)?[Ss]tadt"]}],
            "grade1": ["Armut"],
        },
        {
            "id": "whole-heading-only",
            "group": "control",
            "query": "Wohnungsbau",
            "why": "an exact string must equal the whole heading, not a part of it",
            "grade2": ["Wohnungsbau"],
        },
    ]
}


@pytest.fixture(scope="module")
def queries() -> list[Any]:
    return load_queries(DEFAULT_QUERIES)


def test_query_file_has_enough_queries_in_every_group(queries: list[Any]) -> None:
    assert len(queries) >= 40
    present = {q.group for q in queries}
    assert present == set(GROUPS)
    for group in GROUPS:
        assert sum(q.group == group for q in queries) >= 5, group


def test_every_query_has_a_written_rule(queries: list[Any]) -> None:
    for query in queries:
        assert query.query, query.id
        assert len(query.why) >= 20, f"{query.id}: the rule needs a written rationale"
        assert query.grade2, f"{query.id}: no grade-2 rule"


def test_query_ids_and_texts_are_unique(queries: list[Any]) -> None:
    assert len({q.id for q in queries}) == len(queries)
    assert len({q.query for q in queries}) == len(queries)


def test_phrase_queries_are_quoted_and_control_queries_are_not(queries: list[Any]) -> None:
    for query in queries:
        if query.group == "phrase":
            assert query.query.count('"') >= 2, query.id
        else:
            assert '"' not in query.query, query.id


def test_grades_follow_the_rules_on_a_tiny_corpus() -> None:
    qrels = build_qrels(parse_queries(TINY_QUERIES), TINY_CORPUS)
    assert qrels["exact-and-regex"] == {
        "r-exact": 2,
        "r-compound": 2,
        "r-qualified": 2,
        "r-partial": 1,
    }
    assert qrels["conjunction"] == {"r-both": 2, "r-poverty-only": 1}
    assert qrels["whole-heading-only"] == {"r-compound": 2}


def test_grade_two_wins_over_grade_one() -> None:
    data = {
        "queries": [
            {
                "id": "overlap",
                "group": "control",
                "query": "Wohnung",
                "why": "the same heading in both grades: the higher grade counts",
                "grade2": ["Wohnung"],
                "grade1": ["Wohnung", "Berlin"],
            }
        ]
    }
    assert build_qrels(parse_queries(data), TINY_CORPUS)["overlap"] == {"r-exact": 2}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"group": "control", "query": "a", "why": "w", "grade2": ["A"]}, "missing `id`"),
        ({"id": "q", "group": "nope", "query": "a", "why": "w", "grade2": ["A"]}, "group"),
        ({"id": "q", "group": "control", "query": "a", "grade2": ["A"]}, "missing `why`"),
        ({"id": "q", "group": "control", "query": "a", "why": "w", "grade2": []}, "grade2"),
        ({"id": "q", "group": "control", "query": "a", "why": "w", "grade2": ["re:("]}, "regular"),
        (
            {"id": "q", "group": "control", "query": "a", "why": "w", "grade2": [{"any": ["A"]}]},
            "clause",
        ),
    ],
)
def test_malformed_queries_are_refused_with_the_reason(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryFileError, match=message):
        parse_queries({"queries": [entry]})


def test_duplicate_ids_are_refused() -> None:
    entry = {"id": "q", "group": "control", "query": "a", "why": "w", "grade2": ["A"]}
    with pytest.raises(QueryFileError, match="duplicate"):
        parse_queries({"queries": [entry, dict(entry)]})


@pytest.fixture(scope="module")
def corpus_qrels(queries: list[Any]) -> dict[str, dict[str, int]]:
    if not CORPUS.is_file():
        pytest.skip(f"needs the German corpus at {CORPUS} (../shared/german-records)")
    return build_qrels(queries, load_corpus(CORPUS))


@pytest.mark.slow
def test_committed_qrels_match_the_rules(corpus_qrels: dict[str, dict[str, int]]) -> None:
    committed = json.loads(DEFAULT_QRELS.read_text(encoding="utf-8"))
    assert committed == corpus_qrels, "re-run bench/relevance/build_judgments.py"


@pytest.mark.slow
def test_judged_sets_are_non_trivial(
    queries: list[Any], corpus_qrels: dict[str, dict[str, int]]
) -> None:
    low, _high = JUDGED_SET_RANGE
    for query in queries:
        grades = corpus_qrels[query.id].values()
        assert sum(1 for g in grades if g == 2) >= low, query.id
