"""German text analysis in Python, token for token what Elasticsearch does.

Chains (Elasticsearch equivalent in brackets; `indexer/elastic/` must keep them in step):

    analyze        standard tokenizer -> lowercase -> stop (german/stopwords_de.txt)
                   -> german_normalization -> stemmer "german" (Snowball)         ["de"]
    analyze_exact  standard tokenizer -> lowercase                                ["de_exact"]
    analyze_name   standard tokenizer -> lowercase -> german_normalization
                   -> asciifolding                                                ["name"]

Why Python and not tantivy's own filters: tantivy has no GermanNormalizationFilter (its
`ascii_fold` maps ä->a but not ae->a, and folds letters Lucene's chain keeps), so the embedded
backend indexes tokens produced here (see `indexer.embedded`). The stems come from PyStemmer,
the same Snowball `german` algorithm Elasticsearch's `stemmer: german` runs.

The tokenizer approximates Lucene's StandardTokenizer (Unicode UAX #29 word breaks) for the
text we meet: runs of letters/digits, kept together across `.` and `'` between word characters
(`z.B.` -> `z.b`) and across `,` between digits (`1,5`). Text is NFC-normalized first so that
decomposed umlauts (as typed on some systems) analyze like precomposed ones.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import Stemmer

from indexer.word_lists import lists_generation, stopwords_file

TOKEN_PATTERN = re.compile(r"\w+(?:(?:[.'’]|(?<=\d),(?=\d))\w+)*")
"""A token: word characters, joined across `.`/`'` inside words and `,` inside numbers."""

_CACHE_LIMIT = 500_000


def load_word_list(path: Path) -> list[str]:
    """Words of a list file: one per line, `#` starts a comment line, blank lines ignored."""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            words.append(word)
    return words


def german_stopwords() -> frozenset[str]:
    """The German stop words (Snowball list, as Elasticsearch's `_german_`) of the list in use."""
    return _stopwords_in(stopwords_file(), lists_generation())


@lru_cache(maxsize=4)
def _stopwords_in(path: Path, generation: int) -> frozenset[str]:
    return frozenset(load_word_list(path))


def german_normalize(token: str) -> str:
    """Port of Lucene's GermanNormalizationFilter (Elasticsearch `german_normalization`).

    ß -> ss; ä/ö/ü -> a/o/u; 'ae' and 'oe' -> a/o; 'ue' -> u except after a vowel or 'q'
    (so `Quelle`, `Bauer`, `neue` keep their 'ue'). Works on lower-case input, like the
    filter, which runs after `lowercase`. The state machine is the filter's, line for line.
    """
    if not any(c in "äöüßeE" for c in token):
        return token
    out: list[str] = []
    state = _N
    for char in token:
        if char in "ao":
            state = _U
        elif char == "u":
            state = _U if state == _N else _V
        elif char == "e":
            if state == _U:
                state = _V
                continue  # the 'e' of ae/oe/ue is dropped
            state = _V
        elif char in "iqy":
            state = _V
        elif char in _UMLAUTS:
            char = _UMLAUTS[char]
            state = _V
        elif char == "ß":
            char = "ss"
            state = _N
        else:
            state = _N
        out.append(char)
    return "".join(out)


_N, _V, _U = 0, 1, 2  # GermanNormalizationFilter states: neutral, vowel, 'a'/'o'/'u' seen
_UMLAUTS = {"ä": "a", "ö": "o", "ü": "u"}
_ASCII_EXTRA = str.maketrans(
    {"ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i"}
)


def ascii_fold(token: str) -> str:
    """Strip accents the way Lucene's ASCIIFoldingFilter does for Latin letters.

    Covers precomposed accented letters (via NFKD) and the few letters NFKD leaves alone
    (ł, ø, đ, æ, œ, þ); an approximation of the full filter, exact for the names we meet.
    """
    if token.isascii():
        return token
    decomposed = unicodedata.normalize("NFKD", token.translate(_ASCII_EXTRA))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokenize(text: str) -> list[str]:
    """The tokens of a text, in order, original case (standard-tokenizer approximation)."""
    return TOKEN_PATTERN.findall(_nfc(text))


def tokenize_with_offsets(text: str) -> Iterator[tuple[str, int, int]]:
    """(token, start, end) for each token; offsets index the NFC form of `text`."""
    for match in TOKEN_PATTERN.finditer(_nfc(text)):
        yield match.group(), match.start(), match.end()


def _nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


class GermanChain:
    """lowercase -> stop -> normalize -> stem for single tokens, memoized per token.

    A plain dict cache (cleared when full) is faster than lru_cache for the millions of
    lookups an indexing run makes; German text repeats its vocabulary heavily.
    """

    def __init__(self, stopwords: Path, generation: int) -> None:
        self.stopwords = stopwords
        self.generation = generation
        self._stemmer = Stemmer.Stemmer("german")
        self._stop = _stopwords_in(stopwords, generation)
        self._cache: dict[str, str] = {}

    def token(self, lowered: str) -> str:
        """The indexed term for one lower-case token, "" for a stop word."""
        term = self._cache.get(lowered)
        if term is None:
            if lowered in self._stop:
                term = ""
            else:
                term = self._stemmer.stemWord(german_normalize(lowered))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[lowered] = term
        return term

    def terms(self, lowered_tokens: list[str]) -> list[str]:
        """The terms of lower-case tokens, stop words dropped (`token` of each, with the
        memo read inline: an indexing run makes millions of these lookups)."""
        known = self._cache.get
        token = self.token
        result = []
        for word in lowered_tokens:
            term = known(word)
            if term is None:
                term = token(word)
            if term:
                result.append(term)
        return result

    def positions(self, text: str) -> list[tuple[int, str]]:
        """(position, term) pairs; stop words leave a gap in positions, as in Lucene."""
        token = self.token
        result = []
        for position, word in enumerate(TOKEN_PATTERN.findall(_nfc(text).lower())):
            term = token(word)
            if term:
                result.append((position, term))
        return result


_german: GermanChain | None = None


def german_chain() -> GermanChain:
    """The chain over the stop list in use (`indexer.word_lists`): made again when a process
    chooses another list, so an operator's stop list applies even though this module was
    imported before the list was chosen."""
    global _german
    chain = _german
    stopwords = stopwords_file()
    generation = lists_generation()
    if (
        chain is None
        or chain.generation != generation
        or (chain.stopwords is not stopwords and chain.stopwords != stopwords)
    ):
        chain = _german = GermanChain(stopwords, generation)
    return chain


def analyze_token(word: str) -> str:
    """The German-chain term for one token ("" for a stop word)."""
    return german_chain().token(_nfc(word).lower())


def analyze(text: str) -> list[str]:
    """The German chain: tokenize, lowercase, drop stop words, normalize, stem."""
    return german_terms(analyze_exact(text))


def german_terms(lowered_tokens: list[str]) -> list[str]:
    """The German-chain terms of tokens already split and lower-cased (`analyze_exact`'s
    output): `german_terms(analyze_exact(text)) == analyze(text)`, without tokenizing twice."""
    return german_chain().terms(lowered_tokens)


def analyze_positions(text: str) -> list[tuple[int, str]]:
    """`analyze` with token positions (stop words leave gaps, for phrase matching)."""
    return german_chain().positions(text)


def analyze_exact(text: str) -> list[str]:
    """The unstemmed chain: tokenize and lowercase only (umlauts and stop words kept)."""
    return TOKEN_PATTERN.findall(_nfc(text).lower())


def analyze_name(text: str) -> list[str]:
    """The chain for person names: lowercase, German normalization, accent folding.

    `Güles`, `Gueles` and `Gules` all give `gules`; `José` gives `jose`. No stop words and
    no stemming: names are not inflected.
    """
    return [ascii_fold(german_normalize(t)) for t in TOKEN_PATTERN.findall(_nfc(text).lower())]
