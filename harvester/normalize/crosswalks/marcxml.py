"""MARC 21 in MARCXML (`marcxml`, `marc21`, `marc`; any namespace or none).

- leader/06-07 -> type hint: `as`/`ab` serial part -> article, `aa` monograph part -> book
  part, `s` serial -> periodical, `m` -> book (thesis when 502 is present); the repository
  type is the leader code's name (e.g. `Language material / monograph`) unless 655 gives a
  genre
- 245 $a $n $p -> title, $b -> subtitle (ISBD punctuation ` /`, ` :` removed)
- 100/700 persons: $e/$4 relator edt/Hrsg./editor -> editors; aut/Verfasser or none ->
  authors; other relators left out. 110/710 (and 111/711) -> corporate authors ($a $b)
- 264 (ind2 1) / 260 $c, then 008/07-10 -> issued; 260/264 $a place, $b publisher
- 008/35-37 and 041 $a -> language; 520 $a -> abstracts (008 language)
- 600/610/611/630/650/651/653/655/689 $a -> subjects
- 020 $a ISBN, 022 $a ISSN, 024 $a with $2 doi/urn/hdl, 001 -> local, 856 $u -> links/ids
- 773 $t host title, $g `Jg. 12 (2009), H. 3, S. 45-67` -> volume/issue/pages, $x ISSN
- 506/540 -> rights
"""

from __future__ import annotations

import re

from lxml import etree

from harvester.normalize.crosswalks.common import Draft, clean, normalize_language
from harvester.oai.xmlsafe import local_name

_LEADER_TYPES = {
    "a": "Language material",
    "t": "Manuscript language material",
    "e": "Cartographic material",
    "g": "Projected medium",
    "i": "Nonmusical sound recording",
    "j": "Musical sound recording",
    "m": "Computer file",
    "c": "Notated music",
    "k": "Two-dimensional nonprojectable graphic",
}
_LEVELS = {
    "a": "monographic component part",
    "b": "serial component part",
    "m": "monograph",
    "s": "serial",
    "c": "collection",
    "i": "integrating resource",
}
_EDITOR_RELATORS = frozenset({"edt", "hrsg.", "hrsg", "hg.", "herausgeber", "editor", "ed."})
_AUTHOR_RELATORS = frozenset({"aut", "cre", "verfasser", "verfasserin", "author", "verf."})
_SUBJECT_TAGS = frozenset({"600", "610", "611", "630", "650", "651", "653", "689"})
_VOLUME_RE = re.compile(r"(?:Jg\.|Jahrgang|Bd\.|Band|Vol\.?|Volume|v\.)\s*(\d+[\w/]*)", re.I)
_LEADING_VOLUME_RE = re.compile(r"^(\d+)\s*\(\d{4}\)")
_ISSUE_RE = re.compile(r"(?:\bH\.|Heft|Nr\.|\bNo\.?|Issue|iss\.|\bn\.)\s*(\d+[\w/-]*)", re.I)
_YEAR_ISSUE_RE = re.compile(r"\(\d{4}\)\s*,?\s*(\d+[\w/-]*)")
_PAGES_RE = re.compile(r"(?:\bS\.|Seiten?|\bpp?\.|pages?)\s*(\d+\s*[-–]\s*\d+|\d+)", re.I)

Subfields = list[tuple[str, str]]


def crosswalk(payload: etree._Element) -> Draft:
    """Read a MARCXML `<record>` (or a `<collection>` holding one) into a Draft."""
    record = payload
    if local_name(record) == "collection":
        record = next((r for r in record if local_name(r) == "record"), record)
    draft = Draft()
    leader = " " * 24
    control: dict[str, str] = {}
    fields: list[tuple[str, str, str, Subfields]] = []
    for element in record:
        name = local_name(element)
        if name == "leader":
            leader = (element.text or "").ljust(24)
        elif name == "controlfield":
            control[element.get("tag") or ""] = element.text or ""
        elif name == "datafield":
            subfields = [
                (sub.get("code") or "", sub.text or "")
                for sub in element
                if local_name(sub) == "subfield"
            ]
            fields.append(
                (
                    element.get("tag") or "",
                    element.get("ind1") or " ",
                    element.get("ind2") or " ",
                    subfields,
                )
            )
    fixed = control.get("008", "").ljust(40)
    publication_dates: list[str] = []
    genres: list[str] = []
    has_thesis_note = False
    for tag, _ind1, ind2, subfields in fields:
        if tag == "245":
            draft.title = " ".join(v for c, v in subfields if c in "anp")
            draft.subtitle = " ".join(v for c, v in subfields if c == "b")
        elif tag in ("100", "700"):
            role = _role(subfields)
            if role:
                draft.add_person(_first(subfields, "a"), editor=role == "editor")
        elif tag in ("110", "111", "710", "711"):
            if _role(subfields):
                name = ". ".join(clean(v).rstrip(".,") for c, v in subfields if c in "ab")
                draft.add_person(name, corporate=True)
        elif tag in ("260", "264"):
            if tag == "264" and ind2 not in ("1", " "):
                continue
            publication_dates.extend(v for c, v in subfields if c == "c")
            draft.place = draft.place or _strip_isbd(_first(subfields, "a"))
            draft.publisher = draft.publisher or _strip_isbd(_first(subfields, "b"))
        elif tag == "041":
            draft.languages.extend(v for c, v in subfields if c == "a")
        elif tag == "520":
            draft.add_abstract(_first(subfields, "a"))
        elif tag in _SUBJECT_TAGS:
            draft.add_subject(_strip_isbd(_first(subfields, "a")))
        elif tag == "655":
            genres.append(_strip_isbd(_first(subfields, "a")))
        elif tag == "020":
            for code, value in subfields:
                if code == "a":
                    draft.add_identifier(value, "isbn")
        elif tag == "022":
            draft.add_identifier(_first(subfields, "a"), "issn")
        elif tag == "024":
            scheme = _first(subfields, "2").lower()
            draft.add_identifier(_first(subfields, "a"), scheme if scheme else "")
        elif tag == "856":
            for code, value in subfields:
                if code == "u":
                    draft.add_identifier(value)
        elif tag == "773":
            _read_host(subfields, draft)
        elif tag in ("506", "540"):
            draft.add_rights(_first(subfields, "a"))
        elif tag == "502":
            has_thesis_note = True
    if control.get("001"):
        draft.add_identifier(control["001"], "local")
    draft.dates = [*publication_dates, fixed[7:11]]
    draft.languages.insert(0, fixed[35:38])
    language = normalize_language(fixed[35:38])
    for abstract in draft.abstracts:
        abstract.language = abstract.language or language
    draft.type_hint = _type_from_leader(leader, has_thesis_note)
    leader_name = _leader_name(leader)
    draft.type = genres[0] if genres and genres[0] else leader_name
    draft.type_candidates = [g for g in genres if g]
    return draft


def _first(subfields: Subfields, code: str) -> str:
    return next((v for c, v in subfields if c == code), "")


def _strip_isbd(value: str) -> str:
    """`[Bern] :` -> `[Bern]`, `Fleischer,` -> `Fleischer`."""
    return clean(value).rstrip(" /:;,=").strip()


def _role(subfields: Subfields) -> str:
    """ "author", "editor" or "" (another relator, such as printer or illustrator)."""
    relators = [clean(v).casefold().rstrip(",") for c, v in subfields if c in "e4"]
    if any(r in _EDITOR_RELATORS for r in relators):
        return "editor"
    if not relators or any(r in _AUTHOR_RELATORS for r in relators):
        return "author"
    return ""


def _read_host(subfields: Subfields, draft: Draft) -> None:
    draft.set_host(title=_strip_isbd(_first(subfields, "t")))
    for code, value in subfields:
        if code == "x":
            draft.add_identifier(value, "issn")
        elif code == "z":
            draft.add_identifier(value, "isbn")
        elif code == "g":
            volume = _VOLUME_RE.search(value) or _LEADING_VOLUME_RE.search(value)
            issue = _ISSUE_RE.search(value) or _YEAR_ISSUE_RE.search(value)
            pages = _PAGES_RE.search(value)
            draft.set_host(
                volume=volume.group(1) if volume else "",
                issue=issue.group(1) if issue else "",
                pages=pages.group(1).replace(" ", "") if pages else "",
            )


def _type_from_leader(leader: str, thesis: bool) -> str:
    kind, level = leader[6], leader[7]
    if kind not in "at":
        return ""
    if level == "b":
        return "article"
    if level == "a":
        return "book part"
    if level == "s":
        return "periodical"
    if level == "m":
        return "thesis" if thesis else "book"
    return ""


def _leader_name(leader: str) -> str:
    kind = _LEADER_TYPES.get(leader[6], "")
    level = _LEVELS.get(leader[7], "")
    return f"{kind} / {level}" if kind and level else kind
