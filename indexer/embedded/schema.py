"""The embedded index's layout: its fields, their analysis chains and weights, the tantivy schema.

Index layout (tantivy field -> what it holds):
  id, datestamp          raw keyword, stored (identity and the stale-write check)
  title, abstract, subject, journal, publisher, place   German chain (stemmed)
  title_exact, subject_exact                             lowercase only (exact spellings)
  author                 name chain (author + editor)
  *_parts                compound parts from the document, German chain
  f_<facet>              exact facet values (raw, fast) for filters and terms aggregations
  k_<field>              lower-cased exact values for `field:value` queries
  year                   integer, indexed and fast (filter, facet, sort)
  display                stored JSON with what a Hit shows and what highlights need
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import tantivy

from indexer.analysis import analyze, analyze_exact, analyze_name
from indexer.search_model import FACET_FIELDS, SUBJECT_NORMS

SCHEMA_VERSION = "1"
"""Bumped whenever the layout below changes; an index of another version must be rebuilt."""

PRE_ANALYZED = "ernte_pre"
"""The tokenizer of every analyzed field: whitespace only, terms come analyzed from Python."""

Analyzer = Callable[[str], list[str]]

FieldRole = Literal["main", "exact", "parts"]


@dataclass(frozen=True, slots=True)
class TextField:
    """An analyzed index field: where its text comes from, its chain, its query weight.

    role: `exact` fields hold unstemmed spellings (weighted by `exact_boost` too), `parts`
    fields hold compound parts (searched only with `use_parts`), `main` fields the rest.
    default: whether a bare word (no `field:`) searches it.
    norms: BM25 length normalization. False scores a match by its weight and the term's idf
    alone, neither the field's length nor the term's frequency in it (BM25 with k1 = 0), as
    for a set of subject headings, where a record catalogued with 20 headings is not less
    about each of them than one with 2 (see `no_norms_weight`; Elasticsearch: the
    `heading_set` similarity in `indexer.elastic.mapping`).
    """

    name: str
    sources: tuple[str, ...]
    analyzer: Analyzer
    boost: float
    positions: bool = True
    role: FieldRole = "main"
    default: bool = True
    norms: bool = True


BM25_K1 = 1.2
"""tantivy's BM25 k1; its scores carry the factor (k1 + 1), which Lucene's do not."""

TEXT_FIELDS: tuple[TextField, ...] = (
    TextField("title", ("title", "subtitle"), analyze, 4.0),
    TextField("title_exact", ("title", "subtitle"), analyze_exact, 1.5, role="exact"),
    TextField("subject", ("subject",), analyze, 2.5, norms=SUBJECT_NORMS),
    TextField("subject_exact", ("subject",), analyze_exact, 1.0, role="exact", norms=SUBJECT_NORMS),
    TextField("author", ("author", "editor"), analyze_name, 2.0),
    TextField("journal", ("journal",), analyze, 1.0),
    TextField("abstract", ("abstract",), analyze, 1.0),
    TextField("title_parts", ("title_parts",), analyze, 1.5, positions=False, role="parts"),
    TextField(
        "subject_parts",
        ("subject_parts",),
        analyze,
        1.0,
        positions=False,
        role="parts",
        norms=SUBJECT_NORMS,
    ),
    TextField("abstract_parts", ("abstract_parts",), analyze, 0.4, positions=False, role="parts"),
    TextField("publisher", ("publisher",), analyze, 0.5, default=False),
    TextField("place", ("place",), analyze, 0.5, default=False),
)
"""The shipped field table: title and subject over abstract, exact spellings as a bonus."""

DEFAULT_FIELDS: tuple[str, ...] = tuple(f.name for f in TEXT_FIELDS if f.default)
"""Fields a bare word searches (with the boosts above); title weighs most."""

PROXIMITY_FIELDS: dict[str, float] = {"title": 3.0, "subject": 2.0, "abstract": 1.0}
"""Fields (and their weights) of the optional sloppy-phrase clause of multi-word queries."""

USER_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title", "title_exact", "title_parts"),
    "subject": ("subject", "subject_exact", "subject_parts"),
    "abstract": ("abstract", "abstract_parts"),
    "author": ("author",),
    "journal": ("journal",),
    "publisher": ("publisher",),
    "place": ("place",),
}
"""`field:word` for a text field -> the index fields searched."""

KEYWORD_QUERY_FIELDS: dict[str, tuple[str, ...]] = {
    "type": ("type", "normalized_type"),
    "issn": ("issn",),
    "isbn": ("isbn",),
    "doi": ("doi",),
    "local_id": ("local_id",),
    "language": ("language",),
    "source": ("source",),
    "set": ("set",),
}
"""`field:value` for an exact field -> document fields whose lower-cased values match."""


def build_schema(text_fields: Sequence[TextField]) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("datestamp", stored=True, tokenizer_name="raw")
    for text in text_fields:
        option = "position" if text.positions else "freq"
        builder.add_text_field(text.name, tokenizer_name=PRE_ANALYZED, index_option=option)
    for facet in FACET_FIELDS:
        if facet != "year":
            builder.add_text_field(f"f_{facet}", fast=True, tokenizer_name="raw")
    for keyword in KEYWORD_QUERY_FIELDS:
        builder.add_text_field(f"k_{keyword}", tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("year", indexed=True, fast=True)
    builder.add_bytes_field("display", stored=True)
    return builder.build()
