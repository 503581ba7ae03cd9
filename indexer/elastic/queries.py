"""SearchRequest -> Elasticsearch DSL `Search`, and the ES response -> SearchResponse.

Semantics are those of the embedded backend (`indexer.embedded`; the shared contract is
tests/test_backend_contract.py), field for field and boost for boost:

* Query: phrases and `field:` clauses of the parsed user query are required (`must`),
  negated ones exclude (`must_not`); of the bare words, as many as MIN_SHOULD_MATCH says
  (a `bool` of `should` clauses with `minimum_should_match`, the integer computed by
  `search_model.required_word_count`, so both backends agree exactly). A word or phrase is a
  `multi_match` of type `phrase` (one word: a term; a hyphenated word: its tokens adjacent,
  as the embedded backend does) over the default fields, or over the fields of `field:`
  (USER_TEXT_FIELDS), scores summed over the fields (`tie_breaker` 1, as the embedded
  backend's boolean `should`). The fields include the `.exact` subfields and, for words,
  the `*_parts` fields the pipeline filled with compound parts (`Planung` finds
  `Stadtentwicklungsplanung`). A word that is a compound is also split in Python, with the
  index's decompounder (`indexer.query_parts`): a `bool` `should` of the whole-word
  `multi_match` and a `bool` of its parts over the clause's `*_parts` fields (as many parts as
  COMPOUND_PARTS_MIN_SHOULD_MATCH says, boost COMPOUND_PARTS_BOOST / number of parts), so
  `Stadtentwicklung` finds `Stadtentwicklungsplanung` here as in the embedded backend. Subject
  heading fields are scored without length normalization by the mapping's `heading_set`
  similarity (`indexer.elastic.mapping`). A word the German chain drops (a stop word) and a clause
  without any token are dropped, as in the embedded backend. `field:value` on exact fields
  compares case-insensitively (`type:monographie`). One optional `should` clause (all free
  words as a phrase with slop PROXIMITY_SLOP in title/subject/abstract, boost
  PROXIMITY_BOOST) lifts records where the words stand together; it never changes which
  records match.
* Filters: ANDed across fields, ORed within one field; every facet field but `year` compares
  case- and umlaut-folded (its `.folded` subfield, `indexer.filters`); a backwards year range
  is refused with the query syntax's error.
* Facets: `terms` on flat keyword/numeric fields (`.raw` keeps the labels' casing),
  multi-select (see `SearchResponse`): filters on faceted fields go to `post_filter`, and a
  facet is a `filter` aggregation holding the filters of the *other* faceted fields, so a
  selected subject does not hide its siblings' counts. Filters on fields not faceted stay in
  the query and restrict everything.
* Year histogram (the timeline, on request): a `histogram` on `year` (interval 1,
  min_doc_count 1), multi-select like a facet: `year` filters then go to `post_filter`, and
  the histogram sits in a `filter` aggregation holding the other multi-select filters.
* Sort: relevance or year, always ending in `id`, so a `search_after` cursor (the last
  hit's sort values) pages stably beyond the 10,000 hits from/size can reach. One hit more
  than asked for is fetched to know whether a next page exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from elasticsearch import dsl

from indexer.analysis import analyze, tokenize
from indexer.filters import year_bounds
from indexer.identifiers import stored_form
from indexer.query import (
    EXACT_FIELDS,
    SEARCH_FIELDS,
    Clause,
    ParsedQuery,
    Phrase,
    Term,
    parse_query,
    parse_year_value,
)
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
    SORT_ORDERS,
    FacetValue,
    Filter,
    Hit,
    QuerySyntaxError,
    SearchRequest,
    SearchResponse,
    required_word_count,
)

MAX_RESULT_WINDOW = 10_000
"""Elasticsearch's default `index.max_result_window`: from + size may not exceed it."""

USER_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title^4", "subtitle^4", "title.exact^1.5", "subtitle.exact^1.5", "title_parts^1.5"),
    "subject": ("subject^2.5", "subject.exact", "subject_parts"),
    "abstract": ("abstract", "abstract_parts^0.4"),
    "author": ("author^2", "editor^2"),
    "journal": ("journal",),
    "publisher": ("publisher^0.5",),
    "place": ("place^0.5",),
}
"""`field:word` on a text field -> ES fields with the embedded backend's boosts."""

DEFAULT_TEXT_FIELDS: tuple[str, ...] = (
    *USER_TEXT_FIELDS["title"],
    *USER_TEXT_FIELDS["subject"],
    *USER_TEXT_FIELDS["author"],
    *USER_TEXT_FIELDS["journal"],
    *USER_TEXT_FIELDS["abstract"],
)
"""Fields a bare word searches (one of them must match)."""

FIELD_TIE_BREAKER = 1.0
"""`multi_match` sums the field scores (the embedded backend's `should` over fields)."""

MIN_SHOULD_MATCH = DEFAULT_MIN_SHOULD_MATCH
"""How many bare words must match (Elasticsearch syntax, evaluated in Python)."""

PROXIMITY_FIELDS: tuple[str, ...] = ("title^3", "subtitle^3", "subject^2", "abstract")
"""The embedded backend's PROXIMITY_FIELDS (its `title` holds title and subtitle)."""
PROXIMITY_BOOST = DEFAULT_PROXIMITY_BOOST
PROXIMITY_SLOP = DEFAULT_PROXIMITY_SLOP

FACET_AGG_FIELDS: dict[str, str] = {
    "subject": "subject.raw",
    "type": "type",
    "normalized_type": "normalized_type",
    "year": "year",
    "author": "author.raw",
    "language": "language",
    "source": "source",
    "set": "set",
    "journal": "journal.raw",
}
"""Facet name (FACET_FIELDS) -> keyword/numeric field its values are counted on."""

FILTER_FIELDS: dict[str, str] = {
    name: "year" if name == "year" else f"{name}.folded" for name in FACET_AGG_FIELDS
}
"""Facet name -> field a filter compares against: the case- and umlaut-folded `.folded`
keyword (the `folded` normalizer also folds the filter value), `year` as it is."""

HIGHLIGHT_FRAGMENT_CHARS = 160
HIGHLIGHT_FRAGMENTS = 3
HIT_SOURCE_FIELDS: tuple[str, ...] = ("id", "title", "year", "author", "type", "subject", "source")
HIGHLIGHT_TAGS = ("<mark>", "</mark>")
FACET_AGG_PREFIX = "facet_"
YEAR_HISTOGRAM_AGG = "year_histogram"


class DeepPagingError(ValueError):
    """offset + limit beyond the 10,000-hit window: page on with the `search_after` cursor."""


def build_search(request: SearchRequest, index: str) -> dsl.Search:
    """The complete search for `request` against `index` (an alias or index name).

    Raises QuerySyntaxError for a bad query, filter or facet name, DeepPagingError for an
    offset beyond the window without a cursor.
    """
    filters = filters_by_field(request.filters)
    for name in request.facets:
        _check_facet(name)
    # Fields counted without their own filters: the facets, and `year` for the histogram.
    # Their filters go to post_filter; the others restrict the query and so everything.
    multi_select = set(request.facets) | ({"year"} if request.year_histogram else set())
    everywhere = [q for field, q in filters.items() if field not in multi_select]
    post_filtered = {field: q for field, q in filters.items() if field in multi_select}
    search = dsl.Search(index=index).query(
        _with_filters(text_query(parse_query(request.query)), everywhere)
    )
    if post_filtered:
        search = search.post_filter(dsl.Q("bool", filter=list(post_filtered.values())))
    for name, size in request.facets.items():
        others = [q for field, q in post_filtered.items() if field != name]
        search.aggs.bucket(_facet_agg_name(name), facet_aggregation(name, size, others))
    if request.year_histogram:
        others = [q for field, q in post_filtered.items() if field != "year"]
        search.aggs.bucket(YEAR_HISTOGRAM_AGG, year_histogram_aggregation(others))
    search = search.sort(*sort_keys(request.sort))
    search = search.source(includes=list(HIT_SOURCE_FIELDS))
    search = search.extra(track_total_hits=True, track_scores=True)
    if request.highlight:
        search = add_highlight(search)
    return paginate(search, request)


def text_query(parsed: ParsedQuery) -> dsl.Query:
    """The scoring query for the user's words (no filters)."""
    must: list[dsl.Query] = []
    words: list[dsl.Query] = []
    for clause in parsed.distinct_positive:
        query = clause_query(clause)
        if query is not None:
            (words if _is_bare_word(clause) else must).append(query)
    required = required_word_count(MIN_SHOULD_MATCH, len(words))
    if required >= len(words):
        must.extend(words)
    else:
        must.append(dsl.Q("bool", should=words, minimum_should_match=required))
    must_not = [q for q in map(clause_query, parsed.negative) if q is not None]
    if not must and not must_not:
        return dsl.Q("match_all")
    parts: dict[str, list[dsl.Query]] = {"must": must or [dsl.Q("match_all")]}
    if must_not:
        parts["must_not"] = must_not
    proximity = proximity_query(parsed)
    if proximity is not None:
        parts["should"] = [proximity]
    return dsl.Q("bool", **parts)


def clause_query(clause: Clause) -> dsl.Query | None:
    """One word or phrase as a query; None when it has no token at all, or only stop words
    (it is dropped)."""
    text = clause.text if isinstance(clause, Term) else " ".join(clause.words)
    if clause.field is not None and clause.field in EXACT_FIELDS:
        return exact_field_query(clause.field, stored_form(clause.field, text))
    if not tokenize(text):
        return None
    if clause.field != "author" and not analyze(text):
        return None  # stop words only: dropped, not required in the unstemmed fields
    fields = USER_TEXT_FIELDS[clause.field] if clause.field else DEFAULT_TEXT_FIELDS
    if isinstance(clause, Phrase):
        fields = tuple(f for f in fields if not _is_parts_field(f))
    whole = dsl.Q(
        "multi_match",
        query=text,
        type="phrase",
        fields=list(fields),
        tie_breaker=FIELD_TIE_BREAKER,
        zero_terms_query="none",
    )
    parts = compound_parts_query(clause, fields)
    if parts is None:
        return whole
    return dsl.Q("bool", should=[whole, parts], minimum_should_match=1)


def compound_parts_query(clause: Clause, fields: Sequence[str]) -> dsl.Query | None:
    """The parts clause of a compound word (`indexer.query_parts`), as the embedded backend
    builds it: each part a `multi_match` over the `*_parts` fields among `fields` (scores
    summed), COMPOUND_PARTS_MIN_SHOULD_MATCH of them required, boost COMPOUND_PARTS_BOOST /
    number of parts. None for a phrase, a word that is no compound, or no *_parts field."""
    if not isinstance(clause, Term) or COMPOUND_PARTS_BOOST <= 0:
        return None
    parts_fields = [f for f in fields if _is_parts_field(f)]
    parts = compound_part_terms(clause.text) if parts_fields else ()
    if not parts:
        return None
    per_part = [
        dsl.Q(
            "multi_match",
            query=part,
            type="phrase",
            fields=parts_fields,
            tie_breaker=FIELD_TIE_BREAKER,
            zero_terms_query="none",
        )
        for part, _term in parts
    ]
    required = required_word_count(COMPOUND_PARTS_MIN_SHOULD_MATCH, len(per_part))
    boost = COMPOUND_PARTS_BOOST / len(per_part)
    if required >= len(per_part):
        return dsl.Q("bool", must=per_part, boost=boost)
    return dsl.Q("bool", should=per_part, minimum_should_match=required, boost=boost)


def exact_field_query(user_field: str, value: str) -> dsl.Query:
    """`field:value` on keyword fields (case-insensitive; `id` verbatim) or `year:` ranges."""
    if user_field == "year":
        low, high = parse_year_value(value)
        return year_range_query(low, high)
    if user_field == "id":
        return dsl.Q("term", id=value)
    queries = [
        dsl.Q("term", **{field: {"value": value, "case_insensitive": True}})
        for field in SEARCH_FIELDS[user_field]
    ]
    return _any_of(queries)


def year_range_query(low: int | None, high: int | None) -> dsl.Query:
    bounds = {name: value for name, value in (("gte", low), ("lte", high)) if value is not None}
    return dsl.Q("range", year=bounds)


def proximity_query(parsed: ParsedQuery) -> dsl.Query | None:
    """An optional sloppy phrase of all free words (no `field:`): ranks records where they
    stand together. None for fewer than two German-chain terms, as in the embedded backend."""
    if PROXIMITY_BOOST <= 0:
        return None
    text = " ".join(
        clause.text if isinstance(clause, Term) else " ".join(clause.words)
        for clause in parsed.positive
        if clause.field is None
    )
    if len(analyze(text)) < 2:
        return None
    return dsl.Q(
        "multi_match",
        query=text,
        type="phrase",
        slop=PROXIMITY_SLOP,
        fields=list(PROXIMITY_FIELDS),
        tie_breaker=FIELD_TIE_BREAKER,
        boost=PROXIMITY_BOOST,
    )


def filters_by_field(filters: Sequence[Filter]) -> dict[str, dsl.Query]:
    """One query per filtered facet field: its values ORed (fields are ANDed by the caller)."""
    grouped: dict[str, list[dsl.Query]] = {}
    for item in filters:
        if item.field not in FILTER_FIELDS:
            raise QuerySyntaxError(
                f"cannot filter on '{item.field}' (facet fields: {', '.join(FACET_FIELDS)})"
            )
        grouped.setdefault(item.field, []).append(filter_value_query(item))
    return {field: _any_of(queries) for field, queries in grouped.items()}


def filter_value_query(item: Filter) -> dsl.Query:
    """One filter value as a query: a term, or for `year` a single year or a range."""
    if item.field == "year":
        return year_range_query(*year_bounds(item))
    return dsl.Q("term", **{FILTER_FIELDS[item.field]: item.value})


def facet_aggregation(name: str, size: int, other_filters: Sequence[dsl.Query] = ()) -> dsl.Agg:
    """Top `size` values of one facet (at least one).

    `other_filters` are the post_filter's filters on the *other* faceted fields: the counts
    are wrapped in a `filter` aggregation holding them (multi-select faceting).
    """
    _check_facet(name)
    terms = dsl.A("terms", field=FACET_AGG_FIELDS[name], size=max(1, size))
    return _within(terms, other_filters)


def year_histogram_aggregation(other_filters: Sequence[dsl.Query] = ()) -> dsl.Agg:
    """Every year with a record, ascending (`histogram`, interval 1, min_doc_count 1: no
    size to guess, no empty years); `other_filters` as in `facet_aggregation`, those on
    every multi-select field except `year`."""
    histogram = dsl.A("histogram", field=FACET_AGG_FIELDS["year"], interval=1, min_doc_count=1)
    return _within(histogram, other_filters)


def _within(aggregation: dsl.Agg, filters: Sequence[dsl.Query]) -> dsl.Agg:
    """`aggregation` as the `values` sub-aggregation of a `filter` aggregation holding
    `filters` (or unwrapped when there are none); `_buckets` reads either shape."""
    if not filters:
        return aggregation
    wrapper = dsl.A("filter", filter=dsl.Q("bool", filter=list(filters)))
    wrapper.bucket("values", aggregation)
    return wrapper


def _check_facet(name: str) -> None:
    if name not in FACET_AGG_FIELDS:
        raise QuerySyntaxError(
            f"cannot facet on {name!r}: facet fields are {', '.join(FACET_FIELDS)}"
        )


def sort_keys(order: str) -> list[dict[str, Any]]:
    """Sort keys ending in the unique `id`, so every hit has a stable cursor position."""
    tie_breaker = {"id": {"order": "asc"}}
    score = {"_score": {"order": "desc"}}
    if order == "relevance":
        return [score, tie_breaker]
    if order in ("year_desc", "year_asc"):
        direction = "desc" if order == "year_desc" else "asc"
        return [{"year": {"order": direction, "missing": "_last"}}, score, tie_breaker]
    raise QuerySyntaxError(f"unknown sort '{order}' ({', '.join(SORT_ORDERS)})")


def add_highlight(search: dsl.Search) -> dsl.Search:
    """`<mark>` snippets, HTML-escaped like the embedded backend's: the whole title, up to
    three abstract fragments."""
    return (
        search.highlight_options(
            pre_tags=[HIGHLIGHT_TAGS[0]],
            post_tags=[HIGHLIGHT_TAGS[1]],
            encoder="html",
            require_field_match=False,
        )
        .highlight("title", number_of_fragments=0)
        .highlight("abstract", fragment_size=200, number_of_fragments=3)
    )


def paginate(search: dsl.Search, request: SearchRequest) -> dsl.Search:
    """from/size within the window, or a search_after cursor (then the offset is ignored).

    One hit more than the limit is fetched: its presence says whether a next page exists.
    """
    if request.search_after:
        check_cursor(request.search_after, request.sort)
        return search.extra(search_after=list(request.search_after))[0 : request.limit + 1]
    end = request.offset + request.limit
    if end > MAX_RESULT_WINDOW:
        raise DeepPagingError(
            f"offset {request.offset} + limit {request.limit} goes beyond the first "
            f"{MAX_RESULT_WINDOW} hits; page on with the next_search_after cursor instead"
        )
    return search[request.offset : end + 1]


_CURSOR_KINDS: dict[str, tuple[type, ...]] = {"year": (int,), "_score": (int, float), "id": (str,)}
"""What each sort key's value in a cursor is (`sort_keys`): a year (a long), a score, an id."""


def check_cursor(cursor: Sequence[object], order: str) -> None:
    """QuerySyntaxError unless `cursor` has one value of the right kind per sort key of
    `order`, as `next_search_after` hands them out: Elasticsearch refuses any other cursor
    with a 400 of its own, which reached the user as a failure of the server."""
    names = [next(iter(key)) for key in sort_keys(order)]
    if len(cursor) != len(names) or any(
        isinstance(value, bool) or not isinstance(value, _CURSOR_KINDS[name])
        for value, name in zip(cursor, names, strict=False)
    ):
        raise QuerySyntaxError(
            f"search_after {list(cursor)!r}: a search sorted by {order} pages with"
            f" {len(names)} values ({', '.join(names)}); pass next_search_after of the previous"
            " response"
        )


def to_search_response(body: Mapping[str, Any], request: SearchRequest) -> SearchResponse:
    """Translate an ES search response body (of a `build_search` request) into a
    SearchResponse; the one extra hit fetched by `paginate` only sets the cursor."""
    fetched = [_hit(raw) for raw in body["hits"]["hits"]]
    hits = fetched[: request.limit]
    aggregations = body.get("aggregations", {})
    facets = {name: _buckets(aggregations[_facet_agg_name(name)]) for name in request.facets}
    timeline = _buckets(aggregations[YEAR_HISTOGRAM_AGG]) if request.year_histogram else []
    return SearchResponse(
        total=int(body["hits"]["total"]["value"]),
        hits=hits,
        facets=facets,
        took_ms=float(body.get("took", 0)),
        next_search_after=hits[-1].sort if len(fetched) > len(hits) and hits else None,
        year_histogram=timeline,
    )


def _buckets(result: Mapping[str, Any]) -> list[FacetValue]:
    """The buckets of a facet or histogram aggregation, wrapped by `_within` or not."""
    buckets = result["values"]["buckets"] if "values" in result else result["buckets"]
    return [FacetValue(_facet_label(b["key"]), int(b["doc_count"])) for b in buckets]


def _hit(raw: Mapping[str, Any]) -> Hit:
    source = raw.get("_source", {})
    return Hit(
        id=raw["_id"],
        score=float(raw.get("_score") or 0.0),
        title=source.get("title", ""),
        year=source.get("year"),
        authors=_as_list(source.get("author")),
        type=source.get("type", ""),
        subjects=_as_list(source.get("subject")),
        source=source.get("source", ""),
        highlights={field: list(snippets) for field, snippets in raw.get("highlight", {}).items()},
        sort=list(raw["sort"]) if "sort" in raw else None,
    )


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _facet_label(key: Any) -> str:
    """Bucket keys as strings; histogram keys come back as floats (2009.0 -> "2009")."""
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


def _facet_agg_name(name: str) -> str:
    return f"{FACET_AGG_PREFIX}{name}"


def _any_of(queries: list[dsl.Query]) -> dsl.Query:
    return (
        queries[0] if len(queries) == 1 else dsl.Q("bool", should=queries, minimum_should_match=1)
    )


def _is_bare_word(clause: Clause) -> bool:
    """A positive word without `field:`: the clauses MIN_SHOULD_MATCH counts."""
    return isinstance(clause, Term) and clause.field is None and not clause.negated


def _is_parts_field(field: str) -> bool:
    return field.split("^", 1)[0].endswith("_parts")


def _with_filters(query: dsl.Query, filters: list[dsl.Query]) -> dsl.Query:
    """The text query restricted by non-scoring filter clauses."""
    if not filters:
        return query
    return dsl.Q("bool", must=[query], filter=filters)
