"""Every body ernte sends to Elasticsearch, checked without a cluster.

The template, bulk action lines, search bodies, alias actions and the Kibana import request
are built by the real code and compared with what Elasticsearch's APIs require. The live
counterpart (the same calls against a real cluster) is tests/test_es_live.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import helpers
from pydantic import SecretStr

from harvester.config_files import INDEX_TEMPLATE, KIBANA_OBJECTS, STOPWORDS, packaged_file
from harvester.model import Abstract, HostPublication, Identifiers, Person, Record
from harvester.run import services
from harvester.run.document import build_document
from harvester.settings import Settings
from indexer.analysis import load_word_list
from indexer.backend import WriteResult
from indexer.elastic import indices, kibana, mapping, queries
from indexer.elastic.backend import (
    VERSION_TYPE,
    apply_bulk_item,
    datestamp_version,
    delete_actions,
    index_actions,
)
from indexer.elastic.connection import (
    ConnectionOptions,
    UnsupportedServerError,
    check_server_version,
    redact_url,
)
from indexer.search_model import FACET_FIELDS, Filter, QuerySyntaxError, SearchRequest

SEED_ID = "oai:orlis.difu.de:difu/167832"


def seed_record() -> Record:
    return Record(
        identifier=SEED_ID,
        source="orlis",
        metadata_prefix="dim",
        datestamp="2022-11-25T10:00:00Z",
        sets=["col_difu_1"],
        title="Städte in sozialer Verantwortung",
        authors=[Person("Kocks, Martina", "Kocks", "Martina"), Person("Güles, Orhan", "Güles")],
        year=2009,
        issued="2009",
        abstracts=[Abstract("Wie Städte Quartiere stärken.", "de")],
        subjects=["Stadtentwicklungsplanung", "Quartiermanagement"],
        type="Zeitschriftenaufsatz",
        normalized_type="article",
        language="de",
        identifiers=Identifiers(issn=["0303-2493"], local=["DM09072727"]),
        host=HostPublication(title="Informationen zur Raumentwicklung"),
    )


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return mapping.template_body()


@pytest.fixture(scope="module")
def properties(template: dict[str, Any]) -> dict[str, Any]:
    return template["template"]["mappings"]["properties"]


def body(**request: Any) -> dict[str, Any]:
    return queries.build_search(SearchRequest(**request), "ernte-records").to_dict()


# --- index template ------------------------------------------------------------------------


def test_committed_template_file_is_what_the_dsl_builds() -> None:
    committed = packaged_file(INDEX_TEMPLATE).read_text(encoding="utf-8")
    assert committed == mapping.template_json(), "run: python -m indexer.elastic.mapping"


def test_template_targets_versioned_indices(template: dict[str, Any]) -> None:
    assert template["index_patterns"] == ["ernte-records-*"]
    assert template["priority"] > 100
    settings = template["template"]["settings"]
    assert settings["number_of_shards"] == 1
    assert "max_result_window" not in settings


def test_german_analyzer_chain_matches_the_python_chain(template: dict[str, Any]) -> None:
    analysis = template["template"]["settings"]["analysis"]
    german = analysis["analyzer"]["de"]
    assert german["tokenizer"] == "standard"
    assert german["filter"] == ["lowercase", "de_stop", "german_normalization", "de_stem"]
    assert analysis["filter"]["de_stem"] == {"type": "stemmer", "language": "german"}
    stop = analysis["filter"]["de_stop"]
    assert stop["type"] == "stop"
    assert stop["stopwords"] == load_word_list(packaged_file(STOPWORDS))
    assert analysis["analyzer"]["de_exact"]["filter"] == ["lowercase"]
    assert analysis["analyzer"]["name"]["filter"] == [
        "lowercase",
        "german_normalization",
        "asciifolding",
    ]
    assert analysis["normalizer"]["folded"]["filter"] == ["lowercase", "german_normalization"]
    assert analysis["normalizer"]["issn"]["char_filter"] == ["no_hyphen"]


def test_mapping_is_strict_and_covers_every_document_field(template: dict[str, Any]) -> None:
    mappings = template["template"]["mappings"]
    assert mappings["dynamic"] == "strict"
    assert mappings["date_detection"] is False
    assert set(mappings["properties"]) == set(build_document(seed_record()))


@pytest.mark.parametrize("field", ["title", "abstract", "subject", "journal"])
def test_text_fields_use_german_chain_with_exact_subfield(
    properties: dict[str, Any], field: str
) -> None:
    assert properties[field]["type"] == "text"
    assert properties[field]["analyzer"] == "de"
    assert properties[field]["fields"]["exact"]["type"] == "text"
    assert properties[field]["fields"]["exact"]["analyzer"] == "de_exact"


@pytest.mark.parametrize("field", ["title_parts", "subject_parts", "abstract_parts"])
def test_parts_fields_use_the_german_chain(properties: dict[str, Any], field: str) -> None:
    assert properties[field]["type"] == "text"
    assert properties[field]["analyzer"] == "de"


def test_subject_heading_fields_are_scored_as_a_set(
    template: dict[str, Any], properties: dict[str, Any]
) -> None:
    """Issue 15: no length norms on the subject fields, BM25 with k1 0 (idf x boost), as the
    embedded backend scores them; the other text fields keep the default BM25 with norms."""
    from indexer.embedded.schema import TEXT_FIELDS

    similarity = template["template"]["settings"]["similarity"]
    assert similarity == {"heading_set": {"type": "BM25", "k1": 0.0, "b": 0.0}}
    heading_set = {"similarity": "heading_set", "norms": False}
    for mapped in (
        properties["subject"],
        properties["subject"]["fields"]["exact"],
        properties["subject_parts"],
    ):
        assert heading_set.items() <= mapped.items()
    for field in ("title", "abstract", "journal", "title_parts", "abstract_parts"):
        assert "similarity" not in properties[field] and "norms" not in properties[field]
    embedded_without_norms = {f.name for f in TEXT_FIELDS if not f.norms}
    assert embedded_without_norms == {"subject", "subject_exact", "subject_parts"}


def test_facet_and_identifier_fields_are_keywords(properties: dict[str, Any]) -> None:
    assert properties["subject"]["fields"]["raw"] == {"type": "keyword"}
    assert properties["subject"]["fields"]["folded"] == {"type": "keyword", "normalizer": "folded"}
    assert properties["author"]["analyzer"] == "name"
    assert properties["author"]["fields"]["raw"] == {"type": "keyword"}
    assert properties["journal"]["fields"]["raw"] == {"type": "keyword"}
    folded = {"type": "keyword", "normalizer": "folded"}
    assert properties["journal"]["fields"]["folded"] == folded
    for field in ("type", "normalized_type", "language", "source", "set"):
        assert properties[field] == {"type": "keyword", "fields": {"folded": folded}}, field
    for field in ("datestamp", "id"):
        assert properties[field] == {"type": "keyword"}, field
    assert properties["issn"] == {"type": "keyword", "normalizer": "issn"}
    for field in ("isbn", "doi", "local_id", "handle"):
        assert properties[field]["type"] == "keyword"
    assert properties["year"] == {"type": "integer"}
    assert properties["issued"] == {"type": "date", "format": "yyyy||yyyy-MM||yyyy-MM-dd"}


def test_every_facet_aggregates_a_mapped_flat_field(properties: dict[str, Any]) -> None:
    assert set(queries.FACET_AGG_FIELDS) == set(FACET_FIELDS)
    for facet, path in queries.FACET_AGG_FIELDS.items():
        assert resolve(properties, path)["type"] in ("keyword", "integer"), facet
    for facet, path in queries.FILTER_FIELDS.items():
        assert resolve(properties, path)["type"] in ("keyword", "integer"), facet


def test_autocomplete_subfields(properties: dict[str, Any]) -> None:
    for field in ("title", "subject"):
        assert properties[field]["fields"]["suggest"]["type"] == "search_as_you_type"


def test_decompounder_only_when_asked() -> None:
    plain = mapping.template_body()["template"]
    assert "decomp" not in plain["mappings"]["properties"]["title"]["fields"]
    assert "de_decompounder" not in plain["settings"]["analysis"]["filter"]
    with_decomp = mapping.template_body(with_decompounder=True)["template"]
    decompounder = with_decomp["settings"]["analysis"]["filter"]["de_decompounder"]
    assert decompounder["type"] == "dictionary_decompounder"
    assert decompounder["word_list_path"] == "analysis/compound_parts_de.txt"
    assert with_decomp["mappings"]["properties"]["title"]["fields"]["decomp"]["analyzer"] == (
        "de_decomp"
    )
    # the default query never touches .decomp, so parity with the embedded backend holds
    assert not any("decomp" in field for field in queries.DEFAULT_TEXT_FIELDS)


def resolve(properties: dict[str, Any], path: str) -> dict[str, Any]:
    top, _, sub = path.partition(".")
    return properties[top]["fields"][sub] if sub else properties[top]


# --- bulk actions --------------------------------------------------------------------------


def test_index_action_is_keyed_and_externally_versioned() -> None:
    document = build_document(seed_record())
    errors: list[Any] = []
    [action] = list(index_actions([document], "ernte-records", errors))
    assert errors == []
    assert action["_op_type"] == "index"
    assert action["_index"] == "ernte-records"
    assert action["_id"] == SEED_ID
    assert action["version_type"] == VERSION_TYPE == "external_gte"
    assert action["version"] == 1669370400  # 2022-11-25T10:00:00Z
    assert "subtitle" not in action["_source"]  # "" is left out (not a valid date/int)
    assert action["_source"]["subject"] == ["Stadtentwicklungsplanung", "Quartiermanagement"]
    header, source = helpers.expand_action(action)
    assert header == {
        "index": {
            "_index": "ernte-records",
            "_id": SEED_ID,
            "version": 1669370400,
            "version_type": "external_gte",
        }
    }
    assert source == action["_source"]


def test_unversionable_or_anonymous_documents_are_errors_not_actions() -> None:
    good = build_document(seed_record())
    bad_date = {**good, "id": "oai:x:1", "datestamp": "gestern"}
    no_id = {**good, "id": ""}
    errors: list[Any] = []
    actions = list(index_actions([bad_date, good, no_id], "i", errors))
    assert [a["_id"] for a in actions] == [SEED_ID]
    assert errors[0].identifier == "oai:x:1"
    assert "gestern" in errors[0].reason
    assert errors[1].identifier == ""


def test_datestamp_versions_order_day_and_second_granularity() -> None:
    day = datestamp_version("2024-05-01")
    assert day == datestamp_version("2024-05-01T00:00:00Z")
    assert datestamp_version("2024-05-01T12:30:00Z") == day + 12 * 3600 + 30 * 60
    assert datestamp_version("2024-05-01T14:30:00+02:00") == day + 12 * 3600 + 30 * 60
    with pytest.raises(ValueError):
        datestamp_version("2024-13-01")


def test_delete_actions() -> None:
    [action] = list(delete_actions(["oai:x:1"], "ernte-records"))
    assert helpers.expand_action(action) == (
        {"delete": {"_index": "ernte-records", "_id": "oai:x:1"}},
        None,
    )


def test_delete_actions_with_a_tombstone_datestamp_are_versioned() -> None:
    [action] = list(
        delete_actions(["oai:x:1"], "ernte-records", {"oai:x:1": "2024-05-01T12:30:00Z"})
    )
    assert action["version"] == datestamp_version("2024-05-01T12:30:00Z")
    assert action["version_type"] == "external_gte"
    [unreadable] = list(delete_actions(["oai:x:2"], "ernte-records", {"oai:x:2": "not a date"}))
    assert "version" not in unreadable  # deleted unversioned rather than not at all


def test_bulk_results_are_counted_by_kind() -> None:
    result = WriteResult()
    apply_bulk_item(result, True, {"index": {"_id": "a", "status": 201, "result": "created"}})
    apply_bulk_item(result, True, {"delete": {"_id": "b", "status": 200, "result": "deleted"}})
    apply_bulk_item(result, False, {"delete": {"_id": "c", "status": 404, "result": "not_found"}})
    conflict = {"type": "version_conflict_engine_exception", "reason": "current version is higher"}
    apply_bulk_item(result, False, {"index": {"_id": "d", "status": 409, "error": conflict}})
    strict = {
        "type": "document_parsing_exception",
        "reason": "[1:2] mapping set to strict, dynamic introduction of [foo] is not allowed",
    }
    apply_bulk_item(result, False, {"index": {"_id": "e", "status": 400, "error": strict}})
    assert (result.written, result.deleted, result.skipped_stale) == (1, 1, 1)
    assert [e.identifier for e in result.errors] == ["e"]
    assert "strict" in result.errors[0].reason and "HTTP 400" in result.errors[0].reason


# --- search bodies -------------------------------------------------------------------------


def test_empty_query_is_match_all_sorted_with_a_unique_tie_breaker() -> None:
    search = body()
    assert search["query"] == {"match_all": {}}
    assert search["sort"] == [{"_score": {"order": "desc"}}, {"id": {"order": "asc"}}]
    assert search["track_total_hits"] is True
    assert (search["from"], search["size"]) == (0, 11)  # one extra hit: is there a next page?


def test_words_are_required_and_exclusions_excluded() -> None:
    query = body(query='Stadt "soziale Stadt" -Verkehr')["query"]["bool"]
    phrase, word = query["must"]  # bare words come after the required clauses
    assert word["multi_match"]["query"] == "Stadt"
    assert word["multi_match"]["type"] == "phrase"
    assert word["multi_match"]["zero_terms_query"] == "none"
    assert word["multi_match"]["fields"] == list(queries.DEFAULT_TEXT_FIELDS)
    assert "title_parts^1.5" in word["multi_match"]["fields"]
    assert "title.exact^1.5" in word["multi_match"]["fields"]
    assert phrase["multi_match"]["query"] == "soziale Stadt"
    assert not any("_parts" in f for f in phrase["multi_match"]["fields"])
    assert word["multi_match"]["tie_breaker"] == 1.0  # field scores summed, as embedded
    assert query["must_not"][0]["multi_match"]["query"] == "Verkehr"
    assert query["should"] == [
        {
            "multi_match": {
                "query": "Stadt soziale Stadt",
                "type": "phrase",
                "slop": queries.PROXIMITY_SLOP,
                "fields": ["title^3", "subtitle^3", "subject^2", "abstract"],
                "tie_breaker": 1.0,
                "boost": queries.PROXIMITY_BOOST,
            }
        }
    ]


def test_most_bare_words_must_match() -> None:
    """min_should_match 2<-1: stop words do not count; phrases and field words stay required."""
    query = body(query='Beteiligung der Bürger an der Stadtplanung "Soziale Stadt" titel:Berlin')
    must = query["query"]["bool"]["must"]
    phrase, field, words = must
    assert phrase["multi_match"]["query"] == "Soziale Stadt"
    assert field["multi_match"]["fields"] == list(queries.USER_TEXT_FIELDS["title"])
    assert words["bool"]["minimum_should_match"] == 2
    beteiligung, buerger, stadtplanung = words["bool"]["should"]
    assert [w["multi_match"]["query"] for w in (beteiligung, buerger)] == ["Beteiligung", "Bürger"]
    whole, _parts = stadtplanung["bool"]["should"]  # a compound: the word or its parts
    assert whole["multi_match"]["query"] == "Stadtplanung"
    proximity = query["query"]["bool"]["should"][0]["multi_match"]
    assert proximity["query"] == "Beteiligung der Bürger an der Stadtplanung Soziale Stadt"


def test_one_or_two_bare_words_are_all_required() -> None:
    must = body(query="Armut in Städten")["query"]["bool"]["must"]
    assert [m["multi_match"]["query"] for m in must] == ["Armut", "Städten"]
    single = body(query="Städte und")["query"]["bool"]
    assert [m["multi_match"]["query"] for m in single["must"]] == ["Städte"]
    assert "should" not in single  # one term left: no proximity clause


def test_ranking_defaults_mirror_the_embedded_backend() -> None:
    """Same field weights, minimum_should_match and proximity clause as the embedded default."""
    from indexer.embedded import schema
    from indexer.embedded.backend import EmbeddedBackend

    es_names = {
        "title": ("title", "subtitle"),
        "title_exact": ("title.exact", "subtitle.exact"),
        "subject_exact": ("subject.exact",),
        "author": ("author", "editor"),
    }
    expected = [
        f"{es}^{field.boost:g}" if field.boost != 1 else es
        for field in schema.TEXT_FIELDS
        if field.default
        for es in es_names.get(field.name, (field.name,))
    ]
    assert sorted(queries.DEFAULT_TEXT_FIELDS) == sorted(expected)
    proximity = [
        f"{es}^{weight:g}" if weight != 1 else es
        for name, weight in schema.PROXIMITY_FIELDS.items()
        for es in es_names.get(name, (name,))
    ]
    assert list(queries.PROXIMITY_FIELDS) == proximity
    translator = EmbeddedBackend(Path("unused")).queries
    assert translator.min_should_match == queries.MIN_SHOULD_MATCH
    assert translator.proximity_boost == queries.PROXIMITY_BOOST
    assert translator.proximity_slop == queries.PROXIMITY_SLOP


def test_only_exclusions_match_everything_else() -> None:
    query = body(query="-Verkehrsplanung")["query"]["bool"]
    assert query["must"] == [{"match_all": {}}]
    assert len(query["must_not"]) == 1


def test_a_clause_without_tokens_is_dropped() -> None:
    assert body(query="&")["query"] == {"match_all": {}}


def test_field_queries() -> None:
    must = body(query="titel:Planung author:Gueles")["query"]["bool"]["must"]
    assert must[0]["multi_match"]["fields"] == list(queries.USER_TEXT_FIELDS["title"])
    assert must[1]["multi_match"]["fields"] == ["author^2", "editor^2"]
    typed = body(query="type:monographie")["query"]["bool"]["must"][0]
    assert typed == {
        "bool": {
            "should": [
                {"term": {"type": {"value": "monographie", "case_insensitive": True}}},
                {"term": {"normalized_type": {"value": "monographie", "case_insensitive": True}}},
            ],
            "minimum_should_match": 1,
        }
    }
    years = body(query="year:2005..")["query"]["bool"]["must"][0]
    assert years == {"range": {"year": {"gte": 2005}}}
    assert body(query=f'id:"{SEED_ID}"')["query"]["bool"]["must"][0] == {"term": {"id": SEED_ID}}


@pytest.mark.parametrize(
    ("typed", "field", "stored"),
    [
        ("isbn:3-17-024280-6", "isbn", "9783170242807"),
        ("issn:03032493", "issn", "0303-2493"),
        ("doi:https://doi.org/10.1000/XYZ", "doi", "10.1000/xyz"),
        ("isbn:not-a-number", "isbn", "not-a-number"),  # searched as typed
    ],
)
def test_a_standard_number_is_asked_for_in_its_stored_form(
    typed: str, field: str, stored: str
) -> None:
    must = body(query=typed)["query"]["bool"]["must"][0]
    assert must == {"term": {field: {"value": stored, "case_insensitive": True}}}


def test_bad_query_raises_query_syntax_error() -> None:
    with pytest.raises(QuerySyntaxError, match="position"):
        body(query='"unclosed')


def test_filters_on_unfaceted_fields_restrict_the_query() -> None:
    search = body(
        query="Stadt",
        filters=[
            Filter("subject", "Stadtforschung"),
            Filter("subject", "Migration"),
            Filter("year", low=2000, high=2010),
        ],
        facets={"type": 5},
    )
    assert "post_filter" not in search
    must, filters = search["query"]["bool"]["must"], search["query"]["bool"]["filter"]
    assert must[0]["bool"]["must"][0]["multi_match"]["query"] == "Stadt"
    assert filters == [
        {
            "bool": {
                "should": [
                    {"term": {"subject.folded": "Stadtforschung"}},
                    {"term": {"subject.folded": "Migration"}},
                ],
                "minimum_should_match": 1,
            }
        },
        {"range": {"year": {"gte": 2000, "lte": 2010}}},
    ]
    assert search["aggs"] == {"facet_type": {"terms": {"field": "type", "size": 5}}}


def test_facets_are_multi_select_with_post_filter_and_sibling_filters() -> None:
    search = body(
        filters=[
            Filter("subject", "Migration"),
            Filter("type", "Monographie"),
            Filter("language", "de"),
        ],
        facets={"subject": 5, "type": 3, "year": 4},
    )
    language_filter = {"term": {"language.folded": "de"}}
    assert search["query"] == {"bool": {"must": [{"match_all": {}}], "filter": [language_filter]}}
    subject_filter = {"term": {"subject.folded": "Migration"}}
    type_filter = {"term": {"type.folded": "Monographie"}}
    assert search["post_filter"] == {"bool": {"filter": [subject_filter, type_filter]}}
    aggs = search["aggs"]
    assert aggs["facet_subject"]["filter"] == {"bool": {"filter": [type_filter]}}
    assert aggs["facet_subject"]["aggs"]["values"]["terms"]["field"] == "subject.raw"
    assert aggs["facet_type"]["filter"] == {"bool": {"filter": [subject_filter]}}
    assert aggs["facet_year"]["filter"] == {"bool": {"filter": [subject_filter, type_filter]}}


def test_facet_of_the_only_filtered_field_counts_the_query_alone() -> None:
    search = body(query="Stadt", filters=[Filter("type", "Monographie")], facets={"type": 3})
    assert search["post_filter"] == {"bool": {"filter": [{"term": {"type.folded": "Monographie"}}]}}
    assert search["aggs"] == {"facet_type": {"terms": {"field": "type", "size": 3}}}
    assert "filter" not in search["query"]["bool"]


def test_year_filter_value_may_be_a_range() -> None:
    search = body(filters=[Filter("year", "2005..2010")], facets={"year": 3})
    assert search["post_filter"] == {
        "bool": {"filter": [{"range": {"year": {"gte": 2005, "lte": 2010}}}]}
    }
    search = body(filters=[Filter("year", "2005..2010")])
    assert search["query"]["bool"]["filter"] == [{"range": {"year": {"gte": 2005, "lte": 2010}}}]


YEAR_HISTOGRAM = {"histogram": {"field": "year", "interval": 1, "min_doc_count": 1}}


def test_year_histogram_only_when_asked_for() -> None:
    assert body(year_histogram=True)["aggs"] == {"year_histogram": YEAR_HISTOGRAM}
    assert "aggs" not in body()


def test_year_histogram_is_counted_without_the_year_filter() -> None:
    """The year range moves to post_filter (hits obey it, the timeline does not); filters on
    fields that are neither faceted nor `year` stay in the query and restrict everything."""
    year_filter = {"range": {"year": {"gte": 2005, "lte": 2010}}}
    type_filter = {"term": {"type.folded": "Monographie"}}
    language_filter = {"term": {"language.folded": "de"}}
    search = body(
        filters=[
            Filter("year", low=2005, high=2010),
            Filter("type", "Monographie"),
            Filter("language", "de"),
        ],
        facets={"type": 3},
        year_histogram=True,
    )
    assert search["query"]["bool"]["filter"] == [language_filter]
    assert search["post_filter"] == {"bool": {"filter": [year_filter, type_filter]}}
    assert search["aggs"]["year_histogram"] == {
        "filter": {"bool": {"filter": [type_filter]}},
        "aggs": {"values": YEAR_HISTOGRAM},
    }
    # the year range, though now a post_filter, still restricts the type facet
    assert search["aggs"]["facet_type"]["filter"] == {"bool": {"filter": [year_filter]}}
    only_year = body(filters=[Filter("year", "2005..2010")], year_histogram=True)
    assert only_year["post_filter"] == {"bool": {"filter": [year_filter]}}
    assert only_year["aggs"] == {"year_histogram": YEAR_HISTOGRAM}
    assert only_year["query"] == {"match_all": {}}


def test_year_histogram_response_translation() -> None:
    hits = {"total": {"value": 7, "relation": "eq"}, "hits": []}
    buckets = [{"key": 2008.0, "doc_count": 2}, {"key": 2009.0, "doc_count": 5}]
    wrapped = {"doc_count": 7, "values": {"buckets": buckets}}
    for aggregation in ({"buckets": buckets}, wrapped):
        response = queries.to_search_response(
            {"hits": hits, "aggregations": {"year_histogram": aggregation}},
            SearchRequest(year_histogram=True),
        )
        assert [(v.value, v.count) for v in response.year_histogram] == [("2008", 2), ("2009", 5)]
    unasked = queries.to_search_response({"hits": hits}, SearchRequest())
    assert unasked.year_histogram == []
    assert unasked.to_dict()["year_histogram"] == []


def test_unknown_filter_or_facet_is_a_query_syntax_error() -> None:
    with pytest.raises(QuerySyntaxError, match="filter"):
        body(filters=[Filter("title", "x")])
    with pytest.raises(QuerySyntaxError, match="facet"):
        body(facets={"title": 3})


def test_highlight_marks_title_and_abstract() -> None:
    highlight = body(query="Stadt")["highlight"]
    assert highlight["pre_tags"] == ["<mark>"] and highlight["post_tags"] == ["</mark>"]
    assert highlight["encoder"] == "html"
    assert highlight["fields"]["title"] == {"number_of_fragments": 0}
    assert highlight["fields"]["abstract"]["number_of_fragments"] == 3
    assert "highlight" not in body(query="Stadt", highlight=False)


def test_year_sort_and_search_after_cursor() -> None:
    search = body(sort="year_asc", limit=20, offset=40, search_after=[2009, 1.0, SEED_ID])
    assert search["sort"][0] == {"year": {"order": "asc", "missing": "_last"}}
    assert search["sort"][-1] == {"id": {"order": "asc"}}
    assert search["search_after"] == [2009, 1.0, SEED_ID]
    assert (search["from"], search["size"]) == (0, 21)  # the offset gives way to the cursor


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("year_asc", [1]),  # an embedded index's cursor, sent to Elasticsearch
        ("year_desc", [2009, 1.0]),
        ("year_asc", ["2009", 1.0, SEED_ID]),
        ("relevance", [1.0, 7]),
        ("relevance", [True, SEED_ID]),
        ("relevance", [2009, 1.0, SEED_ID]),
    ],
)
def test_a_cursor_that_does_not_fit_the_sort_is_a_syntax_error(
    sort: str, cursor: list[Any]
) -> None:
    """Elasticsearch refused such a cursor with a 400 of its own, which `ernte serve` answered
    as a 500 with a traceback in its log."""
    with pytest.raises(QuerySyntaxError, match="pass next_search_after of the previous response"):
        body(sort=sort, search_after=cursor)
    assert body(sort="relevance", search_after=[3.5, SEED_ID])["search_after"] == [3.5, SEED_ID]
    cursor_of_a_record_without_year = [-9_223_372_036_854_775_808, 1.0, SEED_ID]
    assert body(sort="year_desc", search_after=cursor_of_a_record_without_year)["search_after"]


def test_paging_beyond_the_window_needs_the_cursor() -> None:
    assert body(offset=9_990, limit=9)["from"] == 9_990
    with pytest.raises(queries.DeepPagingError, match="search_after"):
        body(offset=9_995, limit=10)


def test_response_translation() -> None:
    request = SearchRequest(query="Stadt", limit=1, facets={"year": 3, "subject": 2})
    response_body = {
        "took": 7,
        "hits": {
            "total": {"value": 42, "relation": "eq"},
            "hits": [
                {
                    "_id": SEED_ID,
                    "_score": 3.5,
                    "_source": {
                        "title": "Städte in sozialer Verantwortung",
                        "year": 2009,
                        "author": ["Kocks, Martina", "Güles, Orhan"],
                        "subject": ["Quartiermanagement"],
                        "source": "orlis",
                        "type": "Zeitschriftenaufsatz",
                    },
                    "highlight": {"title": ["<mark>Städte</mark> in sozialer Verantwortung"]},
                    "sort": [3.5, SEED_ID],
                },
                {"_id": "oai:x:2", "_score": 1.0, "_source": {"title": "B"}, "sort": [1.0, "b"]},
            ],
        },
        "aggregations": {
            "facet_year": {"buckets": [{"key": 2009, "doc_count": 30}]},
            "facet_subject": {
                "doc_count": 42,
                "values": {"buckets": [{"key": "Quartiermanagement", "doc_count": 5}]},
            },
        },
    }
    response = queries.to_search_response(response_body, request)
    assert response.total == 42 and response.took_ms == 7.0
    [hit] = response.hits
    assert hit.authors == ["Kocks, Martina", "Güles, Orhan"] and hit.year == 2009
    assert hit.highlights["title"] == ["<mark>Städte</mark> in sozialer Verantwortung"]
    assert response.next_search_after == [3.5, SEED_ID]
    assert [(f.value, f.count) for f in response.facets["year"]] == [("2009", 30)]
    assert response.facets["subject"][0].value == "Quartiermanagement"


# --- versioned indices and the alias switch ------------------------------------------------


def test_next_index_name() -> None:
    assert indices.next_index_name("ernte-records", []) == "ernte-records-1"
    existing = ["ernte-records-2", "ernte-records-10", "ernte-records-old", "other-99"]
    assert indices.next_index_name("ernte-records", existing) == "ernte-records-11"


def test_alias_switch_is_one_request_removing_old_and_adding_new() -> None:
    actions = indices.alias_switch_actions("ernte-records", "ernte-records-3", ["ernte-records-2"])
    assert actions == [
        {"remove": {"index": "ernte-records-2", "alias": "ernte-records"}},
        {"add": {"index": "ernte-records-3", "alias": "ernte-records"}},
    ]
    first = indices.alias_switch_actions("ernte-records", "ernte-records-1", [])
    assert first == [{"add": {"index": "ernte-records-1", "alias": "ernte-records"}}]


def test_bulk_load_settings_relax_and_serving_settings_restore_the_template() -> None:
    """Every setting a rebuild relaxes for loading is set back afterwards: to the template's
    value where the template has one, and the replica count through auto_expand_replicas."""
    bulk = indices.BULK_LOAD_SETTINGS["index"]
    serving = indices.SERVING_SETTINGS["index"]
    template_settings = mapping.template_body()["template"]["settings"]
    assert bulk == {
        "number_of_replicas": 0,
        "auto_expand_replicas": False,
        "refresh_interval": "-1",
    }
    # what a searcher relies on: new records visible within a second, one replica when possible
    assert template_settings["refresh_interval"] == "1s"
    assert template_settings["auto_expand_replicas"] == "0-1"
    for key, loading_value in bulk.items():
        if key == "number_of_replicas":  # not in the template: auto_expand_replicas sets it
            assert "number_of_replicas" not in template_settings
            assert serving["auto_expand_replicas"] not in (None, False)
            continue
        assert key in serving, f"{key} is relaxed for loading and never restored"
        assert serving[key] == template_settings[key] != loading_value


def test_delete_refuses_wildcards() -> None:
    with pytest.raises(ValueError, match="exact"):
        indices.delete_indices(None, ["ernte-records-*"])  # type: ignore[arg-type]


# --- connection ----------------------------------------------------------------------------


def test_connection_options_keep_secrets_secret() -> None:
    settings = Settings(
        es_url="https://es.example:9200",
        es_api_key=SecretStr("c2VjcmV0"),
        es_username="ernte",
        es_password=SecretStr("hunter2"),
    )
    options = services.es_connection(settings)
    assert options.verify_certs is True
    assert "c2VjcmV0" not in repr(options) and "hunter2" not in repr(options)
    assert redact_url("https://ernte:hunter2@es:9200/") == "https://***@es:9200/"
    assert redact_url("http://127.0.0.1:9200") == "http://127.0.0.1:9200"


def test_server_major_must_be_nine() -> None:
    assert check_server_version({"version": {"number": "9.1.3"}}, "http://es") == "9.1.3"
    with pytest.raises(UnsupportedServerError, match=r"8\.15\.0.*9\.x"):
        check_server_version({"version": {"number": "8.15.0"}}, "http://es")


# --- Kibana --------------------------------------------------------------------------------


def test_committed_saved_objects_are_what_the_code_builds() -> None:
    committed = packaged_file(KIBANA_OBJECTS).read_text(encoding="utf-8")
    assert committed == kibana.saved_objects_ndjson(), "run: python -m indexer.elastic.kibana"


def test_saved_objects_point_at_the_alias_and_flat_fields(properties: dict[str, Any]) -> None:
    objects = [json.loads(line) for line in kibana.saved_objects_ndjson().splitlines()]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_type.setdefault(obj["type"], []).append(obj)
    [data_view] = by_type["index-pattern"]
    assert data_view["attributes"]["title"] == "ernte-records"
    assert len(by_type["search"]) == 1
    fields = set()
    for vis in by_type["visualization"]:
        state = json.loads(vis["attributes"]["visState"])
        field = state["aggs"][1]["params"]["field"]
        fields.add(field)
        assert resolve(properties, field)["type"] in ("keyword", "integer"), field
        assert vis["references"][0]["id"] == data_view["id"]
    assert fields == {"subject.raw", "type", "year", "author.raw"}
    [dashboard] = by_type["dashboard"]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    referenced = {ref["name"]: ref["id"] for ref in dashboard["references"]}
    assert {referenced[f"{p['panelIndex']}:{p['panelRefName']}"] for p in panels} == {
        vis["id"] for vis in by_type["visualization"]
    }


def test_kibana_import_request(tmp_path: Any) -> None:
    ndjson = tmp_path / "objects.ndjson"
    ndjson.write_text('{"id": "x"}\n', encoding="utf-8")
    options = ConnectionOptions(url="https://es:9200", api_key=SecretStr("a2V5"))
    request = kibana.build_import_request("https://kibana:5601/", ndjson, options)
    assert request.method == "POST"
    assert request.url == "https://kibana:5601/api/saved_objects/_import?overwrite=true"
    assert request.headers["kbn-xsrf"] == "true"
    assert request.headers["Authorization"] == "ApiKey a2V5"
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    assert isinstance(request.body, bytes)
    assert b'name="file"; filename="objects.ndjson"' in request.body
    assert b'{"id": "x"}' in request.body


# --- issue 15: compounds split in the query, folded filters --------------------------------


def test_a_compound_word_matches_whole_or_by_its_parts_in_the_parts_fields() -> None:
    """`Stadtentwicklung` -> the whole word as before, or its parts stadt + entwicklung in
    the *_parts fields (split in Python by the index's decompounder), weighted lower."""
    from indexer.query_parts import COMPOUND_PARTS_BOOST

    clause = body(query="Stadtentwicklung")["query"]["bool"]["must"][0]
    assert clause["bool"]["minimum_should_match"] == 1
    whole, parts = clause["bool"]["should"]
    assert whole["multi_match"]["query"] == "Stadtentwicklung"
    assert whole["multi_match"]["fields"] == list(queries.DEFAULT_TEXT_FIELDS)
    parts_fields = ["title_parts^1.5", "subject_parts", "abstract_parts^0.4"]
    assert parts == {
        "bool": {
            "must": [
                {
                    "multi_match": {
                        "query": part,
                        "type": "phrase",
                        "fields": parts_fields,
                        "tie_breaker": 1.0,
                        "zero_terms_query": "none",
                    }
                }
                for part in ("stadt", "entwicklung")
            ],
            "boost": COMPOUND_PARTS_BOOST / 2,
        }
    }


def test_linking_elements_and_three_part_compounds() -> None:
    """Quartiersmanagement (Fugen-s) splits like Quartiermanagement; of three parts two must
    match (the bare-word rule 2<-1), so Stadtentwicklungsplanung also finds Stadtplanung."""
    quartiers = body(query="Quartiersmanagement")["query"]["bool"]["must"][0]
    quartier = body(query="Quartiermanagement")["query"]["bool"]["must"][0]
    assert quartiers["bool"]["should"][1] == quartier["bool"]["should"][1]
    three = body(query="Stadtentwicklungsplanung")["query"]["bool"]["must"][0]
    parts = three["bool"]["should"][1]["bool"]
    assert [p["multi_match"]["query"] for p in parts["should"]] == [
        "stadt",
        "entwicklung",
        "planung",
    ]
    assert parts["minimum_should_match"] == 2


def test_field_words_split_into_their_own_parts_field_and_phrases_never_split() -> None:
    subject = body(query="subject:Sozialraum")["query"]["bool"]["must"][0]
    assert subject["bool"]["should"][1]["bool"]["must"][0]["multi_match"]["fields"] == [
        "subject_parts"
    ]
    author = body(query="author:Stadtentwicklung")["query"]["bool"]["must"][0]
    assert "multi_match" in author  # no *_parts field searched: nothing to split into
    phrase = body(query='"Stadtentwicklung Berlin"')["query"]["bool"]["must"][0]
    assert "multi_match" in phrase
    plain = body(query="Logistik")["query"]["bool"]["must"][0]
    assert "multi_match" in plain  # no compound: the clause is unchanged


def test_an_excluded_compound_excludes_its_parts_too() -> None:
    query = body(query="Stadt -Stadtentwicklung")["query"]["bool"]
    assert query["must_not"][0]["bool"]["should"][1]["bool"]["must"]


def test_every_facet_filter_compares_folded() -> None:
    for name in ("subject", "type", "normalized_type", "author", "language", "source", "set"):
        search = body(filters=[Filter(name, "Soziale Stadt")])
        assert search["query"]["bool"]["filter"] == [{"term": {f"{name}.folded": "Soziale Stadt"}}]
    journal = body(filters=[Filter("journal", "der städtetag")])
    assert journal["query"]["bool"]["filter"] == [{"term": {"journal.folded": "der städtetag"}}]


def test_a_backwards_year_filter_is_the_query_syntax_error() -> None:
    with pytest.raises(QuerySyntaxError, match=r"runs backwards \(2010 > 2005\)"):
        body(filters=[Filter("year", low=2010, high=2005)])
    with pytest.raises(QuerySyntaxError, match=r"runs backwards \(2010 > 2005\)"):
        body(filters=[Filter("year", "2010..2005")])
    with pytest.raises(QuerySyntaxError, match=r"runs backwards \(2010 > 2005\)"):
        body(query="year:2010..2005")
