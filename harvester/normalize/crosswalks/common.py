"""Helpers every crosswalk shares: the `Draft` a crosswalk fills, string cleaning, names,
dates, identifiers, the type and language vocabularies, and namespace-tolerant XML access.

Crosswalks only *read* their format and put raw values into a `Draft`; every rule that must
be the same across formats (how a title loses its ORLIS period, how `Kocks, Martina` is
split, which ISSN is valid, what `Zeitschriftenaufsatz` means) lives here, once.

Type vocabulary (`map_type`, onto `model.NORMALIZED_TYPES`; matched case-insensitively after
stripping `info:eu-repo/semantics/` and COAR/DCMI URI prefixes):

=================  ============================================================================
normalized type    repository values (German, English, DCMI, COAR, DataCite, MARC leader)
=================  ============================================================================
article            Zeitschriftenaufsatz, Zeitschriftenartikel, Aufsatz, Artikel, article,
                   journal article, contribution to journal, review, Rezension, newspaper article
book               Monographie, Buch, Sammelwerk, book, monograph, edited book, Lehrbuch
book part          Aufsatz in Sammelwerk, Sammelwerksbeitrag, Buchkapitel, Beitrag, bookPart,
                   book part, book chapter, chapter, part of book
report             Bericht, Forschungsbericht, Gutachten, Studie, report, research report,
                   technical report, reportPart
thesis             Dissertation, Hochschulschrift, Habilitation, Masterarbeit, Bachelorarbeit,
                   Diplomarbeit, thesis, doctoralThesis, masterThesis, bachelorThesis,
                   dissertation
conference paper   Konferenzbeitrag, Tagungsbeitrag, Kongressbeitrag, Konferenzband,
                   conferenceObject, conference paper, conference proceedings, ConferencePaper
periodical         Zeitschrift, Periodikum, Zeitung, Schriftenreihe, periodical, journal, serial,
                   newspaper, Zeitschriftenheft, Zeitschriftenband
grey literature    Graue Literatur, Arbeitspapier, Diskussionspapier, Preprint, working paper,
                   workingPaper, discussion paper, preprint, Projektbericht (Broschüre)
other              everything else (Text, Dataset, Image, Software, Karte, ...)
=================  ============================================================================
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from lxml import etree
from stdnum import isbn as stdnum_isbn
from stdnum import issn as stdnum_issn
from stdnum.exceptions import ValidationError

from harvester.model import Abstract, HostPublication, Identifiers, Person
from harvester.oai.xmlsafe import local_name

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(slots=True)
class Draft:
    """What a crosswalk read from one payload, before the format-independent finishing.

    Raw values in preference order; `harvester.normalize.normalizer` turns them into a `Record`:
    `dates` are issued-date candidates (first plausible one wins), `languages` raw language
    values (first known one wins), `type_candidates` values tried against the type table in
    order (the first that maps to something other than "other" wins), `type_hint` a
    normalized type the format itself implies (MARC leader, DOAJ = article).
    """

    title: str = ""
    subtitle: str = ""
    authors: list[Person] = field(default_factory=list)
    editors: list[Person] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    abstracts: list[Abstract] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    type: str = ""
    type_candidates: list[str] = field(default_factory=list)
    type_hint: str = ""
    languages: list[str] = field(default_factory=list)
    identifiers: Identifiers = field(default_factory=Identifiers)
    host: HostPublication | None = None
    publisher: str = ""
    place: str = ""
    links: list[str] = field(default_factory=list)
    rights: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_type(self, value: str) -> None:
        """A repository type: the first one given is the record's own, all are candidates for
        the normalized type."""
        if not self.type:
            self.type = clean(value)
        self.type_candidates.append(value)

    def add_subject(self, value: str | None) -> None:
        """A keyword, cleaned; empty values and repeats are dropped."""
        append_unique(self.subjects, clean(value))

    def add_abstract(self, value: str | None, language: str = "") -> None:
        """An abstract, unless it is a bare marker code such as ORLIS's `Abs`."""
        text = clean(without_markup(value))
        if is_abstract_text(text) and all(a.text != text for a in self.abstracts):
            self.abstracts.append(Abstract(text=text, language=language))

    def add_link(self, value: str | None) -> None:
        """A URL (landing page, file); anything that is not http(s) is ignored."""
        url = clean(value)
        if URL_RE.match(url):
            append_unique(self.links, url)

    def add_rights(self, value: str | None) -> None:
        """A rights statement or licence URL."""
        append_unique(self.rights, clean(value))

    def add_person(
        self, name: str | None, *, editor: bool = False, corporate: bool = False
    ) -> None:
        """An author (or editor) from a display name such as `Kocks, Martina`."""
        person = parse_person(name, corporate=corporate)
        if person is not None:
            target = self.editors if editor else self.authors
            if person not in target:
                target.append(person)

    def set_host(self, **values: str) -> None:
        """Merge host publication fields (title, volume, issue, pages); first value wins."""
        host = self.host or HostPublication()
        for name, raw in values.items():
            value = clean(raw)
            if value and not getattr(host, name):
                setattr(host, name, value)
        if host.title or host.volume or host.issue or host.pages:
            self.host = host

    def add_identifier(self, value: str | None, kind: str = "") -> None:
        """One identifier; `kind` is what the format says it is (`issn`, `isbn`, `doi`, `urn`,
        `uri`, `handle`, `local`, ...), empty when unqualified (then recognised by its shape).

        Invalid ISSNs/ISBNs the format declared as such go to `warnings`, never into
        `identifiers`. Unqualified values of no known shape are dropped."""
        text = clean(value)
        if not text:
            return
        kind = kind.lower()
        if kind in ("issn", "eissn", "pissn"):
            self._add_issn(text, declared=True)
        elif kind == "isbn":
            self._add_isbn(text, declared=True)
        elif kind in ("local", "other", "orlis", "recordidentifier", "controlnumber"):
            if not self._add_by_shape(text, standard_numbers=False):
                append_unique(self.identifiers.local, text)
        elif not self._add_by_shape(text) and kind in ("doi", "urn", "handle", "hdl"):
            self.warnings.append(f"{kind.upper()} not recognised: {text!r}")

    def _add_by_shape(self, text: str, *, standard_numbers: bool = True) -> bool:
        """Recognise an identifier by its form; False if nothing matched.

        ISSN/ISBN are only recognised (with `standard_numbers`) when prefixed (`ISBN ...`) or
        in their hyphenated / 978-979 form: a bare 8- or 10-digit number is as likely to be a
        catalogue number."""
        ids = self.identifiers
        if ORLIS_NUMBER_RE.match(text):
            append_unique(ids.local, text)
            return True
        urn = URN_RE.search(text)
        if urn:
            value = urn.group(1)
            nbn = value[:8].lower() == "urn:nbn:"
            append_unique(ids.urn, "urn:nbn:" + value[8:] if nbn else value)
            if URL_RE.match(text):
                self.add_link(text)
            return True
        doi = DOI_RE.match(text)
        if doi:
            append_unique(ids.doi, doi.group(1).lower())
            if URL_RE.match(text):
                self.add_link(text)
            return True
        handle = HANDLE_RE.match(text)
        if handle:
            url = text if URL_RE.match(text) else "https://hdl.handle.net/" + handle.group(1)
            append_unique(ids.handle, url)
            self.add_link(url)
            return True
        if URL_RE.match(text):
            if "/handle/" in text:
                append_unique(ids.handle, text)
            self.add_link(text)
            return True
        if not standard_numbers:
            return False
        prefixed = ISXN_PREFIX_RE.match(text)
        if prefixed:
            kind = prefixed.group(1).upper()
            if kind == "ISSN":
                self._add_issn(text[prefixed.end() :], declared=True)
            else:
                self._add_isbn(text[prefixed.end() :], declared=True)
            return True
        if ISSN_SHAPE_RE.match(text):
            self._add_issn(text, declared=True)
            return True
        if ISBN_SHAPE_RE.match(text):
            return self._add_isbn(text, declared=False)
        return False

    def _add_issn(self, text: str, *, declared: bool) -> bool:
        return self._add_standard_number(
            text, "ISSN", ISSN_IN_TEXT_RE, normalize_issn, self.identifiers.issn, declared
        )

    def _add_isbn(self, text: str, *, declared: bool) -> bool:
        return self._add_standard_number(
            text, "ISBN", ISBN_IN_TEXT_RE, normalize_isbn, self.identifiers.isbn, declared
        )

    def _add_standard_number(
        self,
        text: str,
        kind: str,
        pattern: re.Pattern[str],
        normalizer: Callable[[str], str | None],
        target: list[str],
        declared: bool,
    ) -> bool:
        """Validate and store an ISSN/ISBN; a declared but invalid one becomes a warning."""
        found = pattern.search(text)
        number = normalizer(found.group(0)) if found else None
        if number:
            append_unique(target, number)
            return True
        if declared:
            self.warnings.append(f"invalid {kind} {text!r}")
        return False


# --------------------------------------------------------------------------- strings


def clean(value: str | None) -> str:
    """Unicode NFC and whitespace collapsed to single spaces, stripped; None -> ""."""
    if not value:
        return ""
    if not value.isascii() and not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    return " ".join(value.split())


_ENTITY_RE = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_BLOCK_TAG_RE = re.compile(r"</?(?:p|br|div|li|ul|ol|h[1-6])\b[^<>]*>", re.IGNORECASE)


def without_markup(value: str | None) -> str:
    """Text that a repository sent as HTML inside the XML (Zenodo's `&lt;p&gt;...` abstracts,
    `&ldquo;`, `&#39;`): character references resolved (only complete ones, ending in `;`:
    `R&D` and `&para` stay as written), then the tags removed (a block tag leaves a space).
    Text with no `&` and no `<` is returned as it is."""
    if not value or ("&" not in value and "<" not in value):
        return value or ""
    text = _ENTITY_RE.sub(lambda m: html.unescape(m.group(0)), value)
    if "<" not in text:
        return text
    text = _BLOCK_TAG_RE.sub(" ", text)
    return _TAG_RE.sub("", text)


def append_unique(values: list[str], value: str) -> None:
    """Append a non-empty value unless already present (keeps first-seen order)."""
    if value and value not in values:
        values.append(value)


def unique_cleaned(values: Iterable[str | None]) -> list[str]:
    """Cleaned, non-empty values, duplicates removed in order."""
    result: list[str] = []
    for value in values:
        append_unique(result, clean(value))
    return result


def is_abstract_text(text: str) -> bool:
    """An abstract has at least two words; `Abs` (ORLIS's "has an abstract" marker) has not."""
    return " " in text


# Abbreviations whose final period is part of the word, not sentence punctuation.
ABBREVIATIONS = frozenset(
    a.casefold()
    for a in (
        "u.a.",
        "Jg.",
        "Bd.",
        "Bde.",
        "e.V.",
        "Hrsg.",
        "Hg.",
        "ff.",
        "f.",
        "z.B.",
        "usw.",
        "etc.",
        "bzw.",
        "Nr.",
        "S.",
        "Aufl.",
        "vol.",
        "Vol.",
        "No.",
        "Dr.",
        "Prof.",
        "St.",
        "ca.",
        "Co.",
        "Inc.",
        "Ltd.",
        "Jh.",
        "Jhd.",
        "Jahrh.",
        "d.h.",
        "o.J.",
        "o.O.",
        "gGmbH.",
        "Abt.",
        "Str.",
        "vs.",
        "al.",
        "ed.",
        "eds.",
        "Ed.",
        "Verf.",
        "Tl.",
        "Teilbd.",
        "H.",
        "Mio.",
        "Mrd.",
        "Tsd.",
        "Mr.",
        "Mrs.",
        "Ms.",
        "Jr.",
        "Sr.",
        "resp.",
        "i.e.",
        "e.g.",
    )
)
_TRAILING_PUNCT = " \t/:;,="


def strip_trailing_period(text: str) -> str:
    """Remove a sentence-final period (ORLIS writes `Städte in sozialer Verantwortung.`), but
    keep it after abbreviations (`u.a.`, `Jg.`, `e.V.`), initials (`J.`) and ellipses. After a
    dotted number (`Office 4.0.`, `30.06.2000.`) it is the sentence's."""
    while text.endswith(".") and not text.endswith(".."):
        last = text.rsplit(None, 1)[-1]
        word = last.lstrip("([\"'„»«")
        dotted_number = word[:-1].replace(".", "").isdigit()  # `4.0.`, `30.06.2000.`
        if word.casefold() in ABBREVIATIONS or ("." in word[:-1] and not dotted_number):
            break
        if len(word) == 2 and word[0].isalpha():
            break  # an initial such as `J.`
        text = text[:-1].rstrip()
    return text


def clean_title(value: str | None) -> str:
    """A title: cleaned, ISBD punctuation (` /`, ` :`) and the ORLIS period removed."""
    text = clean(value)
    while True:
        stripped = strip_trailing_period(text.rstrip(_TRAILING_PUNCT))
        if stripped == text:
            return text
        text = stripped


# --------------------------------------------------------------------------- names

_CORPORATE_RE = re.compile(
    r"(institut|universit|hochschule|ministeri|bundes|\bamt\b|\bämter|verband|verein"
    r"|\be\.\s?v\.|gmbh|\bag\b|stiftung|gesellschaft|kommission|agentur|akademie|zentrum"
    r"|\bcent(?:er|re)\b|association|university|college|department|council|committee"
    r"|\boffice\b|society|foundation|organi[sz]ation|\bsenat\b|\bdifu\b|\bstadt\b|landkreis"
    r"|\bbüro\b|bureau|deutscher?\b|\bunion\b|\bgroup\b|consortium|arbeitsgemeinschaft"
    r"|\bbank\b|laborator|\bdivision\b|\bagency\b|\bministry\b)",
    re.IGNORECASE,
)
_NAME_TRAILER_RE = re.compile(r"[\s/:;,=]+[-–]*$|\s+[-–]+$")
_NAME_DATES_RE = re.compile(r"^[\d?.\s\-–]+$|^(?:geb\.|born|b\.|d\.)\s*\d", re.IGNORECASE)


_ET_AL_RE = re.compile(r"\s+(?:et\s+al\.?|u\.\s?a\.)$", re.IGNORECASE)


def looks_corporate(name: str) -> bool:
    """A heuristic for names that name organisations, not people: an organisation's word in a
    name without a comma, or in the part before the comma when that part is of several words
    (`Environmental Sciences Division, Oak Ridge National Laboratory`; a family name such as
    `Deutscher, Isaac` is one word)."""
    if "," not in name:
        return _CORPORATE_RE.search(name) is not None
    head = name.split(",", 1)[0].strip()
    return " " in head and _CORPORATE_RE.search(head) is not None


def _trimmed_name(name: str) -> str:
    """A name without trailing ISBD punctuation and sentence period, however they alternate
    (`Müller, Hans :.` -> `Müller, Hans`): one pass of each left `:` of `:.`, which a second
    reading then removed, so a name read back from its display was another name."""
    while True:
        trimmed = _NAME_TRAILER_RE.sub("", name)
        if trimmed.endswith(".") and not trimmed.endswith(".."):
            trimmed = strip_trailing_period(trimmed)
        if trimmed == name:
            return name
        name = trimmed


def parse_person(value: str | None, *, corporate: bool = False) -> Person | None:
    """`Kocks, Martina` -> Person(display='Kocks, Martina', family='Kocks', given='Martina').

    Without a comma the last word is the family name (`Orhan Güles`), unless the name looks
    like an organisation, which becomes a corporate person whose family is the whole name.
    Life dates (`Riocreux, Alfred, 1820-1912`) stay in `display` but not in `given`."""
    # `Jenni Schmitt et al.` (DataCite): the first of several authors, not a family `al.`
    display = _trimmed_name(_ET_AL_RE.sub("", clean(value)))
    if not display:
        return None
    if corporate or looks_corporate(display):
        return Person(display=display, family=display, corporate=True)
    if "," in display:
        family, rest = display.split(",", 1)
        parts = [p.strip() for p in rest.split(",")]
        given = next((p for p in parts if p and not _NAME_DATES_RE.match(p)), "")
        return Person(display=display, family=family.strip() or display, given=given)
    words = display.split(" ")
    if len(words) == 1:
        return Person(display=display, family=display)
    return Person(display=display, family=words[-1], given=" ".join(words[:-1]))


# --------------------------------------------------------------------------- dates

_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_GERMAN_DATE_RE = re.compile(r"(?<!\d)(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4})(?!\d)")
_ISO_DATE_RE = re.compile(r"(?<!\d)(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?(?!\d)")


def parse_date(value: str | None) -> tuple[str, int | None, str]:
    """(issued, year, warning) from a date as found in the wild.

    Accepts `2009`, `2009-09`, `2009-09-04`, `2009-09-04T10:00:00Z`, `[2009]`, `ca. 2009`,
    `2009/2010` (the first year), `20210311`, `04.09.2009`. Gives `YYYY`, `YYYY-MM` or
    `YYYY-MM-DD` with only the parts that are there (a day is never invented; an impossible
    month or day is dropped). An implausible year (< 1000 or > this year + 5) yields no
    date and a warning."""
    text = clean(value)
    if not text:
        return "", None, ""
    match = _COMPACT_DATE_RE.match(text) or _GERMAN_DATE_RE.search(text)
    if match and match.re is _GERMAN_DATE_RE:
        year_s, month_s, day_s = match.group(3), match.group(2), match.group(1)
    elif match:
        year_s, month_s, day_s = match.groups()
    else:
        match = _ISO_DATE_RE.search(text)
        if not match:
            return "", None, f"no year in date {text!r}"
        year_s, month_s, day_s = match.groups()
    year = int(year_s)
    if not 1000 <= year <= date.today().year + 5:
        return "", None, f"implausible year in date {text!r}"
    month = int(month_s) if month_s else 0
    if not 1 <= month <= 12:
        return f"{year:04d}", year, ""
    day = int(day_s) if day_s else 0
    if day:
        try:
            date(year, month, day)
        except ValueError:
            day = 0
    if not day:
        return f"{year:04d}-{month:02d}", year, ""
    return f"{year:04d}-{month:02d}-{day:02d}", year, ""


# --------------------------------------------------------------------------- identifiers

ORLIS_NUMBER_RE = re.compile(r"^DM\d{8}$")
URL_RE = re.compile(r"^https?://\S+$", re.IGNORECASE)
URN_RE = re.compile(r"\b(?:urn:)*(urn:(?:nbn:\S+|[a-z0-9][a-z0-9-]{0,31}:\S+))", re.IGNORECASE)
"""A URN; a doubled `urn:` prefix (`urn:urn:nbn:de:...`, as DataCite sends GMS's) is dropped."""
DOI_RE = re.compile(
    r"^(?:doi:\s*|https?://(?:dx\.|www\.)?doi\.org/(?:doi:)?|info:doi/)?(10\.\d{4,9}/\S+)$",
    re.IGNORECASE,
)
HANDLE_RE = re.compile(r"^(?:hdl:|https?://hdl\.handle\.net/)(\S+)$", re.IGNORECASE)
ISXN_PREFIX_RE = re.compile(r"^(ISSN|ISBN)(?:-1[03])?[:\s]*", re.IGNORECASE)
ISSN_SHAPE_RE = re.compile(r"^\d{4}-\d{3}[\dXx]$")
ISBN_SHAPE_RE = re.compile(
    r"^97[89]\d{10}$|^(?=(?:\d[\s-]?){9}[\dXx]$)\d+[\s-]\d[\d\s-]*[\dXx]$|^97[89][\s-][\d\s-]{11,15}$"
)
_ISBN_SEPARATORS_RE = re.compile(r"[\s-]")
ISSN_IN_TEXT_RE = re.compile(r"\d{4}-?\d{3}[\dXx]")
ISBN_IN_TEXT_RE = re.compile(r"(?:97[89][\s-]?)?\d[\d\s-]{7,14}[\dXx]|\d{9}[\dXx]")


@lru_cache(maxsize=8192)
def normalize_issn(value: str) -> str | None:
    """`0303-2493` (check digit verified) or None."""
    try:
        return str(stdnum_issn.format(stdnum_issn.validate(value)))
    except ValidationError:
        return None


@lru_cache(maxsize=8192)
def normalize_isbn(value: str) -> str | None:
    """ISBN-13 digits without hyphens (check digit verified) or None."""
    if len(_ISBN_SEPARATORS_RE.sub("", value)) not in (10, 13):
        return None  # stdnum also accepts 9-digit SBNs, which are not ISBNs
    try:
        return str(stdnum_isbn.to_isbn13(stdnum_isbn.validate(value)))
    except ValidationError:
        return None


# --------------------------------------------------------------------------- types

_TYPE_TABLE: dict[str, tuple[str, ...]] = {
    "article": (
        "zeitschriftenaufsatz", "zeitschriftenartikel", "aufsatz", "artikel", "article",
        "journal article", "journalarticle", "contribution to journal", "review", "rezension",
        "newspaper article", "zeitungsartikel", "journal-article", "articlejournal",
        "contributiontoperiodical", "article-journal", "text/article", "aufsatz in zeitschrift",
        "c_6501", "c_2df8fbb1", "c_998f", "research article",
        # EPrints (CogPrints) types of journal contributions
        "journal (paginated)", "journal (on-line/unpaginated)", "journal (on-line/paginated)",
    ),
    "book": (
        "monographie", "monografie", "buch", "sammelwerk", "book", "monograph", "edited book",
        "lehrbuch", "handbuch", "c_2f33", "c_ba08", "book-whole", "herausgeberwerk",
    ),
    "book part": (
        "aufsatz in sammelwerk", "sammelwerksbeitrag", "buchkapitel", "buchbeitrag", "beitrag",
        "bookpart", "book part", "book chapter", "chapter", "part of book", "bookchapter",
        "book-chapter", "book-part", "inbook", "incollection", "c_3248", "beitrag in sammelwerk",
    ),
    "report": (
        "bericht", "forschungsbericht", "gutachten", "studie", "report", "research report",
        "technical report", "reportpart", "c_93fc", "c_18ws", "projektbericht",
    ),
    "thesis": (
        "dissertation", "hochschulschrift", "habilitation", "habilitationsschrift",
        "masterarbeit", "bachelorarbeit", "diplomarbeit", "magisterarbeit", "thesis",
        "doctoralthesis", "masterthesis", "bachelorthesis", "doctoral thesis", "master thesis",
        "phd thesis", "c_46ec", "c_db06", "c_bdcc", "c_7a1f", "studythesis", "electronic thesis",
    ),
    "conference paper": (
        "konferenzbeitrag", "tagungsbeitrag", "kongressbeitrag", "konferenzband", "tagungsband",
        "conferenceobject", "conference paper", "conference proceedings", "conferencepaper",
        "conference object", "proceedings", "inproceedings", "conferenceproceedings",
        "c_5794", "c_c94f", "c_f744", "conference poster", "conferenceposter", "vortrag",
        "lecture",
    ),
    "periodical": (
        "zeitschrift", "periodikum", "zeitung", "schriftenreihe", "periodical", "journal",
        "serial", "newspaper", "zeitschriftenheft", "zeitschriftenband", "c_0640", "c_2659",
        "c_2cd9", "journal issue", "periodicalissue",
    ),
    "grey literature": (
        "graue literatur", "arbeitspapier", "diskussionspapier", "preprint", "working paper",
        "workingpaper", "discussion paper", "c_8042", "c_816b", "broschüre", "brochure",
        "submittedversion", "other grey literature",
    ),
}  # fmt: skip
TYPE_MAP: dict[str, str] = {
    value: normalized for normalized, values in _TYPE_TABLE.items() for value in values
}
_TYPE_PREFIX_RE = re.compile(
    r"^(?:info:eu-repo/semantics/|https?://purl\.org/coar/resource_type/"
    r"|https?://purl\.org/dc/dcmitype/|https?://purl\.org/spar/fabio/)",
    re.IGNORECASE,
)


@lru_cache(maxsize=2048)
def map_type(value: str) -> str:
    """The normalized type for one repository type value ("other" when unknown)."""
    key = _TYPE_PREFIX_RE.sub("", clean(value)).casefold()
    return TYPE_MAP.get(key) or TYPE_MAP.get(key.replace("_", " "), "other")


# --------------------------------------------------------------------------- languages

_LANGUAGE_TABLE: dict[str, tuple[str, ...]] = {
    "de": ("ger", "deu", "german", "deutsch", "de-de", "de-at", "de-ch", "gsw"),
    "en": ("eng", "english", "englisch", "en-us", "en-gb"),
    "fr": ("fre", "fra", "french", "französisch", "francais", "français"),
    "it": ("ita", "italian", "italienisch", "italiano"),
    "es": ("spa", "spanish", "spanisch", "español", "espanol"),
    "pt": ("por", "portuguese", "portugiesisch", "português", "pt-br"),
    "nl": ("dut", "nld", "dutch", "niederländisch", "nederlands"),
    "pl": ("pol", "polish", "polnisch", "polski"),
    "cs": ("cze", "ces", "czech", "tschechisch"),
    "da": ("dan", "danish", "dänisch"),
    "sv": ("swe", "swedish", "schwedisch"),
    "no": ("nor", "norwegian", "norwegisch"),
    "nb": ("nob",),
    "nn": ("nno",),
    "fi": ("fin", "finnish", "finnisch"),
    "ru": ("rus", "russian", "russisch"),
    "uk": ("ukr", "ukrainian", "ukrainisch"),
    "tr": ("tur", "turkish", "türkisch"),
    "el": ("gre", "ell", "greek", "griechisch"),
    "hu": ("hun", "hungarian", "ungarisch"),
    "ro": ("rum", "ron", "romanian", "rumänisch"),
    "hr": ("hrv", "croatian", "kroatisch"),
    "sr": ("srp", "serbian", "serbisch"),
    "sk": ("slo", "slk", "slovak", "slowakisch"),
    "sl": ("slv", "slovenian", "slowenisch"),
    "bg": ("bul", "bulgarian", "bulgarisch"),
    "la": ("lat", "latin", "latein"),
    "ja": ("jpn", "japanese", "japanisch"),
    "zh": ("chi", "zho", "chinese", "chinesisch"),
    "ar": ("ara", "arabic", "arabisch"),
    "he": ("heb", "hebrew", "hebräisch"),
    "ko": ("kor", "korean", "koreanisch"),
    "ca": ("cat", "catalan", "katalanisch"),
    "eu": ("baq", "eus", "basque"),
    "et": ("est", "estonian"),
    "lv": ("lav", "latvian"),
    "lt": ("lit", "lithuanian"),
    "is": ("ice", "isl", "icelandic"),
    "ga": ("gle", "irish"),
    "cy": ("wel", "cym", "welsh"),
    "fa": ("per", "fas", "persian"),
    "hi": ("hin", "hindi"),
    "id": ("ind", "indonesian"),
    "vi": ("vie", "vietnamese"),
    "af": ("afr", "afrikaans"),
    "eo": ("epo", "esperanto"),
    "lb": ("ltz", "luxembourgish", "luxemburgisch"),
}
LANGUAGE_MAP: dict[str, str] = {
    alias: code for code, aliases in _LANGUAGE_TABLE.items() for alias in (code, *aliases)
}
# ISO 639-2 codes that say "no language information" rather than name a language.
NO_LANGUAGE = frozenset({"und", "zxx", "mul", "mis", "n/a", "none", "other", "unknown"})
_LANG_CODE_RE = re.compile(r"^([a-z]{2,3})(?:[-_][a-z0-9]{2,8})*$")


@lru_cache(maxsize=1024)
def normalize_language(value: str) -> str:
    """ISO 639-1 where a mapping exists (`ger` -> `de`), else the ISO 639-3 code; "" when
    the value names no language (`und`, `zxx`, free text we do not know)."""
    key = clean(value).casefold()
    if not key or key in NO_LANGUAGE:
        return ""
    if key in LANGUAGE_MAP:
        return LANGUAGE_MAP[key]
    match = _LANG_CODE_RE.match(key)
    if not match:
        return ""
    code = match.group(1)
    return LANGUAGE_MAP.get(code, code if code not in NO_LANGUAGE else "")


# --------------------------------------------------------------------------- XML access


def children(element: etree._Element, *names: str) -> Iterator[etree._Element]:
    """Child elements whose local name is one of `names` (any namespace)."""
    for child in element:
        if local_name(child) in names:
            yield child


def first_child(element: etree._Element, *names: str) -> etree._Element | None:
    """The first child element with one of these local names, or None."""
    return next(children(element, *names), None)


def text_of(element: etree._Element | None) -> str:
    """All text inside an element, cleaned ("" for None)."""
    if element is None:
        return ""
    return clean("".join(element.itertext()))


def child_text(element: etree._Element, *names: str) -> str:
    """Cleaned text of the first child with one of these local names."""
    return text_of(first_child(element, *names))


def element_language(element: etree._Element) -> str:
    """The normalized `xml:lang` (or `lang`) of an element, "" when absent."""
    raw = element.get(XML_LANG) or element.get("lang") or ""
    return normalize_language(raw) if raw else ""


def join_pages(first: str, last: str) -> str:
    """`123-130` from start and end page (either may be empty)."""
    first, last = clean(first), clean(last)
    if first and last and first != last:
        return f"{first}-{last}"
    return first or last
