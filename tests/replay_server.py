"""A replaying OAI-PMH server on 127.0.0.1 for the real-server samples in ../shared/oai-samples.

Each test names the SEQUENCE of sample files a repository answers with, one file per request, in
order, each with the HTTP status (null => 200) and Content-Type recorded in `index.json`; the
harvester then meets exactly what a real server once sent. `verb=Identify` and
`verb=ListMetadataFormats` are answered from real Identify / ListMetadataFormats samples whatever
the position in the sequence (a harvest asks Identify first; that must not eat a page). Every
request is recorded, so a test can check what ernte asked for (a resumption token, a restarted
window), and a request past the end of the sequence is answered with HTTP 410 and counted, so a
harvester that does not stop shows up as a failure instead of a hang.

The samples stay outside the project: the `replay_samples` fixture skips with a reason when the
folder is absent. `ERNTE_OAI_SAMPLES` points it elsewhere (used to check that skip).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from harvester.model import RawRecord
from harvester.sources import adhoc_key
from harvester.store.archive import RawArchive, archives_of

SAMPLES_ENV = "ERNTE_OAI_SAMPLES"
DEFAULT_IDENTIFY = "invenio_zenodo_identify.xml"
DEFAULT_FORMATS = "invenio_zenodo_listmetadataformats.xml"
OAI_PATH = "/oai/request"


@dataclass(frozen=True, slots=True)
class Sample:
    """One captured response: its bytes and how it was served."""

    name: str
    body: bytes
    status: int
    content_type: str

    def headers(self) -> list[tuple[str, bool]]:
        """(identifier, deleted) of every record header, read with a regex, not ernte's parser.

        An independent oracle for what must end up in the archive; it works on the damaged
        samples too.
        """
        return [
            (identifier.decode("utf-8").strip(), b"deleted" in attributes)
            for attributes, identifier in _HEADER.findall(self.body)
        ]


_HEADER = re.compile(rb"<header([^>]*)>\s*<identifier>([^<]*)</identifier>")


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A request the server answered, and the sample it answered with."""

    params: dict[str, str]
    served: str

    @property
    def verb(self) -> str:
        return self.params.get("verb", "")


class SampleLibrary:
    """The samples folder with its index: file name -> bytes, status, Content-Type."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.index = {e["file"]: e for e in json.loads((folder / "index.json").read_text("utf-8"))}

    def __getitem__(self, name: str) -> Sample:
        entry = self.index[name]  # KeyError for a name that is not a sample
        return Sample(
            name=name,
            body=(self.folder / name).read_bytes(),
            status=entry["http_status"] or 200,
            content_type=entry["content_type"] or _default_content_type(name),
        )

    def names(self) -> list[str]:
        return sorted(self.index)


def _default_content_type(name: str) -> str:
    """For plain fixture files no Content-Type was recorded; an OAI server sends XML."""
    return "text/html" if name.endswith(".html") else "text/xml"


@dataclass
class _Script:
    sequence: list[Sample] = field(default_factory=list)
    position: int = 0
    repeat_last: bool = False
    identify: Sample | None = None
    formats: Sample | None = None


class ReplayServer:
    """Serves a named sequence of samples on 127.0.0.1 (see the module docstring)."""

    def __init__(self, library: SampleLibrary) -> None:
        self.library = library
        self.requests: list[SeenRequest] = []
        self.overruns = 0
        self._script = _Script()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The OAI-PMH base URL to give `ernte`."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{OAI_PATH}"

    @property
    def source_key(self) -> str:
        """The source name ernte derives from the base URL."""
        return adhoc_key(self.url)

    def play(
        self,
        *names: str,
        repeat_last: bool = False,
        identify: str | None = DEFAULT_IDENTIFY,
        formats: str | None = DEFAULT_FORMATS,
    ) -> ReplayServer:
        """Answer the next requests with these samples, in order.

        repeat_last: keep answering with the last sample once the sequence is used up (a server
        that is down for good, or one that repeats a page). identify / formats: the samples
        answering Identify / ListMetadataFormats out of sequence; None puts those verbs in the
        sequence like any other request.
        """
        with self._lock:
            self._script = _Script(
                sequence=[self.library[n] for n in names],
                repeat_last=repeat_last,
                identify=self.library[identify] if identify else None,
                formats=self.library[formats] if formats else None,
            )
            self.requests.clear()
            self.overruns = 0
        return self

    def requests_for(self, verb: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.verb == verb]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _answer(self, params: dict[str, str]) -> Sample | None:
        with self._lock:
            script = self._script
            verb = params.get("verb")
            if verb == "Identify" and script.identify is not None:
                sample: Sample | None = script.identify
            elif verb == "ListMetadataFormats" and script.formats is not None:
                sample = script.formats
            elif script.position < len(script.sequence):
                sample = script.sequence[script.position]
                script.position += 1
            elif script.repeat_last and script.sequence:
                sample = script.sequence[-1]
            else:
                sample = None
                self.overruns += 1
            self.requests.append(SeenRequest(params, sample.name if sample else "(exhausted)"))
            return sample

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                sample = server._answer(params) if parts.path == OAI_PATH else None
                if sample is None:
                    self._send(410, "text/plain", b"replay sequence exhausted or wrong path")
                else:
                    self._send(sample.status, sample.content_type, sample.body)

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the recorded requests are the log."""

        return Handler


def samples_folder() -> Path:
    """Where the samples are: $ERNTE_OAI_SAMPLES, else <project root>/../shared/oai-samples."""
    override = os.environ.get(SAMPLES_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "oai-samples"


@pytest.fixture(scope="session")
def sample_library() -> SampleLibrary:
    """The real-server samples; skips (with the reason) where the folder is absent."""
    folder = samples_folder()
    if not (folder / "index.json").is_file():
        pytest.skip(
            f"real OAI-PMH samples not found at {folder} (expected <project root>/../shared/"
            f"oai-samples with index.json, or ${SAMPLES_ENV}): replay tests need them"
        )
    return SampleLibrary(folder)


@pytest.fixture
def replay(sample_library: SampleLibrary, data_dir: Path) -> Iterator[ReplayServer]:
    """A replaying server for one test (with an isolated ernte data directory)."""
    server = ReplayServer(sample_library)
    try:
        yield server
    finally:
        server.close()


# -- what a replayed harvest left behind ------------------------------------------------------


def archived(data_dir: Path, source_key: str) -> dict[str, RawRecord]:
    """Every archived record (latest version) of one source, over all its prefixes."""
    records: dict[str, RawRecord] = {}
    for _source, _prefix, path in archives_of(data_dir / "archive", source_key):
        with RawArchive(path) as archive:
            records.update((r.identifier, r) for r in archive.iter_latest())
    return records


def only_harvest(status_json: str) -> dict[str, Any]:
    """The one harvest in `ernte status --json` output (a replay test runs one harvest key)."""
    harvests = json.loads(status_json)["harvests"]
    assert len(harvests) == 1, [h["source"] for h in harvests]
    return dict(harvests[0])
