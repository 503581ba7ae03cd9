"""The variants the relevance harness compares: each is one `EmbeddedBackend` constructor call.

A variant names a configuration of the embedded backend's analysis and ranking options
(`text_fields`, `use_parts`, `exact_boost`, `min_should_match`, `proximity_boost`,
`proximity_slop`, `compound_boost`, `compound_min_should_match`; see
`indexer.embedded.backend.EmbeddedBackend`). The rows up to `issue 9 (before 15)` keep the
configuration before issue 15 (subject fields with BM25 length norms, no query-side
compound splitting), so they stay comparable with earlier results files. The last one, `shipped`, passes no
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
from indexer.embedded.backend import EmbeddedBackend
from indexer.embedded.schema import TEXT_FIELDS, TextField
from indexer.query_parts import COMPOUND_PARTS_BOOST, COMPOUND_PARTS_MIN_SHOULD_MATCH
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

SUBJECT_FIELDS = ("subject", "subject_exact", "subject_parts")
"""The subject heading fields whose length normalization issue 15 measures."""


def _subject_norms(
    fields: tuple[TextField, ...], norms: bool, names: tuple[str, ...] = SUBJECT_FIELDS
) -> tuple[TextField, ...]:
    return tuple(dataclasses.replace(f, norms=norms) if f.name in names else f for f in fields)


NORMS_ON = _subject_norms(TEXT_FIELDS, True)
"""The shipped field table with BM25 length norms on the subject fields (before issue 15)."""

BEFORE_15: dict[str, Any] = {"text_fields": NORMS_ON, "compound_boost": 0.0}
"""Options that restore the configuration before issue 15 (subject norms, no query parts)."""


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
    unweighted = _unweighted(NORMS_ON)
    plain = {"use_parts": False, "exact_boost": 0.0, "compound_boost": 0.0, **NO_EXTRAS}
    msm = {"min_should_match": DEFAULT_MIN_SHOULD_MATCH, "proximity_boost": 0.0, **BEFORE_15}
    proximity = {"min_should_match": ALL_WORDS, **BEFORE_15}
    weights = ", ".join(f"{f.name} {f.boost:g}" for f in TEXT_FIELDS)
    return (
        Variant(
            "unstemmed",
            "BM25 over lowercase-only tokens (no stop words removed from the index, no umlaut "
            "folding, no stemming) in title, subject, abstract, journal; author as shipped; "
            "all boosts 1; every word required (query stop words are still dropped by the "
            "backend, so `der` is never required)",
            {"text_fields": _unweighted(_lowercase_only(NORMS_ON)), **plain},
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
            {
                "text_fields": unweighted,
                "use_parts": True,
                "exact_boost": 0.0,
                "compound_boost": 0.0,
                **NO_EXTRAS,
            },
        ),
        Variant(
            "stemmed+weights",
            "the shipped boosts and *_exact fields, without the *_parts fields",
            {"use_parts": False, **BEFORE_15, **NO_EXTRAS},
        ),
        Variant(
            "stemmed+parts+weights",
            f"German chain, *_parts, *_exact (exact spelling) fields, shipped boosts ({weights});"
            " every word required, no proximity clause (the configuration before issue 9)",
            {**BEFORE_15, **NO_EXTRAS},
        ),
        Variant(
            "+exact2",
            "stemmed+parts+weights with the *_exact weights doubled (exact_boost 2): "
            "does the exact spelling deserve more?",
            {"exact_boost": 2.0, **BEFORE_15, **NO_EXTRAS},
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
            PREVIOUS,
            "the configuration shipped before issue 15: stemmed+parts+weights + "
            f"min_should_match `{DEFAULT_MIN_SHOULD_MATCH}` + proximity (boost "
            f"{DEFAULT_PROXIMITY_BOOST:g}, slop {DEFAULT_PROXIMITY_SLOP}); subject fields with "
            "BM25 length norms, compounds split only at index time",
            dict(BEFORE_15),
        ),
        Variant(
            "+query parts",
            f"{PREVIOUS} + compounds typed in the query split into their parts, matched in "
            f"the *_parts fields (parts clause boost {COMPOUND_PARTS_BOOST:g} / number of "
            f"parts, `{COMPOUND_PARTS_MIN_SHOULD_MATCH}` of the parts required)",
            {"text_fields": NORMS_ON},
        ),
        Variant(
            "+query parts, all parts",
            "+query parts, every part required (`100%`)",
            {"text_fields": NORMS_ON, "compound_min_should_match": ALL_WORDS},
        ),
        Variant(
            "+query parts, boost 0.5",
            "+query parts with parts clause boost 0.5",
            {"text_fields": NORMS_ON, "compound_boost": 0.5},
        ),
        Variant(
            "+query parts, boost 2",
            "+query parts with parts clause boost 2",
            {"text_fields": NORMS_ON, "compound_boost": 2.0},
        ),
        Variant(
            "+no subject norms",
            f"{PREVIOUS} with subject, subject_exact and subject_parts scored without length "
            "norms (BM25 k1 0: idf x weight; Elasticsearch: `heading_set` similarity)",
            {"compound_boost": 0.0},
        ),
        Variant(
            "+no norms on subject only",
            f"{PREVIOUS} with only the subject field scored without norms (subject_exact and "
            "subject_parts keep theirs)",
            {"text_fields": _subject_norms(NORMS_ON, False, ("subject",)), "compound_boost": 0.0},
        ),
        Variant(
            "shipped",
            "the default of both backends, `EmbeddedBackend(path)` without options: "
            f"{PREVIOUS} + query parts + no subject norms",
        ),
    )


BASELINE = "stemmed"
"""The variant the issue's decompounding target is measured against."""

BEFORE = "stemmed+parts+weights"
"""The configuration shipped before issue 9 (no group may get worse than under `stemmed`)."""

CHOSEN = "shipped"
"""The configuration both backends run by default."""

PREVIOUS = "issue 9 (before 15)"
"""The configuration shipped before issue 15 (query-side splitting, subject norms)."""


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
    + f"{DEFAULT_PROXIMITY_BOOST:g} and slop {DEFAULT_PROXIMITY_SLOP} (boosts 2 and 4 and "
    "slop 5 moved overall MAP by less than 0.001 when issue 9 measured them). "
    "Minimum-should-match is what lifts the multi-word group (every word ANDed finds nothing "
    "for `Beteiligung der Bürger an der Stadtplanung`); the proximity clause adds most to "
    "two-word queries.\n\n"
    "Issue 15 adds two things, each measured against `"
    + PREVIOUS
    + "`, the configuration shipped before (on the 57 queries of the six older groups its "
    "MAP is 0.4853, as in the previous results; the shipped row reaches 0.5292 on them). "
    "(1) Compounds typed in the query are split with the index's decompounder and their "
    "parts matched in the *_parts fields (`+query parts`): the compound_whole group goes "
    "from finding almost nothing (MAP 0.02) to 0.32. Requiring every part (`all parts`) "
    "halves that gain, because a user's compound often names one part more than the "
    "record's (`Bürgerbeteiligungsverfahren` for `Bürgerbeteiligung`), so `"
    + COMPOUND_PARTS_MIN_SHOULD_MATCH
    + "` of the parts must match, as for bare words. The parts clause boost (0.5, 1, 2) "
    "moves overall MAP by less than 0.001, so it stays "
    + f"{COMPOUND_PARTS_BOOST:g}"
    + " divided by the number of parts, which keeps the whole word above its parts. "
    "(2) The subject heading fields are scored without length norms (`+no subject norms`: "
    "BM25 with k1 0, idf x weight): every group gains, well_catalogued most in nDCG@10, and "
    "the control group (exact heading words) 0.07 MAP, because a heading among many headings "
    "counts as much as a heading among few. Dropping the norms on `subject` alone is worse "
    "than on all three subject fields. A small b, the other option the issue names, cannot "
    "be measured here: tantivy-py exposes neither fieldnorms nor b, so the embedded backend "
    "can score a field with its norms or as a constant (idf x weight) only, and "
    "Elasticsearch ships the same (`heading_set` similarity: BM25 k1 0, norms off) to keep "
    "both backends equal. Together (`shipped`) no group is worse than before; overall MAP and "
    "nDCG@10 rise. `indexer/elastic/queries.py` sends Elasticsearch the same query: "
    "`multi_match` fields with these weights, a `bool` with the computed "
    "`minimum_should_match`, a `multi_match` phrase with slop and boost as an optional "
    "`should` clause, and for a compound a `bool` `should` of the whole word and its parts."
)
"""The paragraph under "Chosen configuration" in bench/results/relevance.md."""
