"""The IndexBackend contract, run against every backend: the embedded tantivy index always,
Elasticsearch when ES_URL points at a running cluster.

Documents go through the real pipeline shape: harvester.model.Record -> build_document.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harvester.model import Abstract, HostPublication, Identifiers, Person, Record
from harvester.run.document import build_document
from indexer.backend import IndexBackend, SearchDocument
from indexer.embedded.backend import EmbeddedBackend
from indexer.search_model import (
    Filter,
    QuerySyntaxError,
    SearchRequest,
    SearchResponse,
    required_word_count,
)

SEED_ID = "oai:orlis.difu.de:difu/167832"


def make_record(
    number: int,
    title: str,
    subjects: list[str],
    *,
    year: int = 2009,
    abstract: str = "",
    authors: tuple[str, ...] = ("Kocks, Martina",),
    type_: str = "Zeitschriftenaufsatz",
    datestamp: str = "2022-11-25T10:00:00Z",
    journal: str = "",
) -> Record:
    """A normalized ORLIS-like record (only the fields search needs)."""
    people = [Person(display=a, family=a.split(",")[0]) for a in authors]
    return Record(
        identifier=f"oai:orlis.difu.de:difu/{number}",
        source="orlis",
        metadata_prefix="dim",
        datestamp=datestamp,
        sets=["col_difu_1"],
        title=title,
        authors=people,
        year=year,
        issued=str(year),
        abstracts=[Abstract(abstract, "de")] if abstract else [],
        subjects=subjects,
        type=type_,
        normalized_type="article" if type_ == "Zeitschriftenaufsatz" else "book",
        language="de",
        identifiers=Identifiers(
            issn=["0303-2493"] if journal else [],
            isbn=["9783170242807"] if journal else [],
            doi=["10.1000/xyz.2009"] if journal else [],
        ),
        host=HostPublication(title=journal) if journal else None,
    )


def corpus() -> list[Record]:
    seed = make_record(
        167832,
        "Städte in sozialer Verantwortung",
        [
            "Stadtentwicklungsplanung",
            "Stadtteil",
            "Soziale Stadt",
            "Sozialraumanalyse",
            "Quartiermanagement",
        ],
        abstract=(
            "In den Städten zeichnet sich die gesellschaftliche Ungleichheit räumlich ab. "
            "Bewohner leben konzentriert in Stadtteilen mit mangelhaften Gebäudebeständen."
        ),
        authors=("Kocks, Martina", "Güles, Orhan"),
        journal="Informationen zur Raumentwicklung",
    )
    return [
        seed,
        make_record(1, "Die Straße als öffentlicher Raum", ["Straßenraum", "Verkehr"], year=2015),
        make_record(
            2, "Neue Stadtteile am Stadtrand", ["Wohnungsbau"], year=2018, type_="Monographie"
        ),
        make_record(3, "Verkehrsplanung in Kleinstädten", ["Verkehrsplanung"], year=2001),
        make_record(
            4,
            "Bürgerbeteiligung und Partizipation",
            ["Partizipation", "Bürgerengagement"],
            year=2020,
            authors=("Müller, Anna",),
            type_="Monographie",
        ),
        make_record(5, "Klimaanpassung der Stadt", ["Klimaanpassung", "Stadtklima"], year=2021),
    ]


def documents() -> list[SearchDocument]:
    return [build_document(r) for r in corpus()]


@pytest.fixture(params=["embedded", "elasticsearch"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexBackend]:
    if request.param == "embedded":
        instance: IndexBackend = EmbeddedBackend(tmp_path / "index")
    else:
        es_url = os.environ.get("ES_URL")
        if not es_url:
            pytest.skip(
                "ES_URL not set: live Elasticsearch contract tests need a running cluster, see README"
            )
        from indexer.elastic.backend import ElasticBackend

        instance = ElasticBackend.for_tests(es_url, f"ernte-test-{uuid.uuid4().hex[:8]}")
    instance.create(recreate=True)
    yield instance
    instance.close()


@pytest.fixture
def loaded(backend: IndexBackend) -> IndexBackend:
    result = backend.upsert(documents())
    assert result.written == len(corpus())
    assert result.errors == []
    return backend


def ids(backend: IndexBackend, query: str, **kwargs: object) -> set[str]:
    response = backend.search(SearchRequest(query=query, limit=100, **kwargs))  # type: ignore[arg-type]
    return {hit.id for hit in response.hits}


def test_upsert_counts_and_reupsert_is_idempotent(loaded: IndexBackend) -> None:
    assert loaded.count() == 6
    again = loaded.upsert(documents())
    assert again.written == 6
    assert loaded.count() == 6


def test_stale_datestamp_never_replaces_newer_document(loaded: IndexBackend) -> None:
    old = make_record(1, "Veralteter Titel", ["Verkehr"], datestamp="2001-01-01T00:00:00Z")
    result = loaded.upsert([build_document(old)])
    assert result.skipped_stale == 1
    assert result.written == 0
    assert ids(loaded, "Veralteter") == set()
    newer = make_record(1, "Erneuerter Titel", ["Verkehr"], datestamp="2030-01-01T00:00:00Z")
    assert loaded.upsert([build_document(newer)]).written == 1
    assert ids(loaded, "Erneuerter") == {"oai:orlis.difu.de:difu/1"}
    assert loaded.count() == 6


def test_delete_removes_and_ignores_missing(loaded: IndexBackend) -> None:
    result = loaded.delete(["oai:orlis.difu.de:difu/1", "oai:orlis.difu.de:difu/404"])
    assert result.deleted == 1
    assert loaded.count() == 5
    assert ids(loaded, "Straße") == set()


def test_an_old_tombstone_does_not_delete_a_newer_copy(loaded: IndexBackend) -> None:
    # Documents are stored with datestamp 2022-11-25T10:00:00Z. A deletion from 2021 (its
    # page processed late) must not remove them; one from 2023 does.
    old = loaded.delete(["oai:orlis.difu.de:difu/1"], {"oai:orlis.difu.de:difu/1": "2021-01-01"})
    assert (old.deleted, old.skipped_stale) == (0, 1)
    assert loaded.count() == 6
    new = loaded.delete(
        ["oai:orlis.difu.de:difu/1"], {"oai:orlis.difu.de:difu/1": "2023-01-01T00:00:00Z"}
    )
    assert new.deleted == 1 and loaded.count() == 5


def test_empty_query_matches_all_and_negation(loaded: IndexBackend) -> None:
    assert loaded.search(SearchRequest(query="")).total == 6
    assert len(ids(loaded, "-Verkehrsplanung")) == 5
    assert SEED_ID not in ids(loaded, "Stadt -Quartiermanagement")


def test_words_are_anded_and_phrases_respect_order(loaded: IndexBackend) -> None:
    assert ids(loaded, "Klimaanpassung Stadt") == {"oai:orlis.difu.de:difu/5"}
    assert ids(loaded, "Klimaanpassung Verkehr") == set()
    assert ids(loaded, '"öffentlicher Raum"') == {"oai:orlis.difu.de:difu/1"}
    assert ids(loaded, '"Raum öffentlicher"') == set()


def test_field_queries(loaded: IndexBackend) -> None:
    assert ids(loaded, "author:Gueles") == {SEED_ID}
    assert ids(loaded, "titel:Straße") == {"oai:orlis.difu.de:difu/1"}
    assert ids(loaded, "type:monographie") == {
        "oai:orlis.difu.de:difu/2",
        "oai:orlis.difu.de:difu/4",
    }
    assert ids(loaded, "year:2015..2019") == {
        "oai:orlis.difu.de:difu/1",
        "oai:orlis.difu.de:difu/2",
    }
    assert ids(loaded, "issn:0303-2493") == {SEED_ID}


@pytest.mark.parametrize(
    "typed",
    [
        "isbn:978-3-17-024280-7",  # as printed
        "isbn:3-17-024280-6",  # the ISBN-10 of the same book
        "isbn:9783170242807",  # as stored
        "issn:03032493",
        "doi:https://doi.org/10.1000/XYZ.2009",
        "doi:10.1000/xyz.2009",
    ],
)
def test_a_standard_number_is_found_however_it_is_typed(loaded: IndexBackend, typed: str) -> None:
    """`isbn:978-3-17-024280-7` found nothing: the index holds ISBN-13 digits, and the typed
    value was compared as it was."""
    assert ids(loaded, typed) == {SEED_ID}


def test_bad_query_raises_query_syntax_error(loaded: IndexBackend) -> None:
    with pytest.raises(QuerySyntaxError, match="position"):
        loaded.search(SearchRequest(query='"unclosed'))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Strasse", "oai:orlis.difu.de:difu/1"),
        ("Stadtteile", "oai:orlis.difu.de:difu/2"),
        ("Stadtteilen", "oai:orlis.difu.de:difu/2"),
        ("Städte", "oai:orlis.difu.de:difu/5"),
        ("Quartier", SEED_ID),
        ("Entwicklung", SEED_ID),
        ("Buergerbeteiligung", "oai:orlis.difu.de:difu/4"),
    ],
)
def test_german_analysis(loaded: IndexBackend, query: str, expected: str) -> None:
    assert expected in ids(loaded, query)


def facet_counts(response: SearchResponse, name: str) -> dict[str, int]:
    return {f.value: f.count for f in response.facets[name]}


def test_filters_restrict_hits_and_are_ored_within_a_field(loaded: IndexBackend) -> None:
    ranged = loaded.search(SearchRequest(filters=[Filter("year", low=2015, high=2020)]))
    assert ranged.total == 3
    either = loaded.search(
        SearchRequest(filters=[Filter("subject", "Verkehr"), Filter("subject", "Wohnungsbau")])
    )
    assert either.total == 2
    both = loaded.search(
        SearchRequest(filters=[Filter("type", "Monographie"), Filter("subject", "Verkehr")])
    )
    assert both.total == 0


def test_facet_of_a_filtered_field_keeps_its_siblings(loaded: IndexBackend) -> None:
    """Multi-select facets: a facet is counted without its own field's filters."""
    response = loaded.search(
        SearchRequest(
            query="",
            filters=[Filter("type", "Monographie")],
            facets={"year": 10, "type": 5, "subject": 20},
        )
    )
    assert response.total == 2
    assert {h.id for h in response.hits} == {
        "oai:orlis.difu.de:difu/2",
        "oai:orlis.difu.de:difu/4",
    }
    assert facet_counts(response, "type") == {"Monographie": 2, "Zeitschriftenaufsatz": 4}
    assert facet_counts(response, "year") == {"2018": 1, "2020": 1}
    subjects = facet_counts(response, "subject")
    assert subjects["Partizipation"] == 1 and "Verkehr" not in subjects


def test_each_facet_is_restricted_by_the_other_fields_filters(loaded: IndexBackend) -> None:
    response = loaded.search(
        SearchRequest(
            query="Stadt",
            filters=[Filter("type", "Monographie"), Filter("subject", "Wohnungsbau")],
            facets={"type": 5, "subject": 20, "year": 10},
        )
    )
    assert [h.id for h in response.hits] == ["oai:orlis.difu.de:difu/2"]
    # type: over "Stadt" + subject filter; subject: over "Stadt" + type filter
    assert facet_counts(response, "type") == {"Monographie": 1}
    assert facet_counts(response, "subject") == {"Wohnungsbau": 1}
    assert facet_counts(response, "year") == {"2018": 1}  # unfiltered field: all filters
    unfiltered = loaded.search(SearchRequest(query="Stadt", facets={"type": 5}))
    assert sum(facet_counts(unfiltered, "type").values()) == unfiltered.total


def test_filter_on_an_unfaceted_field_restricts_every_facet(loaded: IndexBackend) -> None:
    response = loaded.search(
        SearchRequest(filters=[Filter("year", low=2015, high=2020)], facets={"type": 5})
    )
    assert response.total == 3
    assert facet_counts(response, "type") == {"Monographie": 2, "Zeitschriftenaufsatz": 1}
    with_year_facet = loaded.search(
        SearchRequest(filters=[Filter("year", low=2015, high=2020)], facets={"year": 10})
    )
    assert with_year_facet.total == 3
    assert len(facet_counts(with_year_facet, "year")) == 6  # its own filter left out


def test_facets_count_everything_matched_not_only_the_page(loaded: IndexBackend) -> None:
    response = loaded.search(SearchRequest(query="", limit=1, facets={"source": 3}))
    assert len(response.hits) == 1
    assert response.facets["source"][0].value == "orlis"
    assert response.facets["source"][0].count == 6


def timeline(response: SearchResponse) -> list[tuple[str, int]]:
    return [(v.value, v.count) for v in response.year_histogram]


@pytest.fixture
def with_timeline(loaded: IndexBackend) -> IndexBackend:
    """The corpus (2001, 2009, 2015, 2018, 2020, 2021) plus more records on Verkehr in 2015
    and 2021, a second 2018 monograph, and one record without a year."""
    extra = [
        make_record(20, "Straßenbahn und Stadt", ["Verkehr"], year=2015),
        make_record(21, "Radverkehr im Quartier", ["Verkehr"], year=2015),
        make_record(22, "Wohnen am Fluss", ["Wohnungsbau"], year=2018, type_="Monographie"),
        make_record(23, "Verkehrswende in Städten", ["Verkehr"], year=2021),
    ]
    yearless = dict(build_document(make_record(24, "Ohne Jahr", ["Verkehr"])), year=None)
    result = loaded.upsert([*(build_document(r) for r in extra), yearless])
    assert result.written == 5 and result.errors == []
    return loaded


def test_year_histogram_is_every_year_ascending(with_timeline: IndexBackend) -> None:
    response = with_timeline.search(SearchRequest(limit=1, year_histogram=True))
    assert response.total == 11
    assert timeline(response) == [
        ("2001", 1),
        ("2009", 1),
        ("2015", 3),
        ("2018", 2),
        ("2020", 1),
        ("2021", 2),
    ]  # the yearless record is matched but has no bucket
    assert with_timeline.search(SearchRequest(limit=1)).year_histogram == []
    searched = with_timeline.search(SearchRequest(query="Verkehr", year_histogram=True))
    assert sum(count for _, count in timeline(searched)) == searched.total - 1  # + yearless


@pytest.mark.parametrize(
    "facets", [{}, {"subject": 10}, {"subject": 10, "year": 10}], ids=["none", "subject", "both"]
)
def test_year_filter_does_not_hide_the_other_years_of_the_timeline(
    with_timeline: IndexBackend, facets: dict[str, int]
) -> None:
    """Multi-select like a facet: the histogram obeys every filter except those on `year`."""
    response = with_timeline.search(
        SearchRequest(
            filters=[Filter("year", low=2015, high=2018), Filter("subject", "Verkehr")],
            facets=facets,
            limit=20,
            year_histogram=True,
        )
    )
    assert response.total == 3
    assert {h.year for h in response.hits} == {2015}
    assert timeline(response) == [("2015", 3), ("2021", 1)]  # subject filter applies
    if "subject" in facets:  # still restricted by the year range
        assert facet_counts(response, "subject") == {
            "Verkehr": 3,
            "Wohnungsbau": 2,
            "Straßenraum": 1,
        }
    if "year" in facets:
        assert facet_counts(response, "year") == {"2015": 3, "2021": 1}
    # Without the year filter the same timeline (the embedded backend then counts it in the
    # facets' shared pass, not in a pass of its own).
    unranged = with_timeline.search(
        SearchRequest(
            filters=[Filter("subject", "Verkehr")], facets=facets, limit=1, year_histogram=True
        )
    )
    assert unranged.total == 5  # and the year-less Verkehr record, matched but in no bucket
    assert timeline(unranged) == [("2015", 3), ("2021", 1)]


def test_sort_and_paging(loaded: IndexBackend) -> None:
    newest = loaded.search(SearchRequest(sort="year_desc", limit=3))
    assert [h.year for h in newest.hits] == [2021, 2020, 2018]
    oldest = loaded.search(SearchRequest(sort="year_asc", limit=2, offset=1))
    assert [h.year for h in oldest.hits] == [2009, 2015]
    first = loaded.search(SearchRequest(sort="year_desc", limit=4))
    rest = loaded.search(
        SearchRequest(sort="year_desc", limit=4, search_after=first.next_search_after)
    )
    assert [h.year for h in rest.hits] == [2009, 2001]
    assert rest.next_search_after is None


def test_hit_fields_and_highlights(loaded: IndexBackend) -> None:
    response = loaded.search(SearchRequest(query="Quartier Städte"))
    hit = response.hits[0]
    assert hit.id == SEED_ID
    assert hit.title == "Städte in sozialer Verantwortung"
    assert hit.year == 2009
    assert hit.authors == ["Kocks, Martina", "Güles, Orhan"]
    assert "Quartiermanagement" in hit.subjects
    assert hit.highlights["title"] == ["<mark>Städte</mark> in sozialer Verantwortung"]
    assert "<mark>Städten</mark>" in hit.highlights["abstract"][0]


def test_title_outranks_abstract(loaded: IndexBackend) -> None:
    extra = make_record(
        9, "Wohnen im Alter", ["Wohnen"], abstract="Auch die Klimaanpassung spielt eine Rolle."
    )
    loaded.upsert([build_document(extra)])
    response = loaded.search(SearchRequest(query="Klimaanpassung"))
    assert [h.id for h in response.hits][:2] == [
        "oai:orlis.difu.de:difu/5",
        "oai:orlis.difu.de:difu/9",
    ]


def test_most_bare_words_must_match_but_not_all(loaded: IndexBackend) -> None:
    """min_should_match "2<-1": all of two words, all but one of three or more."""
    assert ids(loaded, "Klimaanpassung Verkehr") == set()
    # two of three: "Klimaanpassung der Stadt", and "Verkehrsplanung in Kleinstädten" (parts)
    assert ids(loaded, "Klimaanpassung Stadt Verkehr") == {
        "oai:orlis.difu.de:difu/5",
        "oai:orlis.difu.de:difu/3",
    }
    assert ids(loaded, "Klimaanpassung Stadtklima Verkehr Wohnen") == set()
    # stop words do not count as words; phrases and field clauses are always required
    assert ids(loaded, "Klimaanpassung der Verkehr") == set()
    assert ids(loaded, 'Klimaanpassung Stadt "Verkehr"') == set()
    assert ids(loaded, "Klimaanpassung Stadt title:Verkehr") == set()


def test_words_standing_together_rank_first(loaded: IndexBackend) -> None:
    apart = make_record(
        10, "Straße und Stadt", ["Bauen"], abstract="Eine öffentliche Sache ist der Raum."
    )
    together = make_record(11, "Raum für alle", ["Bauen"], abstract="Der öffentliche Raum lebt.")
    loaded.upsert([build_document(apart), build_document(together)])
    response = loaded.search(SearchRequest(query="öffentlicher Raum"))
    ranked = [h.id for h in response.hits]
    assert ranked.index("oai:orlis.difu.de:difu/11") < ranked.index("oai:orlis.difu.de:difu/10")


@pytest.mark.parametrize(
    ("spec", "counts"),
    [
        ("2<-1", [0, 1, 2, 2, 3, 4, 5]),
        ("3<-1", [0, 1, 2, 3, 3, 4, 5]),
        ("100%", [0, 1, 2, 3, 4, 5, 6]),
        ("75%", [0, 1, 1, 2, 3, 3, 4]),
        ("-25%", [0, 1, 2, 3, 3, 4, 5]),
        ("-1", [0, 1, 1, 2, 3, 4, 5]),
        ("2", [0, 1, 2, 2, 2, 2, 2]),
        ("2<-25% 5<-2", [0, 1, 2, 3, 3, 4, 4]),
        ("3 < 90%", [0, 1, 2, 3, 3, 4, 5]),
    ],
)
def test_min_should_match_follows_elasticsearch(spec: str, counts: list[int]) -> None:
    """The word counts Elasticsearch's documented examples give, clamped to 1..words."""
    assert [required_word_count(spec, n) for n in range(len(counts))] == counts


@pytest.mark.parametrize("spec", ["", "all", "5<", "<-1", "1.5", "75 %x", "2<-1 x"])
def test_unsupported_min_should_match_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="minimum_should_match"):
        required_word_count(spec, 3)


# --- issue 15: German queries as people type them ------------------------------------------


@pytest.mark.parametrize(
    "query", ["Stadtentwicklung", "Stadtplanung", "Quartiersmanagement", "Sozialraum"]
)
def test_a_compound_typed_whole_finds_records_holding_its_parts(
    loaded: IndexBackend, query: str
) -> None:
    """The seed carries Stadtentwicklungsplanung, Quartiermanagement, Sozialraumanalyse:
    the query word is split like the index splits (linking -s- included)."""
    assert SEED_ID in ids(loaded, query)


def test_the_whole_word_outweighs_a_match_by_parts(loaded: IndexBackend) -> None:
    """Stadtentwicklungsplanung: the seed holds the word itself, record 3 only two of its
    parts (Verkehrsplanung in Kleinstädten: stadt, planung): both found, the seed first."""
    response = loaded.search(SearchRequest(query="Stadtentwicklungsplanung", highlight=False))
    found = [hit.id for hit in response.hits]
    assert found[0] == SEED_ID
    assert "oai:orlis.difu.de:difu/3" in found


def test_an_excluded_compound_excludes_the_records_its_parts_find(loaded: IndexBackend) -> None:
    assert SEED_ID not in ids(loaded, "Stadt -Stadtentwicklung")


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        (Filter("type", "monographie"), 2),
        (Filter("type", "MONOGRAPHIE"), 2),
        (Filter("subject", "soziale stadt"), 1),
        (Filter("subject", "Buergerengagement"), 1),
        (Filter("subject", "bürgerengagement"), 1),
        (Filter("author", "gueles, orhan"), 1),
        (Filter("journal", "informationen zur raumentwicklung"), 1),
        (Filter("subject", "Soziale"), 0),  # a value is the whole heading, not a word of it
    ],
)
def test_filter_values_ignore_case_and_umlaut_spelling(
    loaded: IndexBackend, filter_: Filter, expected: int
) -> None:
    assert loaded.search(SearchRequest(filters=[filter_])).total == expected


def test_facet_labels_keep_their_casing_under_a_folded_filter(loaded: IndexBackend) -> None:
    response = loaded.search(
        SearchRequest(filters=[Filter("type", "monographie")], facets={"type": 5})
    )
    assert {f.value for f in response.facets["type"]} >= {"Monographie"}


@pytest.mark.parametrize(
    "filter_", [Filter("year", low=2010, high=2005), Filter("year", "2010..2005")]
)
def test_a_backwards_year_filter_is_refused_like_the_query_syntax(
    loaded: IndexBackend, filter_: Filter
) -> None:
    with pytest.raises(QuerySyntaxError, match=r"year range '2010\.\.2005' runs backwards"):
        loaded.search(SearchRequest(filters=[filter_]))
    with pytest.raises(QuerySyntaxError, match=r"year range '2010\.\.2005' runs backwards"):
        loaded.search(SearchRequest(query="year:2010..2005"))


def test_a_well_catalogued_record_is_not_buried_by_its_many_headings(
    backend: IndexBackend,
) -> None:
    """The seed carries `Stadtteil` among 15 headings and `Stadtteilen` in its abstract; three
    records carry it among two headings and say nothing more. Subject headings are a set:
    without length norms the seed's heading weighs as much as theirs, and its abstract lifts
    it to the top (with BM25 norms on the subject field it came last)."""
    headings = [
        "Stadtteil", "Stadtentwicklungsplanung", "Stadtforschung", "Segregation", "Armut",
        "Partizipation", "Sozialpolitik", "Arbeitsförderung", "Soziale Stadt", "Wohnungsbau",
        "Sozialraumanalyse", "Quartiermanagement", "Europäischer Sozialfonds", "Migration",
        "Bildung",
    ]  # fmt: skip
    seed = make_record(
        167832,
        "Städte in sozialer Verantwortung",
        headings,
        abstract="Bewohner leben konzentriert in Stadtteilen mit mangelhaften Gebäuden.",
    )
    others = [
        make_record(n, f"Bericht {n}", ["Stadtteil", "Verkehr"], abstract="Ein kurzer Bericht.")
        for n in (11, 12, 13)
    ]
    assert backend.upsert([build_document(r) for r in [seed, *others]]).written == 4
    response = backend.search(SearchRequest(query="Stadtteile", highlight=False))
    assert response.total == 4
    assert response.hits[0].id == SEED_ID


@pytest.mark.parametrize(
    ("field", "printed"),
    [
        ("isbn", "978-3-17-024280-7"),
        ("isbn", "3-17-024280-6"),
        ("isbn", "3 17 024280 6"),
        ("isbn", "12345"),
        ("issn", "03032493"),
        ("issn", "0303-2494"),  # a wrong check digit
        ("doi", "https://dx.doi.org/10.1000/ABC"),
        ("doi", "doi: 10.1000/ABC"),
    ],
)
def test_a_typed_number_takes_the_form_the_crosswalks_store(field: str, printed: str) -> None:
    """The query side (`indexer.identifiers`) and the record side (the crosswalks) each bring
    a number into its stored form; they must agree, or a typed number misses its record."""
    from harvester.normalize.crosswalks.common import DOI_RE, normalize_isbn, normalize_issn
    from indexer.identifiers import stored_form

    doi = DOI_RE.match(printed)
    stored = {
        "isbn": normalize_isbn(printed),
        "issn": normalize_issn(printed),
        "doi": doi.group(1).lower() if doi else None,
    }[field]
    assert stored_form(field, printed) == (stored or printed)


def test_response_as_plain_data_is_what_asdict_gives(loaded: IndexBackend) -> None:
    """`SearchResponse.to_dict` (what `ernte search --json` prints and the API returns) is
    written out for speed: it must stay `dataclasses.asdict`, every field included, with new
    lists and dicts a caller may change without touching the response."""
    requests = [
        SearchRequest(
            query="Stadt",
            facets={"subject": 3, "year": 5},
            year_histogram=True,
            limit=2,
        ),
        SearchRequest(query="", sort="year_desc", limit=2, highlight=False),
    ]
    for request in requests:
        response = loaded.search(request)
        assert response.hits and response.next_search_after is not None
        plain = response.to_dict()
        assert plain == dataclasses.asdict(response)
        plain["hits"][0]["authors"].append("changed")
        plain["facets"].clear()
        assert "changed" not in response.hits[0].authors
        assert bool(response.facets) == bool(request.facets)
    assert any(hit.highlights for hit in loaded.search(requests[0]).hits)
    assert loaded.search(requests[1]).hits[0].sort is not None
