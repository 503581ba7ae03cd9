"""A real OAI-PMH repository on loopback, serving `SampleRecord`s (pyoai behind wsgiref).

It behaves like a small DSpace 7 endpoint (`<host>/server/oai/request`): formats `dim` and
`oai_dc`, sets, persistent deleted records, seconds granularity, from/until, resumption tokens
with a configurable page size. Records are indexed once, sorted by datestamp, so each page is a
bisect plus a slice: 100,000 records are served as fast as 100.

    python -m harvester.demo.provider --port 8765              # the bundled sample
    python -m harvester.demo.provider --generate 100000        # synthetic records

In code (tests, `make demo`)::

    with serve(records, batch_size=25) as base_url:
        Sickle(base_url).ListRecords(metadataPrefix="dim")
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import types
import urllib.parse
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from lxml.etree import SubElement, _Element

from harvester.demo import DEMO_EXTRA_HINT, DemoExtraMissing
from harvester.demo.generate import SET_NAMES, generate_records
from harvester.demo.sample import DimField, SampleRecord, load_sample

# --- pyoai on Python 3.11 --------------------------------------------------------------------
# pyoai 2.5 decodes resumption tokens with `cgi.parse_qs`, which Python 3.8 removed (it lives on
# as `urllib.parse.parse_qs`), so every resumption request failed with badResumptionToken. The
# `cgi` module itself is deprecated (gone in 3.13): import it quietly where it exists, stand in a
# bare module where it does not, and give it `parse_qs`. This is the only patch to pyoai.
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import cgi
except ModuleNotFoundError:  # Python >= 3.13
    cgi = types.ModuleType("cgi")
    sys.modules["cgi"] = cgi
cgi.parse_qs = urllib.parse.parse_qs  # type: ignore[attr-defined]

try:
    from oaipmh import common, error  # (needs the shim above)
    from oaipmh.metadata import MetadataRegistry
    from oaipmh.server import BatchingServer
except ModuleNotFoundError as exc:  # the `demo` extra is not installed
    raise DemoExtraMissing(DEMO_EXTRA_HINT) from exc

log = logging.getLogger(__name__)

OAI_PATH = "/server/oai/request"
"""Where the endpoint answers, as in DSpace 7."""

DEFAULT_BATCH_SIZE = 100
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"

NS_DIM = "http://www.dspace.org/xmlns/dspace/dim"
NS_OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

METADATA_FORMATS = (
    ("oai_dc", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd", NS_OAI_DC),
    ("dim", "http://www.dspace.org/schema/dim.xsd", NS_DIM),
)
"""(prefix, schema, namespace) of every format served."""

PyoaiRecord = tuple[common.Header, SampleRecord, None]


# --- metadata writers ------------------------------------------------------------------------


def write_dim(parent: _Element, record: SampleRecord) -> None:
    """DSpace's `dim`: one `<dim:field mdschema="dc" element=.. qualifier=.. lang=..>` per value."""
    root = SubElement(parent, f"{{{NS_DIM}}}dim", nsmap={"dim": NS_DIM, "xsi": NS_XSI})
    root.set(f"{{{NS_XSI}}}schemaLocation", f"{NS_DIM} http://www.dspace.org/schema/dim.xsd")
    for dim_field in record.fields:
        element = SubElement(root, f"{{{NS_DIM}}}field", mdschema="dc", element=dim_field.element)
        if dim_field.qualifier is not None:
            element.set("qualifier", dim_field.qualifier)
        if dim_field.lang is not None:
            element.set("lang", dim_field.lang)
        element.text = dim_field.value


_OAI_DC_ORDER = (
    "title", "creator", "contributor", "subject", "description", "publisher", "date", "type",
    "identifier", "language", "relation", "rights",
)  # fmt: skip


def oai_dc_name(dim_field: DimField) -> str | None:
    """The `dc:` element a dim field becomes in oai_dc, as DSpace's crosswalk does it.

    Authors become dc:creator, other contributors dc:contributor; every dc.date.* (accessioned
    and available too) becomes a dc:date and every dc.identifier.* a dc:identifier, which is
    why an oai_dc crosswalk must not take the year from just any dc:date. Descriptions other
    than the abstract (internal codes) are left out.
    """
    if dim_field.element == "contributor":
        return "creator" if dim_field.qualifier == "author" else "contributor"
    if dim_field.element == "description" and dim_field.qualifier not in (None, "abstract"):
        return None
    return dim_field.element if dim_field.element in _OAI_DC_ORDER else None


def write_oai_dc(parent: _Element, record: SampleRecord) -> None:
    """Simple Dublin Core (`oai_dc:dc` with `dc:*` children), flattened from the dim fields."""
    root = SubElement(
        parent, f"{{{NS_OAI_DC}}}dc", nsmap={"oai_dc": NS_OAI_DC, "dc": NS_DC, "xsi": NS_XSI}
    )
    root.set(
        f"{{{NS_XSI}}}schemaLocation",
        f"{NS_OAI_DC} http://www.openarchives.org/OAI/2.0/oai_dc.xsd",
    )
    named = [(name, f) for f in record.fields if (name := oai_dc_name(f)) is not None]
    named.sort(key=lambda pair: _OAI_DC_ORDER.index(pair[0]))  # stable: keeps value order
    for name, dim_field in named:
        element = SubElement(root, f"{{{NS_DC}}}{name}")
        element.text = dim_field.value
        if dim_field.lang is not None:
            element.set(XML_LANG, dim_field.lang)


def _metadata_registry() -> MetadataRegistry:
    registry = MetadataRegistry()
    registry.registerWriter("oai_dc", write_oai_dc)
    registry.registerWriter("dim", write_dim)
    return registry


# --- the repository --------------------------------------------------------------------------


def _parse_datestamp(datestamp: str) -> datetime:
    """`2022-11-25T09:41:17Z` -> naive UTC datetime (what pyoai works with)."""
    return datetime.fromisoformat(datestamp.removesuffix("Z"))


@dataclass(slots=True)
class _Timeline:
    """Records in datestamp order with their datestamps alongside, for bisecting from/until."""

    records: list[PyoaiRecord] = field(default_factory=list)
    datestamps: list[datetime] = field(default_factory=list)

    def window(self, from_: datetime | None, until: datetime | None) -> tuple[int, int]:
        """Index range of the records with from_ <= datestamp <= until (both inclusive)."""
        low = 0 if from_ is None else bisect_left(self.datestamps, from_)
        high = len(self.datestamps) if until is None else bisect_right(self.datestamps, until)
        return low, max(low, high)


class SampleRepository:
    """pyoai's IBatchingOAI over in-memory records: everything indexed once, pages sliced.

    Method and argument names (`listRecords`, `metadataPrefix`, `set`) are the ones pyoai calls.
    """

    def __init__(self, records: Iterable[SampleRecord], base_url: str = "") -> None:
        self.base_url = base_url
        self._by_identifier: dict[str, PyoaiRecord] = {}
        for record in records:
            datestamp = _parse_datestamp(record.datestamp)
            header = common.Header(
                None, record.identifier, datestamp, list(record.sets), record.deleted
            )
            self._by_identifier[record.identifier] = (header, record, None)
        ordered = sorted(
            self._by_identifier.values(), key=lambda r: (r[0].datestamp(), r[0].identifier())
        )
        self._timelines: dict[str | None, _Timeline] = {None: _Timeline()}
        for entry in ordered:
            header = entry[0]
            for spec in (None, *dict.fromkeys(header.setSpec())):
                timeline = self._timelines.setdefault(spec, _Timeline())
                timeline.records.append(entry)
                timeline.datestamps.append(header.datestamp())

    def identify(self) -> common.Identify:
        everything = self._timelines[None].datestamps
        return common.Identify(
            repositoryName="ernte demo repository (ORLIS-like SAMPLE DATA, not real records)",
            baseURL=self.base_url,
            protocolVersion="2.0",
            adminEmails=["ernte-demo@localhost"],
            earliestDatestamp=everything[0] if everything else datetime(2019, 1, 1),
            deletedRecord="persistent",
            granularity=GRANULARITY,
            compression=["identity"],
            toolkit_description=False,
        )

    def listMetadataFormats(self, identifier: str | None = None) -> list[tuple[str, str, str]]:
        if identifier is not None and identifier not in self._by_identifier:
            raise error.IdDoesNotExistError(f"No record with identifier {identifier}")
        return list(METADATA_FORMATS)

    def listSets(
        self, cursor: int = 0, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> list[tuple[str, str, None]]:
        specs = sorted(spec for spec in self._timelines if spec is not None)
        if not specs:
            raise error.NoSetHierarchyError("This repository has no sets")
        page = specs[cursor : cursor + batch_size]
        return [(spec, SET_NAMES.get(spec, spec), None) for spec in page]

    def listRecords(
        self,
        metadataPrefix: str,
        set: str | None = None,
        from_: datetime | None = None,
        until: datetime | None = None,
        cursor: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> list[PyoaiRecord]:
        self._check_prefix(metadataPrefix)
        timeline = self._timelines.get(set)
        if timeline is None:
            return []  # pyoai turns an empty first page into noRecordsMatch
        low, high = timeline.window(from_, until)
        start = low + int(cursor)
        return timeline.records[start : min(high, start + int(batch_size))]

    def listIdentifiers(
        self,
        metadataPrefix: str,
        set: str | None = None,
        from_: datetime | None = None,
        until: datetime | None = None,
        cursor: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> list[common.Header]:
        page = self.listRecords(metadataPrefix, set, from_, until, cursor, batch_size)
        return [header for header, _, _ in page]

    def getRecord(self, metadataPrefix: str, identifier: str) -> PyoaiRecord:
        self._check_prefix(metadataPrefix)
        try:
            return self._by_identifier[identifier]
        except KeyError:
            raise error.IdDoesNotExistError(f"No record with identifier {identifier}") from None

    @staticmethod
    def _check_prefix(prefix: str) -> None:
        if prefix not in {p for p, _, _ in METADATA_FORMATS}:
            raise error.CannotDisseminateFormatError(f"Unknown metadata format: {prefix}")


# --- HTTP ------------------------------------------------------------------------------------


class OAIApplication:
    """WSGI app: GET or POST OAI-PMH requests at OAI_PATH, answered by pyoai."""

    def __init__(self, repository: SampleRepository, batch_size: int) -> None:
        self._server = BatchingServer(
            repository, metadata_registry=_metadata_registry(), resumption_batch_size=batch_size
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO", "") != OAI_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"No OAI-PMH endpoint here; try {OAI_PATH}\n".encode()]
        query = environ.get("QUERY_STRING", "")
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            query = environ["wsgi.input"].read(length).decode("utf-8")
        body = self.respond(query)
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8")])
        return [body]

    def respond(self, query: str) -> bytes:
        """The OAI-PMH response for one urlencoded query string."""
        arguments = urllib.parse.parse_qs(query, keep_blank_values=True)
        repeated = sorted(name for name, values in arguments.items() if len(values) > 1)
        if repeated:
            problem = error.BadArgumentError(f"Repeated argument(s): {', '.join(repeated)}")
            return self._server.handleException({}, (type(problem), problem, None))
        request = {name: values[0] for name, values in arguments.items()}
        return self._server.handleRequest(request)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to `logging` at DEBUG instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("demo provider: " + format, *args)


@contextmanager
def serve(
    records: Sequence[SampleRecord] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[str]:
    """Serve `records` (default: the bundled sample) in a background thread.

    Yields the base URL (`http://127.0.0.1:<port>/server/oai/request`); port 0 picks a free
    port. The server stops when the block exits.
    """
    repository = SampleRepository(load_sample() if records is None else records)
    app = OAIApplication(repository, batch_size)
    server = make_server(
        host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    repository.base_url = f"http://{host}:{server.server_port}{OAI_PATH}"
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # shutdown() waits up to one interval
        name="demo-oai-provider",
        daemon=True,
    )
    thread.start()
    log.info(
        "demo OAI-PMH provider serving",
        extra={"base_url": repository.base_url, "batch_size": batch_size},
    )
    try:
        yield repository.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the bundled sample (or N generated records) until Ctrl-C."""
    parser = argparse.ArgumentParser(description="ernte's demo OAI-PMH provider (loopback)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--generate", type=int, metavar="N", help="serve N synthetic records instead"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --generate")
    args = parser.parse_args(argv)
    records = (
        list(generate_records(args.generate, seed=args.seed)) if args.generate else load_sample()
    )
    with serve(records, port=args.port, batch_size=args.batch_size) as base_url:
        print(f"OAI-PMH base URL: {base_url}  ({len(records)} records; Ctrl-C stops)", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
