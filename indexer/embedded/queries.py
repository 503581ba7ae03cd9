"""A parsed user query and filters -> tantivy queries, ranked like the Elasticsearch backend.

Ranking (the defaults are the configuration chosen in bench/results/relevance.md, and
`indexer.elastic.queries` builds the same for Elasticsearch): a word searches every default
field, each with its weight in TEXT_FIELDS, scores summed over fields; title and subject
weigh more than abstract, the unstemmed *_exact fields add a bonus for the exact spelling,
the *_parts fields let a compound part find the compound. Bare words need not all match:
`min_should_match` (Elasticsearch syntax, see `search_model.required_word_count`) says how
many must; phrases, `field:` clauses and exclusions always apply. An optional sloppy-phrase
clause over title, subject and abstract lifts records where the free words stand together.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass

import tantivy

from indexer.analysis import analyze
from indexer.embedded.schema import (
    BM25_K1,
    DEFAULT_FIELDS,
    KEYWORD_QUERY_FIELDS,
    PROXIMITY_FIELDS,
    USER_TEXT_FIELDS,
    TextField,
)
from indexer.filters import fold_value, year_bounds
from indexer.identifiers import stored_form
from indexer.query import Clause, ParsedQuery, Phrase, Term, parse_year_value
from indexer.query_parts import compound_part_terms
from indexer.search_model import FACET_FIELDS, QuerySyntaxError, SearchRequest, required_word_count


@dataclass(frozen=True, slots=True)
class _Cost:
    """What evaluating a text clause costs tantivy, in the time of reading one posting of a
    plain word's union (see POSTING_COST)."""

    postings: int
    leaves: int
    per_posting: float

    @property
    def plain(self) -> float:
        """The clause as it is: every posting of its union read."""
        return self.postings * self.per_posting

    def narrowed_by(self, selective: _Cost) -> float:
        """The clause narrowed by `selective` (`QueryTranslator._narrowed_clauses`): the
        selective clause read once per leaf, at POSTING_COST["narrowing"] a posting."""
        return self.leaves * selective.postings * POSTING_COST["narrowing"]


class QueryTranslator:
    """The query side of one backend configuration (see `EmbeddedBackend` for the options)."""

    def __init__(
        self,
        schema: tantivy.Schema,
        text_fields: Sequence[TextField],
        *,
        use_parts: bool,
        exact_boost: float,
        min_should_match: str,
        proximity_boost: float,
        proximity_slop: int,
        compound_boost: float,
        compound_min_should_match: str,
    ) -> None:
        if min(exact_boost, proximity_boost, proximity_slop, compound_boost) < 0:
            raise ValueError(
                "exact_boost, proximity_boost, proximity_slop and compound_boost must be >= 0"
            )
        required_word_count(min_should_match, 3)  # a bad spec fails here, not in a search
        required_word_count(compound_min_should_match, 3)
        self._schema = schema
        self._fields = {f.name: f for f in text_fields}
        self.use_parts = use_parts
        self.exact_boost = exact_boost
        self.min_should_match = min_should_match
        self.proximity_boost = proximity_boost
        self.proximity_slop = proximity_slop
        self.compound_boost = compound_boost
        self.compound_min_should_match = compound_min_should_match

    def text_query(self, parsed: ParsedQuery, searcher: tantivy.Searcher) -> tantivy.Query:
        """The scoring query of the user's words (no filters).

        Phrases and `field:` clauses are required; of the bare words, as many as
        `min_should_match` says (a nested BooleanQuery with tantivy's native
        `minimum_number_should_match`, which scores like Lucene's: the sum over the words
        that matched). The proximity clause is optional: it only adds score.
        """
        must: list[tantivy.Query] = []
        words: list[tantivy.Query] = []
        clauses = parsed.distinct_positive
        built = [self._clause_query(clause, searcher) for clause in clauses]
        narrowed = self._narrowed_clauses(parsed, searcher, built)
        for position, (clause, query) in enumerate(zip(clauses, built, strict=True)):
            if position in narrowed:
                query = self._clause_query(clause, searcher, narrowed[position]) or query
            if query is not None:
                (words if is_bare_word(clause) else must).append(query)
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

    def matched_share_estimate(self, parsed: ParsedQuery, searcher: tantivy.Searcher) -> float:
        """A quick estimate, from term statistics alone, of the share of records `text_query`
        matches: 1.0 for no query; for bare words that must all match, the product of the
        words' shares, a word's share being that of a record holding it in at least one of the
        fields it searches, as if the fields were independent; 0.0 where the query is not that
        simple (exclusions, phrases, `field:` clauses, words that need not all match). It only
        decides whether counting the matches is worth it (see `EmbeddedBackend.search`).
        """
        if not parsed.positive and not parsed.negative:
            return 1.0
        if parsed.negative or not all(is_bare_word(c) for c in parsed.positive):
            return 0.0
        total = max(1, int(searcher.num_docs))
        shares: list[float] = []
        for clause in parsed.distinct_positive:
            if not analyze(clause_text(clause)):
                continue  # a stop word: dropped from the query
            missing = 1.0
            for field, _boost in self._searched_fields(DEFAULT_FIELDS):
                terms = field.analyzer(clause_text(clause))
                if len(terms) == 1:
                    missing *= 1.0 - min(1.0, int(searcher.doc_freq(field.name, terms[0])) / total)
            shares.append(1.0 - missing)
        if not shares or required_word_count(self.min_should_match, len(shares)) < len(shares):
            return 0.0
        return math.prod(shares)

    def _proximity_query(
        self, parsed: ParsedQuery, searcher: tantivy.Searcher
    ) -> tantivy.Query | None:
        """All free words (bare and quoted, no `field:`) as one sloppy phrase per
        PROXIMITY_FIELDS field, summed; None for fewer than two terms or boost 0."""
        if self.proximity_boost <= 0:
            return None
        text = " ".join(clause_text(c) for c in parsed.positive if c.field is None)
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

    def _narrowed_clauses(
        self,
        parsed: ParsedQuery,
        searcher: tantivy.Searcher,
        built: Sequence[tantivy.Query | None] | None = None,
    ) -> dict[int, tantivy.Query]:
        """For a query whose clauses must all match: clause position (in
        `parsed.distinct_positive`) -> the most selective clause, as a filter to narrow that
        clause's every leaf query with (see `_within`). `built`: each clause's query as
        `_clause_query` builds it (None for a stop word, which the query leaves out), built
        here when not given.

        Why: tantivy scores a union of terms (a word over its fields, a compound part over
        the *_parts fields) window by window, reading every posting of every term in each
        window the conjunction visits. So in `Stadtteilentwicklung Berlin` the hits pass
        reads all 660,000 postings of `stadt`, `teil` and `entwicklung` in the parts fields
        (400,000 records; 20 ms) although the conjunction has 2,681 matches: the rare
        `Berlin` cannot make it skip. A leaf ANDed with `Berlin` is a conjunction of a term
        and a rare clause, which skips; `Berlin` is then read once per leaf. So a clause is
        narrowed when reading its postings costs more than reading the selective clause's
        once per leaf (`_Cost.plain`, `_Cost.narrowed_by`).

        Matches and scores stay exactly what they were: the filter scores 0 and must match
        anyway (all clauses are required). Not done when bare words need not all match
        (`min_should_match`, counted over the words the query keeps, as `text_query` counts
        them), where a record may lack the selective word."""
        clauses = parsed.distinct_positive
        if built is None:
            built = [self._clause_query(clause, searcher) for clause in clauses]
        kept = [i for i, query in enumerate(built) if query is not None]
        if len(kept) < 2:
            return {}
        bare = [i for i in kept if is_bare_word(clauses[i])]
        if bare and required_word_count(self.min_should_match, len(bare)) < len(bare):
            return {}
        if any(
            clauses[i].field is not None and clauses[i].field not in USER_TEXT_FIELDS for i in kept
        ):
            return {}  # year, id and keyword clauses: single terms, cheap either way
        costs = {i: self._clause_cost(clauses[i], searcher) for i in kept}
        selective = min(kept, key=lambda i: costs[i].postings)
        narrowed = [
            i
            for i in kept
            if i != selective and costs[i].plain > costs[i].narrowed_by(costs[selective])
        ]
        filter_query = built[selective]
        if not narrowed or filter_query is None:
            return {}
        within = tantivy.Query.const_score_query(filter_query, 0.0)
        return dict.fromkeys(narrowed, within)

    def _clause_cost(self, clause: Clause, searcher: tantivy.Searcher) -> _Cost:
        """The postings a text clause's leaf queries read (each leaf's first term), how many
        leaves it has, and what reading one of its postings costs (see `_Cost`)."""
        names = USER_TEXT_FIELDS[clause.field] if clause.field else DEFAULT_FIELDS
        searched = self._searched_fields(names)
        frequencies = [
            int(searcher.doc_freq(field.name, terms[0]))
            for field, _boost in searched
            if (field.positions or not isinstance(clause, Phrase))  # as _clause_query builds
            and (terms := field.analyzer(clause_text(clause)))
        ]
        parts_fields = [f.name for f, _boost in searched if f.role == "parts"]
        parts = (
            compound_part_terms(clause.text)
            if isinstance(clause, Term) and self.compound_boost > 0 and parts_fields
            else ()
        )
        frequencies += [int(searcher.doc_freq(n, term)) for _p, term in parts for n in parts_fields]
        per_posting = POSTING_COST["word"]
        if parts:
            some = required_word_count(self.compound_min_should_match, len(parts)) < len(parts)
            per_posting = POSTING_COST["compound, some parts" if some else "compound"]
        return _Cost(sum(frequencies), len(frequencies), per_posting)

    def _within(self, query: tantivy.Query, within: tantivy.Query | None) -> tantivy.Query:
        """A leaf query narrowed by `within` (`_narrowed_clauses`), or as it is."""
        if within is None:
            return query
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, query), (tantivy.Occur.Must, within)]
        )

    def _clause_query(
        self, clause: Clause, searcher: tantivy.Searcher, within: tantivy.Query | None = None
    ) -> tantivy.Query | None:
        """One query clause; None when it has no searchable term (stop words only). `within`
        narrows each of its leaf queries (see `_narrowed_clauses`).

        A word that is a compound (`indexer.query_parts`) matches by itself or by its parts
        in the *_parts fields among the fields it searches (see `_compound_parts_query`).
        """
        if clause.field == "year":
            low, high = parse_year_value(clause.text if isinstance(clause, Term) else "")
            return self._year_range(low, high)
        if clause.field == "id":
            return tantivy.Query.term_query(self._schema, "id", clause_text(clause))
        if clause.field in KEYWORD_QUERY_FIELDS:
            value = stored_form(clause.field, clause_text(clause)).lower()
            return tantivy.Query.term_query(self._schema, f"k_{clause.field}", value)
        names = USER_TEXT_FIELDS[clause.field] if clause.field else DEFAULT_FIELDS
        text = clause_text(clause)
        if clause.field != "author" and not analyze(text):
            return None  # stop words only: dropped, not required in the unstemmed fields
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
            per_field.append(
                self._weighted(searcher, field, self._within(query, within), terms, boost)
            )
        if not per_field:
            return None
        whole = (
            per_field[0]
            if len(per_field) == 1
            else tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in per_field])
        )
        parts = self._compound_parts_query(clause, names, searcher, within)
        if parts is None:
            return whole
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, whole), (tantivy.Occur.Should, parts)]
        )

    def _compound_parts_query(
        self,
        clause: Clause,
        names: Iterable[str],
        searcher: tantivy.Searcher,
        within: tantivy.Query | None = None,
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
                    self._within(tantivy.Query.term_query(self._schema, field.name, term), within),
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

    def filters_by_field(
        self,
        request: SearchRequest,
        searcher: tantivy.Searcher,
        spellings: MutableMapping[tuple[str, str], list[str]] | None = None,
    ) -> dict[str, tantivy.Query]:
        """One query per filtered field: its values ORed (facet values, compared folded, see
        `_folded_filter`; or year ranges); the caller ANDs the fields. `spellings` keeps the
        stored spellings found for a (facet, folded value), valid for this searcher only."""
        by_field: dict[str, list[tantivy.Query]] = defaultdict(list)
        for item in request.filters:
            if item.field not in FACET_FIELDS:
                raise QuerySyntaxError(
                    f"cannot filter on {item.field!r}: filter fields are {', '.join(FACET_FIELDS)}"
                )
            if item.field == "year":
                by_field["year"].append(self._year_range(*year_bounds(item)))
            else:
                by_field[item.field].append(
                    self._folded_filter(searcher, item.field, item.value, spellings)
                )
        return {
            name: alternatives[0]
            if len(alternatives) == 1
            else tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in alternatives])
            for name, alternatives in by_field.items()
        }

    def _folded_filter(
        self,
        searcher: tantivy.Searcher,
        facet: str,
        value: str,
        known: MutableMapping[tuple[str, str], list[str]] | None = None,
    ) -> tantivy.Query:
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
        spellings = known.get((facet, wanted)) if known is not None else None
        if spellings is None:
            try:
                candidates = tantivy.Query.regex_query(self._schema, field, folded_pattern(wanted))
            except ValueError:
                # The pattern of a long value (hundreds of characters) outgrows the automaton
                # tantivy allows: such a value is compared as typed and as folded.
                candidates = tantivy.Query.term_set_query(
                    self._schema, field, list(dict.fromkeys([value, wanted]))
                )
            found = searcher.aggregate(
                candidates, {"values": {"terms": {"field": field, "size": FOLDED_FILTER_VALUES}}}
            )
            spellings = [
                str(b["key"])
                for b in found.get("values", {}).get("buckets", [])
                if fold_value(str(b["key"])) == wanted
            ]
            if known is not None:
                known[(facet, wanted)] = spellings
        if not spellings:
            return tantivy.Query.empty_query()
        return tantivy.Query.term_set_query(self._schema, field, spellings)


FOLDED_FILTER_VALUES = 10_000
"""Distinct facet values aggregated over the records a folded filter's pattern matches (the
wanted spellings and the other values of those records)."""

_FOLDED_ALTERNATIVES: dict[str, str] = {
    "a": "(a|A|ä|Ä|a[eE]|A[eE])",
    "o": "(o|O|ö|Ö|o[eE]|O[eE])",
    "u": "(u|U|ü|Ü|u[eE]|U[eE])",
}


def folded_pattern(folded: str) -> str:
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


_REGEX_META = frozenset("\\.+*?()|[]{}^$#&-~")
"""The characters tantivy's regular expressions (Rust regex-syntax) give a meaning; any other
escaped ASCII character is an error there or a different thing (`\\<` is a word boundary)."""


def _regex_char(char: str) -> str:
    """`char` as a literal in a regular expression."""
    return "\\" + char if char in _REGEX_META else char


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


def restrict(query: tantivy.Query, filters: list[tantivy.Query]) -> tantivy.Query:
    """`query` ANDed with non-scoring filters (a filter adds no score, as in Elasticsearch)."""
    if not filters:
        return query
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, query)]
        + [(tantivy.Occur.Must, tantivy.Query.const_score_query(f, 0.0)) for f in filters]
    )


POSTING_COST = {
    "word": 1.0,
    "compound": 1.7,
    "compound, some parts": 3.2,
    "narrowing": 2.3,
}
"""The time tantivy spends per posting, relative to a plain word's union: in a compound's
union of two parts, of three or more parts of which some may be missing (a heap-based
disjunction), and in a narrowed leaf (a conjunction of the leaf and the selective clause's
union). Fitted to 15 two-word searches on the 400,000 records of bench_index.py (3 facets,
median of 9 each), about 28, 48, 90 and 65 ns. With them a clause is narrowed in
`Stadtteilentwicklung Berlin` (56 -> 20 ms), `Stadtplanung Berlin` (35 -> 20 ms),
`Wohnungsbaupolitik Berlin` (36 -> 18 ms) and `Stadt Berlin` (25 -> 22 ms), and not in
`Planung Berlin` (narrowed: 7 -> 16 ms), `Stadt Klima` (28 -> 40 ms) or
`Stadtentwicklung Quartier` (39 -> 65 ms). Figures: bench/results/query.txt."""


def is_bare_word(clause: Clause) -> bool:
    """A positive word without `field:`: the clauses `min_should_match` counts."""
    return isinstance(clause, Term) and clause.field is None and not clause.negated


def clause_text(clause: Clause) -> str:
    return clause.text if isinstance(clause, Term) else " ".join(clause.words)
