"""Highlights of an embedded search: the query's words marked in title and abstract fragments.

Done in Python with the same German chain as the index, because tantivy's SnippetGenerator
re-tokenizes stored text with the field's (whitespace) tokenizer and would never see the
stemmed terms.
"""

from __future__ import annotations

import functools
import html
import unicodedata
from collections.abc import Iterable

from indexer.analysis import analyze, analyze_token, german_chain
from indexer.analysis import tokenize_with_offsets as _tokenize_with_offsets
from indexer.compounds import Decompounder, default_decompounder
from indexer.embedded.queries import clause_text
from indexer.query import Clause, Term
from indexer.query_parts import compound_part_terms

HIGHLIGHT_FRAGMENT_CHARS = 160

HIGHLIGHT_FRAGMENTS = 3


def highlight_terms(clauses: Iterable[Clause]) -> set[str]:
    """German-chain terms of the positive text clauses (what highlights mark), with the part
    terms of a compound word, so `Stadtentwicklung` marks `Stadtentwicklungsplanung`."""
    terms: set[str] = set()
    for clause in clauses:
        if clause.field not in (None, "title", "abstract", "subject"):
            continue
        terms.update(analyze(clause_text(clause)))
        if isinstance(clause, Term):
            terms.update(term for _part, term in compound_part_terms(clause.text))
    return terms


def _word_matches(word: str, marks: set[str]) -> bool:
    return not marks.isdisjoint(_word_terms(word, default_decompounder(), german_chain()))


@functools.lru_cache(maxsize=50_000)
def _word_terms(word: str, decompounder: Decompounder, chain: object) -> frozenset[str]:
    """The German-chain terms of `word` and of its compound parts: what marks it. Memoized
    (the same words recur in every page of hits), with the part list and the stop list in
    use (another list is another decompounder or chain): analyzing each word of ten abstracts
    took about 6 ms of a search's 40 ms CPU (bench/results/serve.txt)."""
    parts = decompounder.split(word)
    return frozenset([analyze_token(word), *(analyze_token(part) for part in parts)])


def highlight(text: str, marks: set[str], *, whole: bool) -> list[str]:
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
