"""What is particular to the embedded tantivy backend (the shared contract is in
test_backend_contract.py): why it pre-analyzes in Python, its writer lifecycle, persistence,
and per-item errors."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import pytest
import tantivy

from harvester.model import Record
from harvester.run.document import build_document
from indexer.analysis import analyze, german_stopwords
from indexer.embedded.backend import EmbeddedBackend
from indexer.embedded.schema import TEXT_FIELDS
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
    """The title field holds exactly the terms of ernte's Python chain (read back from the index
    with tantivy itself), not what tantivy's own chain would make; each probe word finds the
    record that has it and not the other one."""
    path = tmp_path / "index"
    backend = EmbeddedBackend(path)
    probes = make_record(1, " ".join(PROBES), [])
    other = make_record(2, "Radverkehr auf dem Land", [])
    backend.upsert([build_document(probes), build_document(other)])
    backend.close()

    searcher = tantivy.Index.open(str(path)).searcher()
    for word in PROBES:
        terms = analyze(word)
        assert terms, word
        for term in terms:
            assert searcher.doc_freq("title", term) == 1, (word, term)
    chain = tantivy_german_chain()
    for word in ("Europäer", "Jubiläen"):
        for term in set(chain.analyze(word)) - set(analyze(word)):
            assert searcher.doc_freq("title", term) == 0, (word, term)

    reopened = EmbeddedBackend(path)
    for word in PROBES:
        found = reopened.search(SearchRequest(query=f"title:{word}"))
        assert [hit.id for hit in found.hits] == [probes.identifier], word
    assert reopened.search(SearchRequest(query="title:Hafen")).total == 0
    reopened.close()


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


def test_a_query_error_that_quotes_a_word_like_corrupt_stays_a_query_error(
    tmp_path: Path,
) -> None:
    """A query error quotes the query; `year:corrupt` was reported as a damaged index (and a
    503 from `ernte serve`) because its message held a word tantivy uses for damage."""
    backend = EmbeddedBackend(tmp_path / "index")
    backend.upsert([build_document(r) for r in corpus()])
    for query in ("year:corrupt", "year:ioerror", "corrupt:Stadt"):
        with pytest.raises(QuerySyntaxError):
            backend.search(SearchRequest(query=query))
    with pytest.raises(QuerySyntaxError):
        backend.search(SearchRequest(query="Stadt", search_after=["corrupt"]))
    backend.close()


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


def loaded_index(path: Path, *extra: Record) -> None:
    backend = EmbeddedBackend(path)
    backend.upsert([build_document(r) for r in (*corpus(), *extra)])
    backend.close()


def hit_ids(backend: EmbeddedBackend, query: str) -> set[str]:
    return {h.id for h in backend.search(SearchRequest(query=query, limit=100)).hits}


def scores(backend: EmbeddedBackend, query: str) -> dict[str, float]:
    return {h.id: h.score for h in backend.search(SearchRequest(query=query, limit=100)).hits}


@pytest.mark.parametrize(
    "options",
    [
        {"min_should_match": "most"},
        {"min_should_match": "2<"},
        {"exact_boost": -1.0},
        {"proximity_slop": -1},
        {"text_fields": TEXT_FIELDS[:-1]},
    ],
)
def test_bad_options_are_refused_at_construction(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmbeddedBackend(tmp_path / "index", **options)


def test_min_should_match_option(tmp_path: Path) -> None:
    path = tmp_path / "index"
    loaded_index(path)
    query = "Klimaanpassung Stadt Verkehr"
    assert hit_ids(EmbeddedBackend(path, min_should_match="100%"), query) == set()
    assert hit_ids(EmbeddedBackend(path, min_should_match="1"), query) >= {
        "oai:orlis.difu.de:difu/1",  # Verkehr only
        "oai:orlis.difu.de:difu/5",
    }
    assert hit_ids(EmbeddedBackend(path), query) == {
        "oai:orlis.difu.de:difu/3",
        "oai:orlis.difu.de:difu/5",
    }


def test_use_parts_option(tmp_path: Path) -> None:
    path = tmp_path / "index"
    loaded_index(path)
    seed = "oai:orlis.difu.de:difu/167832"
    assert seed in hit_ids(EmbeddedBackend(path), "Quartier")  # via Quartiermanagement
    assert seed not in hit_ids(EmbeddedBackend(path, use_parts=False), "Quartier")


def test_exact_boost_rewards_the_exact_spelling(tmp_path: Path) -> None:
    path = tmp_path / "index"
    loaded_index(
        path, make_record(20, "Städte im Wandel", []), make_record(21, "Stadt im Wandel", [])
    )
    exact, other = "oai:orlis.difu.de:difu/20", "oai:orlis.difu.de:difu/21"
    shipped = scores(EmbeddedBackend(path), "Städte")
    assert shipped[exact] > shipped[other]
    doubled = scores(EmbeddedBackend(path, exact_boost=2.0), "Städte")
    assert doubled[exact] - doubled[other] > shipped[exact] - shipped[other]
    without = scores(EmbeddedBackend(path, exact_boost=0.0), "Städte")
    assert without[exact] == pytest.approx(without[other])


def test_proximity_option_only_adds_score(tmp_path: Path) -> None:
    path = tmp_path / "index"
    together = make_record(11, "Der öffentliche Raum", [])
    apart = make_record(12, "Öffentliche Straßen, privater Raum", [])
    loaded_index(path, together, apart)
    query = "öffentlicher Raum"
    off = scores(EmbeddedBackend(path, proximity_boost=0.0), query)
    on = scores(EmbeddedBackend(path, proximity_boost=2.0, proximity_slop=0), query)
    far = scores(EmbeddedBackend(path, proximity_boost=2.0, proximity_slop=3), query)
    assert on.keys() == off.keys() == far.keys()  # never changes which records match
    assert on[together.identifier] > off[together.identifier]
    assert on[apart.identifier] == pytest.approx(off[apart.identifier])
    assert far[apart.identifier] > off[apart.identifier]  # within the slop


def test_compound_options_and_highlights(tmp_path: Path) -> None:
    """compound_boost 0 switches query-side splitting off; compound_min_should_match says how
    many parts must match; a compound found by its parts is highlighted whole."""
    path = tmp_path / "index"
    loaded_index(path, make_record(30, "Berichte zur Stadtentwicklungsplanung", ["Stadtforschung"]))
    seed, report = "oai:orlis.difu.de:difu/167832", "oai:orlis.difu.de:difu/30"
    assert {seed, report} <= hit_ids(EmbeddedBackend(path), "Stadtentwicklung")
    # typed in lower case, as people type in a search box: the same records, the same ranking
    assert scores(EmbeddedBackend(path), "stadtentwicklung") == scores(
        EmbeddedBackend(path), "Stadtentwicklung"
    )
    assert hit_ids(EmbeddedBackend(path, compound_boost=0.0), "Stadtentwicklung") == set()
    three_parts = "Stadtentwicklungsarbeit"  # stadt, entwicklung, arbeit: two of three match
    assert report in hit_ids(EmbeddedBackend(path), three_parts)
    assert hit_ids(EmbeddedBackend(path, compound_min_should_match="100%"), three_parts) == set()
    hit = next(
        h
        for h in EmbeddedBackend(path).search(SearchRequest(query="Stadtentwicklung")).hits
        if h.id == report
    )
    assert hit.highlights["title"] == ["Berichte zur <mark>Stadtentwicklungsplanung</mark>"]


def test_subject_fields_without_norms_score_idf_times_weight(tmp_path: Path) -> None:
    """A heading among 15 counts as much as the same heading among 2 (issue 15)."""
    many = ["Stadtteil", *(f"Thema{chr(65 + n)}xyz" for n in range(14))]
    path = tmp_path / "index"
    loaded_index(path, make_record(40, "Eins", many), make_record(41, "Zwei", ["Stadtteil", "X"]))
    got = scores(EmbeddedBackend(path), "subject:Stadtteil")
    assert got["oai:orlis.difu.de:difu/40"] == pytest.approx(got["oai:orlis.difu.de:difu/41"])
    normed = tuple(dataclasses.replace(f, norms=True) for f in TEXT_FIELDS)
    with_norms = scores(EmbeddedBackend(path, text_fields=normed), "subject:Stadtteil")
    assert with_norms["oai:orlis.difu.de:difu/40"] < with_norms["oai:orlis.difu.de:difu/41"]


def test_a_forked_child_searches_like_its_parent(tmp_path: Path) -> None:
    """A search collects its hits on a second thread; a child forked after a search (a Celery
    prefork worker) has no such thread and must make its own instead of waiting forever."""
    loaded_index(tmp_path)
    backend = EmbeddedBackend(tmp_path)
    expected = hit_ids(backend, "Stadt")
    assert expected
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, reported by its exit status
        try:
            os._exit(0 if hit_ids(EmbeddedBackend(tmp_path), "Stadt") == expected else 1)
        finally:
            os._exit(2)
    waited = 0
    status = 0
    while waited < 600:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
        waited += 1
    else:
        os.kill(child, 9)
        os.waitpid(child, 0)
        pytest.fail("the forked child's search did not return within 30 s")
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_failing_facet_pass_leaves_no_hits_pass_behind() -> None:
    """When the facet pass fails, the search waits for its parts on the spare threads before
    raising, so they are free for the next search and the error is the facet pass's."""
    from indexer.embedded.backend import _SpareThreads

    spare = _SpareThreads()
    finished: list[str] = []

    def slow_part(name: str) -> str:
        time.sleep(0.3)
        finished.append(name)
        return name

    with pytest.raises(ValueError, match="facet pass failed"), spare.search() as beside:
        assert beside is not None  # alone: parts run beside
        beside(lambda: slow_part("hits"))
        beside(lambda: slow_part("subject"))
        raise ValueError("facet pass failed")
    assert sorted(finished) == ["hits", "subject"]
    with spare.search() as beside:
        assert beside is not None
        assert beside(lambda: 1)() == 1


def test_parts_run_beside_only_while_a_search_runs_alone() -> None:
    """A second search while one runs gets no spare threads (every core is busy already)."""
    from indexer.embedded.backend import _SpareThreads

    spare = _SpareThreads()
    with spare.search() as first, spare.search() as second:
        assert first is not None and second is None
    with spare.search() as again:
        assert again is not None


def test_a_grown_part_list_changes_query_splits_and_highlights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Query splitting and highlighting memoize per word, but with the part list in use: once
    a process uses another list, a new part splits and marks at once. (That a long-running
    process chooses a rewritten list again is test_config_files.py's.)"""
    from indexer import word_lists
    from indexer.compounds import reload_part_lists
    from indexer.embedded.highlight import highlight
    from indexer.query_parts import compound_parts
    from indexer.resources import COMPOUND_PARTS, STOPWORDS, resource_file

    word = "Quaxelbrunkplanung"
    assert compound_parts(word) == ()
    assert highlight(f"Die {word} der Stadt", {"quaxelbrunk"}, whole=True) == []
    grown = tmp_path / "compound_parts_de.txt"
    grown.write_text(resource_file(COMPOUND_PARTS).read_text(encoding="utf-8") + "quaxelbrunk\n")
    monkeypatch.setattr(word_lists, "_chosen", {})
    word_lists.use_word_lists(stopwords=resource_file(STOPWORDS), compound_parts=grown)
    try:
        assert compound_parts(word) == ("quaxelbrunk", "planung")
        assert highlight(f"Die {word} der Stadt", {"quaxelbrunk"}, whole=True) == [
            f"Die <mark>{word}</mark> der Stadt"
        ]
    finally:
        reload_part_lists()
