"""The user query syntax: what parses into which clauses, and which errors say where."""

from __future__ import annotations

import pytest

from indexer.query import (
    EXACT_FIELDS,
    SEARCH_FIELDS,
    TEXT_FIELDS,
    ParsedQuery,
    Phrase,
    Term,
    parse_query,
    parse_year_value,
)
from indexer.search_model import QuerySyntaxError


def test_empty_and_blank_queries_match_all() -> None:
    assert parse_query("").matches_all
    assert parse_query("   ").clauses == ()


def test_bare_words_phrases_and_exclusions() -> None:
    parsed = parse_query('Stadt  "soziale Stadt" -Verkehr -"graue Literatur"')
    assert parsed == ParsedQuery(
        (
            Term("Stadt"),
            Phrase(("soziale", "Stadt")),
            Term("Verkehr", negated=True),
            Phrase(("graue", "Literatur"), negated=True),
        )
    )
    assert parsed.positive == (Term("Stadt"), Phrase(("soziale", "Stadt")))
    assert len(parsed.negative) == 2


@pytest.mark.parametrize(
    "typed",
    ["„soziale Stadt“ –Verkehr", "“soziale Stadt” \u2212Verkehr", "»soziale Stadt« –Verkehr"],
)
def test_typographic_quotes_and_dashes_work_like_their_ascii_forms(typed: str) -> None:
    """What a German keyboard or word processor types: „…“ was searched as the words „soziale
    and Stadt“ (as many hits as without quotes), –Verkehr as a word instead of an exclusion."""
    assert parse_query(typed) == parse_query('"soziale Stadt" -Verkehr')


def test_a_dash_standing_alone_in_a_pasted_title_is_no_exclusion() -> None:
    assert parse_query("Stadt – Land").negative == ()
    with pytest.raises(QuerySyntaxError, match="'-' must be followed by a word"):
        parse_query("Stadt - Land")  # the ASCII form was always an error; it stays one


def test_a_query_is_at_most_200_words_and_4000_characters() -> None:
    assert len(parse_query(" ".join(["Stadt"] * 200)).clauses) == 200
    with pytest.raises(QuerySyntaxError, match="query too long: 201 words"):
        parse_query(" ".join(["Stadt"] * 200) + ' "soziale"')
    with pytest.raises(QuerySyntaxError, match="query too long: 4,001 characters"):
        parse_query("x" * 4_001)


def test_only_negative_query_keeps_its_exclusions() -> None:
    parsed = parse_query("-Verkehr")
    assert not parsed.matches_all
    assert parsed.positive == ()
    assert parsed.negative == (Term("Verkehr", negated=True),)


def test_fields_aliases_and_quoted_values() -> None:
    parsed = parse_query('titel:Quartier author:"Kocks, Martina" TYPE:"Graue  Literatur"')
    assert parsed.clauses == (
        Term("Quartier", "title"),
        Phrase(("Kocks,", "Martina"), "author"),
        Term("Graue Literatur", "type"),
    )


def test_field_values_may_contain_colons_and_urls_are_words() -> None:
    assert parse_query("id:oai:orlis.difu.de:difu/1").clauses == (
        Term("oai:orlis.difu.de:difu/1", "id"),
    )
    assert parse_query("https://orlis.difu.de").clauses == (Term("https://orlis.difu.de"),)


def test_and_is_ignored() -> None:
    assert parse_query("Stadt AND Land").clauses == (Term("Stadt"), Term("Land"))


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ('Stadt "soziale Stadt', 7, "unbalanced quote"),
        ("title: Stadt", 1, "has no value"),
        ("foo:bar", 1, "unknown field 'foo'"),
        ("Stadt - Land", 7, "'-' must be followed"),
        ('Stadt ""', 7, "empty phrase"),
        ('So"zial"', 3, "quote must start a phrase"),
        ('"Stadt"Land', 8, "closing quote"),
        ("Stadt OR Land", 7, "OR is not supported"),
        ("NOT Land", 1, "put '-' before the word"),
        ("year:neu", 6, "not a year"),
        ("year:2010..2001", 6, "runs backwards"),
    ],
)
def test_errors_name_position_and_reason(text: str, position: int, reason: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text)
    message = str(caught.value)
    assert f"position {position}:" in message
    assert reason in message


def test_year_values() -> None:
    assert parse_year_value("2009") == (2009, 2009)
    assert parse_year_value("2005..2010") == (2005, 2010)
    assert parse_year_value("2005..") == (2005, None)
    assert parse_year_value("..2010") == (None, 2010)
    with pytest.raises(QuerySyntaxError):
        parse_year_value("..")


def test_text_fields_search_analyzed_fields_and_exact_fields_verbatim_ones() -> None:
    """What `field:value` promises holds in the index: a text field's value is analyzed (its
    document fields are `text` in the mapping); an exact field's is compared verbatim
    (`keyword` or a number), so `type:Monographie` never matches by stem."""
    from indexer.elastic.mapping import template_body

    properties = template_body()["template"]["mappings"]["properties"]
    for user_field, document_fields in SEARCH_FIELDS.items():
        for name in document_fields:
            assert name in properties, f"{user_field}: {name} is not in the index mapping"
            kind = properties[name]["type"]
            if user_field in TEXT_FIELDS:
                assert kind == "text", (user_field, name, kind)
            else:
                assert user_field in EXACT_FIELDS
                assert kind in ("keyword", "integer"), (user_field, name, kind)
    assert {"title", "abstract", "subject", "author"} <= TEXT_FIELDS
    assert {"year", "type", "issn", "isbn", "doi", "language"} <= EXACT_FIELDS


# --- issue 15: compounds split in the query, folded filter values --------------------------


def test_query_words_split_into_the_finest_parts_the_index_uses() -> None:
    from indexer.query_parts import compound_part_terms, compound_parts

    assert compound_parts("Stadtentwicklungsplanung") == ("stadt", "entwicklung", "planung")
    assert compound_parts("Quartiersmanagement") == compound_parts("Quartiermanagement")
    assert compound_parts("Stadtteilentwicklung") == ("stadt", "teil", "entwicklung")
    assert compound_parts("Sozialraum") == ("sozial", "raum")
    assert compound_parts("Logistik") == ()  # no compound
    # typed in lower case: split like the capitalized word (queries ignore case)
    assert compound_parts("stadtplanung") == compound_parts("Stadtplanung") == ("stadt", "planung")
    assert compound_parts("soziale") == ()
    for adjective in ("kulturelle", "planerische", "siedlungsstrukturelle", "demografische"):
        assert compound_parts(adjective) == (), adjective  # no junk parts like `elle`, `isch`
    assert compound_part_terms("Stadtentwicklung") == (
        ("stadt", "stadt"),
        ("entwicklung", "entwickl"),
    )


def test_filter_values_fold_like_the_elasticsearch_folded_normalizer() -> None:
    from indexer.filters import fold_value

    assert (
        fold_value("Bürgerbeteiligung") == fold_value("buergerbeteiligung") == "burgerbeteiligung"
    )
    assert fold_value(" Soziale Stadt ") == fold_value("soziale stadt")
    assert fold_value("Straße") == fold_value("STRASSE")
    assert fold_value("Quelle") == "quelle"  # 'ue' after q stays, as in Lucene's filter


def test_folded_filter_pattern_admits_every_spelling_of_the_value() -> None:
    import re

    from indexer.embedded.queries import folded_pattern
    from indexer.filters import fold_value

    pattern = re.compile(folded_pattern(fold_value("Bürgerbeteiligung (Stadt)")))
    for stored in (
        "Bürgerbeteiligung (Stadt)",
        "BUERGERBETEILIGUNG (stadt)",
        "Burgerbeteiligung (Stadt)",
    ):
        assert pattern.fullmatch(stored), stored
    assert not pattern.fullmatch("Bürgerbeteiligung")
    assert re.compile(folded_pattern("strasse")).fullmatch("Straße")
