"""The user query syntax, parsed once into a small AST that both backends translate.

Syntax (what `ernte search QUERY` and the API accept):

    Stadt Entwicklung          bare words: all of one or two must match, all but one of three
                               or more (min_should_match `2<-1`, measured in bench/relevance)
    "soziale Stadt"            a phrase: the words next to each other, in this order (also
    „soziale Stadt“            in typographic quotes: „…“ “…” «…» »…«)
    -Verkehr  -"Soziale Stadt" exclude records matching the word or phrase (also after an
                               en dash or minus sign: –Verkehr)
    title:Quartier             restrict a word to a field (names in SEARCH_FIELDS, or a
    author:"Kocks, Martina"    German alias such as titel:, autor:, jahr:); a quoted value
                               is a phrase in text fields and one exact value in the others
    year:2009  year:2005..2010 a year or an inclusive range (either end may be left open)

An empty query matches everything; a query made only of exclusions matches everything except
what they match. `AND` between words is accepted and ignored (words are combined anyway); `OR`
and `NOT` are refused with a hint, because silently searching for the word "or" would return
nothing and hide the mistake.

The parser does no analysis: `Term.text` and `Phrase.words` are the user's words as typed.
Each backend applies its German analysis chain (see `indexer.analysis`) to text fields and
matches exact fields (see `EXACT_FIELDS`) verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from indexer.search_model import QuerySyntaxError

SEARCH_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title", "subtitle"),
    "abstract": ("abstract",),
    "subject": ("subject",),
    "author": ("author", "editor"),
    "journal": ("journal",),
    "publisher": ("publisher",),
    "place": ("place",),
    "type": ("type", "normalized_type"),
    "year": ("year",),
    "issn": ("issn",),
    "isbn": ("isbn",),
    "doi": ("doi",),
    "id": ("id",),
    "local_id": ("local_id",),
    "language": ("language",),
    "source": ("source",),
    "set": ("set",),
}
"""User field name (as in `field:value`) -> the search-document fields it searches."""

TEXT_FIELDS: frozenset[str] = frozenset(
    {"title", "abstract", "subject", "author", "journal", "publisher", "place"}
)
"""User fields whose value is analyzed (German chain, or the name chain for authors)."""

EXACT_FIELDS: frozenset[str] = frozenset(SEARCH_FIELDS) - TEXT_FIELDS
"""User fields whose value is compared verbatim with the stored keyword values."""

FIELD_ALIASES: dict[str, str] = {
    "titel": "title",
    "schlagwort": "subject",
    "sw": "subject",
    "autor": "author",
    "person": "author",
    "zeitschrift": "journal",
    "verlag": "publisher",
    "ort": "place",
    "typ": "type",
    "jahr": "year",
    "sprache": "language",
    "quelle": "source",
    "orlis": "local_id",
}
"""German (and short) aliases accepted for field names; parsed to the canonical name."""

_YEAR_VALUE = re.compile(r"^(?P<low>\d{4})?(?:(?P<range>\.\.)(?P<high>\d{4})?)?$")
_FIELD_PREFIX = re.compile(r"(?P<name>[A-Za-z_]+):")
_REFUSED_OPERATORS = {
    "OR": "OR is not supported: bare words are combined by minimum-should-match; run separate searches instead",
    "NOT": "NOT is not supported: put '-' before the word to exclude it (-word)",
}


@dataclass(frozen=True, slots=True)
class Term:
    """One word (or one exact value in an exact field), optionally in a field, maybe negated."""

    text: str
    field: str | None = None
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words that must occur next to each other in this order (`"..."` in the query)."""

    words: tuple[str, ...]
    field: str | None = None
    negated: bool = False


Clause = Term | Phrase


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """The clauses of a query: bare words (minimum-should-match), required phrases and field
    clauses, and excluded ones."""

    clauses: tuple[Clause, ...]

    @property
    def positive(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if not c.negated)

    @property
    def distinct_positive(self) -> tuple[Clause, ...]:
        """`positive` without repeated clauses: what the backends build the query from, so
        that `Berlin Berlin Leipzig` is two words and Leipzig stays required (three words need
        only all but one). The proximity clause reads the words as typed (`positive`)."""
        return _distinct(self.positive)

    @property
    def negative(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if c.negated)

    @property
    def matches_all(self) -> bool:
        """True for the empty query (every record matches)."""
        return not self.clauses


def parse_year_value(text: str) -> tuple[int | None, int | None]:
    """`2009` -> (2009, 2009); `2005..2010` -> (2005, 2010); `..2010`/`2005..` open ends.

    Raises QuerySyntaxError for anything else (the message names the value).
    """
    match = _YEAR_VALUE.match(text.strip())
    if not match or (match["low"] is None and match["high"] is None):
        raise QuerySyntaxError(
            f"year value {text!r} is not a year (2009) or a range (2005..2010, 2005.., ..2010)"
        )
    low = int(match["low"]) if match["low"] else None
    if not match["range"]:
        return low, low
    high = int(match["high"]) if match["high"] else None
    if low is not None and high is not None and low > high:
        raise QuerySyntaxError(f"year range {text!r} runs backwards ({low} > {high})")
    return low, high


def parse_query(text: str) -> ParsedQuery:
    """Parse user query syntax (see the module docstring) into a ParsedQuery.

    Raises QuerySyntaxError with the 1-based character position and the reason for an
    unbalanced quote, an empty phrase, a lone '-', an empty field value, an unknown field,
    a bad year value, or an OR/NOT operator.
    """
    check_utf8(text, "query")
    if len(text) > MAX_QUERY_CHARACTERS:
        raise QuerySyntaxError(
            f"query too long: {len(text):,} characters (at most {MAX_QUERY_CHARACTERS:,})"
        )
    clauses = tuple(_Parser(text.translate(_TYPOGRAPHIC_QUOTES)).clauses())
    words = sum(1 if isinstance(c, Term) else len(c.words) for c in clauses)
    if words > MAX_QUERY_WORDS:
        raise QuerySyntaxError(f"query too long: {words} words (at most {MAX_QUERY_WORDS})")
    return ParsedQuery(clauses)


MAX_QUERY_CHARACTERS = 4_000
MAX_QUERY_WORDS = 200
"""A pasted title or abstract fits; beyond, each word is one more lookup in every searched
field (a 10,000-word query kept a server busy for seconds on a few hundred records)."""

_TYPOGRAPHIC_QUOTES = str.maketrans(dict.fromkeys("„“”«»", '"'))
"""German („…“), English (“…”) and guillemet («…», »…«) quotes delimit a phrase like '"': a
German keyboard or word processor types them, and as word characters they were searched as
part of the words."""

NEGATING_DASHES = "-\u2013\u2212"
"""A word right after '-', an en dash (what word processors make of a typed '-') or a minus
sign is excluded. An en dash standing alone (`Stadt – Land`, a pasted title) is a word
without letters, as before."""


def _distinct(clauses: tuple[Clause, ...]) -> tuple[Clause, ...]:
    """The clauses without repeats (compared without case, identifiers as typed)."""
    seen: set[tuple[object, ...]] = set()
    distinct: list[Clause] = []
    for clause in clauses:
        words = (clause.text,) if isinstance(clause, Term) else clause.words
        if clause.field != "id":  # identifiers are compared as typed
            words = tuple(w.casefold() for w in words)
        key = (type(clause), clause.field, clause.negated, words)
        if key not in seen:
            seen.add(key)
            distinct.append(clause)
    return tuple(distinct)


def check_utf8(text: str, what: str) -> None:
    """QuerySyntaxError for text that is no valid UTF-8: bytes that are not (a terminal in
    another encoding) reach Python as lone surrogates, which no index term can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise QuerySyntaxError(
            f"{what} {text!r} is not valid UTF-8 at character {error.start + 1}: "
            "check the terminal's encoding"
        ) from None


class _Parser:
    """A single left-to-right scan; small enough that a grammar library would be overkill."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def clauses(self) -> list[Clause]:
        result: list[Clause] = []
        while True:
            self._skip_space()
            if self.pos >= len(self.text):
                return result
            clause = self._clause()
            if clause is not None:
                result.append(clause)

    def _error(self, position: int, reason: str) -> QuerySyntaxError:
        return QuerySyntaxError(f"query syntax error at position {position + 1}: {reason}")

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _clause(self) -> Clause | None:
        start = self.pos
        dash = self.text[self.pos]
        alone = self.pos + 1 >= len(self.text) or self.text[self.pos + 1].isspace()
        negated = dash in NEGATING_DASHES and not (alone and dash != "-")
        if negated:
            self.pos += 1
            if alone:
                raise self._error(start, "'-' must be followed by a word or a \"phrase\"")
        field: str | None = None
        prefix = _FIELD_PREFIX.match(self.text, self.pos)
        if prefix and not self.text.startswith("//", prefix.end()):  # a URL is not a field
            field = self._field_name(prefix["name"], self.pos)
            self.pos = prefix.end()
            if self.pos >= len(self.text) or self.text[self.pos].isspace():
                raise self._error(start, f"field '{prefix['name']}:' has no value")
        if self.text[self.pos] == '"':
            return self._quoted(field, negated)
        word_start = self.pos
        word = self._bare_word()
        if field is None and not negated and word == "AND":
            return None
        if field is None and word in _REFUSED_OPERATORS:
            raise self._error(word_start, _REFUSED_OPERATORS[word])
        if field == "year":
            self._check_year(word, word_start)
        return Term(word, field, negated)

    def _field_name(self, name: str, position: int) -> str:
        key = name.lower()
        key = FIELD_ALIASES.get(key, key)
        if key not in SEARCH_FIELDS:
            known = ", ".join(sorted(SEARCH_FIELDS))
            raise self._error(
                position,
                f"unknown field '{name}' (known fields: {known}; "
                f'quote the text to search for a colon: "{name}:...")',
            )
        return key

    def _bare_word(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and not self.text[self.pos].isspace():
            if self.text[self.pos] == '"':
                raise self._error(self.pos, "a quote must start a phrase, not sit inside a word")
            self.pos += 1
        return self.text[start : self.pos]

    def _quoted(self, field: str | None, negated: bool) -> Clause:
        open_quote = self.pos
        close_quote = self.text.find('"', open_quote + 1)
        if close_quote < 0:
            raise self._error(open_quote, "unbalanced quote: this '\"' is never closed")
        self.pos = close_quote + 1
        if self.pos < len(self.text) and not self.text[self.pos].isspace():
            raise self._error(self.pos, "a closing quote must be followed by a space")
        content = self.text[open_quote + 1 : close_quote]
        words = tuple(content.split())
        if not words:
            raise self._error(open_quote, 'empty phrase ""')
        if field == "year":
            self._check_year(content.strip(), open_quote + 1)
            return Term(content.strip(), field, negated)
        if field is not None and field in EXACT_FIELDS:
            # One exact value that happens to contain spaces ("Graue Literatur").
            return Term(" ".join(words), field, negated)
        return Phrase(words, field, negated)

    def _check_year(self, value: str, position: int) -> None:
        try:
            parse_year_value(value)
        except QuerySyntaxError as error:
            raise self._error(position, str(error)) from None
