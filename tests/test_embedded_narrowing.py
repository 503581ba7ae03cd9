"""A query whose clauses must all match narrows its costly clauses by its most selective one
(indexer.embedded.queries, `_narrowed_clauses`): the same records, the same scores to the last
bit, the same facets as the query built without narrowing. Only the work tantivy does changes."""

from __future__ import annotations

import pytest

from harvester.run.document import build_document
from indexer.embedded.backend import EmbeddedBackend
from indexer.embedded.queries import QueryTranslator
from indexer.query import parse_query
from indexer.search_model import Filter, SearchRequest
from tests.test_backend_contract import make_record

CITIES = ["Bonn", "Leipzig", "Köln", "Dortmund", "Kassel"]
HEADINGS = [
    "Stadtentwicklungsplanung",
    "Stadtteilentwicklung",
    "Quartiermanagement",
    "Verkehrsplanung",
    "Soziale Stadt",
    "Wohnungsbau",
]


def compound_records(count: int) -> list[dict[str, object]]:
    """Records where compounds about Stadt, Planung and Entwicklung are everywhere and
    `Berlin` is rare: in a title, in an abstract, or in both, a few times each."""
    records = []
    for number in range(count):
        city = CITIES[number % 5] if number % 40 else "Berlin"
        title = f"{['Stadtplanung', 'Stadtentwicklung', 'Quartiersarbeit'][number % 3]} in {city}"
        abstract = (
            f"Die Stadtteilentwicklung in {'Berlin' if number % 50 == 7 else 'der Region'} "
            f"und die Entwicklungsplanung der Stadtteile {number}."
        )
        records.append(
            build_document(
                make_record(
                    number,
                    title,
                    [HEADINGS[number % 6], HEADINGS[(number * 5) % 6], "Stadtplanung"],
                    year=2000 + number % 11,
                    abstract=abstract,
                    type_="Monographie" if number % 4 == 0 else "Zeitschriftenaufsatz",
                )
            )
        )
    return records


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedBackend:
    """400 records in two segments."""
    backend = EmbeddedBackend(tmp_path_factory.mktemp("narrowing") / "index")
    backend.defer_commits()
    records = compound_records(400)
    for batch in (records[:200], records[200:]):
        backend.upsert(batch)
        backend.commit()
    backend.close()
    return backend


def answer(backend: EmbeddedBackend, request: SearchRequest) -> object:
    response = backend.search(request)
    return (
        response.total,
        [(hit.id, hit.score) for hit in response.hits],
        response.facets,
        response.year_histogram,
    )


@pytest.mark.parametrize(
    "query",
    [
        "Stadtteilentwicklung Berlin",
        "Berlin Stadtplanung",
        "Entwicklungsplanung Berlin",
        "title:Berlin Stadtentwicklung",
        '"Berlin" Stadtplanung',
        "Stadtteilentwicklung Berlin -Quartiersarbeit",
        "Stadtteilentwicklung in Berlin",  # a stop word is no word the query must match
    ],
)
def test_narrowed_queries_find_and_score_exactly_what_the_plain_query_does(
    index: EmbeddedBackend, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    searcher = index._views.current().searcher
    parsed = parse_query(query)
    narrowed = index.queries._narrowed_clauses(parsed, searcher)
    assert narrowed, f"{query!r} is not narrowed, so this test would compare a query with itself"
    assert len(parsed.positive) - 1 in narrowed or 0 in narrowed
    request = SearchRequest(
        query=query,
        limit=100,
        facets={"subject": 10, "type": 5, "year": 20},
        year_histogram=True,
        filters=[Filter("type", "Zeitschriftenaufsatz")] if "-" in query else [],
    )
    with_narrowing = answer(index, request)
    monkeypatch.setattr(QueryTranslator, "_narrowed_clauses", lambda *_args: {})
    plain = answer(index, request)
    assert with_narrowing == plain
    total, hits, _facets, _timeline = plain  # type: ignore[misc]
    assert total > 0 and len(hits) == min(total, 100)


@pytest.mark.parametrize(
    "query",
    [
        "Berlin",  # one clause
        "Stadtplanung Stadtentwicklung",  # both costly: nothing is selective
        "Stadtteilentwicklung Berlin Leipzig",  # three words: one may be missing
        "year:2005 Stadtplanung",  # a year clause is no text clause
    ],
)
def test_queries_are_not_narrowed_where_it_cannot_help_or_would_change_matches(
    index: EmbeddedBackend, query: str
) -> None:
    searcher = index._views.current().searcher
    assert index.queries._narrowed_clauses(parse_query(query), searcher) == {}
