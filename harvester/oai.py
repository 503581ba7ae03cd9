"""Talking OAI-PMH: one request, one checked answer.

Requests go through `sickle` (its `Sickle.harvest` request building and its `Header`/`Identify`
models), but over ernte's own HTTP client (timeouts, backoff, Retry-After) and ernte's own
parser: bytes are repaired before a strict parse, because sickle's recover-mode parser silently
drops data from damaged pages.

What an answer means is decided by its body, not its HTTP status: an OAI `<error>` element is an
OAI error (`noRecordsMatch` is an empty result, whatever the status); anything that is not an
`<OAI-PMH>` document is a `NotOAIResponse` naming what came back instead.
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

from harvester.http import HTTPClient, HTTPFailure, HTTPResponse
from harvester.model import RawRecord
from harvester.xmlsafe import XMLSyntaxError, local_name, parse_xml, repair_xml_bytes

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
ISO_DATESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?Z)?$")


class OAIError(RuntimeError):
    """An OAI-PMH error the server reported in the body (badArgument, badResumptionToken, ...)."""

    def __init__(self, code: str, message: str, url: str, status: int) -> None:
        self.code = code
        self.message = message
        self.url = url
        self.status = status
        super().__init__(f"OAI error {code}: {message or '(no message)'} [HTTP {status}, {url}]")


class NotOAIResponse(RuntimeError):
    """The server answered with something that is not an OAI-PMH response."""

    def __init__(self, url: str, what: str, status: int) -> None:
        self.url = url
        self.what = what
        self.status = status
        super().__init__(f"not an OAI-PMH response from {url} (HTTP {status}): {what}")


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
class SetInfo:
    spec: str
    name: str


@dataclass(slots=True)
class FormatInfo:
    prefix: str
    schema: str
    namespace: str


class _CheckedResponse(OAIResponse):  # type: ignore[misc]
    """A sickle response whose XML is repaired, parsed strictly and checked to be OAI-PMH."""

    def __init__(self, response: HTTPResponse, params: dict[str, str]) -> None:
        super().__init__(http_response=None, params=params)
        self.response = response
        repaired = repair_xml_bytes(response.body)
        self.repaired_chars = repaired.removed
        self._root = _check_oai_root(response, repaired.data)

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
    if root is not None:
        return f"an XML document whose root is <{local_name(root)}> ({root.tag}, {ctype})"
    head = body[:2048].decode("utf-8", "replace")
    if re.search(r"<html|<!doctype html", head, re.IGNORECASE):
        title = re.search(r"<title[^>]*>(.*?)</title>", head, re.IGNORECASE | re.DOTALL)
        label = f" titled {title.group(1).strip()!r}" if title else ""
        return f"an HTML page{label} ({ctype})"
    snippet = " ".join(head.split())[:120]
    return f"a body that is not well-formed XML ({ctype}): {snippet!r}"


def _check_oai_root(response: HTTPResponse, data: bytes) -> etree._Element:
    try:
        root = parse_xml(data) if data.strip() else None
    except XMLSyntaxError as exc:
        if response.status >= 400:
            raise HTTPFailure(
                response.url, _describe_non_oai(response, None), response.status
            ) from exc
        what = _describe_non_oai(response, None)
        if what.startswith("a body that is not"):
            what = f"malformed XML ({exc}); starts {what.partition(':')[2].strip()}"
        raise NotOAIResponse(response.url, what, response.status) from exc
    if root is None or local_name(root) != "OAI-PMH":
        if response.status >= 400:
            raise HTTPFailure(response.url, _describe_non_oai(response, root), response.status)
        raise NotOAIResponse(response.url, _describe_non_oai(response, root), response.status)
    return root


def _ns(root: etree._Element) -> str:
    tag = root.tag if isinstance(root.tag, str) else ""
    return tag[: tag.index("}") + 1] if tag.startswith("{") else ""


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


class _SickleOverErnteHTTP(Sickle):  # type: ignore[misc]
    """sickle's client, with requests sent through ernte's HTTP client."""

    def __init__(self, endpoint: str, http: HTTPClient) -> None:
        super().__init__(endpoint)
        self._http = http

    def harvest(self, **kwargs: str) -> _CheckedResponse:
        response = self._http.get(self.endpoint, kwargs)
        return _CheckedResponse(response, dict(kwargs))


class OAIClient:
    """One OAI-PMH endpoint: Identify, ListMetadataFormats, ListSets and ListRecords pages."""

    def __init__(self, base_url: str, http: HTTPClient) -> None:
        self.base_url = base_url
        self.http = http
        self._sickle = _SickleOverErnteHTTP(base_url, http)

    def request(self, **params: str) -> _CheckedResponse:
        """One verb; raises OAIError for an error in the body (noRecordsMatch included)."""
        response = self._sickle.harvest(**params)
        errors = response.xml.findall(f"{_ns(response.xml)}error")
        if errors:
            first = errors[0]
            raise OAIError(
                first.get("code", "unknown"),
                " ".join((first.text or "").split()),
                response.response.url,
                response.response.status,
            )
        if response.response.status >= 400:
            raise HTTPFailure(
                response.response.url,
                "OAI-PMH body without error element",
                response.response.status,
            )
        return response

    def identify(self) -> IdentifyInfo:
        response = self.request(verb="Identify")
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
        ns = _ns(response.xml)
        return [
            FormatInfo(
                prefix=(fmt.findtext(f"{ns}metadataPrefix") or "").strip(),
                schema=(fmt.findtext(f"{ns}schema") or "").strip(),
                namespace=(fmt.findtext(f"{ns}metadataNamespace") or "").strip(),
            )
            for fmt in response.xml.iter(f"{ns}metadataFormat")
        ]

    def list_sets(self, max_pages: int = 10_000) -> Iterator[SetInfo]:
        """All sets, following resumption tokens; stops with an error on a repeated token."""
        params: dict[str, str] = {"verb": "ListSets"}
        seen: set[str] = set()
        for _ in range(max_pages):
            try:
                response = self.request(**params)
            except OAIError as exc:
                if exc.code == "noSetHierarchy":
                    return
                raise
            ns = _ns(response.xml)
            for el in response.xml.iter(f"{ns}set"):
                yield SetInfo(
                    spec=(el.findtext(f"{ns}setSpec") or "").strip(),
                    name=" ".join((el.findtext(f"{ns}setName") or "").split()),
                )
            token_el = response.xml.find(f".//{ns}resumptionToken")
            token = (token_el.text or "").strip() if token_el is not None else ""
            if not token:
                return
            if token in seen:
                raise OAIError(
                    "loop",
                    f"server repeated resumption token {token!r}",
                    response.response.url,
                    200,
                )
            seen.add(token)
            params = {"verb": "ListSets", "resumptionToken": token}

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
        except OAIError as exc:
            if exc.code == "noRecordsMatch":
                return Page(url=exc.url, records=[], token=None, no_records_match=True)
            raise
        return _read_page(response, metadata_prefix)


def _read_page(response: _CheckedResponse, metadata_prefix: str) -> Page:
    root = response.xml
    ns = _ns(root)
    page = Page(
        url=response.response.url,
        records=[],
        token=None,
        response_date=(root.findtext(f"{ns}responseDate") or "").strip(),
        repaired_chars=response.repaired_chars,
    )
    list_el = root.find(f"{ns}ListRecords")
    if list_el is None:
        raise NotOAIResponse(page.url, "an OAI-PMH response without a ListRecords element", 200)
    for record_el in list_el.iterfind(f"{ns}record"):
        header_el = record_el.find(f"{ns}header")
        if header_el is None:
            page.warnings.append("record without header skipped")
            page.headers_without_identifier.append(etree.tostring(record_el))
            continue
        header = Header(header_el)
        identifier = (header.identifier or "").strip()
        if not identifier:
            page.headers_without_identifier.append(etree.tostring(record_el))
            page.warnings.append("record without identifier")
            continue
        datestamp = (header.datestamp or "").strip()
        if not ISO_DATESTAMP.match(datestamp):
            page.warnings.append(f"{identifier}: datestamp {datestamp!r} is not ISO 8601")
        page.records.append(
            RawRecord(
                identifier=identifier,
                datestamp=datestamp,
                deleted=header.deleted,
                sets=list(dict.fromkeys(s.strip() for s in header.setSpecs if s and s.strip())),
                xml=etree.tostring(record_el, encoding="utf-8"),
                metadata_prefix=metadata_prefix,
            )
        )
    token_el = list_el.find(f"{ns}resumptionToken")
    if token_el is not None:
        page.token = (token_el.text or "").strip() or None
        page.cursor = _int_or_none(token_el.get("cursor"))
        page.complete_list_size = _int_or_none(token_el.get("completeListSize"))
        page.expiration_date = token_el.get("expirationDate")
    return page
