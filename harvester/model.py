"""The data that flows through ernte, stage by stage.

    fetch -> RawRecord (archived as harvested) -> Record (normalized) -> search document

`RawRecord` is what the harvester stores before anything else can fail on it.
`Record` is the one normalized model every crosswalk produces; its fields are
documented one by one below and are what `ernte show --json` prints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from lxml import etree

NormalizedType = Literal[
    "article",
    "book",
    "book part",
    "report",
    "thesis",
    "conference paper",
    "periodical",
    "grey literature",
    "other",
]
"""The small, documented type vocabulary every repository type is mapped onto."""

NORMALIZED_TYPES: tuple[str, ...] = get_args(NormalizedType)


@dataclass(slots=True)
class RawRecord:
    """One record exactly as the repository sent it (header plus metadata XML).

    identifier: the OAI identifier from the header (the record's identity).
    datestamp: the header datestamp as sent (kept verbatim even if not ISO 8601).
    deleted: True for `<header status="deleted">`; then `xml` holds only the header.
    sets: the header's setSpec values, duplicates removed, in order.
    xml: the complete `<record>` element serialized as UTF-8 bytes.
    metadata_prefix: the format the record was requested in (`dim`, `oai_dc`, ...).
    element: the parsed `<record>` element when the record comes straight from a fetched page
    (so normalizing it need not parse `xml` again); None when read from the archive.
    """

    identifier: str
    datestamp: str
    deleted: bool
    sets: list[str]
    xml: bytes
    metadata_prefix: str
    element: etree._Element | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class Person:
    """An author or editor.

    display: the name as the repository gives it, whitespace-normalized (`Kocks, Martina`).
    family: family name (`Kocks`); for corporate bodies the whole name.
    given: given names (`Martina`), empty where unknown or corporate.
    corporate: True for organisations (`Deutsches Institut für Urbanistik`).
    """

    display: str
    family: str
    given: str = ""
    corporate: bool = False


@dataclass(slots=True)
class Abstract:
    """One abstract and its language (ISO 639-1 where known, else ISO 639-3, else "")."""

    text: str
    language: str = ""


@dataclass(slots=True)
class HostPublication:
    """The journal or book a part was published in, where the format carries it."""

    title: str = ""
    volume: str = ""
    issue: str = ""
    pages: str = ""


@dataclass(slots=True)
class Identifiers:
    """Identifiers, each normalized; invalid ISSN/ISBN are left out (and warned about).

    issn: `NNNN-NNNC`, check digit verified.  isbn: ISBN-13, check digit verified.
    doi: lower-cased `10.xxxx/...` without resolver prefix.  urn: `urn:nbn:...`.
    handle: the handle or landing-page URL (`https://orlis.difu.de/handle/difu/167832`).
    local: the repository's own numbers (ORLIS `DM09072727`).
    """

    issn: list[str] = field(default_factory=list)
    isbn: list[str] = field(default_factory=list)
    doi: list[str] = field(default_factory=list)
    urn: list[str] = field(default_factory=list)
    handle: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Record:
    """The normalized bibliographic record, the same whatever format it came in.

    identifier: OAI identifier (identity; every write is an upsert by it).
    source: the source name from `config/sources.yaml` (or the host for a bare URL).
    sets: OAI setSpecs.  datestamp: OAI header datestamp as sent.  deleted: tombstone.
    title: main title, trailing ORLIS period removed.  subtitle: where the format separates it.
    authors / editors: `Person` lists in the order given.
    year: publication year (from the issued date, never from accession dates).
    issued: the issued date as precise as given: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    abstracts: `Abstract` list.  subjects: keyword strings as given (NFC, deduplicated).
    type: the repository's own type (`Zeitschriftenaufsatz`).
    normalized_type: one of NORMALIZED_TYPES.
    language: ISO 639-1 (or 639-3) code.  language_detected: True when guessed from text.
    identifiers: `Identifiers`.  host: `HostPublication` or None.
    publisher, place: as given.  links: URLs (landing pages, files).  rights: statements.
    metadata_prefix: the format it was normalized from.
    warnings: non-fatal problems met while normalizing (invalid ISSN, odd date, ...).
    """

    identifier: str
    source: str
    metadata_prefix: str
    datestamp: str = ""
    deleted: bool = False
    sets: list[str] = field(default_factory=list)
    title: str = ""
    subtitle: str = ""
    authors: list[Person] = field(default_factory=list)
    editors: list[Person] = field(default_factory=list)
    year: int | None = None
    issued: str = ""
    abstracts: list[Abstract] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    type: str = ""
    normalized_type: str = "other"
    language: str = ""
    language_detected: bool = False
    identifiers: Identifiers = field(default_factory=Identifiers)
    host: HostPublication | None = None
    publisher: str = ""
    place: str = ""
    links: list[str] = field(default_factory=list)
    rights: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready data with the model's field names."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Inverse of `to_dict`."""
        values = dict(data)
        values["authors"] = [Person(**p) for p in values.get("authors", [])]
        values["editors"] = [Person(**p) for p in values.get("editors", [])]
        values["abstracts"] = [Abstract(**a) for a in values.get("abstracts", [])]
        values["identifiers"] = Identifiers(**values.get("identifiers", {}))
        host = values.get("host")
        values["host"] = HostPublication(**host) if host else None
        return cls(**values)
