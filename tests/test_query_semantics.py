"""What a query means, in both backends (embedded searched here, Elasticsearch's request
bodies checked): a phrase of stop words is dropped like a stop word, and a repeated word is
one word (audit of 2026-12-03)."""

from __future__ import annotations

import pytest

from indexer.elastic.queries import text_query as es_text_query
from indexer.embedded.backend import EmbeddedBackend
from indexer.query import parse_query
from indexer.search_model import SearchRequest
from tests.test_embedded_narrowing import compound_records


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedBackend:
    backend = EmbeddedBackend(tmp_path_factory.mktemp("semantics") / "index")
    backend.upsert(compound_records(300))
    backend.close()
    return backend


def found(backend: EmbeddedBackend, query: str) -> set[str]:
    response = backend.search(SearchRequest(query=query, limit=300))
    assert response.total == len(response.hits)
    return {hit.id for hit in response.hits}


def test_a_phrase_of_stop_words_is_dropped_like_a_stop_word(index: EmbeddedBackend) -> None:
    everything = found(index, "")
    assert found(index, '"und der"') == found(index, "und der") == everything
    assert found(index, 'Berlin "in der"') == found(index, "Berlin")


def test_a_repeated_word_is_one_word(index: EmbeddedBackend) -> None:
    both = found(index, "Berlin Leipzig")
    assert found(index, "Berlin Berlin Leipzig") == found(index, "Berlin berlin Leipzig") == both
    assert parse_query("Berlin BERLIN Leipzig").distinct_positive == (
        parse_query("Berlin Leipzig").positive
    )
    assert len(parse_query("id:X id:x").distinct_positive) == 2  # identifiers: as typed


def test_elasticsearch_bodies_mean_the_same() -> None:
    assert es_text_query(parse_query('"und der"')).to_dict() == {"match_all": {}}
    repeated = es_text_query(parse_query("Berlin Berlin Leipzig")).to_dict()["bool"]
    assert (
        repeated["must"] == es_text_query(parse_query("Berlin Leipzig")).to_dict()["bool"]["must"]
    )
    assert len(repeated["must"]) == 2  # both words required; the proximity reads them as typed
