"""`EmbeddedBackend`: the IndexBackend contract on a tantivy index on local disk, no server.

German analysis happens in Python (`indexer.analysis`), and tantivy indexes the resulting
terms with a plain whitespace tokenizer. Why not tantivy's own filters: tantivy has no
GermanNormalizationFilter, and its closest chain (lowercase, stop words, Snowball `german`)
gives different terms than Elasticsearch's for words such as `Europäer` or `Jubiläen`
(tests/test_embedded_backend.py keeps that evidence). Pre-analysis makes the embedded terms
identical to the Python chain, which is the one Elasticsearch's `de` analyzer is checked
against. One consequence: stop words leave no position gap, so the phrase "Stadt und Land"
also matches "Stadt, Land" (Elasticsearch would leave a gap).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import tantivy

from indexer.backend import ItemError, SearchDocument, WriteResult
from indexer.embedded.documents import PreparedDocument, prepare_document, single_chain_plan
from indexer.embedded.facets import (
    Runner,
    check_facet_names,
    count_with_year,
    facet_counts,
    run_here,
    year_histogram,
)
from indexer.embedded.highlight import highlight, highlight_terms
from indexer.embedded.queries import QueryTranslator, restrict
from indexer.embedded.read_only import ReadOnlyShadow, cannot_write
from indexer.embedded.schema import (
    PRE_ANALYZED,
    SCHEMA_VERSION,
    TEXT_FIELDS,
    TextField,
    build_schema,
)
from indexer.embedded.views import COUNTS_KEPT, IndexView, IndexViews, counts_key
from indexer.embedded.writer import POSITIONS_FILE, EmbeddedWriter, write_json_atomically
from indexer.query import ParsedQuery, parse_query
from indexer.query_parts import COMPOUND_PARTS_BOOST, COMPOUND_PARTS_MIN_SHOULD_MATCH
from indexer.search_model import (
    DEFAULT_MIN_SHOULD_MATCH,
    DEFAULT_PROXIMITY_BOOST,
    DEFAULT_PROXIMITY_SLOP,
    FacetValue,
    Hit,
    QuerySyntaxError,
    SearchRequest,
    SearchResponse,
)
from indexer.word_lists import lists_generation

SUBTRACTION_FROM_SHARE = 0.6
"""Count the facets of a query that matches at least this share of the records by
subtraction (`indexer.embedded.facets.aggregate_by_subtraction`). Measured on the 400,000
records of bench_index.py (bench/results/facets.txt): at 85 % subtraction took 18 ms instead
of 46 ms, at 47 % 29 ms instead of 27 ms."""


Breadth = Literal["narrow", "first broad", "broad"]
"""How much of the index a query matches, as far as counting its facets goes (`_breadth`)."""


def _counted_over_text_query(
    request: SearchRequest, filters: Mapping[str, object], timeline_with_facets: bool
) -> tuple[list[str], bool] | None:
    """(facets, whether the timeline) of the facet pass whose scope is the text query alone,
    or None when no pass has that scope: without filters the shared pass (every facet),
    with every filter on one faceted field that field's own pass (multi-select)."""
    if not filters:
        return list(request.facets), timeline_with_facets
    if len(filters) == 1:
        (field,) = filters
        if field in request.facets:
            return [field], timeline_with_facets and field == "year"
    return None


class SchemaMismatch(RuntimeError):
    """The index on disk was written by another version of ernte's schema: rebuild it."""


class DamagedIndex(RuntimeError):
    """An index file tantivy cannot read (a damaged `meta.json`, a truncated or missing
    segment file): the message names the index and the way out, `ernte index rebuild`."""


_DAMAGE_SIGNS = (
    "data corrupted",
    "corrupt",
    "failed to open file",
    "filedoesnotexist",
    "file does not exist",
    "magic byte",
    "offset to copy",
    "unexpected eof",
)
"""How tantivy words an index file it cannot read (measured: a garbage meta.json, a truncated
.idx or .store, a missing .term)."""

_NOT_DAMAGE_SIGNS = (
    "no space left",
    "os error 28",
    "os error 122",
    "quota",
    "storagefull",
    "permission denied",
    "os error 13",
    "read-only file system",
    "os error 30",
    "too many open files",
    "os error 24",
)
"""Failures of the environment, not of the files (a full disk, no permission): they keep their
own one-line errors (`harvester.run.guarded_index`), never "run ernte index rebuild"."""


@contextmanager
def _damage_named(path: Path) -> Iterator[None]:
    """tantivy's ValueError about an unreadable index file -> DamagedIndex naming `path`
    (it printed a traceback, and `ernte serve` answered 500); other errors pass unchanged,
    a query error above all (a QuerySyntaxError is a ValueError that quotes the query)."""
    try:
        yield
    except QuerySyntaxError:
        raise
    except ValueError as exc:
        reason = str(exc)
        lowered = reason.lower()
        if not any(sign in lowered for sign in _DAMAGE_SIGNS) or any(
            sign in lowered for sign in _NOT_DAMAGE_SIGNS
        ):
            raise
        raise DamagedIndex(
            f"the index at {path} is damaged ({reason.splitlines()[0][:300]}): "
            "run `ernte index rebuild` (it rebuilds the index from the archive)"
        ) from exc


_T = TypeVar("_T")


class _SpareThreads:
    """Runs parts of a search (its hits pass, some of its facet passes) on two more threads
    while no other search of this process is running: tantivy releases the GIL in its
    passes, so a lone search costs about its longest part, not their sum. Under concurrent
    searches every core is busy already: more threads would only add switching, so every
    part runs in the calling thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._pool: ThreadPoolExecutor | None = None

    @contextmanager
    def search(self) -> Iterator[_Beside | None]:
        """For the duration of one search: a `_Beside` that runs parts on the spare threads
        when this search runs alone, else None (run every part here)."""
        with self._lock:
            alone = self._running == 0
            self._running += 1
            if alone and self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ernte-search")
            pool = self._pool
        beside = _Beside(pool) if alone and pool is not None else None
        try:
            yield beside
        finally:
            if beside is not None:
                beside.wait()  # the spare threads are free again before the next search
            with self._lock:
                self._running -= 1


class _Beside:
    """Starts parts of one search on the spare threads (a `facets.Runner`)."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._started: list[Future[Any]] = []

    def __call__(self, task: Callable[[], _T]) -> Callable[[], _T]:
        try:
            future = self._pool.submit(task)
        except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
            return run_here(task)
        self._started.append(future)
        return future.result

    def wait(self) -> None:
        wait(self._started)


_spare_threads = _SpareThreads()


def _new_spare_threads() -> None:
    """A forked child (a Celery prefork worker) inherits the thread pool without its threads:
    it makes its own."""
    global _spare_threads
    _spare_threads = _SpareThreads()


os.register_at_fork(after_in_child=_new_spare_threads)


def _cursor_offset(search_after: Sequence[object]) -> int:
    """The offset an embedded cursor (`next_search_after`, `[offset]`) stands for."""
    value = search_after[0]
    if (
        len(search_after) != 1
        or isinstance(value, bool)
        or not isinstance(value, int)
        or value < 0  # as a negative offset is refused, and no response hands one out
    ):
        raise QuerySyntaxError(
            f"search_after {list(search_after)!r}: the embedded index pages with one offset, "
            "pass next_search_after of the previous response, e.g. [10]"
        )
    return value


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
    kept_searches: searches whose facet counts each view of the index keeps (default
        COUNTS_KEPT, see `indexer.embedded.views`); 0 counts every search afresh, as a
        one-shot `ernte search` does (what bench_index and bench_query time).
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
        kept_searches: int = COUNTS_KEPT,
    ) -> None:
        if kept_searches < 0:
            raise ValueError(f"kept_searches must be 0 or more, not {kept_searches}")
        layout = [(f.name, f.positions) for f in text_fields]
        if layout != [(f.name, f.positions) for f in TEXT_FIELDS]:
            raise ValueError("text_fields must keep the names and positions of TEXT_FIELDS")
        self.path = Path(path)
        self.text_fields = tuple(text_fields)
        self._schema = build_schema(self.text_fields)
        self.queries = QueryTranslator(
            self._schema,
            self.text_fields,
            use_parts=use_parts,
            exact_boost=exact_boost,
            min_should_match=min_should_match,
            proximity_boost=proximity_boost,
            proximity_slop=proximity_slop,
            compound_boost=compound_boost,
            compound_min_should_match=compound_min_should_match,
        )
        self._index: tantivy.Index | None = None
        self._shadow: ReadOnlyShadow | None = None
        self._writes = EmbeddedWriter(self.path, self._schema, self._open)
        self._kept_searches = kept_searches
        self._views = self._new_views()
        self._single_text_sources = single_chain_plan(self.text_fields)

    def _new_views(self) -> IndexViews:
        return IndexViews(self.path, self._open, self._before_reload, self._kept_searches)

    def create(self, *, recreate: bool = False) -> None:
        """Create the index directory if missing; `recreate` drops an existing one first."""
        if recreate:
            self.close()
            self._index = None
            self._views = self._new_views()
            if self.path.exists():
                shutil.rmtree(self.path)
        self._open()

    def close(self) -> None:
        """Commit pending writes, wait for merges, release the writer lock.

        Archive positions are only recorded by an explicit `commit(positions)`: what a closing
        writer commits without them is caught up (idempotently) by the next writer. An index
        read through a shadow directory (`indexer.embedded.read_only`) removes it.
        """
        self._writes.close()
        if self._shadow is not None:  # read through links: remove them; a later use reopens
            self._shadow.remove()
            self._shadow, self._index = None, None
            self._views = self._new_views()
        elif self._index is not None:
            self._index.reload()

    def _open(self) -> tantivy.Index:
        if self._index is None:
            self.path.mkdir(parents=True, exist_ok=True)
            marker = self.path / "ernte-schema-version"
            if marker.exists() and marker.read_text().strip() != SCHEMA_VERSION:
                raise SchemaMismatch(
                    f"index at {self.path} has schema version {marker.read_text().strip()}, "
                    f"this ernte needs {SCHEMA_VERSION}: run `ernte index rebuild`"
                )
            fresh = not marker.exists() and not (self.path / "meta.json").exists()
            if fresh:
                # A new index knows it holds nothing of any archive (a missing file means an
                # index from before positions were recorded, see archive_positions).
                write_json_atomically(self.path / POSITIONS_FILE, {})
            where = self.path
            if not fresh and cannot_write(self.path):
                self._shadow = ReadOnlyShadow(self.path)  # see indexer.embedded.read_only
                where = self._shadow.path
            with _damage_named(self.path):
                index = tantivy.Index(self._schema, path=str(where), reuse=True)
            index.register_tokenizer(
                PRE_ANALYZED, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
            )
            if not marker.exists() and self._shadow is None:
                # Readers open the index too: write the marker once, atomically, so a reader
                # never sees it half-written while a writer creates the index.
                staged = marker.with_suffix(f".{os.getpid()}.tmp")
                staged.write_text(SCHEMA_VERSION)
                staged.replace(marker)
            self._index = index
        return self._index

    def _before_reload(self) -> None:
        """An index read through a shadow directory: link the new commit's segments first."""
        if self._shadow is not None:
            self._shadow.refresh()

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

    def count(self) -> int:
        """Searchable documents (committed, not deleted)."""
        with _damage_named(self.path):
            return int(self._views.current().searcher.num_docs)

    def search(self, request: SearchRequest) -> SearchResponse:
        """Parse the query, apply filters, collect facets, sort, page and highlight."""
        with _damage_named(self.path):
            return self._search(request)

    def _search(self, request: SearchRequest) -> SearchResponse:
        started = time.perf_counter()
        parsed = parse_query(request.query)
        view = self._views.current()
        searcher = view.searcher
        text_query = self.queries.text_query(parsed, searcher)
        filters = self.queries.filters_by_field(request, searcher, view.spellings)
        check_facet_names(request.facets)
        # Filters on fields that are not faceted restrict the facets too; the others are left
        # out of the facet of their own field (multi-select), see `facet_counts`.
        base = restrict(text_query, [q for f, q in filters.items() if f not in request.facets])
        faceted = {f: q for f, q in filters.items() if f in request.facets}
        query = restrict(base, list(faceted.values()))

        offset = request.offset
        if request.search_after:
            offset = _cursor_offset(request.search_after)
        # Past the last record there is nothing to page to; tantivy would reserve room for
        # `offset` hits first (a cursor of 2**32 asked for 64 GB and ended the process).
        offset = min(max(0, offset), int(searcher.num_docs))
        # The timeline's scope (the query and every filter but those on `year`) is that of a
        # facet pass when no year filter is set (the shared pass) or when `year` is faceted
        # (its own pass): counted there rather than in a pass of its own.
        timeline_with_facets = request.year_histogram and (
            "year" not in filters or "year" in faceted
        )

        def count_facets(
            beside: Runner | None,
        ) -> tuple[dict[str, list[FacetValue]], list[FacetValue], bool]:
            """The facets, the timeline, and whether a later search of this view would count
            them the same way (not so for the view's first broad search, see `_breadth`)."""
            # A text query that matches most records: the pass whose scope is the text query
            # alone (the shared pass without filters; with every filter on one faceted field,
            # that field's own pass) is counted as everything's minus the records it does
            # not match.
            breadth: Breadth = "narrow"
            alone = _counted_over_text_query(request, filters, timeline_with_facets)
            if alone is not None and (alone[0] or alone[1]):
                breadth = self._breadth(parsed, text_query, view)
            whole = None
            if breadth == "broad" and alone is not None:
                whole = view.whole_counts(alone[0], with_year_histogram=alone[1])
            facets, timeline = facet_counts(
                searcher,
                query,
                base,
                faceted,
                request.facets,
                with_year_histogram=timeline_with_facets,
                whole=whole,
                beside=beside,
            )
            if request.year_histogram and not timeline_with_facets:
                timeline = year_histogram(searcher, text_query, filters)
            return facets, timeline, breadth != "first broad"

        def hits_page() -> tuple[int, list[Hit]]:
            return self._hits_page(searcher, query, parsed, request, offset)

        key = counts_key(request)
        kept = view.counts.get(key)
        if kept is None:
            with _spare_threads.search() as beside:
                hits_done = (beside or run_here)(hits_page)
                facets, timeline, settled = count_facets(beside)
                total, hits = hits_done()
            if settled and (request.facets or request.year_histogram):
                view.counts.keep(key, (facets, timeline))
        else:
            total, hits = hits_page()
            # Copies: what a caller does with its response never reaches the kept counts.
            facets = {name: list(values) for name, values in kept[0].items()}
            timeline = list(kept[1])
        next_offset = offset + len(hits)
        return SearchResponse(
            total=total,
            hits=hits,
            facets=facets,
            took_ms=round((time.perf_counter() - started) * 1000, 3),
            next_search_after=[next_offset] if hits and next_offset < total else None,
            year_histogram=timeline,
        )

    def _breadth(self, parsed: ParsedQuery, text_query: tantivy.Query, view: IndexView) -> Breadth:
        """Whether `text_query` matches at least SUBTRACTION_FROM_SHARE of the records
        ("broad", its facets then counted by subtraction): a quick estimate from term
        statistics first (`matched_share_estimate`; deleted records still count in those until
        segments merge), then, from the view's second broad-looking search on
        (`IndexView.broad_search_again`), a count. "first broad": the view's first
        broad-looking search, counted directly (its counts may differ from the exact ones a
        later search gets by subtraction, where a segment holds more than SEGMENT_VALUES
        values of a field, so they are not kept)."""
        searcher = view.searcher
        estimate = self.queries.matched_share_estimate(parsed, searcher)
        if estimate < SUBTRACTION_FROM_SHARE:
            return "narrow"
        if not view.broad_search_again():
            return "first broad"
        if not parsed.positive and not parsed.negative:
            return "broad"  # no query: every record
        total = max(1, int(searcher.num_docs))
        # Under this backend's fixed settings the clauses and the word lists make the query.
        key = (parsed, lists_generation())
        counted = view.matched.get(key)
        if counted is None:
            counted = view.matched[key] = count_with_year(searcher, text_query)
        return "broad" if counted >= SUBTRACTION_FROM_SHARE * total else "narrow"

    def _hits_page(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        parsed: ParsedQuery,
        request: SearchRequest,
        offset: int,
    ) -> tuple[int, list[Hit]]:
        """(total matches, the requested page of hits with their highlights)."""
        # tantivy refuses a limit of 0; a count-and-facets-only search asks for one hit and
        # drops it.
        # ... and never more than there are records: tantivy reserves room for `limit` hits
        # first (--limit 2147483648 asked for 34 GB and aborted the process).
        limit = max(1, min(request.limit, int(searcher.num_docs)))
        if request.sort == "relevance":
            result = searcher.search(query, limit, count=True, offset=offset)
        else:
            order = tantivy.Order.Desc if request.sort == "year_desc" else tantivy.Order.Asc
            result = searcher.search(
                query, limit, count=True, order_by_field="year", offset=offset, order=order
            )
        total = int(getattr(result, "count", 0) or 0)  # `count` is missing from the stubs
        marks = highlight_terms(parsed.positive) if request.highlight else set()
        hits = [
            self._hit(searcher.doc(address), value, request, marks)
            for value, address in result.hits[: max(0, request.limit)]
        ]
        return total, hits

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
                "title": highlight(display["title"], marks, whole=True),
                "abstract": highlight(display["abstract"], marks, whole=False),
            }
            hit.highlights = {k: v for k, v in highlights.items() if v}
        return hit

    def defer_commits(self) -> None:
        """From now on writes are committed only by `commit()` (and `close()`)."""
        self._writes.defer_commits()

    def commit(self, positions: Mapping[str, int] | None = None) -> None:
        """Make every write so far durable and searchable (see `EmbeddedWriter.commit`)."""
        self._writes.commit(positions)

    def archive_positions(self) -> dict[str, int] | None:
        """How far into each raw archive the index holds (see `EmbeddedWriter`)."""
        return self._writes.archive_positions()

    def upsert_prepared(
        self, prepared: Sequence[PreparedDocument], result: WriteResult | None = None
    ) -> WriteResult:
        """`upsert` for documents already turned into fields by `prepare` (perhaps in another
        process): the stale-datestamp check, the replace by `id`, the commit."""
        return self._writes.upsert_prepared(prepared, result)

    def delete(
        self, identifiers: Iterable[str], datestamps: Mapping[str, str] | None = None
    ) -> WriteResult:
        """Remove documents by identifier; a stored document newer than its tombstone's
        datestamp stays (counted as skipped_stale)."""
        return self._writes.delete(identifiers, datestamps)
