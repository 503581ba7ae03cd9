"""The harvest core against a real OAI-PMH provider (pyoai) on loopback, with faults injected.

Every test drives the real `ernte` command line and then checks what a user relies on: the raw
archive holds exactly the provider's records, the state says what happened, errors are clear.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harvester.demo.generate import generate_records
from harvester.demo.provider import serve
from harvester.store.archive import RawArchive, archives_of
from tests.conftest import CLIResult
from tests.faults import Fault, fault_proxy

pytestmark = pytest.mark.slow  # the real CLI against a real provider, with faults

Ernte = Callable[..., CLIResult]

RECORDS = list(generate_records(230, seed=7, deleted_share=0.05))
LIVE = {r.identifier for r in RECORDS if not r.deleted}
DELETED = {r.identifier for r in RECORDS if r.deleted}
BATCH = 40
PAGES = -(-len(RECORDS) // BATCH)


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with serve(RECORDS, batch_size=BATCH) as url:
        yield url


def _archive(data_dir: Path) -> RawArchive:
    found = archives_of(data_dir / "archive")
    assert len(found) == 1, found
    return RawArchive(found[0][2])


def _archived(data_dir: Path) -> dict[str, bool]:
    with _archive(data_dir) as archive:
        return {r.identifier: r.deleted for r in archive.iter_latest()}


def _status(ernte: Ernte) -> dict[str, Any]:
    result = ernte("status", "--json")
    assert result.exit_code == 0, result.stderr
    harvests = json.loads(result.output)["harvests"]
    assert len(harvests) == 1
    return harvests[0]  # type: ignore[no-any-return]


def test_full_harvest_archives_every_record_and_deletion(
    ernte: Ernte, data_dir: Path, provider: str
) -> None:
    result = ernte("harvest", provider, "--prefix", "oai_dc", "--no-index")
    assert result.exit_code == 0, result.stderr
    archived = _archived(data_dir)
    assert set(archived) == LIVE | DELETED
    assert {i for i, deleted in archived.items() if deleted} == DELETED
    state = _status(ernte)
    assert state["state"] == "idle"
    assert state["run"]["pages"] == PAGES
    assert state["run"]["records"] == len(RECORDS)
    assert state["run"]["deleted"] == len(DELETED)
    assert state["watermark"] and state["watermark"].endswith("Z")
    assert state["token"] is None
    assert f"{len(RECORDS)} records in {PAGES} pages" in result.output


def test_next_run_is_incremental_from_the_watermark_with_overlap(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    with fault_proxy(provider) as proxy:
        assert ernte("harvest", source(proxy.url), "--no-index").exit_code == 0
        first = next(r for r in proxy.requests if r.params.get("verb") == "ListRecords")
    watermark = _status(ernte)["watermark"]
    from harvester.store.state import SQLiteStateStore

    store = SQLiteStateStore(data_dir / "state.sqlite")
    [state] = store.all()
    state.counted_run = "a-cluster-run"  # as if the first run had been a cluster run
    store.save(state)
    with fault_proxy(provider) as proxy:
        again = ernte("harvest", source(proxy.url), "--no-index")
        assert again.exit_code == 0, again.stderr
        asked = next(r for r in proxy.requests if r.params.get("verb") == "ListRecords")
    assert "from" not in first.params
    # Seconds granularity (from Identify), one day of overlap before the watermark.
    assert asked.params["from"] == _minus_one_day(watermark)
    assert asked.headers["User-Agent"].startswith("ernte/")
    state = _status(ernte)
    assert state["run"]["records"] == 0  # nothing changed since: noRecordsMatch, not an error
    assert state["totals"]["records"] == len(RECORDS)
    # The new run's counts are no cluster run's: a late replay of that run's pages adds to
    # the totals only (`count_replayed_page`).
    [after] = store.all()
    assert after.counted_run == ""


def _minus_one_day(stamp: str) -> str:
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") - timedelta(days=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_full_flag_ignores_the_watermark_and_nothing_is_archived_twice(
    ernte: Ernte, data_dir: Path, provider: str
) -> None:
    assert ernte("harvest", provider, "--prefix", "oai_dc", "--no-index").exit_code == 0
    result = ernte("harvest", provider, "--prefix", "oai_dc", "--no-index", "--full")
    assert result.exit_code == 0, result.stderr
    state = _status(ernte)
    assert state["window_from"] is None
    assert state["run"]["added"] == 0 and state["run"]["unchanged"] == len(RECORDS)
    with _archive(data_dir) as archive:
        assert all(archive.versions(i) == 1 for i in LIVE | DELETED)


def test_one_set_only(ernte: Ernte, data_dir: Path, provider: str) -> None:
    spec = "col_difu_buecher"
    expected = {r.identifier for r in RECORDS if spec in r.sets}
    assert expected and expected != LIVE | DELETED
    result = ernte("harvest", provider, "--prefix", "dim", "--set", spec, "--no-index")
    assert result.exit_code == 0, result.stderr
    assert set(_archived(data_dir)) == expected
    assert _status(ernte)["set_spec"] == spec


def test_retry_after_timeouts_resets_and_5xx_are_survived(
    ernte: Ernte, data_dir: Path, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERNTE_READ_TIMEOUT", "0.5")
    faults = {
        2: Fault.retry_after(1),
        4: Fault.delay(1.5),
        6: Fault.reset(),
        7: Fault.http_error(502),
        8: Fault.truncate(declare_full_length=True),
    }
    started = time.monotonic()
    with fault_proxy(provider, faults) as proxy:
        result = ernte("harvest", proxy.url, "--prefix", "oai_dc", "--no-index")
    assert result.exit_code == 0, result.stderr
    # Retry-After: 1 was honoured: backoff alone waits at most ERNTE_BACKOFF_MAX (0.2 s here)
    waits = [line for line in result.stderr.splitlines() if "retrying request" in line]
    assert any("status=503" in line and "wait_s=1.0" in line for line in waits), result.stderr
    assert time.monotonic() - started >= 1.0
    assert set(_archived(data_dir)) == LIVE | DELETED
    assert _status(ernte)["run"]["retries"] == 5


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.html_page(), "HTML page"),
        (Fault.truncate(), "malformed XML"),
        (Fault.http_error(500), "HTTP 500"),
    ],
)
def test_bad_page_stops_with_a_clear_error_and_the_next_run_resumes(
    ernte: Ernte,
    data_dir: Path,
    provider: str,
    source: Callable[..., str],
    fault: Fault,
    message: str,
) -> None:
    with fault_proxy(provider, lambda n: fault if n >= 4 else None) as proxy:
        failed = ernte("harvest", source(proxy.url), "--no-index")
    assert failed.exit_code == 1
    assert message in failed.stderr and proxy.url.split("?")[0] in failed.stderr
    state = _status(ernte)
    assert state["state"] == "failed" and message in state["last_error"]
    assert state["watermark"] is None  # moves only when a run completes
    assert state["next_page"] == 2 and state["token"]
    assert len(_archived(data_dir)) == 2 * BATCH  # the two good pages stay archived
    with fault_proxy(provider) as proxy:
        resumed = ernte("harvest", source(proxy.url), "--no-index")
        asked = [r.params for r in proxy.requests if r.params.get("verb") == "ListRecords"]
    assert resumed.exit_code == 0, resumed.stderr
    assert asked[0].get("resumptionToken") == state["token"]  # continued, not restarted
    assert set(_archived(data_dir)) == LIVE | DELETED
    assert _status(ernte)["state"] == "idle"


@pytest.mark.parametrize(
    ("find", "replace", "repaired"),
    [
        (b"<?xml", b"\n\n<?xml", 0),  # a blank line before the declaration (PHP servers)
        (b"</dc:title>", b"\xff\xfe</dc:title>", 2),  # bytes that are not UTF-8
        (b"</dc:title>", b"&nbsp;</dc:title>", 1),  # an HTML entity XML does not define
        (b"</dc:title>", b"&#xFFFF;&#55296;</dc:title>", 2),  # a noncharacter, a surrogate
        (b"</dc:title>", b"\xef\xbf\xbe</dc:title>", 1),  # U+FFFE as raw UTF-8
    ],
)
def test_a_page_damaged_the_way_real_servers_damage_it_is_repaired_and_counted(
    ernte: Ernte,
    data_dir: Path,
    provider: str,
    source: Callable[..., str],
    find: bytes,
    replace: bytes,
    repaired: int,
) -> None:
    """Each of these stopped the harvest for good at that page ("not an OAI-PMH response ...
    malformed XML"), every rerun again, with no way past it (found in review)."""
    with fault_proxy(provider, {3: Fault.damage(find, replace)}) as proxy:
        result = ernte("harvest", source(proxy.url), "--no-index")
        damaged = proxy.requests[2].params
    assert damaged.get("verb") == "ListRecords"
    assert result.exit_code == 0, result.stderr
    assert set(_archived(data_dir)) == LIVE | DELETED
    assert _status(ernte)["run"]["repaired_chars"] == repaired


def test_an_oai_error_sent_with_a_server_error_status_is_read_not_retried(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    """`badResumptionToken` with HTTP 500 was retried as a server error until the client gave
    up, and the checkpoint kept the dead token, so every later run failed the same way."""
    with fault_proxy(provider, {3: Fault.bad_resumption_token(status=500)}) as proxy:
        result = ernte("harvest", source(proxy.url), "--no-index")
        asked = [r.params for r in proxy.requests if r.params.get("verb") == "ListRecords"]
    assert result.exit_code == 0, result.stderr
    assert "resumptionToken" in asked[1] and "metadataPrefix" in asked[2]  # window restarted
    assert _status(ernte)["run"]["retries"] == 0
    assert set(_archived(data_dir)) == LIVE | DELETED


def test_a_request_redirected_to_a_wrong_page_is_named_with_where_it_went(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    """The error named only the page the redirect led to, not the request that was sent
    there (found in review)."""
    with fault_proxy(provider, {3: Fault.redirect("/elsewhere/")}) as proxy:
        failed = ernte("harvest", source(proxy.url), "--no-index")
    assert failed.exit_code == 1
    [error] = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    origin = proxy.url.split("/server")[0]
    assert f"{proxy.url}?verb=ListRecords&resumptionToken=" in error, error
    assert f"(redirected to {origin}/elsewhere/)" in error, error


def test_a_failed_harvest_leaves_every_page_it_stored_searchable(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    """The index works a page or two behind the archive; after a bad page those pages were
    left to the next run's catch-up (and their quarantine warnings with them)."""
    with fault_proxy(provider, lambda n: Fault.html_page() if n >= 4 else None) as proxy:
        failed = ernte("harvest", source(proxy.url))
    assert failed.exit_code == 1
    live_archived = {i for i, deleted in _archived(data_dir).items() if not deleted}
    assert live_archived
    found = json.loads(ernte("search", "--limit", "0", "--json").output)["total"]
    assert found == len(live_archived)


def test_expired_token_restarts_the_window_not_the_repository(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    with fault_proxy(provider, lambda n: Fault.html_page() if n >= 4 else None) as proxy:
        assert ernte("harvest", source(proxy.url), "--no-index").exit_code == 1
    with fault_proxy(provider, {2: Fault.bad_resumption_token()}) as proxy:
        result = ernte("harvest", source(proxy.url), "--no-index")
        asked = [r.params for r in proxy.requests if r.params.get("verb") == "ListRecords"]
    assert result.exit_code == 0, result.stderr
    assert "resumptionToken" in asked[0] and "metadataPrefix" in asked[1]
    # The summary says why it counts more records than the repository holds.
    assert "the list was restarted 1x after an expired resumption token" in result.output
    assert set(_archived(data_dir)) == LIVE | DELETED
    with _archive(data_dir) as archive:
        assert all(archive.versions(i) == 1 for i in LIVE | DELETED)


def test_repeated_token_and_endless_empty_pages_stop_with_a_clear_error(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    with fault_proxy(provider, {3: Fault.repeat_token()}) as proxy:
        looped = ernte("harvest", source(proxy.url), "--no-index")
    assert looped.exit_code == 1 and "repeated resumption token" in looped.stderr
    # the third request is the second ListRecords page, numbered as `page stored` counts
    assert "at page 2 " in looped.stderr, looped.stderr
    with fault_proxy(provider, lambda n: Fault.empty_page() if n >= 3 else None) as proxy:
        empty = ernte("harvest", source(proxy.url), "--no-index", "--full")
    assert empty.exit_code == 1 and "empty pages in a row" in empty.stderr
    assert _status(ernte)["watermark"] is None


def test_explicit_window_never_moves_the_watermark_backwards(
    ernte: Ernte, data_dir: Path, provider: str
) -> None:
    assert ernte("harvest", provider, "--prefix", "oai_dc", "--no-index").exit_code == 0
    first = _status(ernte)
    assert first["deleted_record"] == "persistent"  # as Identify declares it
    old = ernte(
        "harvest",
        provider,
        "--prefix",
        "oai_dc",
        "--no-index",
        "--from",
        "2019-01-01",
        "--until",
        "2020-01-01",
    )
    assert old.exit_code == 0, old.stderr
    state = _status(ernte)
    assert state["window_until"] == "2020-01-01T23:59:59Z"  # the whole day, seconds granularity
    assert state["watermark"] == first["watermark"]  # an old window leaves it where it was
    in_window = [r for r in RECORDS if "2019-01-01" <= r.datestamp[:10] <= "2020-01-01"]
    reversed_window = ernte(
        "harvest",
        provider,
        "--prefix",
        "oai_dc",
        "--from",
        "2021-01-01",
        "--until",
        "2020-01-01",
        "--no-index",
    )
    assert reversed_window.exit_code == 1 and "is after --until" in reversed_window.stderr
    assert state["run"]["records"] == len(in_window) > 0


def test_a_window_starting_after_the_watermark_does_not_move_it(
    ernte: Ernte, data_dir: Path, provider: str
) -> None:
    early = ernte("harvest", provider, "--prefix", "oai_dc", "--no-index", "--until", "2021-01-01")
    assert early.exit_code == 0, early.stderr
    watermark = _status(ernte)["watermark"]
    assert watermark == "2021-01-01T23:59:59Z"
    late = ernte("harvest", provider, "--prefix", "oai_dc", "--no-index", "--from", "2023-01-01")
    assert late.exit_code == 0, late.stderr
    assert _status(ernte)["watermark"] == watermark  # 2021-2022 was never asked for
    assert ernte("harvest", provider, "--prefix", "oai_dc", "--no-index").exit_code == 0
    assert set(_archived(data_dir)) == LIVE | DELETED  # the gap was filled by the next run


def test_an_until_in_the_future_covers_only_up_to_the_servers_clock(
    ernte: Ernte, data_dir: Path, provider: str
) -> None:
    result = ernte("harvest", provider, "--prefix", "oai_dc", "--no-index", "--until", "2999-01-01")
    assert result.exit_code == 0, result.stderr
    assert _status(ernte)["watermark"] < "2999"


def test_a_crash_after_the_last_page_only_completes_the_run(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    from harvester.store.state import SQLiteStateStore

    with fault_proxy(provider) as proxy:
        assert ernte("harvest", source(proxy.url), "--no-index").exit_code == 0
    store = SQLiteStateStore(data_dir / "state.sqlite")
    [state] = store.all()
    # As if the process died between storing the last page and completing the run.
    state.state, state.list_complete, state.token = "running", True, None
    state.watermark, state.pending_watermark = None, "2024-05-01T00:00:00Z"
    store.save(state)
    with fault_proxy(provider) as proxy:
        again = ernte("harvest", source(proxy.url), "--no-index")
        verbs = [r.params.get("verb") for r in proxy.requests]
    assert again.exit_code == 0, again.stderr
    assert "ListRecords" not in verbs  # nothing fetched again
    done = _status(ernte)
    assert done["state"] == "idle" and done["watermark"] == "2024-05-01T00:00:00Z"


def test_running_out_of_token_restarts_does_not_wedge_the_next_runs(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    # Every resumption request is answered badResumptionToken (odd requests from the third on:
    # Identify is 1, each window's first page is even).
    expiring = lambda n: Fault.bad_resumption_token() if n >= 3 and n % 2 else None  # noqa: E731
    with fault_proxy(provider, expiring) as proxy:
        failed = ernte("harvest", source(proxy.url), "--no-index")
    assert failed.exit_code == 1 and "badResumptionToken" in failed.stderr
    stuck = _status(ernte)
    assert stuck["state"] == "failed" and stuck["token"] is None  # the dead token is not kept
    with fault_proxy(provider) as proxy:
        healthy = ernte("harvest", source(proxy.url), "--no-index")
    assert healthy.exit_code == 0, healthy.stderr
    assert set(_archived(data_dir)) == LIVE | DELETED and _status(ernte)["state"] == "idle"


def test_an_until_before_the_watermark_without_from_explains_itself(
    ernte: Ernte, data_dir: Path, provider: str
) -> None:
    assert ernte("harvest", provider, "--prefix", "oai_dc", "--no-index").exit_code == 0
    old = ernte("harvest", provider, "--prefix", "oai_dc", "--no-index", "--until", "2020-01-01")
    assert old.exit_code == 1 and "would start at the watermark" in old.stderr


def test_reconcile_archives_as_deleted_what_a_full_list_no_longer_has(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    assert ernte("harvest", source(provider)).exit_code == 0  # indexed too
    vanished = [r for r in RECORDS if not r.deleted][:5]  # gone without a trace on the server
    remaining = [r for r in RECORDS if r not in vanished]
    with serve(remaining, batch_size=BATCH) as smaller:
        result = ernte("harvest", source(smaller), "--full", "--reconcile")
    assert result.exit_code == 0, result.stderr
    archived = _archived(data_dir)
    assert {r.identifier for r in vanished} <= {i for i, deleted in archived.items() if deleted}
    assert {i for i, deleted in archived.items() if not deleted} == LIVE - {
        r.identifier for r in vanished
    }
    state = _status(ernte)
    assert state["run"]["deleted"] == len(DELETED) + len(vanished)
    found = json.loads(ernte("search", "--limit", "0", "--json").output)
    assert found["total"] == len(LIVE) - len(vanished)


def test_reconcile_refuses_to_delete_a_suspicious_share(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    assert ernte("harvest", source(provider), "--no-index").exit_code == 0
    with serve(RECORDS[: len(RECORDS) // 2], batch_size=BATCH) as half:
        result = ernte("harvest", source(half), "--full", "--reconcile", "--no-index")
    assert result.exit_code == 1 and "not deleting them" in result.stderr
    archived = _archived(data_dir)
    assert {i for i, deleted in archived.items() if not deleted} == LIVE  # nothing deleted
    needs_full = ernte("harvest", source(provider), "--from", "2020-01-01", "--reconcile")
    assert needs_full.exit_code == 1 and "needs a full list" in needs_full.stderr


def test_a_quarantined_record_is_logged_with_its_source_prefix_and_page(
    ernte: Ernte, data_dir: Path, source: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index works a page or two behind the harvest, so a quarantine line came after the
    next page's lines and said only its source: the page it belongs to is named now."""
    from harvester.demo.sample import DimField, SampleRecord

    untitled = SampleRecord(
        identifier="oai:test:untitled",
        datestamp="2024-02-01T10:00:00Z",
        sets=(),
        deleted=False,
        fields=(DimField("date", "issued", None, "2011"),),
    )
    records = [*RECORDS[:BATCH], untitled, *RECORDS[BATCH : 2 * BATCH]]  # on the 2nd page
    monkeypatch.setenv("ERNTE_LOG_FORMAT", "json")
    with serve(records, batch_size=BATCH) as url:
        result = ernte("harvest", source(url))
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    (quarantined,) = [line for line in lines if line["message"] == "record quarantined"]
    assert quarantined["identifier"] == "oai:test:untitled"
    assert (quarantined["source"], quarantined["prefix"], quarantined["page"]) == ("t", "oai_dc", 2)
    stored = [line["page"] for line in lines if line["message"] == "page stored"]
    assert stored[:2] == [1, 2]  # the same numbering as the page lines


def test_a_retried_request_says_which_harvest_and_page_it_belongs_to(
    ernte: Ernte, provider: str, source: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTP client does not know the harvest: its "retrying request" line had a URL and
    nothing else. It now carries the harvest's source, set, prefix and the page being fetched
    (on the prefetch thread too), numbered as the `page stored` lines."""
    monkeypatch.setenv("ERNTE_LOG_FORMAT", "json")
    with fault_proxy(provider, {3: Fault.http_error(503), 5: Fault.http_error(502)}) as proxy:
        result = ernte("harvest", source(proxy.url), "--no-index")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    retries = 0
    for number, line in enumerate(lines):
        if line["message"] != "retrying request":
            continue
        retries += 1
        stored_before = sum(1 for seen in lines[:number] if seen["message"] == "page stored")
        assert (line["source"], line["set"], line["prefix"]) == ("t", "*", "oai_dc"), line
        # fetched while the previous page was stored (prefetch) or after it
        assert line["page"] in (stored_before + 1, stored_before + 2), (line, stored_before)
    assert retries == 2


def test_a_page_that_failed_to_be_indexed_is_indexed_by_the_next_run(
    ernte: Ernte,
    data_dir: Path,
    provider: str,
    source: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A one-off failure writing page 2 to the index stops the harvest. Indexing the pages
    stored before the failure must not commit an archive position past page 2, or the next
    run's catch-up would skip it for good."""
    from harvester.run import pipeline

    write = pipeline.apply_batch
    calls = []

    def fails_once_on_page_2(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[-1] if len(args) > 4 else kwargs.get("where"))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return write(*args, **kwargs)

    monkeypatch.setattr(pipeline, "apply_batch", fails_once_on_page_2)
    failed = ernte("harvest", source(provider))
    assert failed.exit_code == 1 and "No space left" in failed.stderr
    monkeypatch.setattr(pipeline, "apply_batch", write)
    assert ernte("harvest", source(provider)).exit_code == 0
    found = json.loads(ernte("search", "--limit", "0", "--json").output)["total"]
    assert found == len(LIVE)


def test_a_replayed_run_resumes_its_own_window_only(
    ernte: Ernte, data_dir: Path, provider: str, source: Callable[..., str]
) -> None:
    """What `ernte dlq replay` asks for (`resume_checkpoint`): a failed --full run goes on at
    its checkpoint; but once a later run of another window failed over it, replaying the
    --full run starts a full list rather than resuming that other window."""
    from harvester.run import services
    from harvester.run.harvest import HarvestRequest
    from harvester.run.progress import LogProgress
    from harvester.settings import get_settings
    from harvester.sources import resolve_source

    def prepared(**asked: Any) -> Any:
        get_settings.cache_clear()
        settings = get_settings()
        src = resolve_source("t", settings.sources_file, None)
        runner = services.harvester(settings, src, LogProgress(), None)
        return runner.prepare(HarvestRequest(src, resume_checkpoint=True, **asked))

    def fails_at_page_3(number: int) -> Fault | None:
        return Fault.http_error(500) if number >= 4 else None

    def failed_run(*options: str) -> None:
        with fault_proxy(provider, fails_at_page_3) as proxy:
            assert ernte("harvest", source(proxy.url), *options, "--no-index").exit_code == 1
        source(provider)  # the replays below ask the provider itself

    failed_run("--full")
    full = prepared(full=True)
    assert full.next_page == 2 and full.token and full.window_from is None  # resumed
    failed_run("--full")
    failed_run("--from", "2020-01-01")
    assert _status(ernte)["window_from"] is not None and _status(ernte)["next_page"] == 2
    replayed = prepared(full=True)
    assert replayed.next_page == 0 and replayed.window_from is None  # a new full list
