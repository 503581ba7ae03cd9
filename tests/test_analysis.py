"""The German analysis chain and the compound splitter."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.analysis import (
    analyze,
    analyze_exact,
    analyze_name,
    analyze_positions,
    german_normalize,
    german_stopwords,
    tokenize,
)
from indexer.compounds import (
    Decompounder,
    build_part_list,
    default_decompounder,
    load_part_list,
    write_part_list,
)
from indexer.word_lists import stopwords_file


@pytest.mark.parametrize(
    ("token", "normalized"),
    [
        ("straße", "strasse"),
        ("städte", "stadte"),
        ("öffentlich", "offentlich"),
        ("über", "uber"),
        ("aerger", "arger"),
        ("boerse", "borse"),
        ("mueller", "muller"),
        ("quelle", "quelle"),  # 'ue' after q stays
        ("bauer", "bauer"),  # 'ue' after a vowel stays
        ("neue", "neue"),
        ("treue", "treue"),
        ("aee", "ae"),  # only the first 'e' after 'a' goes
        ("stadt", "stadt"),
    ],
)
def test_german_normalization_follows_lucene_rules(token: str, normalized: str) -> None:
    assert german_normalize(token) == normalized


def test_stop_list_is_the_snowball_list() -> None:
    words = german_stopwords()
    assert len(words) == 231
    assert {"und", "für", "über", "daß", "zwischen"} <= words
    assert "stadt" not in words
    assert stopwords_file().read_text(encoding="utf-8").startswith("#")


@pytest.mark.parametrize(
    ("spellings", "term"),
    [
        (("Straße", "Strasse", "STRASSE"), "strass"),
        (("Stadtteil", "Stadtteile", "Stadtteilen"), "stadtteil"),
        (("Stadt", "Städte", "Staedte"), "stadt"),
        (("Bürgerbeteiligung", "Buergerbeteiligung"), "burgerbeteil"),
        (("München", "Muenchen"), "munch"),
        (("Quartier", "Quartiere"), "quarti"),
    ],
)
def test_spellings_and_inflections_meet_in_one_term(spellings: tuple[str, ...], term: str) -> None:
    assert {tuple(analyze(s)) for s in spellings} == {(term,)}


def test_chain_drops_stop_words_and_keeps_positions() -> None:
    assert analyze("Die Stadt und das Land") == ["stadt", "land"]
    assert analyze_positions("Die Stadt und das Land") == [(1, "stadt"), (4, "land")]
    assert analyze("für über") == []


def test_tokenizer_keeps_abbreviations_and_decimals_together() -> None:
    assert tokenize("z.B. 1,5 Mio. Euro (2009-2010)") == [
        "z.B",
        "1,5",
        "Mio",
        "Euro",
        "2009",
        "2010",
    ]
    assert tokenize("Stadt,Land") == ["Stadt", "Land"]


def test_decomposed_umlauts_analyze_like_precomposed() -> None:
    assert analyze("Sta\u0308dte") == analyze("Städte")


def test_exact_chain_only_lowercases() -> None:
    assert analyze_exact("Die Städte") == ["die", "städte"]


def test_name_chain_folds_umlaut_spellings_and_accents() -> None:
    assert analyze_name("Güles, Orhan") == analyze_name("Gueles, Orhan") == ["gules", "orhan"]
    assert analyze_name("José Łódź") == ["jose", "lodz"]


SEED_COMPOUNDS = {
    "Stadtentwicklungsplanung": {"stadt", "entwicklung", "planung"},
    "Quartiermanagement": {"quartier", "management"},
    "Sozialraumanalyse": {"sozial", "raum", "analyse"},
    "Stadtforschung": {"stadt", "forschung"},
    "Arbeitsförderung": {"arbeit", "förderung"},
    "Einkommensverteilung": {"einkommen", "verteilung"},
    "Bürgerengagement": {"bürger", "engagement"},
    "Wohnquartier": {"wohn", "quartier"},
    "Stadtteilen": {"stadt", "teil"},
    "Straßenzüge": {"straße", "züge"},
}


@pytest.mark.parametrize(("word", "parts"), sorted(SEED_COMPOUNDS.items()))
def test_shipped_list_splits_seed_compounds(word: str, parts: set[str]) -> None:
    assert parts <= set(default_decompounder().split(word))


@pytest.mark.parametrize("word", ["Gesellschaft", "Integration", "Tourismus", "Stadt", "gemeinsam"])
def test_simple_words_and_lowercase_words_are_not_split(word: str) -> None:
    assert default_decompounder().split(word) == []


def test_linking_elements_and_partial_splits() -> None:
    splitter = Decompounder(["stadt", "entwicklung", "planung", "verkehr", "amt"])
    assert splitter.split("Verkehrsamt") == ["verkehr", "amt"]
    assert splitter.split("Stadtentwicklungsplanung") == ["stadt", "entwicklung", "planung"]
    # unknown beginning, two known parts after it: keep what is known
    assert splitter.split("Xyzstadtplanung") == ["stadt", "planung"]
    # one known part after an unknown beginning is not enough (Integ|ration)
    assert splitter.split("Xyzplanung") == []


def test_nested_pieces_are_split_again() -> None:
    splitter = Decompounder(["sozialraum", "sozial", "raum", "analyse"])
    assert splitter.split("Sozialraumanalyse") == ["sozialraum", "sozial", "raum", "analyse"]


def test_parts_text_excludes_original_words() -> None:
    text = default_decompounder().parts_text("Stadtentwicklungsplanung und Quartiermanagement")
    words = text.split()
    assert "Stadtentwicklungsplanung".lower() not in words
    assert {"stadt", "entwicklung", "planung", "quartier", "management"} <= set(words)
    assert len(words) == len(set(words))


def test_build_part_list_adds_subject_words_and_filters_junk() -> None:
    parts = build_part_list(
        ["Quartiermanagement", "Soziale Stadt", "Lokale Ökonomie"],
        ["Schaft", "Ei", "Bau", "Raum", "B2B"],
    )
    assert parts == sorted(parts)
    assert {"quartiermanagement", "stadt", "ökonomie", "bau", "raum"} <= set(parts)
    assert {"schaft", "ei", "b2b"}.isdisjoint(parts)
    assert "soziale" not in parts  # a heading contributes its head noun only


def test_part_list_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "parts.txt"
    write_part_list(["raum", "stadt"], path)
    assert load_part_list(path) == ["raum", "stadt"]
