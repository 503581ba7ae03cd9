"""German compound splitting, done once in Python when the search document is built.

`Stadtentwicklungsplanung` -> stadtentwicklung, stadt, entwicklung, planung. The parts go into
the `*_parts` fields, which both backends analyze with the stemmed German chain, so a search
for `Entwicklung` finds the compound in the embedded index and in Elasticsearch alike
(tantivy's `split_compound` drops the original word and splits only words made entirely of
listed parts, so it cannot match Elasticsearch; see research/german_search.md §5).

How a word is split: a dynamic programme over the lower-cased word finds the segmentation into
listed parts with the fewest parts, allowing a linking element (Fugen-s, -es, -n, -en, -er, -e,
-ns) after every part but the last and an inflection ending after the last
(`Stadtteilen` = stadt + teil + en). A word that is itself a listed part is split too (its best
segmentation into two or more parts), and every multi-part piece is split again, so both
`sozialraum` and `sozial`, `raum` come out of `Sozialraumanalyse`. A word whose beginning is
unknown still yields its known parts when at least two of them follow (a partial split).
Only capitalized words of six letters or more are tried: German noun compounds are
capitalized, and this keeps adjectives and verbs (and their junk splits) out.

The part list (`german/compound_parts_de.txt`, shipped in `indexer/resources/`) is
`build_part_list` of the repository's subject headings and a base noun list from the
`german-nouns` package (CC BY-SA 4.0); see indexer/resources/german/README.md. Which file is
used: `indexer.word_lists.part_list_file`, as the harvester chose it (a list grown by `ernte compounds build` under
the data directory, else the config directory's, else the packaged one).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from indexer.analysis import load_word_list, tokenize
from indexer.word_lists import lists_generation, part_list_file

LINKING_ELEMENTS: tuple[str, ...] = ("", "s", "es", "n", "en", "er", "e", "ns")
"""Fugenelemente allowed between two parts ("" first: no linking element is preferred)."""

INFLECTION_ENDINGS: tuple[str, ...] = ("", "e", "en", "n", "s", "es", "er", "ern", "nen")
"""Endings allowed after the last part (plural and case forms of the head)."""

MIN_PART_LENGTH = 4
SHORT_PARTS: frozenset[str] = frozenset(
    {"amt", "bad", "bau", "bus", "gas", "hof", "ort", "rat", "see", "tal", "weg", "zug"}
)
"""Three-letter words accepted as parts: frequent heads in planning literature. Other
three-letter nouns (`ion`, `tat`, ...) split ordinary words into junk."""

NOT_PARTS: frozenset[str] = frozenset(
    {
        "schaft", "heit", "keit", "ismus", "ling", "linge", "tums", "nisse", "chen", "lein",
        "ität", "tion", "ation", "ionen", "unter", "ober", "über", "inter", "gegen", "neben",
        "anti", "ente", "ante", "erei", "iker", "ische", "lich", "ungen", "sion", "ster",
        "isch", "elle",
    }
)  # fmt: skip
"""Nouns that are also derivational suffixes or prefixes (`Schaft` in `Gesellschaft`,
`Ismus` in `Tourismus`): as parts they would split simple words into junk. `isch` and `elle`
end adjectives (`planerische`, `kulturelle`), which a query word typed in lower case is
split like a noun: without them `kulturelle` came out as kultur + elle."""

DOMAIN_PARTS: frozenset[str] = frozenset(
    {
        "sozial", "regional", "kommunal", "lokal", "national", "international", "global",
        "zentral", "digital", "privat", "wohn", "misch", "klein", "groß", "innen", "außen",
    }
)  # fmt: skip
"""Adjective and verb stems that start many planning compounds (`Sozialraum`,
`Regionalplanung`, `Wohnquartier`) but are missing from a noun list; always in the list."""

MIN_WORD_LENGTH = 6
_PART_WORD = re.compile(r"^[a-zäöüß]+$")


class Decompounder:
    """Splits German compounds into their parts, using a list of known part words."""

    def __init__(self, parts: Iterable[str]) -> None:
        self.parts: frozenset[str] = frozenset(p.lower() for p in parts)
        self._max_part = max((len(p) for p in self.parts), default=0)
        self.split = lru_cache(maxsize=200_000)(self._split)  # type: ignore[method-assign]

    def split(self, word: str) -> list[str]:
        """The parts of a compound, lower-case, without the word itself; [] if not one.

        Memoized per word (replaced by a cached bound method in __init__).
        """
        return self._split(word)

    def parts_text(self, text: str) -> str:
        """The parts of all compounds in `text`, space-separated, original words excluded."""
        split = self.split
        seen: dict[str, None] = {}
        for word in tokenize(text):
            if len(word) >= MIN_WORD_LENGTH and word[0].isupper():
                for part in split(word):
                    seen[part] = None
        return " ".join(seen)

    def _split(self, word: str) -> list[str]:
        if len(word) < MIN_WORD_LENGTH or not word[0].isupper():
            return []
        lowered = word.lower()
        if not _PART_WORD.match(lowered):
            return []
        found: dict[str, None] = {}
        self._collect(lowered, found, top=True)
        found.pop(lowered, None)
        return list(found)

    def _collect(self, word: str, found: dict[str, None], *, top: bool) -> None:
        """Add the best segmentation of `word` and, recursively, of its pieces."""
        pieces = self._segment(word, allow_unknown_prefix=top)
        if not pieces:
            return
        for piece in pieces:
            if piece not in found:
                found[piece] = None
                if len(piece) >= 2 * MIN_PART_LENGTH:
                    self._collect(piece, found, top=False)

    def _segment(self, word: str, *, allow_unknown_prefix: bool) -> list[str]:
        """Best split into >= 2 listed parts (fewest parts, then fewest linking letters).

        With `allow_unknown_prefix`, an unknown beginning is skipped when at least two
        listed parts follow it (partial split). Returns [] when there is no split.
        """
        best_tail = self._best_tails(word)
        candidates: list[tuple[tuple[int, int, int], list[str]]] = []
        full = best_tail.get(0)
        if full is not None and len(full[1]) >= 2:
            candidates.append(((0, *full[0]), full[1]))
        if allow_unknown_prefix and not candidates:
            for start in range(MIN_PART_LENGTH - 1, len(word)):
                tail = best_tail.get(start)
                if tail is not None and len(tail[1]) >= 2:
                    candidates.append(((start, *tail[0]), tail[1]))
                    break
        if not candidates:
            return []
        return min(candidates, key=lambda c: c[0])[1]

    def _best_tails(self, word: str) -> dict[int, tuple[tuple[int, int], list[str]]]:
        """For each start offset, the best segmentation of word[start:] into listed parts.

        Cost: (number of parts, letters spent on linking elements and endings).
        """
        parts = self.parts
        length = len(word)
        best: dict[int, tuple[tuple[int, int], list[str]]] = {}
        for start in range(length - 1, -1, -1):
            options: list[tuple[tuple[int, int], list[str]]] = []
            stop = min(length, start + self._max_part)
            for end in range(start + 3, stop + 1):
                piece = word[start:end]
                if piece not in parts:
                    continue
                rest = word[end:]
                if start > 0 and rest in INFLECTION_ENDINGS:  # the word itself is no split
                    options.append(((1, len(rest)), [piece]))
                for link in LINKING_ELEMENTS:
                    if not rest.startswith(link):
                        continue
                    tail = best.get(end + len(link))
                    if tail is not None:
                        cost = (tail[0][0] + 1, tail[0][1] + len(link))
                        options.append((cost, [piece, *tail[1]]))
            if options:
                best[start] = min(options, key=lambda o: o[0])
        return best


def build_part_list(subjects: Iterable[str], base_words: Iterable[str]) -> list[str]:
    """The compound part list: base words plus every word of the repository's subjects.

    `ernte compounds build SOURCE` calls this with the subject headings of a harvested
    source and the current list (`load_part_list()`, which already holds the german-nouns
    base words), and writes the result to `<data_dir>/german/compound_parts_de.txt`
    (`write_part_list`), never into the installed package. Subject headings add the domain heads a general
    noun list lacks (`Quartiermanagement`, `Stadtumbau`); each heading word is added
    lower-cased; a multi-word heading contributes its last word, the head noun
    (`Lokale Ökonomie` -> ökonomie; the leading adjective is no compound part). Words that are too short
    (except SHORT_PARTS), contain non-letters, or are affix homographs (NOT_PARTS) are left
    out. Returns the words sorted, without duplicates.
    """
    words: set[str] = set()
    for subject in subjects:
        tokens = tokenize(subject)
        if tokens and tokens[-1][0].isupper():
            words.add(tokens[-1].lower())
    words.update(w.lower() for w in base_words)
    words.update(DOMAIN_PARTS)
    return sorted(w for w in words if _acceptable_part(w))


def _acceptable_part(word: str) -> bool:
    if not _PART_WORD.match(word) or word in NOT_PARTS:
        return False
    return len(word) >= MIN_PART_LENGTH or word in SHORT_PARTS


def read_german_nouns(csv_path: Path) -> list[str]:
    """Base words from the `german-nouns` package's `nouns.csv` (CC BY-SA 4.0).

    Common nouns only (no names, places, abbreviations, affixes): the singular lemma and
    the nominative plural where it is not the lemma plus an ending (`Städte`, needed for
    `Städtebau`; regular plurals are covered by INFLECTION_ENDINGS).
    """
    words: set[str] = set()
    with csv_path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("pos") != "Substantiv":
                continue
            lemma = row.get("lemma", "").lower()
            plural = row.get("nominativ plural", "").lower()
            if _acceptable_part(lemma):
                words.add(lemma)
            regular = plural.startswith(lemma) and plural[len(lemma) :] in INFLECTION_ENDINGS
            if _acceptable_part(plural) and not regular:
                words.add(plural)  # irregular plural (Städte), not lemma + ending
    return sorted(words)


def load_part_list(path: Path | None = None) -> list[str]:
    """A part list; by default the one in use (`indexer.word_lists.part_list_file()`)."""
    return load_word_list(path or part_list_file())


def write_part_list(parts: Iterable[str], path: Path) -> None:
    """Write a part list with its provenance header (one word per line)."""
    lines = [*PARTS_FILE_HEADER, *parts]
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    staged.write_text("\n".join(lines) + "\n", encoding="utf-8")
    staged.replace(path)  # atomic: a process loading the list never reads half of it


PARTS_FILE_HEADER: tuple[str, ...] = (
    "# Compound part list for German decompounding (indexer.compounds).",
    "# = indexer.compounds.build_part_list(subjects, base_words); base words from",
    "# german-nouns 1.2.5 (PyPI; German Wiktionary), CC BY-SA 4.0, so this file is",
    "# CC BY-SA 4.0 too; subjects: the repository's subject headings. See README.md.",
    "# One lower-case word per line; '#' starts a comment.",
)


def default_decompounder() -> Decompounder:
    """The decompounder over the part list in use (each list loaded once per process, and
    again when its file changed, see `indexer.word_lists.use_word_lists`)."""
    return _decompounder_over(part_list_file(), lists_generation())


@lru_cache(maxsize=4)
def _decompounder_over(path: Path, generation: int) -> Decompounder:
    return Decompounder(load_word_list(path))


def reload_part_lists() -> None:
    """Read the part lists again (after `ernte compounds build` rewrote one)."""
    _decompounder_over.cache_clear()
