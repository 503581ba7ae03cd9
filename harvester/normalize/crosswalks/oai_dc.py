"""Simple Dublin Core (`oai_dc`), the format every OAI-PMH repository has.

Namespace tolerant: DC elements are matched by local name when they are in the DC 1.1
namespace (whatever its prefix, including the default namespace as PUC-Rio writes it) or in
no namespace at all; anything else (DCMI terms, `xmlns:doc` leftovers) is ignored.

Mapping and the heuristics simple DC forces on us:
- title (first) -> title; creator -> authors; contributor -> authors only when there is
  no creator at all (DSpace writes its authors as creator, other contributors as contributor)
- date -> issued: DSpace flattens accessioned/available/issued into `dc:date`; values with a
  time of day (accession timestamps) are used only when nothing else is there, and of the
  rest the earliest year wins (an item is not accessioned before it is published); among
  equally early values the last one (DSpace writes `issued` after `accessioned`/`available`)
- identifier -> by shape (ISSN/ISBN with prefix or hyphen form, DOI, URN, handle, URL, ORLIS
  number); description -> abstracts (its `xml:lang`; bare marker codes such as `Abs` skipped);
  subject, type, language, publisher, rights as given; relation/source URLs -> links
- DataCite's oai_dc announces the kind of the next description in one of its own
  (`SeriesInformation`, then `GMS Medizin - Bibliothek - Information; 12(3):Doc15; ISSN
  1865-066X`): a series is read into the host publication and its ISSN, and only an
  unannounced or `Abstract` description is an abstract (`Methods`, `Other`, ... are not)
- a leading `[pt] ` language tag (PUC-Rio) is stripped and used as the value's language
"""

from __future__ import annotations

import re

from lxml import etree

from harvester.normalize.crosswalks.common import (
    Draft,
    clean,
    element_language,
    local_name,
    normalize_language,
    parse_date,
)

DC_NAMESPACES = frozenset({"http://purl.org/dc/elements/1.1/", "http://purl.org/dc/elements/1.0/"})
_LANG_TAG_RE = re.compile(r"^\s*\[([a-zA-Z]{2,3})\]\s*")
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
DATACITE_DESCRIPTION_KINDS = frozenset(
    ("abstract", "methods", "seriesinformation", "tableofcontents", "technicalinfo", "other")
)
_SERIES_SPELLED_RE = re.compile(
    r",\s*(?:yr\.\s*\d{4},\s*)?vol\.\s*(?P<volume>[^,]+)(?:,\s*iss\.\s*(?P<issue>[^,]+))?"
    r"(?:,\s*pg\.\s*(?P<pages>[^,]+))?$"
)
_SERIES_NUMBERING_RE = re.compile(r"^(\d+)\s*(?:\((\d+)\))?\s*(?::\s*(\S+))?$")


def _read_series(draft: Draft, text: str) -> None:
    """DataCite's SeriesInformation: `title; volume(issue):pages; ISSN nnnn-nnnn` (any part
    may be missing) -> the host publication and its ISSN."""
    parts = [p.strip() for p in clean(text).split(";") if p.strip()]
    if not parts:
        return
    spelled = _SERIES_SPELLED_RE.search(parts[0])  # `MIPO ..., yr. 2012, vol. 7, iss. 2, pg. 23-44`
    if spelled:
        draft.set_host(
            volume=spelled["volume"] or "",
            issue=spelled["issue"] or "",
            pages=spelled["pages"] or "",
        )
        parts[0] = parts[0][: spelled.start()]
    draft.set_host(title=parts[0])
    for part in parts[1:]:
        numbering = _SERIES_NUMBERING_RE.match(part)
        if numbering:
            volume, issue, pages = numbering.groups()
            draft.set_host(volume=volume, issue=issue or "", pages=pages or "")
        elif part.upper().startswith(("ISSN", "EISSN")):
            draft.add_identifier(part, "issn")  # the number is found in the text


def _is_dc(tag: str) -> bool:
    if tag[0] != "{":
        return True
    return tag[1 : tag.index("}")] in DC_NAMESPACES


def _strip_language_tag(value: str) -> tuple[str, str]:
    match = _LANG_TAG_RE.match(value)
    if not match:
        return value, ""
    return value[match.end() :], normalize_language(match.group(1))


def choose_issued(dates: list[str]) -> list[str]:
    """dc:date values ordered so the likely issued date comes first (see module docstring)."""
    plain = [d for d in dates if not _TIME_RE.search(d)]
    candidates = plain or dates
    best: tuple[int, int] | None = None
    best_value = ""
    for position, value in enumerate(candidates):
        year = parse_date(value)[1]
        if year is None:
            continue
        key = (year, -position)
        if best is None or key < best:
            best, best_value = key, value
    if not best_value:
        return candidates
    return [best_value] + [d for d in candidates if d is not best_value]


def crosswalk(payload: etree._Element) -> Draft:
    """Read an `<oai_dc:dc>` payload into a Draft."""
    draft = Draft()
    contributors: list[str] = []
    dates: list[str] = []
    tagged_languages: list[str] = []  # `[en] Title`: after any declared dc:language
    announced = ""  # DataCite: the kind of the next description (DATACITE_DESCRIPTION_KINDS)
    for element in payload:
        tag = element.tag
        if not isinstance(tag, str) or not _is_dc(tag):
            continue
        name = local_name(element)
        raw = element.text or ""
        value, tagged_language = (
            _strip_language_tag(raw) if raw.lstrip().startswith("[") else (raw, "")
        )
        if name == "subject":
            draft.add_subject(value)
        elif name == "creator":
            draft.add_person(value)
        elif name == "contributor":
            contributors.append(value)
        elif name == "title":
            if not draft.title:
                draft.title = value
        elif name == "date":
            dates.append(value)
        elif name == "identifier":
            draft.add_identifier(value)
        elif name == "description":
            kind = value.strip().casefold()
            if kind in DATACITE_DESCRIPTION_KINDS:
                announced = kind
                continue
            if announced == "seriesinformation":
                _read_series(draft, value)
            elif announced in ("", "abstract"):
                draft.add_abstract(value, element_language(element) or tagged_language)
            announced = ""
        elif name == "type":
            draft.add_type(value)
        elif name == "language":
            draft.languages.append(value)
        elif name == "publisher":
            draft.publisher = draft.publisher or clean(value)
        elif name == "rights":
            draft.add_rights(value)
        elif name in ("relation", "source"):
            draft.add_link(value)
        if tagged_language and name in ("title", "subject"):
            tagged_languages.append(tagged_language)
    draft.languages.extend(tagged_languages)
    if not draft.authors:
        for name_value in contributors:
            draft.add_person(name_value)
    draft.dates = choose_issued(dates) if len(dates) > 1 else dates
    return draft
