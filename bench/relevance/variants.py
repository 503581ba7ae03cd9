"""The analysis variants the relevance harness compares, as configurations of the embedded index.

Why here and not as backend options: `indexer.embedded.EmbeddedBackend(path)` takes no
analysis options; its configuration is the module-level field table (`TEXT_FIELDS`: each
index field's source fields, analyzer and query boost) and `DEFAULT_FIELDS` (the fields a bare
word searches). A variant is a replacement for those two, applied only while the variant's
own temporary index is built and searched (`embedded_backend_for`), and restored afterwards.
The field NAMES stay the same, so the schema does not change; only analyzers, boosts and the
searched fields do. Once the backend accepts them in its constructor (the report of issue 9
asks for `EmbeddedBackend(path, text_fields=..., default_fields=...)`), `embedded_backend_for`
becomes a plain constructor call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from indexer import embedded
from indexer.analysis import analyze_exact
from indexer.embedded import EmbeddedBackend, TextField

ANALYZED_FIELDS = ("title", "subject", "abstract", "journal", "publisher", "place")
"""Fields the German chain analyzes in the shipped configuration."""

CORE_FIELDS: tuple[str, ...] = ("title", "subject", "author", "journal", "abstract")
"""What every variant searches: the text a record is found by, without the helper fields."""

PARTS_FIELDS: tuple[str, ...] = ("title_parts", "subject_parts", "abstract_parts")


@dataclass(frozen=True, slots=True)
class Variant:
    """A named configuration: the index's field table and the fields a bare word searches.

    `text_fields`/`default_fields` of None keep the backend's own (shipped) configuration.
    """

    name: str
    description: str
    text_fields: tuple[TextField, ...] | None = None
    default_fields: tuple[str, ...] | None = None


def _unweighted(fields: tuple[TextField, ...]) -> tuple[TextField, ...]:
    return tuple(dataclasses.replace(f, boost=1.0) for f in fields)


def _lowercase_only(fields: tuple[TextField, ...]) -> tuple[TextField, ...]:
    return tuple(
        dataclasses.replace(f, analyzer=analyze_exact) if f.name in ANALYZED_FIELDS else f
        for f in fields
    )


def build_variants() -> tuple[Variant, ...]:
    """The variants, derived from the backend's current field table (so they track it)."""
    shipped = embedded.TEXT_FIELDS
    shipped_defaults = embedded.DEFAULT_FIELDS
    weighted_no_parts = tuple(f for f in shipped_defaults if f not in PARTS_FIELDS)
    return (
        Variant(
            "unstemmed",
            "BM25 over lowercase-only tokens (no stop words removed from the index, no umlaut "
            "folding, no stemming) in title, subject, abstract, journal; author as shipped; "
            "all boosts 1 (query stop words are still dropped by the backend, so `der` is "
            "never required)",
            _unweighted(_lowercase_only(shipped)),
            CORE_FIELDS,
        ),
        Variant(
            "stemmed",
            "the German chain (lowercase, stop words, German normalization, Snowball) in the "
            "same fields; all boosts 1",
            _unweighted(shipped),
            CORE_FIELDS,
        ),
        Variant(
            "stemmed+parts",
            "the German chain plus the decompounded *_parts fields; all boosts 1",
            _unweighted(shipped),
            CORE_FIELDS + PARTS_FIELDS,
        ),
        Variant(
            "stemmed+weights",
            "the shipped boosts and *_exact fields, without the *_parts fields",
            shipped,
            weighted_no_parts,
        ),
        Variant(
            "stemmed+parts+weights",
            "the shipped configuration: German chain, *_parts, *_exact (exact spelling) "
            "fields and the shipped boosts ("
            + ", ".join(f"{f.name} {f.boost:g}" for f in shipped)
            + ")",
        ),
    )


UNSUPPORTED: dict[str, str] = {
    "stemmed+parts+weights+msm": (
        "minimum-should-match (e.g. all but one of 3+ query words) instead of AND: needs "
        "`EmbeddedBackend(path, min_should_match=...)`"
    ),
    "stemmed+parts+weights+proximity": (
        "a phrase/proximity boost for bare multi-word queries: needs "
        "`EmbeddedBackend(path, proximity_boost=..., proximity_slop=...)`"
    ),
}
"""Variants the issue asks for that the embedded backend cannot be configured for (yet)."""


@contextmanager
def embedded_backend_for(variant: Variant, path: Path) -> Iterator[EmbeddedBackend]:
    """An EmbeddedBackend at `path` configured as the variant says, for the `with` block only."""
    saved = (embedded.TEXT_FIELDS, embedded._TEXT, embedded.DEFAULT_FIELDS)
    fields = variant.text_fields if variant.text_fields is not None else saved[0]
    defaults = variant.default_fields if variant.default_fields is not None else saved[2]
    if [f.name for f in fields] != [f.name for f in saved[0]]:
        raise ValueError(f"variant {variant.name} changes the index schema; only analyzers may")
    embedded.TEXT_FIELDS = fields
    embedded._TEXT = {f.name: f for f in fields}
    embedded.DEFAULT_FIELDS = defaults
    backend = EmbeddedBackend(path)
    try:
        yield backend
    finally:
        backend.close()
        embedded.TEXT_FIELDS, embedded._TEXT, embedded.DEFAULT_FIELDS = saved
