"""The view of the index that searches read, kept while the index is unchanged, and the facet
counts of every record, which belong to that view.

A tantivy Searcher is a fixed view of the index as last committed, so whatever is computed
on one stays true for it. `IndexViews` hands every search the current `IndexView` and takes
a new one only when the index changed. tantivy replaces the index's `meta.json` atomically
on every commit and merge (the opstamp in it only grows), so unchanged bytes mean an
unchanged index. A search that starts after a commit, in this process or another, sees that
commit.

What a view caches: the facet counts over all records (`whole_counts`), from which the facets
of a broad query are counted by subtraction (`indexer.embedded.facets`), the stored
spellings of the filter values asked for so far (`spellings`), how many records the
broad-looking queries match (`matched`), and the facet counts and
timeline of the searches run on it (`counts`, as Elasticsearch's shard request cache keeps
aggregations until the next refresh): the next page of a search, the same search again (a
reload, the back button, the landing page every visitor opens) count nothing again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import tantivy

from indexer.embedded.facets import YEAR_HISTOGRAM_AGG, aggregate
from indexer.search_model import FacetValue, SearchRequest
from indexer.word_lists import lists_generation

SUBTRACTION_MAX_VALUES = 10_000
"""A facet field with more distinct values than this in the whole index is never counted by
subtraction: every one of its values would travel from tantivy to Python on each search. This
also keeps the buckets of one aggregation far below tantivy's limit of 65,000."""

SPELLINGS_KEPT = 10_000
"""Filter values whose stored spellings a view keeps (the values come from requests)."""

MATCHED_KEPT = 10_000
"""Text queries whose match counts a view keeps (a number each)."""

COUNTS_KEPT = 1_000
"""Searches whose facet counts and timeline a view keeps, the least recently used dropped
first: a few kB each (the search page asks for six facets of ten values and a timeline)."""

VALUES_KEPT = 200_000
"""Facet and timeline values a view keeps in all (about 150 bytes each): the API allows
1,000 values of each facet, so searches with large facets are kept fewer."""

Buckets = list[dict[str, Any]]


_K = TypeVar("_K")
_V = TypeVar("_V")


class _BoundedDict(dict[_K, _V]):
    """A dict that empties itself when it would exceed `limit` entries."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def __setitem__(self, key: _K, value: _V) -> None:
        if len(self) >= self._limit and key not in self:
            self.clear()
        super().__setitem__(key, value)


Counted = tuple[dict[str, list[FacetValue]], list[FacetValue]]
"""What a search counted: facet name -> its values, and the year histogram."""


class KeptCounts:
    """Facet counts and timelines by search (`counts_key`), least recently used dropped first,
    at most `limit` searches and `values` values in all; safe to share between the threads of
    a server."""

    def __init__(self, limit: int = COUNTS_KEPT, values: int = VALUES_KEPT) -> None:
        self._limit = limit
        self._values_limit = values
        self._values = 0
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, tuple[Counted, int]] = OrderedDict()

    def get(self, key: Hashable) -> Counted | None:
        with self._lock:
            found = self._kept.get(key)
            if found is None:
                return None
            self._kept.move_to_end(key)
            return found[0]

    def keep(self, key: Hashable, counted: Counted) -> None:
        size = sum(map(len, counted[0].values())) + len(counted[1])
        with self._lock:
            if key in self._kept:
                self._values -= self._kept.pop(key)[1]
            if size > self._values_limit or self._limit == 0:
                return
            self._kept[key] = (counted, size)
            self._values += size
            while len(self._kept) > self._limit or self._values > self._values_limit:
                self._values -= self._kept.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._kept)


def counts_key(request: SearchRequest) -> Hashable:
    """What decides a search's facet counts and timeline on one view of the index: the
    query, the filters (a set: their order does not matter), the facets asked for, whether
    the timeline is, and the word lists the query is analyzed with (a process may choose
    others while it runs). Not the page, the sort or the highlights."""
    filters = frozenset((f.field, f.value, f.low, f.high) for f in request.filters)
    facets = tuple(sorted(request.facets.items()))
    return (request.query, filters, facets, request.year_histogram, lists_generation())


class IndexView:
    """One committed state of the index: its searcher and what is known about all of it."""

    def __init__(
        self, searcher: tantivy.Searcher, meta: bytes, kept_searches: int = COUNTS_KEPT
    ) -> None:
        self.searcher = searcher
        self.meta = meta
        self._lock = threading.Lock()
        self._whole: dict[str, Buckets | None] = {}
        self._broad_searches = 0
        self.spellings: dict[tuple[str, str], list[str]] = _BoundedDict(SPELLINGS_KEPT)
        """(facet, folded value) -> the field's stored spellings of it (see
        `QueryTranslator.filters_by_field`): a filter ticked again costs no lookup."""
        self.counts = KeptCounts(kept_searches)
        """`counts_key` of a search -> its facet counts and timeline on this view."""
        self.matched: dict[Hashable, int] = _BoundedDict(MATCHED_KEPT)
        """A text query (`EmbeddedBackend._breadth`'s key) -> the records with a year it
        matches on this view: whether a broad-looking query is broad is counted once."""

    def broad_search_again(self) -> bool:
        """Count one more search that looks broad (`EmbeddedBackend._breadth`); whether
        there was one before.

        Counting everything costs about as much as counting one broad query directly, so the
        view counts everything, and a broad-looking query's matches, only from its second such
        search on: a one-shot `ernte search Stadt` pays for neither, a server pays once per
        committed state."""
        with self._lock:
            self._broad_searches += 1
            return self._broad_searches > 1

    def whole_counts(
        self, names: Iterable[str], *, with_year_histogram: bool
    ) -> dict[str, Buckets]:
        """facet name -> every value of the field with its number of records (and the year
        histogram's buckets under YEAR_HISTOGRAM_AGG when asked), for the names whose field
        has at most SUBTRACTION_MAX_VALUES values. Counted once per view."""
        wanted = list(names) + ([YEAR_HISTOGRAM_AGG] if with_year_histogram else [])
        with self._lock:
            missing = [name for name in wanted if name not in self._whole]
            if missing:
                self._whole.update(self._count_everything(missing))
            return {name: b for name in wanted if (b := self._whole[name]) is not None}

    def _count_everything(self, names: list[str]) -> dict[str, Buckets | None]:
        facets = [name for name in names if name != YEAR_HISTOGRAM_AGG]
        found = aggregate(
            self.searcher,
            tantivy.Query.all_query(),
            dict.fromkeys(facets, SUBTRACTION_MAX_VALUES + 1),
            with_year_histogram=YEAR_HISTOGRAM_AGG in names,
        )
        return {
            name: found[name] if len(found[name]) <= SUBTRACTION_MAX_VALUES else None
            for name in names
        }


class IndexViews:
    """The current `IndexView` of one index directory (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        open_index: Callable[[], tantivy.Index],
        before_reload: Callable[[], None] = lambda: None,
        kept_searches: int = COUNTS_KEPT,
    ) -> None:
        self._kept_searches = kept_searches
        self._meta_path = Path(path) / "meta.json"
        self._open = open_index
        self._before_reload = before_reload
        self._lock = threading.Lock()
        self._view: IndexView | None = None

    def current(self) -> IndexView:
        """The view of the index as last committed when this call started (or later)."""
        index = self._open()  # creates meta.json for a new index
        with self._lock:  # one reader at a time, so no view is replaced by an older one
            try:
                meta = self._meta_path.read_bytes()
            except FileNotFoundError:
                # Where `ernte index rebuild` cannot exchange directories in one step it swaps
                # with two renames; for a moment there is none. Searches keep their view.
                meta = None
            if self._view is None or (meta is not None and self._view.meta != meta):
                # Read after `meta`: at least the state `meta` describes, perhaps newer, which
                # the next call notices (its meta.json differs) and reads again.
                self._before_reload()
                index.reload()
                self._view = IndexView(index.searcher(), meta or b"", self._kept_searches)
            return self._view
