"""Facet counts of the embedded backend are exact: a value's count is what selecting it finds,
on an index of several segments, whether a query's facets are counted directly or by
subtraction from the whole index's counts (indexer.embedded.facets), and never from a view of
the index older than the search."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from unittest.mock import ANY

import pytest

import indexer.embedded.backend as embedded_backend
import indexer.embedded.facets as embedded_facets
import indexer.embedded.views as embedded_views
from harvester.run.document import build_document
from indexer.embedded.backend import EmbeddedBackend
from indexer.query import parse_query
from indexer.search_model import FacetValue, Filter, SearchRequest
from tests.test_backend_contract import make_record

FACETS = {"subject": 20, "year": 50, "type": 10, "author": 10, "journal": 10, "language": 5}


def calls_of(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[tuple[object, ...]]:
    """The positional arguments of every call of `owner.name` from now on (it still runs)."""
    calls: list[tuple[object, ...]] = []
    original = getattr(owner, name)

    def observed(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, observed)
    return calls


def varied_records(first: int, count: int) -> list[dict[str, object]]:
    """Records with overlapping subjects, authors, years, types and journals; every title has
    `Stadt`, half of them `Verkehr`, a third `Umwelt`."""
    subjects = ["Stadtentwicklung", "Verkehr", "Wohnen", "Umwelt", "Soziale Stadt", "Klima"]
    records = []
    for number in range(first, first + count):
        title = (
            "Stadt" + (" Verkehr" if number % 2 else "") + (" Umwelt" if number % 3 == 0 else "")
        )
        records.append(
            build_document(
                make_record(
                    number,
                    title,
                    [subjects[number % 6], subjects[(number * 7) % 5]],
                    year=2000 + number % 9,
                    authors=(f"Autor{number % 4}, A", f"Autor{number % 7}, B"),
                    type_="Monographie" if number % 5 == 0 else "Zeitschriftenaufsatz",
                    journal=f"Zeitschrift {number % 3}" if number % 5 else "",
                )
            )
        )
    return records


@pytest.fixture
def index(tmp_path: Path) -> EmbeddedBackend:
    """90 varied records in three segments (one commit each)."""
    backend = EmbeddedBackend(tmp_path / "index")
    backend.defer_commits()
    for first in (0, 30, 60):
        backend.upsert(varied_records(first, 30))
        backend.commit()
    backend.close()
    return backend


def searched(
    backend: EmbeddedBackend, query: str, *, subtraction: bool, filters: list[Filter] | None = None
) -> object:
    """The response to `query` on a new view of the index (which has kept no counts yet), its
    facets counted by subtraction or directly. A view counts by subtraction from its second
    broad search on, so for that another broad search comes first."""
    share = 0.0 if subtraction else 2.0
    request = SearchRequest(query=query, filters=filters or [], facets=FACETS, year_histogram=True)
    fresh = EmbeddedBackend(backend.path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedded_backend, "SUBTRACTION_FROM_SHARE", share)
        if subtraction:
            fresh.search(SearchRequest(query=query, facets={"type": 1}))
        response = fresh.search(request)
    return (response.total, response.facets, response.year_histogram)


@pytest.mark.parametrize("query", ["", "Stadt", "Verkehr", "Stadt -Umwelt", "Verkehr Umwelt"])
def test_subtraction_counts_what_direct_counting_counts(
    index: EmbeddedBackend, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = []
    counted_by_subtraction = embedded_facets.aggregate_by_subtraction

    def observed(*args: object, **kwargs: object) -> object:
        used.append(query)
        return counted_by_subtraction(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embedded_facets, "aggregate_by_subtraction", observed)
    direct = searched(index, query, subtraction=False)
    assert not used
    subtracted = searched(index, query, subtraction=True)
    assert used == [query]
    assert subtracted == direct
    total, facets, timeline = direct  # type: ignore[misc]
    assert total > 0 and facets["subject"] and facets["author"] and timeline


@pytest.mark.parametrize(
    "filters",
    [
        [Filter("subject", "Verkehr")],
        [Filter("subject", "Verkehr"), Filter("subject", "Wohnen")],
        [Filter("year", low=2002, high=2006)],
        [Filter("type", "Monographie")],
    ],
    ids=["one subject", "two subjects", "years", "type"],
)
def test_the_filtered_field_of_a_broad_search_is_counted_by_subtraction(
    index: EmbeddedBackend, filters: list[Filter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every filter on one faceted field, that field is counted without its filter
    (multi-select), over the text query alone: by subtraction when that matches most records
    (`Stadt` on the page, ticking a subject), the same counts as directly."""
    subtracted = calls_of(monkeypatch, embedded_facets, "aggregate_by_subtraction")
    direct = searched(index, "Stadt", subtraction=False, filters=filters)
    assert subtracted == []
    by_subtraction = searched(index, "Stadt", subtraction=True, filters=filters)
    assert len(subtracted) == 1
    assert by_subtraction == direct
    total, facets, timeline = direct  # type: ignore[misc]
    assert 0 < total < 90 and sum(v.count for v in facets[filters[0].field]) > total
    assert timeline


def test_the_timeline_of_a_year_filtered_search_is_counted_in_the_year_facet_pass(
    index: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeline and the multi-select year facet have one scope (the query and every
    filter but those on `year`): one aggregation counts both."""
    years = Filter("year", low=2002, high=2004)
    filters = [Filter("subject", "Verkehr"), years]
    aggregations = calls_of(monkeypatch, embedded_facets, "aggregate")
    request = SearchRequest(query="Stadt", filters=filters, facets=FACETS, year_histogram=True)
    response = index.search(request)
    assert len(aggregations) == 3  # shared, subject's own, year's own with the timeline
    unfiltered_years = index.search(
        SearchRequest(query="Stadt", filters=[Filter("subject", "Verkehr")], year_histogram=True)
    )
    assert response.year_histogram == unfiltered_years.year_histogram
    assert len(response.year_histogram) == 9
    # the year facet, counted without its own filter, is the timeline by count
    assert {v.value: v.count for v in response.facets["year"]} == {
        v.value: v.count for v in response.year_histogram
    }


def test_a_shown_count_is_what_selecting_the_value_finds(tmp_path: Path) -> None:
    """One segment holds ten authors twice each and `Zeta` once, the next `Zeta` five times.
    With tantivy's default segment_size (ten times the facet size) the first segment's `Zeta`
    fell below its cut and the facet showed 5 where selecting `Zeta` finds 6."""
    backend = EmbeddedBackend(tmp_path / "index")
    backend.defer_commits()
    first = [(f"Autor{n % 10}, A",) for n in range(20)] + [("Zeta, Z",)]
    for segment in (first, [("Zeta, Z",)] * 5):
        start = backend.count()
        backend.upsert(
            [
                build_document(make_record(start + n, "Stadt", ["Stadt"], authors=authors))
                for n, authors in enumerate(segment)
            ]
        )
        backend.commit()
    backend.close()
    # The filter keeps the direct count (subtraction is for unfiltered broad queries); the
    # empty query is counted directly the first time, by subtraction the second.
    for narrowing in ([Filter("type", "Zeitschriftenaufsatz")], [], []):
        shown = backend.search(SearchRequest(filters=narrowing, facets={"author": 1})).facets
        assert [(v.value, v.count) for v in shown["author"]] == [("Zeta, Z", 6)]
    selected = backend.search(SearchRequest(filters=[Filter("author", "Zeta, Z")]))
    assert selected.total == 6


def test_a_search_after_a_commit_sees_it_even_from_another_backend(
    index: EmbeddedBackend, tmp_path: Path
) -> None:
    """The whole-index counts belong to one view of the index: a commit, here by another
    backend on the same directory (as another process would), makes the next search read a
    new view and count again."""
    before = index.search(SearchRequest(facets={"type": 10}))
    assert before.total == 90
    writer = EmbeddedBackend(tmp_path / "index")
    writer.upsert(
        [build_document(make_record(1000 + n, "Stadt", ["Neu"], type_="Karte")) for n in range(4)]
    )
    writer.close()
    after = index.search(SearchRequest(facets={"type": 10, "subject": 20}))
    assert after.total == 94
    assert ("Karte", 4) in [(v.value, v.count) for v in after.facets["type"]]
    assert ("Neu", 4) in [(v.value, v.count) for v in after.facets["subject"]]
    assert index.count() == 94


def test_a_field_with_too_many_values_is_counted_directly(
    index: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = searched(index, "", subtraction=False)
    monkeypatch.setattr(embedded_views, "SUBTRACTION_MAX_VALUES", 3)  # fewer than the authors
    fresh = EmbeddedBackend(index.path)  # a new view, whose whole counts keep to 3 values
    assert searched(fresh, "", subtraction=True) == direct
    whole = fresh._views.current().whole_counts(FACETS, with_year_histogram=False)
    # 2 types, 1 language, 3 journals; 6 subjects, 9 years and 7 authors are too many
    assert set(whole) == {"type", "language", "journal"}


def test_a_one_shot_search_does_not_count_everything(
    index: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting all records costs as much as counting a broad query directly: the first broad
    search of a view (all a one-shot `ernte search` makes) counts directly, without even
    counting its matches first."""
    counted: list[list[str]] = []
    count_everything = embedded_views.IndexView._count_everything

    def observed(view: embedded_views.IndexView, names: list[str]) -> object:
        counted.append(names)
        return count_everything(view, names)

    monkeypatch.setattr(embedded_views.IndexView, "_count_everything", observed)
    matches_counted = calls_of(monkeypatch, embedded_backend, "count_with_year")
    first = index.search(SearchRequest(query="Stadt", facets={"type": 10}))
    assert counted == [] and matches_counted == []
    # Another broad search (the same one again would find its counts kept by the view).
    second = index.search(SearchRequest(query="Stadt", facets={"type": 5}))
    assert second == dataclasses.replace(first, took_ms=ANY)
    assert counted == [["type"]] and len(matches_counted) == 1


def test_a_view_counts_the_matches_of_a_broad_looking_query_once(
    index: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether a broad-looking query really is broad is a count of its matches, which cannot
    change on one view: counted once per query, not again for every search with it (as
    `ernte search` and bench_index search, each with other facets)."""
    matches_counted = calls_of(monkeypatch, embedded_backend, "count_with_year")
    for size in (1, 2, 3, 4):  # other facet sizes: no search finds its counts kept
        index.search(SearchRequest(query="Stadt", facets={"type": size}))
    assert len(matches_counted) == 1  # the first broad-looking search counts nothing
    index.search(SearchRequest(query="Stadt Verkehr", facets={"type": 1}))
    index.search(SearchRequest(query="Stadt Verkehr", facets={"type": 2}))
    assert len(matches_counted) == 2
    assert index._views.current().matched  # the counts belong to the view


def test_the_next_page_of_a_search_counts_nothing_again(
    index: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A view keeps each search's facet counts and timeline: the next page, or the same
    filters in another order, shows them without counting (the hits are searched anew)."""
    counted = calls_of(monkeypatch, embedded_backend, "facet_counts")
    verkehr, year = Filter("subject", "Verkehr"), Filter("year", low=2002, high=2006)
    request = SearchRequest(
        query="Stadt", filters=[verkehr, year], facets=FACETS, year_histogram=True, limit=5
    )
    first = index.search(request)
    assert len(counted) == 1 and first.total > 5
    next_page = dataclasses.replace(request, filters=[year, verkehr], offset=5)
    second = index.search(next_page)
    assert len(counted) == 1
    assert (second.total, second.facets, second.year_histogram) == (
        first.total,
        first.facets,
        first.year_histogram,
    )
    assert {h.id for h in second.hits}.isdisjoint(h.id for h in first.hits)
    index.search(dataclasses.replace(request, facets={"subject": 3}))  # other counts
    assert len(counted) == 2
    keeps_none = EmbeddedBackend(index.path, kept_searches=0)
    assert keeps_none.search(next_page) == dataclasses.replace(second, took_ms=ANY)
    keeps_none.search(next_page)
    assert len(counted) == 4


def test_the_first_broad_search_of_a_view_is_counted_again_exactly(
    index: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first broad search of a view is counted directly (a one-shot `ernte search` pays for
    nothing more), and a segment's direct counts can miss values beyond SEGMENT_VALUES: they
    are not kept, so the same search again (the landing page, after each commit) is counted
    exactly by subtraction, and kept from then on."""
    subtracted = calls_of(monkeypatch, embedded_facets, "aggregate_by_subtraction")
    landing = SearchRequest(facets=FACETS, year_histogram=True)
    first = index.search(landing)
    assert subtracted == [] and len(index._views.current().counts) == 0
    again = index.search(landing)
    assert len(subtracted) == 1 and len(index._views.current().counts) == 1
    assert (again.total, again.facets, again.year_histogram) == (
        first.total,
        first.facets,
        first.year_histogram,
    )
    index.search(landing)
    assert len(subtracted) == 1


def test_a_search_without_facets_keeps_nothing_and_kept_counts_are_copies(
    index: EmbeddedBackend,
) -> None:
    index.search(SearchRequest(query="Verkehr", limit=0))  # a count, as the search page makes
    assert len(index._views.current().counts) == 0
    request = SearchRequest(query="Verkehr", facets={"type": 10}, year_histogram=True)
    shown = index.search(request)
    shown.facets["type"].clear()  # a caller's own use of its response
    shown.year_histogram.clear()
    again = index.search(request)
    assert again.facets["type"] and again.year_histogram


def test_kept_counts_end_with_the_view_they_were_counted_on(
    index: EmbeddedBackend, tmp_path: Path
) -> None:
    """The same search after a commit (here by another backend, as another process would
    write) counts the new records."""
    request = SearchRequest(query="Stadt", facets={"type": 10}, year_histogram=True)
    before = index.search(request)
    writer = EmbeddedBackend(tmp_path / "index")
    writer.upsert(
        [build_document(make_record(2000 + n, "Stadt", ["Neu"], type_="Karte")) for n in range(3)]
    )
    writer.close()
    after = index.search(request)
    assert after.total == before.total + 3
    assert ("Karte", 3) in [(v.value, v.count) for v in after.facets["type"]]
    assert ("Karte", 3) not in [(v.value, v.count) for v in before.facets["type"]]


def test_a_view_keeps_a_bounded_number_of_facet_values() -> None:
    """The API allows 1,000 values of each facet: searches are kept by their values too."""
    value = FacetValue("x", 1)
    kept = embedded_views.KeptCounts(limit=10, values=5)
    kept.keep("a", ({"subject": [value] * 3}, []))
    kept.keep("b", ({"subject": [value] * 2}, [value]))  # 3 + 3 values: "a" goes
    assert kept.get("a") is None and kept.get("b") is not None
    kept.keep("c", ({"subject": [value] * 6}, []))  # larger than all that is kept
    assert kept.get("c") is None and kept.get("b") is not None
    with pytest.raises(ValueError, match="kept_searches must be 0 or more"):
        EmbeddedBackend(Path("unused"), kept_searches=-1)


def test_a_view_keeps_the_counts_of_a_bounded_number_of_searches() -> None:
    kept = embedded_views.KeptCounts(limit=3)
    for number in range(3):
        kept.keep(number, ({}, []))
    assert kept.get(0) is not None  # used again: 1 is now the least recently used
    kept.keep(3, ({}, []))
    assert len(kept) == 3
    assert [kept.get(n) is not None for n in range(4)] == [True, False, True, True]


def test_share_estimate_is_one_for_everything_and_zero_where_not_simple(
    index: EmbeddedBackend,
) -> None:
    searcher = index._views.current().searcher
    estimate = index.queries.matched_share_estimate
    assert estimate(parse_query(""), searcher) == 1.0
    assert estimate(parse_query("Stadt"), searcher) == pytest.approx(1.0)
    assert 0.0 < estimate(parse_query("Verkehr"), searcher) < 1.0
    for not_simple in ('"Stadt Verkehr"', "Stadt -Verkehr", "title:Stadt"):
        assert estimate(parse_query(not_simple), searcher) == 0.0


def test_a_filter_finds_a_spelling_committed_after_it_was_first_asked(tmp_path: Path) -> None:
    """A view remembers the stored spellings of a filter value; a commit makes a new view,
    so a spelling that arrives later is found, as the total shows."""
    backend = EmbeddedBackend(tmp_path / "index")
    backend.upsert([build_document(make_record(1, "Stadt", ["Soziale Stadt"]))])
    wanted = SearchRequest(filters=[Filter("subject", "soziale stadt")])
    assert backend.search(wanted).total == 1
    assert backend.search(wanted).total == 1  # from the view's spellings
    backend.upsert([build_document(make_record(2, "Stadt", ["SOZIALE STADT"]))])
    assert backend.search(wanted).total == 2
    backend.close()


def test_searches_go_on_while_a_rebuild_swaps_the_index_directory(
    index: EmbeddedBackend, tmp_path: Path
) -> None:
    """`ernte index rebuild` renames the old directory away and the new one in: in between no
    index directory exists, and a search keeps the view it had; after the swap it reads the
    new index."""
    assert index.search(SearchRequest(facets={"type": 10})).total == 90
    rebuilt = EmbeddedBackend(tmp_path / "rebuilt")
    rebuilt.upsert(varied_records(0, 12))
    rebuilt.close()
    index.path.rename(tmp_path / "old")
    assert index.search(SearchRequest(facets={"type": 10})).total == 90
    (tmp_path / "rebuilt").rename(index.path)
    assert index.search(SearchRequest(facets={"type": 10})).total == 12


def test_deleted_records_do_not_make_a_query_look_like_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Term statistics count replaced records until segments merge: here `Stadt` is in 20
    records' terms but in 10 live ones, so its estimate says 100 %. The backend counts the
    matches before it counts by subtraction, and 50 % is not enough."""
    backend = EmbeddedBackend(tmp_path / "index")
    backend.upsert([build_document(make_record(n, "Stadt", ["Wohnen"])) for n in range(20)])
    later = "2023-01-01T00:00:00Z"
    backend.upsert(
        [build_document(make_record(n, "Land", ["Wohnen"], datestamp=later)) for n in range(10)]
    )
    backend.close()
    searcher = backend._views.current().searcher
    assert backend.queries.matched_share_estimate(parse_query("Stadt"), searcher) == 1.0
    used: list[str] = []
    monkeypatch.setattr(
        embedded_facets, "aggregate_by_subtraction", lambda *a, **k: used.append("yes")
    )
    counting_afresh = EmbeddedBackend(tmp_path / "index", kept_searches=0)
    for _ in range(3):
        response = counting_afresh.search(SearchRequest(query="Stadt", facets={"subject": 5}))
        assert response.total == 10
        assert [(v.value, v.count) for v in response.facets["subject"]] == [("Wohnen", 10)]
    assert used == []


def test_a_view_keeps_a_bounded_number_of_filter_spellings() -> None:
    kept = embedded_views._BoundedDict(3)
    for number in range(7):
        kept[("subject", str(number))] = [str(number)]
        assert 1 <= len(kept) <= 3
    assert kept[("subject", "6")] == ["6"]


def test_a_limit_beyond_the_records_returns_them_all(index: EmbeddedBackend) -> None:
    """tantivy reserves room for `limit` hits before searching: 2**31 asked for 34 GB and
    aborted the process (the command line caps --limit; a library caller does not)."""
    response = index.search(SearchRequest(query="Stadt", limit=2**31))
    assert response.total == 90 and len(response.hits) == 90


@pytest.mark.parametrize(
    "filters",
    [
        [],
        [Filter("subject", "Verkehr")],
        [Filter("type", "Monographie"), Filter("subject", "Umwelt")],
    ],
)
def test_passes_run_beside_each_other_count_what_one_thread_counts(
    index: EmbeddedBackend, filters: list[Filter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search alone in its process runs its hits pass and its filtered facet fields' passes
    on the spare threads, and splits its shared pass in two (`subject` beside the others,
    SPLIT_FIELDS); the counts are those of one thread."""
    threads: list[str] = []
    aggregate = embedded_facets.aggregate

    def observed(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return aggregate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embedded_facets, "aggregate", observed)
    request = SearchRequest(query="Stadt", filters=filters, facets=FACETS, year_histogram=True)
    with embedded_backend._spare_threads.search():  # another search runs: no spare threads
        one_thread = EmbeddedBackend(index.path).search(request)
    assert set(threads) == {threading.current_thread().name}
    passes_in_one_thread = len(threads)
    threads.clear()
    beside = EmbeddedBackend(index.path).search(request)
    # The shared pass in two where it counts both subject and author (no subject filter).
    split = all(f.field != "subject" for f in filters)
    assert len(threads) == passes_in_one_thread + split
    assert threading.current_thread().name in threads
    assert sum(name.startswith("ernte-search") for name in threads) == len(threads) - 1
    assert (beside.total, beside.facets, beside.year_histogram) == (
        one_thread.total,
        one_thread.facets,
        one_thread.year_histogram,
    )
    assert beside.total > 0 and beside.facets["subject"] and beside.year_histogram
