"""Compounds typed in a query, split the way the index splits them.

`Stadtentwicklung` typed in the search box should find records about
`Stadtentwicklungsplanung`: at index time the pipeline writes the compound's parts (stadt,
entwicklung, planung) into the `*_parts` fields (`indexer.compounds`, `harvester.run.document`), but
the whole query word `stadtentwickl` is no term there. So a query word is split with the very
same decompounder (part list, linking elements -s-, -es-, -n-, -en-, ..., the rule that only
capitalized words of six letters or more are compounds, a query word being taken as
capitalized whatever its case), and its parts are matched against the
`*_parts` fields, in addition to the whole word, which keeps its own, higher weight.

Both backends call `compound_part_terms` and build the same clause from it (embedded:
`indexer.embedded`, Elasticsearch: `indexer.elastic.queries`):

    should( whole word over its fields  (unchanged),
            parts: of the parts, `COMPOUND_PARTS_MIN_SHOULD_MATCH` must match, each part
                   over the *_parts fields with their weights; the clause weighs
                   COMPOUND_PARTS_BOOST / number of parts )

Dividing by the number of parts keeps the parts clause of a three-part word from outweighing
the whole word. Only the finest parts are searched (`Stadtentwicklungsplanung` -> stadt,
entwicklung, planung, not also `stadtentwicklung`): a record whose compound shares those parts
holds them in its `*_parts` field whatever its own compound is (`Stadtplanung` finds
`Stadtentwicklungsplanung`, `Quartiersmanagement` finds `Quartiermanagement`).
"""

from __future__ import annotations

from functools import lru_cache

from indexer.analysis import analyze
from indexer.compounds import Decompounder, default_decompounder
from indexer.search_model import DEFAULT_MIN_SHOULD_MATCH

COMPOUND_PARTS_BOOST = 1.0
"""Weight of the parts clause of a compound query word (divided by its number of parts);
measured in bench/results/relevance.md. 0 switches query-side splitting off."""

COMPOUND_PARTS_MIN_SHOULD_MATCH = DEFAULT_MIN_SHOULD_MATCH
"""How many parts of a split query word must match (Elasticsearch syntax, evaluated by
`search_model.required_word_count`): all of two, all but one of three or more, as for the
bare words of a query. Measured in bench/results/relevance.md."""


def compound_parts(word: str) -> tuple[str, ...]:
    """The finest parts of a compound as the index splits it, lower-case, in order; () for a
    word the decompounder does not split (too short, no known parts).

    The word is split as if capitalized, whatever case it was typed in: a query is matched
    case-insensitively everywhere else, so `stadtentwicklung` must find what `Stadtentwicklung`
    finds. (At index time only capitalized words are split: in running text the capital marks
    a noun, which keeps adjectives and verbs out; in a search box it marks nothing.)"""
    return _finest_parts(word, default_decompounder())


@lru_cache(maxsize=4096)
def _finest_parts(word: str, decompounder: Decompounder) -> tuple[str, ...]:
    """`compound_parts` with the part list in use (a grown list is a new decompounder)."""
    parts = decompounder.split(_capitalized(word))
    if not parts:
        return ()
    found = set(parts)
    return tuple(
        part for part in parts if not found.intersection(decompounder.split(_capitalized(part)))
    )


def _capitalized(word: str) -> str:
    """`word` with a capital first letter: the decompounder splits only capitalized words."""
    return word[:1].upper() + word[1:]


def compound_part_terms(word: str) -> tuple[tuple[str, str], ...]:
    """(part, German-chain term) for each finest part of `word`, one per distinct term.

    The part goes to Elasticsearch, which analyzes it with the `de` analyzer into the term
    the embedded backend searches directly; parts the chain drops (stop words) are left out.
    A word that is no compound, or whose parts collapse into one term, gives ().
    """
    seen: dict[str, str] = {}
    for part in compound_parts(word):
        terms = analyze(part)
        if len(terms) == 1 and terms[0] not in seen:
            seen[terms[0]] = part
    if len(seen) < 2:
        return ()
    return tuple((part, term) for term, part in seen.items())
