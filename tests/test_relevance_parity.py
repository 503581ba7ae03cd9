"""Both backends find the same records for the same query: the top 10 of every judged query.

The same corpus goes through the same pipeline into the embedded index and into Elasticsearch,
whose analysis chain and query building mirror the embedded ones. Runs where ES_URL points at a
live cluster (and ../shared/german-records is present); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from bench.relevance.build_judgments import DEFAULT_CORPUS, load_corpus, load_queries
from bench.relevance.run import build_documents, index_documents
from indexer.backend import IndexBackend
from indexer.embedded.backend import EmbeddedBackend
from indexer.search_model import SearchRequest

ES_URL = os.environ.get("ES_URL")
pytestmark = [
    pytest.mark.es,
    pytest.mark.skipif(
        not ES_URL, reason="ES_URL not set: the backend parity test needs a live Elasticsearch"
    ),
]


def _top10(backend: IndexBackend, query: str) -> list[str]:
    response = backend.search(SearchRequest(query=query, limit=10, highlight=False))
    return [hit.id for hit in response.hits]


def test_top_10_of_every_judged_query_is_the_same_in_both_backends(tmp_path: Path) -> None:
    if not DEFAULT_CORPUS.exists():
        pytest.skip(f"{DEFAULT_CORPUS} is absent: the parity test indexes that corpus")
    from indexer.elastic import indices
    from indexer.elastic.backend import ElasticBackend

    documents, _ = build_documents(load_corpus())
    embedded = EmbeddedBackend(tmp_path / "index")
    elastic = ElasticBackend.for_tests(str(ES_URL), f"ernte-parity-{uuid.uuid4().hex[:8]}")
    try:
        index_documents(embedded, documents)
        index_documents(elastic, documents)
        differing = {}
        for query in load_queries():
            ours, theirs = _top10(embedded, query.query), _top10(elastic, query.query)
            if set(ours) != set(theirs):
                differing[query.id] = (query.query, sorted(set(ours) ^ set(theirs)))
        assert not differing, f"top 10 differ for {len(differing)} queries: {differing}"
    finally:
        embedded.close()
        indices = indices.indices_behind_alias(elastic.client, elastic.alias)
        indices.delete_indices(elastic.client, indices)
        elastic.client.indices.delete_index_template(name=elastic.alias)
        elastic.close()
