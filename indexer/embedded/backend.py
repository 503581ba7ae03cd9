"""The embedded search backend: a tantivy index on local disk, no server needed.

German analysis happens in Python (`indexer.analysis`), and tantivy indexes the resulting
terms with a plain whitespace tokenizer. Why not tantivy's own filters: tantivy has no
GermanNormalizationFilter, and its closest chain (lowercase, stop words, Snowball `german`)
gives different terms than Elasticsearch's for words such as `Europäer` or `Jubiläen`
(tests/test_embedded_backend.py keeps that evidence). Pre-analysis makes the embedded terms
identical to the Python chain, which is the one Elasticsearch's `de` analyzer is checked
against. One consequence: stop words leave no position gap, so the phrase "Stadt und Land"
also matches "Stadt, Land" (Elasticsearch would leave a gap). Highlighting is done here
too, with the same chain, because tantivy's SnippetGenerator re-tokenizes stored text with
the field's (whitespace) tokenizer and would never see the stemmed terms.

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

Ranking (the defaults are the configuration chosen in bench/results/relevance.md, and
`indexer.elastic.queries` builds the same for Elasticsearch): a word searches every default
field, each with its weight in TEXT_FIELDS, scores summed over fields; title and subject
weigh more than abstract, the unstemmed *_exact fields add a bonus for the exact spelling,
the *_parts fields let a compound part find the compound. Bare words need not all match:
`min_should_match` (Elasticsearch syntax, see `search_model.required_word_count`) says how
many must; phrases, `field:` clauses and exclusions always apply. An optional sloppy-phrase
clause over title, subject and abstract lifts records where the free words stand together.
Facets are multi-select: each filtered facet field is counted without its own filter (see
`SearchResponse`). The year histogram (a timeline) is a `histogram` aggregation on the fast
`year` field, likewise counted without the filters on `year`.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import math
import os
import shutil
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tantivy

from indexer.analysis import analyze, analyze_exact, analyze_name, analyze_token, german_terms
from indexer.analysis import tokenize_with_offsets as _tokenize_with_offsets
from indexer.backend import ItemError, SearchDocument, WriteResult
from indexer.compounds import default_decompounder
from indexer.filters import fold_value, year_bounds
from indexer.query import Clause, ParsedQuery, Phrase, Term, parse_query, parse_year_value
from indexer.query_parts import (
    COMPOUND_PARTS_BOOST,
    COMPOUND_PARTS_MIN_SHOULD_MATCH,
    compound_part_terms,
)
from indexer.search_model import (
    DEFAULT_MIN_SHOULD_MATCH,
    DEFAULT_PROXIMITY_BOOST,
    DEFAULT_PROXIMITY_SLOP,
    FACET_FIELDS,
    SUBJECT_NORMS,
    FacetValue,
    Hit,
    QuerySyntaxError,
    SearchRequest,
    SearchResponse,
    required_word_count,
)

log = logging.getLogger(__name__)

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

YEAR_HISTOGRAM_AGG = "year_histogram"
YEAR_HISTOGRAM_SPEC: dict[str, Any] = {
    "histogram": {"field": "year", "interval": 1, "min_doc_count": 1}
}
"""tantivy's histogram aggregation (Elasticsearch syntax): one bucket per year with a record."""

HIGHLIGHT_FRAGMENT_CHARS = 160
HIGHLIGHT_FRAGMENTS = 3
WRITER_HEAP_BYTES = 256_000_000

POSITIONS_FILE = "ernte-archive-positions.json"
"""Beside the index: archive key -> sequence number the index holds that archive up to."""

PreparedDocument = dict[str, Any]
"""The fields of one tantivy document as plain data (`tantivy.Document(**fields)`): what
`prepare_document` returns, picklable, so it may be computed in another process."""


def _schema(text_fields: Sequence[TextField]) -> tantivy.Schema:
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


def _single_chain_plan(text_fields: Sequence[TextField]) -> frozenset[str]:
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
    shared = _single_chain_plan(text_fields) if shared_tokens is None else shared_tokens
    fields: PreparedDocument = {
        "id": str(identifier),
        "datestamp": str(document.get("datestamp") or ""),
    }
    values = {name: _values(document, name) for name in _source_names(tuple(text_fields))}
    values_of = values.__getitem__

    for text in text_fields:
        terms: list[str] = []
        analyzer = text.analyzer
        if text.name in shared:
            stem = analyzer is analyze
            for source in text.sources:
                for value in values_of(source):
                    terms.extend(_analyzed_value(value)[stem])
        else:
            for source in text.sources:
                for value in values_of(source):
                    terms.extend(_other_chain_value(analyzer, value))
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


_VALUE_CACHE_LIMIT = 200_000
_SHORT_VALUE = 160
"""Values up to this length (subjects, names, journals, publishers) repeat across records:
their analysis is memoized; titles and abstracts are analyzed each time."""
_value_cache: dict[str, tuple[list[str], list[str]]] = {}
_other_cache: dict[tuple[Analyzer, str], list[str]] = {}


def _analyzed_value(value: str) -> tuple[list[str], list[str]]:
    """(analyze_exact(value), analyze(value)), the second derived from the first."""
    found = _value_cache.get(value)
    if found is None:
        lowered = analyze_exact(value)
        found = (lowered, german_terms(lowered))
        if len(value) <= _SHORT_VALUE:
            if len(_value_cache) >= _VALUE_CACHE_LIMIT:
                _value_cache.clear()
            _value_cache[value] = found
    return found


def _other_chain_value(analyzer: Analyzer, value: str) -> list[str]:
    """`analyzer(value)`, memoized for short values (the name chain on author names)."""
    if len(value) > _SHORT_VALUE:
        return analyzer(value)
    key = (analyzer, value)
    found = _other_cache.get(key)
    if found is None:
        if len(_other_cache) >= _VALUE_CACHE_LIMIT:
            _other_cache.clear()
        found = _other_cache[key] = analyzer(value)
    return found


def _write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON so that a reader (or a crash) sees the old file or the new one, never half."""
    staged = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with staged.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    staged.replace(path)


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


class EmbeddedBackend:
    """IndexBackend over a tantivy index directory (see the module docstring for layout).

    One tantivy writer may exist per index; it is opened on the first write and released by
    `close()`, so a process may open and close the backend repeatedly. Searches need no
    writer and see what was committed. By default every `upsert`/`delete` call commits;
    with `defer_commits()` writes accumulate until `commit()` (one tantivy commit per many
    pages instead of per page), and `commit(positions)` records with the commit how far into
    each raw archive the index is (`archive_positions()`), so a writer killed before its
    commit is caught up from the archive by the next one (harvester.run.pipeline).

    The options tune analysis and ranking; their defaults are the measured, shipped choice
    (bench/results/relevance.md), which `indexer.elastic.queries` mirrors:

    text_fields: the field table (analyzer and weight per field, default TEXT_FIELDS).
        Another table must keep the field names and position options (the on-disk layout);
        an index must be searched with the analyzers it was written with.
    use_parts: search the *_parts fields, so that `Planung` finds
        `Stadtentwicklungsplanung` (default True).
    exact_boost: factor on the weights of the unstemmed *_exact fields (default 1.0, the
        table's weights); 0 leaves them out.
    min_should_match: how many bare words must match, in Elasticsearch syntax
        (`search_model.required_word_count`; default DEFAULT_MIN_SHOULD_MATCH, "2<-1": all
        of one or two words, all but one of more). "100%" ANDs every word.
    proximity_boost: weight of the optional sloppy phrase of the free words over
        PROXIMITY_FIELDS (default DEFAULT_PROXIMITY_BOOST); 0 switches it off.
    proximity_slop: positions its words may move (default DEFAULT_PROXIMITY_SLOP).
    compound_boost: weight of the parts clause of a compound query word
        (`indexer.query_parts`; default COMPOUND_PARTS_BOOST); 0 switches query-side
        splitting off. Needs `use_parts`.
    compound_min_should_match: how many parts of a split query word must match (default
        COMPOUND_PARTS_MIN_SHOULD_MATCH).
    """

    def __init__(
        self,
        path: Path,
        *,
        text_fields: Sequence[TextField] = TEXT_FIELDS,
        use_parts: bool = True,
        exact_boost: float = 1.0,
        min_should_match: str = DEFAULT_MIN_SHOULD_MATCH,
        proximity_boost: float = DEFAULT_PROXIMITY_BOOST,
        proximity_slop: int = DEFAULT_PROXIMITY_SLOP,
        compound_boost: float = COMPOUND_PARTS_BOOST,
        compound_min_should_match: str = COMPOUND_PARTS_MIN_SHOULD_MATCH,
    ) -> None:
        layout = [(f.name, f.positions) for f in text_fields]
        if layout != [(f.name, f.positions) for f in TEXT_FIELDS]:
            raise ValueError("text_fields must keep the names and positions of TEXT_FIELDS")
        if min(exact_boost, proximity_boost, proximity_slop, compound_boost) < 0:
            raise ValueError(
                "exact_boost, proximity_boost, proximity_slop and compound_boost must be >= 0"
            )
        required_word_count(min_should_match, 3)  # a bad spec fails here, not in a search
        required_word_count(compound_min_should_match, 3)
        self.path = Path(path)
        self.text_fields = tuple(text_fields)
        self.use_parts = use_parts
        self.exact_boost = exact_boost
        self.min_should_match = min_should_match
        self.proximity_boost = proximity_boost
        self.proximity_slop = proximity_slop
        self.compound_boost = compound_boost
        self.compound_min_should_match = compound_min_should_match
        self._fields = {f.name: f for f in self.text_fields}
        self._schema = _schema(self.text_fields)
        self._index: tantivy.Index | None = None
        self._writer: tantivy.IndexWriter | None = None
        self._auto_commit = True
        # id -> datestamp of documents written since the last commit (None: deleted); the
        # searcher cannot see them yet, but the stale-write check and the replace must.
        self._pending: dict[str, str | None] = {}
        self._single_text_sources = _single_chain_plan(self.text_fields)

    # -- lifecycle -------------------------------------------------------------------------

    def create(self, *, recreate: bool = False) -> None:
        """Create the index directory if missing; `recreate` drops an existing one first."""
        if recreate:
            self.close()
            self._index = None
            if self.path.exists():
                shutil.rmtree(self.path)
        self._open()

    def close(self) -> None:
        """Commit pending writes, wait for merges, release the writer lock.

        Archive positions are only recorded by an explicit `commit(positions)`: what a closing
        writer commits without them is caught up (idempotently) by the next writer.
        """
        writer, self._writer = self._writer, None
        self._pending.clear()
        if writer is not None:
            writer.commit()
            writer.wait_merging_threads()
        if self._index is not None:
            self._index.reload()

    def _open(self) -> tantivy.Index:
        if self._index is None:
            self.path.mkdir(parents=True, exist_ok=True)
            marker = self.path / "ernte-schema-version"
            if marker.exists() and marker.read_text().strip() != SCHEMA_VERSION:
                raise RuntimeError(
                    f"index at {self.path} has schema version {marker.read_text().strip()}, "
                    f"this ernte needs {SCHEMA_VERSION}: rebuild it (create with recreate)"
                )
            fresh = not marker.exists() and not (self.path / "meta.json").exists()
            if fresh:
                # A new index knows it holds nothing of any archive (a missing file means an
                # index from before positions were recorded, see archive_positions).
                _write_json_atomically(self.path / POSITIONS_FILE, {})
            index = tantivy.Index(self._schema, path=str(self.path), reuse=True)
            index.register_tokenizer(
                PRE_ANALYZED, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
            )
            if not marker.exists():
                # Readers open the index too: write the marker once, atomically, so a reader
                # never sees it half-written while a writer creates the index.
                staged = marker.with_suffix(f".{os.getpid()}.tmp")
                staged.write_text(SCHEMA_VERSION)
                staged.replace(marker)
            self._index = index
        return self._index

    def _writer_for_batch(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self._open().writer(heap_size=WRITER_HEAP_BYTES, num_threads=2)
        return self._writer

    def _commit(self) -> None:
        if self._auto_commit:
            self.commit()

    def defer_commits(self) -> None:
        """From now on writes are committed only by `commit()` (and `close()`)."""
        self._auto_commit = False

    def commit(self, positions: Mapping[str, int] | None = None) -> None:
        """Make every write so far durable and searchable; with `positions` (archive key ->
        archive sequence number), record that the index now holds each archive up to there.

        The positions are written (atomically) after the tantivy commit: killed in between,
        the index holds more than its positions say, and a catch-up re-writes it (upserts are
        idempotent); it never holds less.
        """
        if self._writer is not None:
            self._writer.commit()
            self._open().reload()
        self._pending.clear()
        if positions:
            merged = {**(self.archive_positions() or {}), **positions}
            _write_json_atomically(self.path / POSITIONS_FILE, merged)

    def archive_positions(self) -> dict[str, int] | None:
        """Archive key -> the sequence number up to which the index holds that archive
        (an archive not named: nothing of it); None for an index written before positions
        were recorded, which committed every page and so holds everything archived."""
        self._open()
        try:
            data = json.loads((self.path / POSITIONS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return {str(k): int(v) for k, v in data.items()}

    # -- writes ----------------------------------------------------------------------------

    def upsert(self, documents: Sequence[SearchDocument]) -> WriteResult:
        """Insert or replace documents by `id`; a document older than the stored one
        (by `datestamp`) is skipped and counted, never written. Commits the batch (unless
        commits are deferred)."""
        result = WriteResult()
        prepared: list[PreparedDocument] = []
        refused: list[ItemError] = []
        for document in documents:
            identifier = str(document.get("id") or "")
            if not identifier:
                result.errors.append(ItemError("", "document has no id"))
                continue
            try:
                prepared.append(self.prepare(document))
            except (TypeError, ValueError, KeyError) as error:
                refused.append(ItemError(identifier, f"cannot index document: {error}"))
        result.errors.extend(refused)
        self.upsert_prepared(prepared, result)
        return result

    @property
    def preparer(self) -> Callable[[SearchDocument], PreparedDocument]:
        """`prepare` as a picklable function (for worker processes, see harvester.run.pipeline)."""
        return functools.partial(
            prepare_document,
            text_fields=self.text_fields,
            shared_tokens=self._single_text_sources,
        )

    def prepare(self, document: SearchDocument) -> PreparedDocument:
        """The tantivy fields of a document (plain, picklable data: see `prepare_document`)."""
        return prepare_document(document, self.text_fields, self._single_text_sources)

    def upsert_prepared(
        self, prepared: Sequence[PreparedDocument], result: WriteResult | None = None
    ) -> WriteResult:
        """`upsert` for documents already turned into fields by `prepare` (perhaps in another
        process): the stale-datestamp check, the replace by `id`, the commit."""
        result = result if result is not None else WriteResult()
        newest: dict[str, PreparedDocument] = {}
        for fields in prepared:
            identifier = fields["id"]
            held = newest.get(identifier)
            if held is not None and _is_older_stamp(fields["datestamp"], held["datestamp"]):
                result.skipped_stale += 1
                continue
            if held is not None:
                result.skipped_stale += 1  # superseded by a newer copy in the same batch
            newest[identifier] = fields
        current = self._current_datestamps(list(newest))
        writer = self._writer_for_batch()
        for identifier, fields in newest.items():
            stored = current.get(identifier)
            if stored is not None and _is_older_stamp(fields["datestamp"], stored):
                result.skipped_stale += 1
                continue
            try:
                tantivy_document = tantivy.Document(**fields)
            except (TypeError, ValueError) as error:
                result.errors.append(ItemError(identifier, f"cannot index document: {error}"))
                continue
            if identifier in current:
                writer.delete_documents_by_term("id", identifier)
            writer.add_document(tantivy_document)
            if not self._auto_commit:
                self._pending[identifier] = fields["datestamp"]
            result.written += 1
        self._commit()
        return result

    def delete(
        self, identifiers: Iterable[str], datestamps: Mapping[str, str] | None = None
    ) -> WriteResult:
        """Remove documents by identifier; missing identifiers are not an error. A stored
        document newer than its tombstone's datestamp stays (counted as skipped_stale)."""
        wanted = [i for i in dict.fromkeys(identifiers) if i]
        present = {i: d for i, d in self._current_datestamps(wanted).items() if d is not None}
        tombstones = datestamps or {}
        newer = {
            i
            for i, stored in present.items()
            if _is_older({"datestamp": tombstones.get(i)}, stored)
        }
        writer = self._writer_for_batch()
        for identifier in present:
            if identifier not in newer:
                writer.delete_documents_by_term("id", identifier)
                if not self._auto_commit:
                    self._pending[identifier] = None
        self._commit()
        return WriteResult(deleted=len(present) - len(newer), skipped_stale=len(newer))

    def count(self) -> int:
        """Searchable documents (committed, not deleted)."""
        return int(self._open().searcher().num_docs)

    def _current_datestamps(self, identifiers: list[str]) -> dict[str, str | None]:
        """`_stored_datestamps` overlaid with the writes not committed yet (None: deleted
        since the last commit, still to be replaced by id if it comes again)."""
        current: dict[str, str | None] = dict(self._stored_datestamps(identifiers))
        if self._pending:
            for identifier in identifiers:
                if identifier in self._pending:
                    current[identifier] = self._pending[identifier]
        return current

    def _stored_datestamps(self, identifiers: list[str]) -> dict[str, str]:
        """id -> stored datestamp for those of `identifiers` already in the index."""
        if not identifiers:
            return {}
        searcher = self._open().searcher()
        if searcher.num_docs == 0:
            return {}
        query = tantivy.Query.term_set_query(self._schema, "id", identifiers)
        found: dict[str, str] = {}
        for _score, address in searcher.search(query, len(identifiers), count=False).hits:
            stored = searcher.doc(address)
            found[str(stored.get_first("id"))] = str(stored.get_first("datestamp") or "")
        return found

    # -- search ----------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchResponse:
        """Parse the query, apply filters, collect facets, sort, page and highlight."""
        started = time.perf_counter()
        parsed = parse_query(request.query)
        searcher = self._open().searcher()
        text_query = self._text_query(parsed, searcher)
        filters = self._filters_by_field(request, searcher)
        _check_facet_names(request.facets)
        # Filters on fields that are not faceted restrict the facets too; the others are left
        # out of the facet of their own field (multi-select), see _facets.
        base = _restrict(text_query, [q for f, q in filters.items() if f not in request.facets])
        faceted = {f: q for f, q in filters.items() if f in request.facets}
        query = _restrict(base, list(faceted.values()))

        offset = request.offset
        if request.search_after:
            offset = int(request.search_after[0])
        offset = max(0, offset)
        # tantivy refuses a limit of 0; a count-and-facets-only search asks for one hit and
        # drops it.
        limit = max(1, request.limit)
        if request.sort == "relevance":
            result = searcher.search(query, limit, count=True, offset=offset)
        else:
            order = tantivy.Order.Desc if request.sort == "year_desc" else tantivy.Order.Asc
            result = searcher.search(
                query, limit, count=True, order_by_field="year", offset=offset, order=order
            )
        total = int(getattr(result, "count", 0) or 0)  # `count` is missing from the stubs
        marks = _highlight_terms(parsed.positive) if request.highlight else set()
        hits = [
            self._hit(searcher.doc(address), value, request, marks)
            for value, address in result.hits[: max(0, request.limit)]
        ]
        facets = self._facets(searcher, query, base, faceted, request.facets)
        timeline = (
            self._year_histogram(searcher, text_query, filters) if request.year_histogram else []
        )
        next_offset = offset + len(hits)
        return SearchResponse(
            total=total,
            hits=hits,
            facets=facets,
            took_ms=round((time.perf_counter() - started) * 1000, 3),
            next_search_after=[next_offset] if hits and next_offset < total else None,
            year_histogram=timeline,
        )

    def _text_query(self, parsed: ParsedQuery, searcher: tantivy.Searcher) -> tantivy.Query:
        """The scoring query of the user's words (no filters).

        Phrases and `field:` clauses are required; of the bare words, as many as
        `min_should_match` says (a nested BooleanQuery with tantivy's native
        `minimum_number_should_match`, which scores like Lucene's: the sum over the words
        that matched). The proximity clause is optional: it only adds score.
        """
        must: list[tantivy.Query] = []
        words: list[tantivy.Query] = []
        for clause in parsed.positive:
            query = self._clause_query(clause, searcher)
            if query is not None:
                (words if _is_bare_word(clause) else must).append(query)
        required = required_word_count(self.min_should_match, len(words))
        if required >= len(words):
            must.extend(words)
        else:
            should = [(tantivy.Occur.Should, q) for q in words]
            must.append(tantivy.Query.boolean_query(should, required))
        negative = [self._clause_query(clause, searcher) for clause in parsed.negative]
        must_not = [q for q in negative if q is not None]
        proximity = self._proximity_query(parsed, searcher)
        if not must and not must_not:
            return tantivy.Query.all_query()
        if len(must) == 1 and not must_not and proximity is None:
            return must[0]
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, q) for q in must or [tantivy.Query.all_query()]]
            + [(tantivy.Occur.MustNot, q) for q in must_not]
            + ([(tantivy.Occur.Should, proximity)] if proximity is not None else [])
        )

    def _proximity_query(
        self, parsed: ParsedQuery, searcher: tantivy.Searcher
    ) -> tantivy.Query | None:
        """All free words (bare and quoted, no `field:`) as one sloppy phrase per
        PROXIMITY_FIELDS field, summed; None for fewer than two terms or boost 0."""
        if self.proximity_boost <= 0:
            return None
        text = " ".join(_clause_text(c) for c in parsed.positive if c.field is None)
        terms = analyze(text)
        if len(terms) < 2:
            return None
        phrases = [
            self._weighted(
                searcher,
                self._fields[name],
                tantivy.Query.phrase_query(
                    self._schema,
                    name,
                    list[str | tuple[int, str]](terms),
                    slop=self.proximity_slop,
                ),
                terms,
                weight,
            )
            for name, weight in PROXIMITY_FIELDS.items()
        ]
        combined = tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in phrases])
        return tantivy.Query.boost_query(combined, self.proximity_boost)

    def _searched_fields(self, names: Iterable[str]) -> list[tuple[TextField, float]]:
        """The fields a clause searches, with their weights under this configuration."""
        searched: list[tuple[TextField, float]] = []
        for name in names:
            field = self._fields[name]
            if field.role == "parts" and not self.use_parts:
                continue
            boost = field.boost * (self.exact_boost if field.role == "exact" else 1.0)
            if boost > 0:
                searched.append((field, boost))
        return searched

    def _weighted(
        self,
        searcher: tantivy.Searcher,
        field: TextField,
        query: tantivy.Query,
        terms: Sequence[str],
        weight: float,
    ) -> tantivy.Query:
        """`query` on `field` scored with `weight`: BM25 times the weight, or for a field
        without norms the constant `no_norms_weight`."""
        if field.norms:
            return tantivy.Query.boost_query(query, weight)
        return tantivy.Query.const_score_query(
            query, no_norms_weight(searcher, field.name, terms, weight)
        )

    def _clause_query(self, clause: Clause, searcher: tantivy.Searcher) -> tantivy.Query | None:
        """One query clause; None when it has no searchable term (a stop word).

        A word that is a compound (`indexer.query_parts`) matches by itself or by its parts
        in the *_parts fields among the fields it searches (see `_compound_parts_query`).
        """
        if clause.field == "year":
            low, high = parse_year_value(clause.text if isinstance(clause, Term) else "")
            return self._year_range(low, high)
        if clause.field == "id":
            return tantivy.Query.term_query(self._schema, "id", _clause_text(clause))
        if clause.field in KEYWORD_QUERY_FIELDS:
            value = _clause_text(clause).lower()
            return tantivy.Query.term_query(self._schema, f"k_{clause.field}", value)
        names = USER_TEXT_FIELDS[clause.field] if clause.field else DEFAULT_FIELDS
        text = _clause_text(clause)
        if isinstance(clause, Term) and clause.field != "author" and not analyze(text):
            return None  # a stop word: dropped, not required in the unstemmed fields
        per_field: list[tantivy.Query] = []
        for field, boost in self._searched_fields(names):
            if isinstance(clause, Phrase) and not field.positions:
                continue
            terms = field.analyzer(text)
            if not terms:
                continue
            if len(terms) == 1:
                query = tantivy.Query.term_query(self._schema, field.name, terms[0])
            elif field.positions:
                query = tantivy.Query.phrase_query(
                    self._schema, field.name, list[str | tuple[int, str]](terms)
                )
            else:
                query = tantivy.Query.boolean_query(
                    [
                        (tantivy.Occur.Must, tantivy.Query.term_query(self._schema, field.name, t))
                        for t in terms
                    ]
                )
            per_field.append(self._weighted(searcher, field, query, terms, boost))
        if not per_field:
            return None
        whole = (
            per_field[0]
            if len(per_field) == 1
            else tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in per_field])
        )
        parts = self._compound_parts_query(clause, names, searcher)
        if parts is None:
            return whole
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, whole), (tantivy.Occur.Should, parts)]
        )

    def _compound_parts_query(
        self, clause: Clause, names: Iterable[str], searcher: tantivy.Searcher
    ) -> tantivy.Query | None:
        """The parts clause of a compound word (`indexer.query_parts`): of its parts,
        `compound_min_should_match` must match, each in any of the searched *_parts fields
        (weights summed over fields), the clause weighted compound_boost / number of parts.
        None for a phrase, a word that is no compound, or no *_parts field searched."""
        if not isinstance(clause, Term) or self.compound_boost <= 0:
            return None
        fields = [(f, b) for f, b in self._searched_fields(names) if f.role == "parts"]
        parts = compound_part_terms(clause.text) if fields else ()
        if not parts:
            return None
        per_part: list[tantivy.Query] = []
        for _part, term in parts:
            alternatives = [
                self._weighted(
                    searcher,
                    field,
                    tantivy.Query.term_query(self._schema, field.name, term),
                    (term,),
                    boost,
                )
                for field, boost in fields
            ]
            per_part.append(
                alternatives[0]
                if len(alternatives) == 1
                else tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in alternatives])
            )
        required = required_word_count(self.compound_min_should_match, len(per_part))
        if required >= len(per_part):
            combined = tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in per_part])
        else:
            combined = tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, q) for q in per_part], required
            )
        return tantivy.Query.boost_query(combined, self.compound_boost / len(per_part))

    def _year_range(self, low: int | None, high: int | None) -> tantivy.Query:
        if low is None and high is None:
            return tantivy.Query.all_query()
        return tantivy.Query.range_query(
            self._schema, "year", tantivy.FieldType.Integer, lower_bound=low, upper_bound=high
        )

    def _filters_by_field(
        self, request: SearchRequest, searcher: tantivy.Searcher
    ) -> dict[str, tantivy.Query]:
        """One query per filtered field: its values ORed (facet values, compared folded, see
        `_folded_filter`; or year ranges); the caller ANDs the fields."""
        by_field: dict[str, list[tantivy.Query]] = defaultdict(list)
        for item in request.filters:
            if item.field not in FACET_FIELDS:
                raise QuerySyntaxError(
                    f"cannot filter on {item.field!r}: filter fields are {', '.join(FACET_FIELDS)}"
                )
            if item.field == "year":
                by_field["year"].append(self._year_range(*year_bounds(item)))
            else:
                by_field[item.field].append(self._folded_filter(searcher, item.field, item.value))
        return {
            name: alternatives[0]
            if len(alternatives) == 1
            else tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in alternatives])
            for name, alternatives in by_field.items()
        }

    def _folded_filter(self, searcher: tantivy.Searcher, facet: str, value: str) -> tantivy.Query:
        """Records with a `facet` value that folds to the same string as `value`
        (`indexer.filters.fold_value`), as Elasticsearch's `.folded` subfields compare.

        The facet field keeps values as catalogued (they are the facet labels), so the stored
        spellings are found first: a regular expression over the field's terms admits every
        case and umlaut spelling of the folded value (a superset); the values of the records
        it matches are aggregated and kept where they fold equal to `value`; the filter is
        the set of those values. No stored value matches: a query that matches nothing.
        """
        wanted = fold_value(value)
        field = f"f_{facet}"
        candidates = tantivy.Query.regex_query(self._schema, field, _folded_pattern(wanted))
        found = searcher.aggregate(
            candidates, {"values": {"terms": {"field": field, "size": FOLDED_FILTER_VALUES}}}
        )
        spellings = [
            str(b["key"])
            for b in found.get("values", {}).get("buckets", [])
            if fold_value(str(b["key"])) == wanted
        ]
        if not spellings:
            return tantivy.Query.empty_query()
        return tantivy.Query.term_set_query(self._schema, field, spellings)

    def _facets(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        base: tantivy.Query,
        faceted_filters: dict[str, tantivy.Query],
        wanted: dict[str, int],
    ) -> dict[str, list[FacetValue]]:
        """Terms aggregations, multi-select style (see SearchResponse).

        Facets without a filter of their own share one aggregation over `query` (everything
        the search matched); each filtered facet field gets its own aggregation over `base`
        plus the filters of the other faceted fields. So a search costs one aggregation
        more per filtered facet field, and none more without filters.
        """
        if not wanted:
            return {}
        shared = [name for name in wanted if name not in faceted_filters]
        buckets = self._aggregate(searcher, query, {n: wanted[n] for n in shared})
        for name in wanted:
            if name in faceted_filters:
                others = [q for f, q in faceted_filters.items() if f != name]
                scope = _restrict(base, others)
                buckets.update(self._aggregate(searcher, scope, {name: wanted[name]}))
        return {
            name: [
                FacetValue(str(int(b["key"])) if name == "year" else str(b["key"]), b["doc_count"])
                for b in buckets[name]
            ]
            for name in wanted
        }

    def _year_histogram(
        self,
        searcher: tantivy.Searcher,
        text_query: tantivy.Query,
        filters: dict[str, tantivy.Query],
    ) -> list[FacetValue]:
        """The timeline (see SearchResponse.year_histogram): one bucket per year that has a
        matching record, ascending, over the query and every filter except those on `year`.

        A `histogram` with interval 1 and min_doc_count 1 rather than a terms aggregation: it
        returns every year in key order, with no size to guess, and empty years cost nothing.
        """
        scope = _restrict(text_query, [q for name, q in filters.items() if name != "year"])
        result = searcher.aggregate(scope, {YEAR_HISTOGRAM_AGG: YEAR_HISTOGRAM_SPEC})
        buckets = result.get(YEAR_HISTOGRAM_AGG, {}).get("buckets", [])
        return [FacetValue(str(int(b["key"])), int(b["doc_count"])) for b in buckets]

    def _aggregate(
        self, searcher: tantivy.Searcher, query: tantivy.Query, sizes: dict[str, int]
    ) -> dict[str, list[dict[str, Any]]]:
        """facet name -> terms buckets of the documents `query` matches (one pass)."""
        if not sizes:
            return {}
        aggregations = {
            name: {
                "terms": {"field": "year" if name == "year" else f"f_{name}", "size": max(1, size)}
            }
            for name, size in sizes.items()
        }
        result = searcher.aggregate(query, aggregations)
        return {name: result.get(name, {}).get("buckets", []) for name in sizes}

    def _hit(
        self, stored: tantivy.Document, value: Any, request: SearchRequest, marks: set[str]
    ) -> Hit:
        display = json.loads(bytes(stored.get_first("display") or b"{}").decode("utf-8"))
        relevance = request.sort == "relevance"
        hit = Hit(
            id=str(stored.get_first("id")),
            score=float(value) if relevance else 0.0,
            title=display["title"],
            year=display["year"],
            authors=display["authors"],
            type=display["type"],
            subjects=display["subjects"],
            source=display["source"],
            sort=None if relevance else [display["year"]],
        )
        if marks:
            highlights = {
                "title": _highlight(display["title"], marks, whole=True),
                "abstract": _highlight(display["abstract"], marks, whole=False),
            }
            hit.highlights = {k: v for k, v in highlights.items() if v}
        return hit


FOLDED_FILTER_VALUES = 10_000
"""Distinct facet values aggregated over the records a folded filter's pattern matches (the
wanted spellings and the other values of those records)."""

_FOLDED_ALTERNATIVES: dict[str, str] = {
    "a": "(a|A|ä|Ä|a[eE]|A[eE])",
    "o": "(o|O|ö|Ö|o[eE]|O[eE])",
    "u": "(u|U|ü|Ü|u[eE]|U[eE])",
}


def _folded_pattern(folded: str) -> str:
    """A regular expression (tantivy's syntax, whole term) admitting every stored spelling
    that may fold to `folded`: each letter in either case, a/o/u also as ä/ö/ü or ae/oe/ue,
    `ss` also as ß. A superset: the caller checks the values it finds with `fold_value`."""
    out: list[str] = []
    position = 0
    while position < len(folded):
        char = folded[position]
        if folded.startswith("ss", position):
            out.append("([sS][sS]|ß|ẞ)")
            position += 2
            continue
        if char in _FOLDED_ALTERNATIVES:
            out.append(_FOLDED_ALTERNATIVES[char])
        elif char.isalpha() and char.upper() != char:
            out.append(f"[{_regex_char(char)}{_regex_char(char.upper())}]")
        else:
            out.append(_regex_char(char))
        position += 1
    return "".join(out)


def _regex_char(char: str) -> str:
    """`char` as a literal in a regular expression (tantivy's regex-syntax escapes ASCII
    punctuation; other characters stand for themselves)."""
    return "\\" + char if char.isascii() and not char.isalnum() and char != " " else char


def no_norms_weight(
    searcher: tantivy.Searcher, field: str, terms: Sequence[str], weight: float
) -> float:
    """The score of a match in a field without norms: weight x (k1 + 1) x the summed idf of
    the terms (tantivy's idf, ln(1 + (N - n + 0.5) / (n + 0.5))).

    This is BM25 with k1 = 0 (no length, no term-frequency saturation), times the (k1 + 1)
    that tantivy's BM25 puts on every other field, so field weights keep their meaning; it is
    what Elasticsearch scores with the `heading_set` similarity (BM25, k1 0, b 0; Lucene has
    no (k1 + 1) factor on any field). A phrase scores the sum of its terms' idf, as in both
    engines.
    """
    total = max(1, int(searcher.num_docs))
    idf = 0.0
    for term in terms:
        frequency = int(searcher.doc_freq(field, term))
        idf += math.log1p((total - frequency + 0.5) / (frequency + 0.5))
    return weight * (BM25_K1 + 1.0) * idf


def _check_facet_names(wanted: dict[str, int]) -> None:
    for name in wanted:
        if name not in FACET_FIELDS:
            raise QuerySyntaxError(
                f"cannot facet on {name!r}: facet fields are {', '.join(FACET_FIELDS)}"
            )


def _restrict(query: tantivy.Query, filters: list[tantivy.Query]) -> tantivy.Query:
    """`query` ANDed with non-scoring filters (a filter adds no score, as in Elasticsearch)."""
    if not filters:
        return query
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, query)]
        + [(tantivy.Occur.Must, tantivy.Query.const_score_query(f, 0.0)) for f in filters]
    )


def _is_bare_word(clause: Clause) -> bool:
    """A positive word without `field:`: the clauses `min_should_match` counts."""
    return isinstance(clause, Term) and clause.field is None and not clause.negated


def _clause_text(clause: Clause) -> str:
    return clause.text if isinstance(clause, Term) else " ".join(clause.words)


def _is_older_stamp(incoming: str, stored: str | None) -> bool:
    """`_is_older` for two datestamps (a missing one never blocks a write)."""
    return bool(incoming and stored and incoming < stored)


def _is_older(document: SearchDocument, stored_datestamp: str) -> bool:
    """True when the document's datestamp is strictly older than the stored one.

    OAI datestamps are ISO 8601 UTC in one granularity per repository, so string order is
    time order. A missing datestamp on either side never blocks a write.
    """
    incoming = str(document.get("datestamp") or "")
    return bool(incoming and stored_datestamp and incoming < stored_datestamp)


def _highlight_terms(clauses: Iterable[Clause]) -> set[str]:
    """German-chain terms of the positive text clauses (what highlights mark), with the part
    terms of a compound word, so `Stadtentwicklung` marks `Stadtentwicklungsplanung`."""
    terms: set[str] = set()
    for clause in clauses:
        if clause.field not in (None, "title", "abstract", "subject"):
            continue
        terms.update(analyze(_clause_text(clause)))
        if isinstance(clause, Term):
            terms.update(term for _part, term in compound_part_terms(clause.text))
    return terms


def _word_matches(word: str, marks: set[str]) -> bool:
    if analyze_token(word) in marks:
        return True
    return any(analyze_token(part) in marks for part in default_decompounder().split(word))


def _highlight(text: str, marks: set[str], *, whole: bool) -> list[str]:
    """`text` (whole) or up to three fragments of it with matching words in <mark>.

    A compound is marked whole when one of its parts matches (`Quartiermanagement` for
    `Quartier`). The text is HTML-escaped; only the <mark> tags are markup.
    """
    text = unicodedata.normalize("NFC", text)
    spans = [(s, e) for word, s, e in _tokenize_with_offsets(text) if _word_matches(word, marks)]
    if not spans:
        return []
    if whole:
        return [_mark(text, 0, len(text), spans)]
    fragments: list[str] = []
    covered_until = -1
    for start, _end in spans:
        if start < covered_until:
            continue
        begin = max(0, start - HIGHLIGHT_FRAGMENT_CHARS // 3)
        begin = text.rfind(" ", 0, begin) + 1 if begin > 0 else 0
        finish = min(len(text), begin + HIGHLIGHT_FRAGMENT_CHARS)
        space = text.find(" ", finish)
        finish = len(text) if space < 0 else space
        inside = [(s, e) for s, e in spans if s >= begin and e <= finish]
        prefix = "…" if begin > 0 else ""
        suffix = "…" if finish < len(text) else ""
        fragments.append(prefix + _mark(text, begin, finish, inside) + suffix)
        covered_until = finish
        if len(fragments) == HIGHLIGHT_FRAGMENTS:
            break
    return fragments


def _mark(text: str, begin: int, end: int, spans: list[tuple[int, int]]) -> str:
    out: list[str] = []
    position = begin
    for start, stop in spans:
        out.append(html.escape(text[position:start], quote=False))
        out.append(f"<mark>{html.escape(text[start:stop], quote=False)}</mark>")
        position = stop
    out.append(html.escape(text[position:end], quote=False))
    return "".join(out)
