"""A search document -> the fields of one tantivy document, analyzed in Python (see `schema`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from indexer.analysis import GermanChain, analyze, analyze_exact, german_chain
from indexer.backend import SearchDocument
from indexer.embedded.schema import KEYWORD_QUERY_FIELDS, TEXT_FIELDS, Analyzer, TextField
from indexer.search_model import FACET_FIELDS

PreparedDocument = dict[str, Any]
"""The fields of one tantivy document as plain data (`tantivy.Document(**fields)`): what
`prepare_document` returns, picklable, so it may be computed in another process."""


def single_chain_plan(text_fields: Sequence[TextField]) -> frozenset[str]:
    """Names of the fields whose chain is `analyze` or `analyze_exact`: for those,
    `prepare_document` tokenizes each source text once and derives both (`analyze` is
    `german_terms` of `analyze_exact`'s tokens, by definition)."""
    return frozenset(f.name for f in text_fields if f.analyzer in (analyze, analyze_exact))


def prepare_document(
    document: SearchDocument,
    text_fields: Sequence[TextField] = TEXT_FIELDS,
    shared_tokens: frozenset[str] | None = None,
) -> PreparedDocument:
    """The tantivy fields of one search document (see the module docstring for the layout).

    Each source text is tokenized and lower-cased once, however many fields analyze it;
    the German terms come from the per-token cache of `indexer.analysis`. Raises KeyError
    without an `id`, TypeError/ValueError for values the layout cannot hold.
    """
    identifier = document["id"]
    if not identifier:
        raise KeyError("id")
    shared = single_chain_plan(text_fields) if shared_tokens is None else shared_tokens
    fields: PreparedDocument = {
        "id": str(identifier),
        "datestamp": str(document.get("datestamp") or ""),
    }
    values = {name: _values(document, name) for name in _source_names(tuple(text_fields))}
    values_of = values.__getitem__
    chain = german_chain()

    for text in text_fields:
        terms: list[str] = []
        analyzer = text.analyzer
        if text.name in shared:
            stem = analyzer is analyze
            for source in text.sources:
                memoize = source in REPEATING_FIELDS
                for value in values_of(source):
                    terms.extend(_analyzed_value(chain, value, memoize)[stem])
        else:
            for source in text.sources:
                memoize = source in REPEATING_FIELDS
                for value in values_of(source):
                    terms.extend(_other_chain_value(analyzer, value, memoize))
        if terms:
            fields[text.name] = " ".join(terms)
    for facet in FACET_FIELDS:
        if facet != "year":
            facet_values = values_of(facet)
            if facet_values:
                fields[f"f_{facet}"] = facet_values
    for keyword, sources in KEYWORD_QUERY_FIELDS.items():
        lowered_values = [v.lower() for source in sources for v in values_of(source)]
        if lowered_values:
            fields[f"k_{keyword}"] = lowered_values
    year = document.get("year")
    if year is not None:
        fields["year"] = int(year)
    fields["display"] = json.dumps(
        {
            "title": " : ".join(values_of("title") + values_of("subtitle")),
            "abstract": str(document.get("abstract") or ""),
            "year": int(year) if year is not None else None,
            "authors": values_of("author"),
            "type": str(document.get("type") or ""),
            "subjects": values_of("subject"),
            "source": str(document.get("source") or ""),
        },
        ensure_ascii=False,
    ).encode("utf-8")
    return fields


REPEATING_FIELDS = frozenset({"subject", "author", "editor", "journal", "publisher", "place"})
"""Document fields whose values repeat across records (headings, names, journals): their
analysis is memoized. Titles and abstracts are (nearly) unique: memoizing them only filled
the memo with one entry per record, so a harvest's memory grew with its size."""

_VALUE_CACHE_LIMIT = 100_000

_SHORT_VALUE = 160
"""Longer values are never memoized, whatever their field."""

_value_cache: dict[str, tuple[list[str], list[str]]] = {}
_value_cache_chain: object = None
"""The German chain `_value_cache` was filled with: another stop list empties the memo."""

_other_cache: dict[tuple[Analyzer, str], list[str]] = {}


def _analyzed_value(chain: GermanChain, value: str, memoize: bool) -> tuple[list[str], list[str]]:
    """(analyze_exact(value), analyze(value)) with the German chain in use, the second derived
    from the first; memoized for short values of repeating fields."""
    global _value_cache_chain
    if not memoize:
        lowered = analyze_exact(value)
        return lowered, chain.terms(lowered)
    if chain is not _value_cache_chain:
        _value_cache.clear()
        _value_cache_chain = chain
    found = _value_cache.get(value)
    if found is None:
        lowered = analyze_exact(value)
        found = (lowered, chain.terms(lowered))
        if len(value) <= _SHORT_VALUE:
            if len(_value_cache) >= _VALUE_CACHE_LIMIT:
                _value_cache.clear()
            _value_cache[value] = found
    return found


def _other_chain_value(analyzer: Analyzer, value: str, memoize: bool) -> list[str]:
    """`analyzer(value)`, memoized for short values of repeating fields (the name chain on
    author names)."""
    if not memoize or len(value) > _SHORT_VALUE:
        return analyzer(value)
    key = (analyzer, value)
    found = _other_cache.get(key)
    if found is None:
        if len(_other_cache) >= _VALUE_CACHE_LIMIT:
            _other_cache.clear()
        found = _other_cache[key] = analyzer(value)
    return found


def _values(document: SearchDocument, name: str) -> list[str]:
    """A document field as a list of non-empty strings (scalars and lists alike)."""
    value = document.get(name)
    if value is None or value == "":
        return []
    if type(value) is str:
        return [value]
    if isinstance(value, list | tuple):
        return [v if type(v) is str else str(v) for v in value if v is not None and v != ""]
    return [str(value)]


@functools.lru_cache(maxsize=8)
def _source_names(text_fields: Sequence[TextField]) -> tuple[str, ...]:
    """Every document field `prepare_document` reads, each once."""
    names = [source for text in text_fields for source in text.sources]
    names += [f for f in FACET_FIELDS if f != "year"]
    names += [source for sources in KEYWORD_QUERY_FIELDS.values() for source in sources]
    names += ["title", "subtitle", "author", "subject"]
    return tuple(dict.fromkeys(names))
