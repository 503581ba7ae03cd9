"""Talking OAI-PMH: one request, one checked answer.

Requests go through `sickle` (its `Sickle.harvest` request building and its `Header`/`Identify`
models), but over ernte's own HTTP client (timeouts, backoff, Retry-After) and ernte's own
parser: bytes are repaired before a strict parse, because sickle's recover-mode parser silently
drops data from damaged pages.

What an answer means is decided by its body, not its HTTP status: an OAI `<error>` element is an
OAI error (`noRecordsMatch` is an empty result, whatever the status); anything that is not an
`<OAI-PMH>` document is a `NotOAIResponse` naming what came back instead.

Each error code of the protocol has its own `OAIError` subclass (`BadResumptionToken`,
`NoRecordsMatch`, ...), so callers catch the one they handle. What ernte's own checks find wrong
with a list the server sent without complaint (a token sent twice, a list without end) is an
`OAIProtocolError` instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from sickle import Sickle
from sickle.models import Header, Identify
from sickle.response import OAIResponse

from harvester.errors import ErnteError
from harvester.model import RawRecord
from harvester.oai.http import HTTPClient, HTTPFailure, HTTPResponse
from harvester.oai.xmlsafe import (
    XMLSyntaxError,
    local_name,
    parse_xml,
    repair_damaged_xml,
    repair_xml_bytes,
)

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
ISO_DATESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?Z)?$")


class OAIError(ErnteError, RuntimeError):
    """An OAI-PMH error the server reported in the body; one subclass per code of the protocol.

    `OAIError.from_body` picks the subclass for a code; a code the protocol does not define
    stays a plain OAIError that carries it.
    """

    code = ""

    def __init__(
        self, code: str, message: str, url: str, status: int, response_date: str = ""
    ) -> None:
        self.code = code
        self.message = message
        self.url = url
        self.status = status
        self.response_date = response_date
        super().__init__(f"OAI error {code}: {message or '(no message)'} [HTTP {status}, {url}]")

    @staticmethod
    def from_body(
        code: str, message: str, url: str, status: int, response_date: str = ""
    ) -> OAIError:
        """The exception for an `<error code="...">` element: its own type for each known code."""
        kind = OAI_ERROR_TYPES.get(code, OAIError)
        return kind(code, message, url, status, response_date)


class BadArgument(OAIError):
    """badArgument: the request has an illegal, missing or repeated argument."""

    code = "badArgument"


class BadResumptionToken(OAIError):
    """badResumptionToken: the token is invalid or expired (a harvest restarts its window)."""

    code = "badResumptionToken"


class BadVerb(OAIError):
    """badVerb: the verb is missing, illegal or repeated."""

    code = "badVerb"


class CannotDisseminateFormat(OAIError):
    """cannotDisseminateFormat: the repository does not offer the metadata prefix asked for."""

    code = "cannotDisseminateFormat"


class IdDoesNotExist(OAIError):
    """idDoesNotExist: no record with that identifier."""

    code = "idDoesNotExist"


class NoRecordsMatch(OAIError):
    """noRecordsMatch: the list asked for is empty (ernte reads it as an empty result)."""

    code = "noRecordsMatch"


class NoMetadataFormats(OAIError):
    """noMetadataFormats: no metadata format is available for the item."""

    code = "noMetadataFormats"


class NoSetHierarchy(OAIError):
    """noSetHierarchy: the repository has no sets."""

    code = "noSetHierarchy"


OAI_ERROR_TYPES: dict[str, type[OAIError]] = {
    kind.code: kind
    for kind in (
        BadArgument,
        BadResumptionToken,
        BadVerb,
        CannotDisseminateFormat,
        IdDoesNotExist,
        NoRecordsMatch,
        NoMetadataFormats,
        NoSetHierarchy,
    )
}
"""Every error code of OAI-PMH 2.0 (section 3.6) -> its exception type."""


class NotOAIResponse(ErnteError, RuntimeError):
    """The server answered with something that is not an OAI-PMH response."""

    def __init__(self, url: str, what: str, status: int, message: str | None = None) -> None:
        self.url = url
        self.what = what
        self.status = status
        super().__init__(message or f"not an OAI-PMH response from {url} (HTTP {status}): {what}")


class MalformedXML(NotOAIResponse):
    """A response that is XML, or meant to be, but not well-formed even after ernte's repairs;
    the message says where the parser stopped."""

    def __init__(self, url: str, reason: str, status: int) -> None:
        message = f"malformed XML from {url} (HTTP {status}): {reason}"
        super().__init__(url, f"malformed XML ({reason})", status, message)


class OAIProtocolError(ErnteError, RuntimeError):
    """A list that breaks the protocol as ernte's own checks see it (the server sent no error):
    a resumption token sent twice, a list that never ends. The message names the request."""


class RepeatedResumptionToken(OAIProtocolError):
    """The server sent a resumption token it had already sent in this list: following it loops."""


class TooManyPages(OAIProtocolError):
    """A list still going after more pages than any repository needs."""


class TooManyEmptyPages(OAIProtocolError):
    """Page after page without records, each with a new token: a list that does not advance."""


@dataclass(slots=True)
class IdentifyInfo:
    """What Identify says about a repository (the parts a harvest depends on)."""

    repository_name: str
    base_url: str
    protocol_version: str
    granularity: str
    earliest_datestamp: str
    deleted_record: str
    admin_emails: list[str] = field(default_factory=list)

    @property
    def seconds_granularity(self) -> bool:
        return "hh" in self.granularity


@dataclass(slots=True)
class Page:
    """One ListRecords page: its records and where the list goes on."""

    url: str
    records: list[RawRecord]
    token: str | None
    cursor: int | None = None
    complete_list_size: int | None = None
    expiration_date: str | None = None
    response_date: str = ""
    repaired_chars: int = 0
    warnings: list[str] = field(default_factory=list)
    no_records_match: bool = False
    headers_without_identifier: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class HeaderInfo:
    """One header of ListIdentifiers."""

    identifier: str
    datestamp: str
    deleted: bool
    sets: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SetInfo:
    spec: str
    name: str


@dataclass(slots=True)
class FormatInfo:
    prefix: str
    schema: str
    namespace: str


class _CheckedResponse(OAIResponse):
    """A sickle response whose XML is repaired, parsed strictly and checked to be OAI-PMH."""

    def __init__(self, response: HTTPResponse, params: dict[str, str]) -> None:
        super().__init__(http_response=None, params=params)
        self.response = response
        repaired = repair_xml_bytes(response.body)
        self._root, deeper = _check_oai_root(response, repaired.data)
        self.repaired_chars = repaired.removed + deeper

    @property
    def raw(self) -> str:
        return self.response.body.decode("utf-8", "replace")

    @property
    def xml(self) -> etree._Element:
        return self._root


def _describe_non_oai(response: HTTPResponse, root: etree._Element | None) -> str:
    body = response.body
    if not body.strip():
        return "an empty body"
    ctype = response.content_type or "no Content-Type"
    if root is not None and local_name(root).lower() != "html":
        return f"an XML document whose root is <{local_name(root)}> ({root.tag}, {ctype})"
    if body[:2] == b"\x1f\x8b":
        return f"a gzip-compressed body of {len(body):,} bytes sent without Content-Encoding"
    head = body[:2048].decode("utf-8", "replace")
    if re.search(r"<html|<!doctype html", head, re.IGNORECASE):
        title = re.search(r"<title[^>]*>(.*?)</title>", head, re.IGNORECASE | re.DOTALL)
        label = f" titled {title.group(1).strip()!r}" if title else ""
        return f"an HTML page{label} ({ctype})"
    snippet = "".join(c if c.isprintable() else "\ufffd" for c in " ".join(head.split())[:120])
    return f"a body that is not well-formed XML ({ctype}): {snippet!r}"


def _check_oai_root(response: HTTPResponse, data: bytes) -> tuple[etree._Element, int]:
    """The `<OAI-PMH>` root of a response, and how many characters the deeper repairs
    (`repair_damaged_xml`, tried only on a page that does not parse) replaced or removed."""
    repaired = 0
    try:
        try:
            root = parse_xml(data) if data.strip() else None
        except XMLSyntaxError as first:
            deeper = repair_damaged_xml(data)
            if deeper.data == data:
                raise
            try:
                root = parse_xml(deeper.data)
            except XMLSyntaxError:
                raise first from None  # its line and column are those of the body as sent
            repaired = deeper.removed
    except XMLSyntaxError as exc:
        if response.status >= 400:
            raise HTTPFailure(
                response.named, _describe_non_oai(response, None), response.status
            ) from exc
        what = _describe_non_oai(response, None)
        if what.startswith("a body that is not"):
            raise MalformedXML(response.named, str(exc), response.status) from exc
        raise NotOAIResponse(response.named, what, response.status) from exc
    if root is None or local_name(root) != "OAI-PMH":
        if response.status >= 400:
            raise HTTPFailure(response.named, _describe_non_oai(response, root), response.status)
        raise NotOAIResponse(response.named, _describe_non_oai(response, root), response.status)
    return root, repaired


def _ns(root: etree._Element) -> str:
    tag = root.tag if isinstance(root.tag, str) else ""
    return tag[: tag.index("}") + 1] if tag.startswith("{") else ""


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


class _SickleOverErnteHTTP(Sickle):
    """sickle's client, with requests sent through ernte's HTTP client."""

    def __init__(self, endpoint: str, http: HTTPClient) -> None:
        super().__init__(endpoint)
        self._http = http

    def harvest(self, **kwargs: str) -> _CheckedResponse:
        response = self._http.get(self.endpoint, kwargs)
        return _CheckedResponse(response, dict(kwargs))


class OAIClient:
    """One OAI-PMH endpoint: Identify, ListMetadataFormats, ListSets, ListIdentifiers,
    ListRecords pages and GetRecord; each answer checked to be the verb that was asked."""

    def __init__(self, base_url: str, http: HTTPClient) -> None:
        self.base_url = base_url
        self.http = http
        self._sickle = _SickleOverErnteHTTP(base_url, http)

    def request(self, **params: str) -> _CheckedResponse:
        """One verb; raises the OAIError subclass of an error in the body (NoRecordsMatch too)."""
        response = self._sickle.harvest(**params)
        errors = response.xml.findall(f"{_ns(response.xml)}error")
        if errors:
            first = errors[0]
            raise OAIError.from_body(
                first.get("code", "unknown"),
                " ".join((first.text or "").split()),
                response.response.named,
                response.response.status,
                (response.xml.findtext(f"{_ns(response.xml)}responseDate") or "").strip(),
            )
        if response.response.status >= 400:
            raise HTTPFailure(
                response.response.named,
                "OAI-PMH body without error element",
                response.response.status,
            )
        return response

    def identify(self) -> IdentifyInfo:
        response = self.request(verb="Identify")
        _expect_verb(response, "Identify")
        info = Identify(response)
        emails = response.xml.findall(f".//{_ns(response.xml)}adminEmail")
        return IdentifyInfo(
            repository_name=str(getattr(info, "repositoryName", "") or ""),
            base_url=str(getattr(info, "baseURL", "") or self.base_url),
            protocol_version=str(getattr(info, "protocolVersion", "") or ""),
            granularity=str(getattr(info, "granularity", "") or "YYYY-MM-DD").strip(),
            earliest_datestamp=str(getattr(info, "earliestDatestamp", "") or "").strip(),
            deleted_record=str(getattr(info, "deletedRecord", "") or "").strip(),
            admin_emails=[(e.text or "").strip() for e in emails],
        )

    def list_formats(self) -> list[FormatInfo]:
        response = self.request(verb="ListMetadataFormats")
        formats = _expect_verb(response, "ListMetadataFormats")
        ns = _ns(response.xml)
        return [
            FormatInfo(
                prefix=(fmt.findtext(f"{ns}metadataPrefix") or "").strip(),
                schema=(fmt.findtext(f"{ns}schema") or "").strip(),
                namespace=(fmt.findtext(f"{ns}metadataNamespace") or "").strip(),
            )
            for fmt in formats.iterfind(f"{ns}metadataFormat")
        ]

    def _follow(
        self,
        verb: str,
        params: dict[str, str],
        max_pages: int,
        empty_errors: tuple[type[OAIError], ...],
    ) -> Iterator[etree._Element]:
        """The `verb` element of every page of a list, following resumption tokens.

        The list ends at a missing or empty token (or an OAI error in `empty_errors`); a token
        the server already sent is a loop and an error, and so is a list longer than
        `max_pages`, rather than a silently truncated answer.
        """
        request = {"verb": verb, **params}
        seen: set[str] = set()
        for _ in range(max_pages):
            try:
                response = self.request(**request)
            except empty_errors:
                return
            found = _expect_verb(response, verb)
            yield found
            token_el = found.find(f"{_ns(response.xml)}resumptionToken")
            token = (token_el.text or "").strip() if token_el is not None else ""
            if not token:
                return
            if token in seen:
                raise RepeatedResumptionToken(
                    f"server repeated resumption token {token!r} [{response.response.named}]"
                )
            seen.add(token)
            request = {"verb": verb, "resumptionToken": token}
        raise TooManyPages(f"{verb} still going after {max_pages} pages [{self.base_url}]")

    def list_sets(self, max_pages: int = 10_000) -> Iterator[SetInfo]:
        """All sets, over every page of ListSets (MIT DSpace pages them)."""
        for sets_el in self._follow("ListSets", {}, max_pages, (NoSetHierarchy,)):
            ns = _ns(sets_el)
            for el in sets_el.iterfind(f"{ns}set"):
                yield SetInfo(
                    spec=(el.findtext(f"{ns}setSpec") or "").strip(),
                    name=" ".join((el.findtext(f"{ns}setName") or "").split()),
                )

    def list_identifiers(
        self, metadata_prefix: str, set_spec: str | None = None, max_pages: int = 100_000
    ) -> Iterator[HeaderInfo]:
        """Every header of a list (live and deleted), over all pages; for checks, not harvests.

        Lets ernte compare what a repository holds with the archive without fetching metadata
        (repositories with `deletedRecord=no` never report deletions otherwise).
        """
        params = {"metadataPrefix": metadata_prefix}
        if set_spec:
            params["set"] = set_spec
        for list_el in self._follow("ListIdentifiers", params, max_pages, (NoRecordsMatch,)):
            ns = _ns(list_el)
            for header_el in list_el.iterfind(f"{ns}header"):
                header = Header(header_el)
                yield HeaderInfo(
                    identifier=(header.identifier or "").strip(),
                    datestamp=(header.datestamp or "").strip(),
                    deleted=header.deleted,
                    sets=[s.strip() for s in header.setSpecs if s and s.strip()],
                )

    def list_records_page(
        self,
        *,
        metadata_prefix: str,
        token: str | None = None,
        set_spec: str | None = None,
        from_: str | None = None,
        until: str | None = None,
    ) -> Page:
        """Fetch one ListRecords page (the first of a window, or the one a token points to)."""
        params: dict[str, Any]
        if token:
            params = {"verb": "ListRecords", "resumptionToken": token}
        else:
            params = {"verb": "ListRecords", "metadataPrefix": metadata_prefix}
            if set_spec:
                params["set"] = set_spec
            if from_:
                params["from"] = from_
            if until:
                params["until"] = until
        try:
            response = self.request(**params)
        except NoRecordsMatch as exc:
            return Page(
                url=exc.url,
                records=[],
                token=None,
                response_date=exc.response_date,
                no_records_match=True,
            )
        return _read_page(response, metadata_prefix)

    def get_record(self, identifier: str, metadata_prefix: str) -> Page:
        """GetRecord: a one-record page (live or deleted); idDoesNotExist raises IdDoesNotExist."""
        response = self.request(
            verb="GetRecord", identifier=identifier, metadataPrefix=metadata_prefix
        )
        container = _expect_verb(response, "GetRecord")
        page = _empty_page(response)
        ns = _ns(response.xml)
        for record_el in container.iterfind(f"{ns}record"):
            _read_record(record_el, ns, metadata_prefix, page)
        return page


def _verb_element(root: etree._Element) -> etree._Element | None:
    """The element that carries the answer (ListRecords, GetRecord, ...), after the envelope."""
    for child in root:
        if isinstance(child.tag, str) and local_name(child) not in ("responseDate", "request"):
            return child
    return None


def _expect_verb(response: _CheckedResponse, verb: str) -> etree._Element:
    """The answer's `verb` element; a response that answers another verb is not what was asked."""
    root = response.xml
    found = root.find(f"{_ns(root)}{verb}")
    if found is not None:
        return found
    other = _verb_element(root)
    what = (
        f"an OAI-PMH {local_name(other)} response, not {verb}"
        if other is not None
        else f"an OAI-PMH envelope without a {verb} element"
    )
    raise NotOAIResponse(response.response.named, what, response.response.status)


def _read_record(record_el: etree._Element, ns: str, metadata_prefix: str, into: Page) -> None:
    """Append one `<record>` to the page as a RawRecord, or set it aside if it has no identity.

    The datestamp is kept as sent; one that is not ISO 8601 (Harvard's `20210311`) is a warning,
    not a reason to drop the record.
    """
    header_el = record_el.find(f"{ns}header")
    identifier = ""
    if header_el is not None:
        header = Header(header_el)
        identifier = (header.identifier or "").strip()
    if header_el is None or not identifier:
        into.headers_without_identifier.append(
            etree.tostring(record_el, encoding="utf-8", with_tail=False)
        )
        into.warnings.append("record without header identifier set aside")
        return
    datestamp = (header.datestamp or "").strip()
    if not ISO_DATESTAMP.match(datestamp):
        into.warnings.append(f"{identifier}: datestamp {datestamp!r} is not ISO 8601")
    into.records.append(
        RawRecord(
            identifier=identifier,
            datestamp=datestamp,
            deleted=header.deleted,
            sets=list(dict.fromkeys(s.strip() for s in header.setSpecs if s and s.strip())),
            xml=etree.tostring(record_el, encoding="utf-8", with_tail=False),
            element=record_el,
            metadata_prefix=metadata_prefix,
        )
    )


def _empty_page(response: _CheckedResponse) -> Page:
    root = response.xml
    return Page(
        url=response.response.url,
        records=[],
        token=None,
        response_date=(root.findtext(f"{_ns(root)}responseDate") or "").strip(),
        repaired_chars=response.repaired_chars,
    )


def _read_page(response: _CheckedResponse, metadata_prefix: str) -> Page:
    """A ListRecords page: every record (live and deleted) and the resumption token.

    The list goes on only while a non-empty token comes back; cursor and completeListSize are
    kept for progress and never decide (DSpace's cursor counts pages, not records).
    """
    list_el = _expect_verb(response, "ListRecords")
    ns = _ns(response.xml)
    page = _empty_page(response)
    for record_el in list_el.iterfind(f"{ns}record"):
        _read_record(record_el, ns, metadata_prefix, page)
    token_el = list_el.find(f"{ns}resumptionToken")
    if token_el is not None:
        page.token = (token_el.text or "").strip() or None
        page.cursor = _int_or_none(token_el.get("cursor"))
        page.complete_list_size = _int_or_none(token_el.get("completeListSize"))
        page.expiration_date = token_el.get("expirationDate")
    return page
