"""The variants the relevance harness compares: each is one `EmbeddedBackend` constructor call.

A variant names a configuration of the embedded backend's analysis and ranking options
(`text_fields`, `use_parts`, `exact_boost`, `min_should_match`, `proximity_boost`,
`proximity_slop`; see `indexer.embedded.EmbeddedBackend`). The last one, `shipped`, passes no
options at all: it is the default both backends run, so the table always shows what users
get. The variants in between add one ingredient at a time, so each row answers "what did
this step buy".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.analysis import analyze_exact
from indexer.embedded import TEXT_FIELDS, EmbeddedBackend, TextField
from indexer.search_model import (
    DEFAULT_MIN_SHOULD_MATCH,
    DEFAULT_PROXIMITY_BOOST,
    DEFAULT_PROXIMITY_SLOP,
)

ANALYZED_FIELDS = ("title", "subject", "abstract", "journal", "publisher", "place")
"""Fields the German chain analyzes in the shipped configuration."""

ALL_WORDS = "100%"
"""min_should_match that ANDs every word (the behaviour before issue 9)."""

NO_EXTRAS: dict[str, Any] = {"min_should_match": ALL_WORDS, "proximity_boost": 0.0}
"""Options that switch off the ranking additions of issue 9 (minimum-should-match, proximity)."""


@dataclass(frozen=True, slots=True)
class Variant:
    """A named configuration: keyword arguments for `EmbeddedBackend(path, **options)`."""

    name: str
    description: str
    options: dict[str, Any] = field(default_factory=dict)


def _unweighted(fields: tuple[TextField, ...]) -> tuple[TextField, ...]:
    return tuple(dataclasses.replace(f, boost=1.0) for f in fields)


def _lowercase_only(fields: tuple[TextField, ...]) -> tuple[TextField, ...]:
    return tuple(
        dataclasses.replace(f, analyzer=analyze_exact) if f.name in ANALYZED_FIELDS else f
        for f in fields
    )


def build_variants() -> tuple[Variant, ...]:
    """The variants, derived from the backend's shipped field table (so they track it)."""
    unweighted = _unweighted(TEXT_FIELDS)
    plain = {"use_parts": False, "exact_boost": 0.0, **NO_EXTRAS}
    msm = {"min_should_match": DEFAULT_MIN_SHOULD_MATCH, "proximity_boost": 0.0}
    proximity = {"min_should_match": ALL_WORDS}
    weights = ", ".join(f"{f.name} {f.boost:g}" for f in TEXT_FIELDS)
    return (
        Variant(
            "unstemmed",
            "BM25 over lowercase-only tokens (no stop words removed from the index, no umlaut "
            "folding, no stemming) in title, subject, abstract, journal; author as shipped; "
            "all boosts 1; every word required (query stop words are still dropped by the "
            "backend, so `der` is never required)",
            {"text_fields": _unweighted(_lowercase_only(TEXT_FIELDS)), **plain},
        ),
        Variant(
            "stemmed",
            "the German chain (lowercase, stop words, German normalization, Snowball) in the "
            "same fields; all boosts 1; every word required",
            {"text_fields": unweighted, **plain},
        ),
        Variant(
            "stemmed+parts",
            "the German chain plus the decompounded *_parts fields; all boosts 1",
            {"text_fields": unweighted, "use_parts": True, "exact_boost": 0.0, **NO_EXTRAS},
        ),
        Variant(
            "stemmed+weights",
            "the shipped boosts and *_exact fields, without the *_parts fields",
            {"use_parts": False, **NO_EXTRAS},
        ),
        Variant(
            "stemmed+parts+weights",
            f"German chain, *_parts, *_exact (exact spelling) fields, shipped boosts ({weights});"
            " every word required, no proximity clause (the configuration before issue 9)",
            dict(NO_EXTRAS),
        ),
        Variant(
            "+exact2",
            "stemmed+parts+weights with the *_exact weights doubled (exact_boost 2): "
            "does the exact spelling deserve more?",
            {"exact_boost": 2.0, **NO_EXTRAS},
        ),
        Variant(
            "+msm",
            f"stemmed+parts+weights with min_should_match `{DEFAULT_MIN_SHOULD_MATCH}` "
            "(all of 1-2 bare words, all but one of 3 or more)",
            msm,
        ),
        Variant(
            "+msm(3<-1)",
            "as +msm with `3<-1` (all of up to 3 words, all but one of 4 or more)",
            {**msm, "min_should_match": "3<-1"},
        ),
        Variant(
            "+msm(2<75%)",
            "as +msm with `2<75%` (all of 1-2 words, three quarters, rounded down, of more)",
            {**msm, "min_should_match": "2<75%"},
        ),
        Variant(
            "+proximity",
            "stemmed+parts+weights with the proximity clause (the free words as a phrase with "
            f"slop {DEFAULT_PROXIMITY_SLOP} over title^3, subject^2, abstract, boost "
            f"{DEFAULT_PROXIMITY_BOOST:g}); every word required",
            proximity,
        ),
        Variant(
            "shipped, proximity boost 2",
            "shipped, but proximity boost 2",
            {"proximity_boost": 2.0},
        ),
        Variant(
            "shipped, proximity boost 4",
            "shipped, but proximity boost 4",
            {"proximity_boost": 4.0},
        ),
        Variant(
            "shipped, proximity slop 5",
            "shipped, but proximity slop 5",
            {"proximity_slop": 5},
        ),
        Variant(
            "shipped",
            "the default of both backends, `EmbeddedBackend(path)` without options: "
            f"stemmed+parts+weights + min_should_match `{DEFAULT_MIN_SHOULD_MATCH}` + proximity "
            f"(boost {DEFAULT_PROXIMITY_BOOST:g}, slop {DEFAULT_PROXIMITY_SLOP})",
        ),
    )


BASELINE = "stemmed"
"""The variant the issue's decompounding target is measured against."""

BEFORE = "stemmed+parts+weights"
"""The configuration shipped before issue 9 (no group may get worse than under `stemmed`)."""

CHOSEN = "shipped"
"""The configuration both backends run by default."""


@contextmanager
def embedded_backend_for(variant: Variant, path: Path) -> Iterator[EmbeddedBackend]:
    """An EmbeddedBackend at `path` configured as the variant says, closed after the block."""
    backend = EmbeddedBackend(path, **variant.options)
    try:
        yield backend
    finally:
        backend.close()


CHOSEN_CONFIGURATION = (
    "Both backends default to the `shipped` row: the German chain with the *_parts fields "
    "and the field weights above (title and subjects over abstract; the unstemmed *_exact "
    "fields as a bonus for the exact spelling; doubling that bonus, `+exact2`, measured no "
    "better, so the weights stay), `min_should_match` `"
    + DEFAULT_MIN_SHOULD_MATCH
    + "` (all of one or two bare words, all but one of three or more; `2<75%` measures the "
    "same on this set, `3<-1` is no better than ANDing because the multi-word queries that "
    "gain have three content words), and the proximity clause with boost "
    + f"{DEFAULT_PROXIMITY_BOOST:g} and slop {DEFAULT_PROXIMITY_SLOP}. "
    "Minimum-should-match is what lifts the multi-word group (every word ANDed finds nothing "
    "for `Beteiligung der Bürger an der Stadtplanung`); the proximity clause adds most to "
    "two-word queries. With boost 1 and slop 2 every group is at least as good as under "
    "`+msm` alone; boosts 2 and 4 and slop 5 move overall MAP by less than 0.001, trading "
    "multi-word against no_umlaut queries, which is within the noise of 57 queries. Single-word groups are untouched by both additions, by construction. "
    "`indexer/elastic/queries.py` sends Elasticsearch the same: `multi_match` fields with "
    "these weights, a `bool` with the computed `minimum_should_match`, and a `multi_match` "
    "phrase with slop and boost as an optional `should` clause."
)
"""The paragraph under "Chosen configuration" in bench/results/relevance.md."""
