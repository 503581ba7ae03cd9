"""What is particular to the embedded tantivy backend (the shared contract is in
test_backend_contract.py): why it pre-analyzes in Python, its writer lifecycle, persistence,
and per-item errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import tantivy

from indexer.analysis import analyze, german_stopwords
from indexer.document import build_document
from indexer.embedded import EmbeddedBackend
from indexer.search_model import QuerySyntaxError, SearchRequest
from tests.test_backend_contract import corpus, make_record

PROBES = [
    "Straße", "Strasse", "Stadtteile", "Stadtteilen", "Stadtteil", "Städte", "Stadt",
    "Müller", "Mueller", "Börse", "Boerse", "Ärger", "Aerger", "Quelle", "Bauer", "neue",
    "Bürgerbeteiligung", "Buergerbeteiligung", "Europäer", "Jubiläen", "Wohnungsbau",
]  # fmt: skip


def tantivy_german_chain() -> tantivy.TextAnalyzer:
    """The closest chain tantivy can build itself (it has no German normalization)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(r"\w+"))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.custom_stopword(sorted(german_stopwords())))
        .filter(tantivy.Filter.stemmer("german"))
        .build()
    )


def test_tantivy_builtin_chain_cannot_reproduce_german_normalization() -> None:
    """The evidence for pre-analyzing in Python: tantivy's own filters agree on most
    words but not all (Lucene normalizes ä->a before stemming, Snowball after)."""
    chain = tantivy_german_chain()
    disagreements = {w for w in PROBES if chain.analyze(w) != analyze(w)}
    assert disagreements == {"Europäer", "Jubiläen"}


def test_indexed_terms_are_the_python_chain_terms(tmp_path: Path) -> None:
    backend = EmbeddedBackend(tmp_path / "index")
    record = make_record(1, " ".join(PROBES), [])
    backend.upsert([build_document(record)])
    for word in PROBES:
        for term in analyze(word):
            assert backend.search(SearchRequest(query=f"title:{word}")).total == 1, term
    backend.close()


def test_writer_can_be_opened_and_closed_repeatedly(tmp_path: Path) -> None:
    path = tmp_path / "index"
    for round_number in range(3):
        backend = EmbeddedBackend(path)
        backend.upsert([build_document(make_record(round_number, "Stadt", []))])
        backend.close()
        backend.close()  # closing twice is harmless
    reopened = EmbeddedBackend(path)
    assert reopened.count() == 3
    second = EmbeddedBackend(path)  # a reader beside a writer
    reopened.upsert([build_document(make_record(7, "Land", []))])
    second.close()
    reopened.close()
    assert EmbeddedBackend(path).count() == 4


def test_recreate_empties_the_index(tmp_path: Path) -> None:
    backend = EmbeddedBackend(tmp_path / "index")
    backend.upsert([build_document(r) for r in corpus()])
    backend.create(recreate=True)
    assert backend.count() == 0
    backend.close()


def test_index_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "index"
    EmbeddedBackend(path).create()
    (path / "ernte-schema-version").write_text("0")
    with pytest.raises(RuntimeError, match="rebuild"):
        EmbeddedBackend(path).count()


def test_bad_documents_are_reported_not_dropped(tmp_path: Path) -> None:
    backend = EmbeddedBackend(tmp_path / "index")
    good = build_document(make_record(1, "Stadt", []))
    bad = dict(build_document(make_record(2, "Land", [])), year="zweitausend")
    result = backend.upsert([good, bad, {"title": "ohne id"}])
    assert result.written == 1
    assert [(e.identifier, "cannot index" in e.reason) for e in result.errors] == [
        ("", False),
        ("oai:orlis.difu.de:difu/2", True),
    ]
    backend.close()


def test_duplicate_ids_in_one_batch_keep_the_newest(tmp_path: Path) -> None:
    backend = EmbeddedBackend(tmp_path / "index")
    newer = make_record(1, "Neu", [], datestamp="2024-01-01T00:00:00Z")
    older = make_record(1, "Alt", [], datestamp="2020-01-01T00:00:00Z")
    result = backend.upsert([build_document(newer), build_document(older)])
    assert (result.written, result.skipped_stale) == (1, 1)
    assert backend.search(SearchRequest(query="Neu")).total == 1
    backend.close()


def test_stop_word_only_clause_is_ignored(tmp_path: Path) -> None:
    backend = EmbeddedBackend(tmp_path / "index")
    backend.upsert([build_document(r) for r in corpus()])
    assert (
        backend.search(SearchRequest(query="Stadt und")).total
        == backend.search(SearchRequest(query="Stadt")).total
    )
    backend.close()


def test_unknown_filter_or_facet_field_is_an_error(tmp_path: Path) -> None:
    backend = EmbeddedBackend(tmp_path / "index")
    with pytest.raises(QuerySyntaxError, match="facet fields"):
        backend.search(SearchRequest(facets={"title": 5}))
    backend.close()


def test_highlights_are_html_escaped(tmp_path: Path) -> None:
    backend = EmbeddedBackend(tmp_path / "index")
    backend.upsert([build_document(make_record(1, "Stadt <b>&</b> Land", []))])
    hit = backend.search(SearchRequest(query="Land")).hits[0]
    assert hit.highlights["title"] == ["Stadt &lt;b&gt;&amp;&lt;/b&gt; <mark>Land</mark>"]
    backend.close()
