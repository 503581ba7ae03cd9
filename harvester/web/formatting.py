"""What the search page shows, in German: numbers, dates, labels, and record text made safe.

Record text is untrusted (it comes from any repository). Templates escape everything they print
(Jinja2 autoescape); the only HTML built here is the `<mark>` of a highlighted snippet, around
text that is escaped first, and links whose address is checked to be http(s).
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote, urlsplit

from markupsafe import Markup, escape

FACET_LABELS: dict[str, str] = {
    "subject": "Schlagwort",
    "type": "Dokumenttyp",
    "year": "Jahr",
    "author": "Person",
    "journal": "Zeitschrift",
    "language": "Sprache",
    "normalized_type": "Typ (vereinheitlicht)",
    "source": "Datenquelle",
    "set": "Set",
}
"""German names of the facet fields (`indexer.search_model.FACET_FIELDS`)."""

PAGE_FACETS: tuple[str, ...] = ("subject", "type", "year", "author", "journal", "language")
"""The facets the search page lists, in this order."""

NORMALIZED_TYPE_LABELS: dict[str, str] = {
    "article": "Artikel",
    "book": "Buch",
    "book part": "Buchbeitrag",
    "report": "Bericht",
    "thesis": "Hochschulschrift",
    "conference paper": "Konferenzbeitrag",
    "periodical": "Zeitschrift/Reihe",
    "grey literature": "Graue Literatur",
    "other": "Sonstiges",
}

LANGUAGE_LABELS: dict[str, str] = {
    "de": "Deutsch",
    "en": "Englisch",
    "fr": "Französisch",
    "it": "Italienisch",
    "es": "Spanisch",
    "nl": "Niederländisch",
    "pl": "Polnisch",
    "da": "Dänisch",
    "sv": "Schwedisch",
    "cs": "Tschechisch",
    "tr": "Türkisch",
    "ru": "Russisch",
    "pt": "Portugiesisch",
}

MONTHS = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)

_MARK = re.compile(r"(<mark>.*?</mark>)", re.DOTALL)
_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::\d{2})?Z?)?$")
_ISSUED = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def number(value: int | float) -> str:
    """A count the German way: `12.345`."""
    return f"{int(value):,}".replace(",", ".")


def milliseconds(value: float) -> str:
    """`4,1 ms`."""
    return f"{value:.1f}".replace(".", ",") + " ms"


def datestamp(value: str) -> str:
    """An OAI datestamp (`2022-11-25T09:41:17Z`) as `25.11.2022, 09:41 UTC`; others verbatim."""
    match = _DATETIME.match(value or "")
    if not match:
        return value or ""
    year, month, day, hour, minute = match.groups()
    text = f"{day}.{month}.{year}"
    return f"{text}, {hour}:{minute} UTC" if hour else text


def issued(value: str) -> str:
    """An issued date as precise as given: `2009`, `Mai 2009`, `12.05.2009`."""
    match = _ISSUED.match(value or "")
    if not match:
        return value or ""
    year, month, day = match.groups()
    if day:
        return f"{day}.{month}.{year}"
    if month and 1 <= int(month) <= 12:
        return f"{MONTHS[int(month) - 1]} {year}"
    return year


def language(code: str) -> str:
    return LANGUAGE_LABELS.get(code, code)


def facet_value(field: str, value: str) -> str:
    """A facet value as shown: language codes and the vocabulary types in German."""
    if field == "language":
        return language(value)
    if field == "normalized_type":
        return NORMALIZED_TYPE_LABELS.get(value, value)
    return value


def snippet(text: str) -> Markup:
    """A backend's highlight (HTML-encoded text with `<mark>` around matches) as safe HTML.

    Nothing of the record's text is trusted as markup: the text between the marks is decoded
    and escaped again, so only our own `<mark>` elements survive."""
    parts = []
    for part in _MARK.split(text):
        if part.startswith("<mark>") and part.endswith("</mark>"):
            parts.append(Markup("<mark>%s</mark>") % html.unescape(part[6:-7]))
        else:
            parts.append(escape(html.unescape(part)))
    return Markup("").join(parts)


def safe_url(url: str) -> str | None:
    """`url` if it is an absolute http(s) address (fit for an href), else None: a record's
    `javascript:`, `data:` or relative link is shown as text, never followed."""
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc and text == url.strip():
        return text
    return None


def doi_url(doi: str) -> str:
    return "https://doi.org/" + quote(doi, safe="/:;()._-")


def issn_url(issn: str) -> str:
    return "https://portal.issn.org/resource/ISSN/" + quote(issn, safe="-")


def urn_url(urn: str) -> str:
    return "https://nbn-resolving.org/" + quote(urn, safe=":.-")


def record_path(identifier: str) -> str:
    """The record page of an OAI identifier (`/records/oai:orlis.difu.de:difu/167832`)."""
    return "/records/" + quote(identifier, safe=":/@")
