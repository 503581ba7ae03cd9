"""`Harvester.step` and `Harvester.run` one page at a time, with a fake sink and a fake sleep.

The only double is the network: a scripted server answers ernte's real OAI client with real
OAI-PMH XML. The archive and the state store are the real ones on disk. (The end-to-end tests
of the same behaviour, through the command line and a real provider, are in test_harvest.py.)
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harvester.model import RawRecord
from harvester.oai.client import (
    BadResumptionToken,
    OAIClient,
    Page,
    RepeatedResumptionToken,
    TooManyEmptyPages,
)
from harvester.oai.http import HTTPResponse
from harvester.run import interrupt
from harvester.run.harvest import Harvester, HarvestError, HarvestOptions, HarvestRequest
from harvester.sources import Source
from harvester.store.archive import RawArchive
from harvester.store.state import HarvestState, RunCounts, SQLiteStateStore

BASE_URL = "http://oai.test/request"
SOURCE = Source(key="t", base_url=BASE_URL, metadata_prefix="oai_dc")
RESPONSE_DATE = "2024-05-01T12:00:00Z"


def _envelope(inner: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        f"<responseDate>{RESPONSE_DATE}</responseDate><request>{BASE_URL}</request>"
        f"{inner}</OAI-PMH>"
    ).encode()


IDENTIFY = _envelope(
    "<Identify><repositoryName>Test</repositoryName><baseURL>http://oai.test/request</baseURL>"
    "<protocolVersion>2.0</protocolVersion><adminEmail>a@oai.test</adminEmail>"
    "<earliestDatestamp>2000-01-01</earliestDatestamp><deletedRecord>persistent</deletedRecord>"
    "<granularity>YYYY-MM-DD</granularity></Identify>"
)


def _record(number: int, deleted: bool = False) -> str:
    status = ' status="deleted"' if deleted else ""
    header = (
        f"<header{status}><identifier>oai:t:{number}</identifier>"
        "<datestamp>2024-01-02</datestamp></header>"
    )
    if deleted:
        return f"<record>{header}</record>"
    return (
        f"<record>{header}<metadata>"
        '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>Stadt {number}</dc:title></oai_dc:dc></metadata></record>"
    )


def list_records(numbers: Sequence[int], token: str | None, deleted: Sequence[int] = ()) -> bytes:
    """A ListRecords page with these records (`deleted` ones as tombstones) and a token."""
    records = "".join(_record(n, n in deleted) for n in numbers)
    resumption = f"<resumptionToken>{token}</resumptionToken>" if token is not None else ""
    return _envelope(f"<ListRecords>{records}{resumption}</ListRecords>")


def oai_error(code: str) -> bytes:
    return _envelope(f'<error code="{code}">says the server</error>')


@dataclass
class ScriptedServer:
    """Stands in for the network: answers by resumption token (None: a list's first request),
    records every request, and counts retries as ernte's HTTP client would."""

    pages: dict[str | None, bytes | list[bytes]]
    requests: list[dict[str, str]] = field(default_factory=list)
    retries: int = 0
    retries_per_request: int = 0

    def get(self, url: str, params: Mapping[str, str]) -> HTTPResponse:
        self.requests.append(dict(params))
        if params["verb"] == "Identify":
            return HTTPResponse(url, 200, {"Content-Type": "text/xml"}, IDENTIFY)
        self.retries += self.retries_per_request
        answer = self.pages[params.get("resumptionToken")]
        if isinstance(answer, list):  # answers in turn, e.g. an expired token, then a page
            answer = answer.pop(0)
        return HTTPResponse(url, 200, {"Content-Type": "text/xml"}, answer)

    @property
    def tokens_asked(self) -> list[str | None]:
        return [r.get("resumptionToken") for r in self.requests if r["verb"] == "ListRecords"]


@dataclass
class RecordingSink:
    """The fake sink: remembers what it was handed and reports each record as normalized."""

    pages: list[tuple[int, list[str]]] = field(default_factory=list)
    closed: int = 0

    def handle(self, records: Sequence[RawRecord], page_no: int) -> RunCounts:
        self.pages.append((page_no, [r.identifier for r in records]))
        return RunCounts(normalized=sum(1 for r in records if not r.deleted))

    def close(self) -> RunCounts:
        self.closed += 1
        return RunCounts()


class SilentProgress:
    def start(self, state: HarvestState) -> None: ...

    def page(self, state: HarvestState, page: Page) -> None: ...

    def finish(self, state: HarvestState) -> None: ...


@dataclass
class Rig:
    harvester: Harvester
    server: ScriptedServer
    sink: RecordingSink
    sleeps: list[float]
    store: SQLiteStateStore
    archive_dir: Path

    def prepare(self, **request: object) -> HarvestState:
        return self.harvester.prepare(HarvestRequest(SOURCE, **request))  # type: ignore[arg-type]

    def archive(self) -> RawArchive:
        return RawArchive.open(self.archive_dir, SOURCE.key, "oai_dc")

    def archived(self) -> set[str]:
        with self.archive() as archive:
            return {r.identifier for r in archive.iter_latest()}


def _rig(tmp_path: Path, pages: dict[str | None, bytes | list[bytes]], **options: object) -> Rig:
    server = ScriptedServer(pages)
    client = OAIClient(BASE_URL, server)  # type: ignore[arg-type]
    sink = RecordingSink()
    sleeps: list[float] = []
    store = SQLiteStateStore(tmp_path / "state.sqlite")
    harvester = Harvester(
        client=client,
        store=store,
        archive_dir=tmp_path / "archive",
        sink_factory=lambda source, prefix, archive: sink,
        progress=SilentProgress(),
        options=HarvestOptions(page_delay=0.25, **options),  # type: ignore[arg-type]
        sleep=sleeps.append,
    )
    return Rig(harvester, server, sink, sleeps, store, tmp_path / "archive")


THREE_PAGES: dict[str | None, bytes | list[bytes]] = {
    None: list_records([1, 2], "t1"),
    "t1": list_records([3, 4], "t2", deleted=[4]),
    "t2": list_records([5], None),
}


def test_each_step_stores_one_page_and_follows_its_token(tmp_path: Path) -> None:
    rig = _rig(tmp_path, dict(THREE_PAGES))
    state = rig.prepare()
    with rig.archive() as archive:
        assert rig.harvester.step(state, archive, rig.sink) is True
        assert rig.archived() == {"oai:t:1", "oai:t:2"}
        assert (state.token, state.next_page, state.list_complete) == ("t1", 1, False)
        assert rig.store.load(state.key).token == "t1"  # checkpointed, not only in memory

        assert rig.harvester.step(state, archive, rig.sink) is True
        assert rig.harvester.step(state, archive, rig.sink) is False  # the list has ended
    assert rig.server.tokens_asked == [None, "t1", "t2"]
    assert rig.sink.pages == [
        (0, ["oai:t:1", "oai:t:2"]),
        (1, ["oai:t:3", "oai:t:4"]),
        (2, ["oai:t:5"]),
    ]
    assert rig.archived() == {f"oai:t:{n}" for n in range(1, 6)}
    assert (state.token, state.next_page, state.list_complete) == (None, 3, True)
    run = state.run
    assert (run.pages, run.records, run.added, run.unchanged) == (3, 5, 5, 0)
    assert (run.deleted, run.normalized) == (1, 4)


def test_the_first_request_carries_the_window_and_later_ones_only_the_token(
    tmp_path: Path,
) -> None:
    rig = _rig(tmp_path, dict(THREE_PAGES))
    state = rig.prepare(set_spec="books", from_="2024-01-01", until="2024-02-01")
    with rig.archive() as archive:
        while rig.harvester.step(state, archive, rig.sink):
            pass
    first, *later = [r for r in rig.server.requests if r["verb"] == "ListRecords"]
    assert first == {
        "verb": "ListRecords",
        "metadataPrefix": "oai_dc",
        "set": "books",
        "from": "2024-01-01",
        "until": "2024-02-01",
    }
    assert later == [
        {"verb": "ListRecords", "resumptionToken": "t1"},
        {"verb": "ListRecords", "resumptionToken": "t2"},
    ]


def test_a_page_fetched_again_adds_no_new_versions(tmp_path: Path) -> None:
    rig = _rig(tmp_path, dict(THREE_PAGES))
    rig.harvester.run(HarvestRequest(SOURCE))
    rig.server.pages = dict(THREE_PAGES)
    again = rig.harvester.run(HarvestRequest(SOURCE, full=True))
    assert (again.run.records, again.run.added, again.run.unchanged) == (5, 0, 5)
    assert again.totals.records == 10


def test_a_repeated_token_stops_before_storing_the_looping_page(tmp_path: Path) -> None:
    rig = _rig(
        tmp_path,
        {
            None: list_records([1], "t1"),
            "t1": list_records([2], "t2"),
            "t2": list_records([3], "t1"),
        },
    )
    state = rig.prepare()
    with rig.archive() as archive:
        assert rig.harvester.step(state, archive, rig.sink)
        assert rig.harvester.step(state, archive, rig.sink)
        with pytest.raises(
            RepeatedResumptionToken, match="repeated resumption token 't1' at page 3 "
        ):
            rig.harvester.step(state, archive, rig.sink)
    assert rig.archived() == {"oai:t:1", "oai:t:2"}
    assert rig.store.load(state.key).token == "t2"  # the checkpoint is the last good page


def test_a_loop_longer_than_the_tokens_kept_is_stopped_too(tmp_path: Path) -> None:
    """A server whose 60th page points back to its first was followed for ever: only the last
    50 tokens were compared (found in review)."""
    pages: dict[str | None, bytes | list[bytes]] = {None: list_records([0], "t1")}
    pages.update({f"t{n}": list_records([n], f"t{n % 60 + 1}") for n in range(1, 61)})
    rig = _rig(tmp_path, pages)
    with pytest.raises(RepeatedResumptionToken, match="repeated resumption token") as caught:
        rig.harvester.run(HarvestRequest(SOURCE))
    asked = len(rig.server.tokens_asked)
    assert asked <= 3 * (60 + 1)  # within about three times the loop and the pages before it
    assert f"at page {asked} " in str(caught.value)  # the page that carried the token
    assert rig.archived() == {f"oai:t:{n}" for n in range(61)}
    [failed] = rig.store.all()
    assert failed.state == "failed" and failed.token_anchor is not None


def test_a_long_list_without_a_loop_is_not_taken_for_one(tmp_path: Path) -> None:
    pages: dict[str | None, bytes | list[bytes]] = {None: list_records([0], "t1")}
    pages.update(
        {f"t{n}": list_records([n], f"t{n + 1}" if n < 300 else None) for n in range(1, 301)}
    )
    rig = _rig(tmp_path, pages)
    assert rig.harvester.run(HarvestRequest(SOURCE)).state == "idle"
    assert len(rig.archived()) == 301


def test_empty_pages_that_keep_a_token_stop_the_run(tmp_path: Path) -> None:
    endless = {None: list_records([1], "e0")}
    endless.update({f"e{n}": list_records([], f"e{n + 1}") for n in range(10)})
    rig = _rig(tmp_path, endless, max_empty_pages=3)  # type: ignore[arg-type]
    with pytest.raises(TooManyEmptyPages, match="3 empty pages in a row"):
        rig.harvester.run(HarvestRequest(SOURCE))
    assert rig.server.tokens_asked == [None, "e0", "e1", "e2"]
    [failed] = rig.store.all()
    assert failed.state == "failed"
    assert failed.token == "e2"  # the last stored page: the next run resumes there


def test_an_expired_token_restarts_the_window_and_finishes(tmp_path: Path) -> None:
    rig = _rig(
        tmp_path,
        {
            None: [list_records([1, 2], "t1"), list_records([1, 2], "t1b")],
            "t1": oai_error("badResumptionToken"),
            "t1b": list_records([3], None),
        },
    )
    state = rig.harvester.run(HarvestRequest(SOURCE))
    assert rig.server.tokens_asked == [None, "t1", None, "t1b"]
    assert state.state == "idle" and state.token_restarts == 1
    assert rig.archived() == {"oai:t:1", "oai:t:2", "oai:t:3"}
    assert (state.run.pages, state.run.added, state.run.unchanged) == (3, 3, 2)


def test_an_expired_token_again_and_again_gives_up(tmp_path: Path) -> None:
    rig = _rig(
        tmp_path,
        {None: list_records([1], "t1"), "t1": oai_error("badResumptionToken")},
        max_token_restarts=2,
    )
    with pytest.raises(HarvestError, match="badResumptionToken") as caught:
        rig.harvester.run(HarvestRequest(SOURCE))
    assert isinstance(caught.value.__cause__, BadResumptionToken)
    assert rig.server.tokens_asked == [None, "t1", None, "t1", None, "t1"]
    [saved] = rig.store.all()
    assert saved.state == "failed"
    assert saved.token is None  # the dead token is not the checkpoint the next run resumes


def test_an_error_is_wrapped_with_source_and_page(tmp_path: Path) -> None:
    """The first page is stored, the second fails: page 2, as the `page stored` lines count
    (it said page 1, the pages stored)."""
    rig = _rig(tmp_path, {None: list_records([1], "t1"), "t1": oai_error("badArgument")})
    with pytest.raises(
        HarvestError, match=r"harvest of t\|\*\|oai_dc stopped at page 2: OAI error"
    ):
        rig.harvester.run(HarvestRequest(SOURCE))


def test_run_waits_page_delay_between_requests_with_the_injected_sleep(tmp_path: Path) -> None:
    rig = _rig(tmp_path, dict(THREE_PAGES))
    state = rig.harvester.run(HarvestRequest(SOURCE))
    assert rig.sleeps == [0.25, 0.25]  # before the 2nd and the 3rd page, never after the last
    assert state.state == "idle" and state.watermark == RESPONSE_DATE
    assert rig.sink.closed == 1


def test_retries_of_the_http_client_are_counted_per_run(tmp_path: Path) -> None:
    rig = _rig(tmp_path, dict(THREE_PAGES))
    rig.server.retries_per_request = 2
    state = rig.harvester.run(HarvestRequest(SOURCE))
    assert state.run.retries == 6


def test_a_stop_while_the_sink_catches_up_is_recorded_as_a_stop(tmp_path: Path) -> None:
    """Making the sink catches the index up from the archive, which may take minutes; it ran
    outside the run's `try`, so Ctrl-C there left the state `running` (shown as `died`) and
    the message said "before the first page" (found in review)."""
    rig = _rig(tmp_path, dict(THREE_PAGES))
    rig.harvester.run(HarvestRequest(SOURCE))  # idle, with a watermark

    def catching_up(source: Source, prefix: str, archive: RawArchive) -> RecordingSink:
        raise interrupt.Interrupted(signal.SIGINT)

    rig.harvester.sink_factory = catching_up
    with pytest.raises(interrupt.Interrupted) as stopped:
        rig.harvester.run(HarvestRequest(SOURCE))
    assert stopped.value.page == 0
    [saved] = rig.store.all()
    assert saved.state == "interrupted"


def test_the_retries_of_the_page_that_failed_count_in_the_failed_run(tmp_path: Path) -> None:
    """A run that failed after retrying its page five times showed retries=0 (found in
    review): only a stored page's retries were counted."""
    rig = _rig(tmp_path, {None: list_records([1], "t1"), "t1": oai_error("badArgument")})
    rig.server.retries_per_request = 5
    with pytest.raises(HarvestError):
        rig.harvester.run(HarvestRequest(SOURCE))
    [saved] = rig.store.all()
    assert saved.state == "failed" and saved.run.retries == 10
