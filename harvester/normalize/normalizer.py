"""Normalization: one archived `RawRecord` -> the one normalized `Record`.

    raw.xml (<record>) --safe parse--> <metadata> payload --crosswalk--> Draft --finish--> Record

The crosswalk (chosen by name, default the record's metadata prefix; registry in
`harvester.normalize.crosswalks`) only reads its format into a `Draft`; everything that must be the
same whatever the format happens here and in `crosswalks.common`: title clean-up, the issued
date and year, language (declared, else detected from title and abstract with py3langid),
the normalized type, warnings.

A record that cannot be normalized raises `QuarantineError` (broken XML, unknown format, no
identifier, no title, or a crosswalk failure); the harvest stores it in quarantine with the
reason and goes on. Deleted records become tombstones without parsing their metadata.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

from lxml import etree

from harvester.model import Abstract, RawRecord, Record
from harvester.normalize.crosswalks import CROSSWALKS
from harvester.normalize.crosswalks.common import (
    Draft,
    clean,
    clean_title,
    local_name,
    map_type,
    normalize_language,
    parse_date,
    unique_cleaned,
)
from harvester.oai.xmlsafe import XMLSyntaxError, parse_xml

logger = logging.getLogger(__name__)

#: Characters of title + abstract handed to language detection (more adds time, not accuracy).
DETECTION_TEXT_LIMIT = 200
_LETTER_RE = re.compile(r"[^\W\d_]")


class QuarantineError(Exception):
    """A record that cannot be normalized; .identifier and .reason (human-readable)."""

    def __init__(self, identifier: str, reason: str) -> None:
        super().__init__(f"record {identifier!r}: {reason}")
        self.identifier = identifier
        self.reason = reason


def available_crosswalks() -> list[str]:
    """The registered crosswalk names, sorted."""
    return sorted(CROSSWALKS)


def normalize(raw: RawRecord, source: str, crosswalk: str | None = None) -> Record:
    """Deleted raw -> Record(deleted=True, identifier, datestamp, sets, source, metadata_prefix)
    with no other fields. crosswalk defaults to raw.metadata_prefix. Raises QuarantineError for:
    broken XML, unknown format (no registered crosswalk for the name), no identifier, no title.
    """
    identifier = clean(raw.identifier)
    if raw.deleted:
        if not identifier:
            raise QuarantineError("", f"deleted record from source {source!r} has no identifier")
        return Record(
            identifier=identifier,
            source=source,
            metadata_prefix=raw.metadata_prefix,
            datestamp=raw.datestamp,
            deleted=True,
            sets=list(raw.sets),
        )
    name = crosswalk or raw.metadata_prefix
    walk = CROSSWALKS.get(name)
    if walk is None:
        raise QuarantineError(
            identifier,
            f"unknown format {name!r} for record {identifier!r} from source {source!r} "
            f"(known: {', '.join(available_crosswalks())})",
        )
    header_identifier, payload = _parse_record(raw, identifier, source)
    identifier = identifier or header_identifier
    if not identifier:
        raise QuarantineError("", f"record from source {source!r} has no identifier")
    try:
        draft = walk(payload)
    except Exception as error:  # a crosswalk bug must not stop the harvest
        logger.exception(
            "crosswalk failed", extra={"source": source, "identifier": identifier, "format": name}
        )
        raise QuarantineError(
            identifier, f"crosswalk {name!r} failed on record {identifier!r}: {error!r}"
        ) from error
    return _finish(draft, raw, identifier, source)


def _parse_record(raw: RawRecord, identifier: str, source: str) -> tuple[str, etree._Element]:
    """(header identifier, metadata payload root) of the archived `<record>`."""
    try:
        root = raw.element if raw.element is not None else parse_xml(raw.xml)
    except (XMLSyntaxError, ValueError) as error:
        raise QuarantineError(
            identifier, f"broken XML in record {identifier!r} from source {source!r}: {error}"
        ) from error
    header_identifier = ""
    metadata = root if local_name(root) == "metadata" else None
    for child in root:
        name = local_name(child)
        if name == "header":
            for part in child:
                if local_name(part) == "identifier":
                    header_identifier = clean(part.text)
        elif name == "metadata":
            metadata = child
    shown = identifier or header_identifier
    if metadata is None:
        raise QuarantineError(shown, f"record {shown!r} from source {source!r} has no <metadata>")
    payload = next((c for c in metadata if isinstance(c.tag, str)), None)
    if payload is None:
        raise QuarantineError(shown, f"record {shown!r} from source {source!r} has empty metadata")
    return header_identifier, payload


def _finish(draft: Draft, raw: RawRecord, identifier: str, source: str) -> Record:
    """The format-independent part: title, dates, language, type, warnings."""
    title = clean_title(draft.title)
    if not title:
        raise QuarantineError(
            identifier, f"record {identifier!r} from source {source!r} has no title"
        )
    warnings = list(draft.warnings)
    issued, year = "", None
    for candidate in draft.dates:
        issued, year, warning = parse_date(candidate)
        if warning:
            warnings.append(warning)
        if year is not None:
            break
    language = next((c for c in map(normalize_language, draft.languages) if c), "")
    detected = False
    if not language:
        language = detect_language(title, draft.subtitle, *(a.text for a in draft.abstracts))
        detected = bool(language)
    normalized_type = next(
        (t for t in map(map_type, draft.type_candidates) if t != "other"),
        draft.type_hint or "other",
    )
    return Record(
        identifier=identifier,
        source=source,
        metadata_prefix=raw.metadata_prefix,
        datestamp=raw.datestamp,
        sets=list(raw.sets),
        title=title,
        subtitle=clean_title(draft.subtitle),
        authors=draft.authors,
        editors=draft.editors,
        year=year,
        issued=issued,
        abstracts=[Abstract(a.text, a.language or language) for a in draft.abstracts],
        subjects=draft.subjects,
        type=clean(draft.type),
        normalized_type=normalized_type,
        language=language,
        language_detected=detected,
        identifiers=draft.identifiers,
        host=draft.host,
        publisher=clean(draft.publisher),
        place=clean(draft.place),
        links=draft.links,
        rights=draft.rights,
        warnings=unique_cleaned(warnings),
    )


@lru_cache(maxsize=1)
def _language_identifier() -> Any:
    """py3langid's model, loaded once per process on first use (takes about half a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


SURE_GUESS = 0.5
"""A guessed language (py3langid's probability) at least this sure is taken, whatever it is."""
FAIR_GUESS = 0.05
"""A less sure guess is taken only for one of CATALOGUE_LANGUAGES and at least this sure:
py3langid guesses among 97 languages, and on a few words it named `Duration: 4 min.`
Nigerian Pidgin (0.26), `Untitled` Serbian (0.03), `Poi (1979)` Finnish (0.03), while short
German and English titles are right but unsure (`Soziale Stadt` de 0.06, `Handbook of urban
studies` en 0.17)."""
CATALOGUE_LANGUAGES = frozenset(
    ("de", "en", "fr", "it", "es", "pt", "nl", "pl", "cs", "da", "sv", "nb", "no", "ru")
)
"""The languages that make up nearly all of a German-language library's holdings."""


def detect_language(*texts: str) -> str:
    """ISO 639-1 code guessed from the texts, "" when there is no text to go on or the guess
    is unsure (SURE_GUESS, FAIR_GUESS)."""
    text = " ".join(t for t in texts if t)[:DETECTION_TEXT_LIMIT]
    if len(_LETTER_RE.findall(text, 0, 40)) < 3:
        return ""
    code, probability = _language_identifier().classify(text)
    if probability < SURE_GUESS and (code not in CATALOGUE_LANGUAGES or probability < FAIR_GUESS):
        return ""  # a few words: no language rather than a wrong one in the facet
    return normalize_language(str(code))
