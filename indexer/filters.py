"""Filter values as both backends compare them: case- and umlaut-insensitively, like the query.

`--filter type=monographie` finds the records of type `Monographie`, `--filter 'subject=soziale
stadt'` those with the heading `Soziale Stadt`, `subject=Buergerbeteiligung` those with
`Bürgerbeteiligung`: a filter value matches a stored value when both fold to the same string
(`fold_value`: lowercase, then German normalization ä/ae->a, ö/oe->o, ü/ue->u, ß->ss), which is
what Elasticsearch's `folded` normalizer does to the `.folded` keyword subfields
(`indexer.elastic.mapping`). A year filter is a year or a range checked by the query syntax's
own parser, so a backwards range is the same one-line error in a filter and in the query.
"""

from __future__ import annotations

import unicodedata

from indexer.analysis import german_normalize
from indexer.query import parse_year_value
from indexer.search_model import Filter, QuerySyntaxError


def fold_value(value: str) -> str:
    """The folded form of a facet value: NFC, lowercase, German normalization, trimmed.

    Equal to Elasticsearch's `folded` normalizer (lowercase -> german_normalization) on the
    whole value, which keeps it one token.
    """
    text = unicodedata.normalize("NFC", value.strip())
    return german_normalize(text.lower())


def year_bounds(item: Filter) -> tuple[int | None, int | None]:
    """The inclusive year range of a `year` filter: `low`/`high`, or its value parsed like
    `year:` in the query (`2009`, `2005..2010`, `2005..`, `..2010`).

    Raises QuerySyntaxError naming the filter for a bad value or a backwards range.
    """
    if item.is_range:
        low, high = item.low, item.high
        if low is not None and high is not None and low > high:
            raise QuerySyntaxError(
                f"filter year={low}..{high}: year range '{low}..{high}' runs backwards "
                f"({low} > {high})"
            )
        return low, high
    try:
        return parse_year_value(item.value)
    except QuerySyntaxError as error:
        raise QuerySyntaxError(f"filter year={item.value}: {error}") from None
