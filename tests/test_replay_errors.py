"""What decides an answer is the OAI body, not the HTTP status; what fails, fails clearly.

Replays Zenodo's errors sent with HTTP 422, MIT's HTTP 500 with an empty body, an HTML page sent
with 200 and text/html, and an OAI static-repository file (ISO-8859-1, another root) through the
real `ernte` commands. A failed run keeps everything it archived, leaves the watermark where it
was, and the next run resumes from its checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CLIResult
from tests.replay_server import ReplayServer, archived, only_harvest

pytestmark = pytest.mark.samples

Ernte = Callable[..., CLIResult]

MIT_SINGLE_PAGE = "dspace_mit_listrecords_oai_dc_set_single_page.xml"
MIT_HTTP_500 = "dspace_mit_getrecord_http500_empty_body.bin"
COLOSTATE = [
    "dspace_colostate_listrecords_page01_token.xml",
    "dspace_colostate_listrecords_page06_deleted_cursor_is_page_index.xml",
    "dspace_colostate_listrecords_page11_final_empty_token.xml",
]
ZENODO_PAGE1 = "invenio_zenodo_listrecords_oai_dc_page1_token.xml"
ZENODO_FINAL = "invenio_zenodo_listrecords_final_page_no_token.xml"
ZENODO_BAD_TOKEN = "invenio_zenodo_error_badResumptionToken_http422.xml"


def _harvest(ernte: Ernte, replay: ReplayServer, *extra: str) -> CLIResult:
    return ernte("harvest", replay.url, "--no-index", *extra)


def _first_complete_run(replay: ReplayServer, ernte: Ernte) -> str:
    """A completed run (MIT's single page) so that a watermark exists; returns it."""
    replay.play(MIT_SINGLE_PAGE)
    assert _harvest(ernte, replay).exit_code == 0
    watermark = only_harvest(ernte("status", "--json").output)["watermark"]
    assert watermark
    return str(watermark)


# -- OAI errors, whatever the HTTP status -----------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "invenio_zenodo_error_noRecordsMatch_http422.xml",
        "dspace_mit_error_noRecordsMatch_listrecords_set.xml",
        "arxiv_error_noRecordsMatch_with_text.xml",
    ],
)
def test_no_records_match_is_an_empty_result(
    replay: ReplayServer, ernte: Ernte, data_dir: Path, answer: str
) -> None:
    replay.play(answer)
    server_now = re.search(rb"<responseDate>([^<]+)<", replay.library[answer].body)
    assert server_now is not None

    result = _harvest(ernte, replay)

    assert result.exit_code == 0, result.stderr
    assert "0 records" in result.output
    harvest = only_harvest(ernte("status", "--json").output)
    assert harvest["state"] == "idle"
    assert harvest["run"]["records"] == 0
    # the next run starts from the server's clock of the empty answer
    assert harvest["watermark"] == server_now.group(1).decode()
    assert archived(data_dir, replay.source_key) == {}


@pytest.mark.parametrize(
    ("answer", "code", "message", "status"),
    [
        (
            "invenio_zenodo_error_badArgument_unknown_prefix_http422.xml",
            "badArgument",
            "metadataPrefix does not exist",
            422,
        ),
        (
            ZENODO_BAD_TOKEN,
            "badResumptionToken",
            "The value of the resumptionToken argument is invalid or expired.",
            422,
        ),
        (
            "dspace_de_halle_error_badArgument.xml",
            "badArgument",
            "GetRecord verb requires the use of the parameters - identifier and metadataPrefix",
            200,
        ),
        ("joai_nsdl_error_badVerb.xml", "badVerb", "The verb 'NotExist' is illegal", 200),
    ],
)
def test_other_oai_errors_stop_with_code_message_and_url(
    replay: ReplayServer, ernte: Ernte, answer: str, code: str, message: str, status: int
) -> None:
    replay.play(answer)

    result = _harvest(ernte, replay, "--prefix", "nonexistent")

    assert result.exit_code == 1
    assert f"OAI error {code}" in result.stderr
    assert message in result.stderr
    assert f"HTTP {status}" in result.stderr
    assert f"{replay.url}?" in result.stderr  # the request URL, with its query
    harvest = only_harvest(ernte("status", "--json").output)
    assert harvest["state"] == "failed"
    assert code in harvest["last_error"]


def test_an_expired_token_restarts_the_window_not_the_repository(
    replay: ReplayServer, ernte: Ernte, data_dir: Path
) -> None:
    """Zenodo rejects a token (422 badResumptionToken): the run asks its window again."""
    replay.play(ZENODO_PAGE1, ZENODO_BAD_TOKEN, ZENODO_PAGE1, ZENODO_FINAL)

    result = _harvest(ernte, replay)

    assert result.exit_code == 0, result.stderr
    asked = [r.params for r in replay.requests_for("ListRecords")]
    assert [("resumptionToken" in p) for p in asked] == [False, True, False, True]
    expected = {
        i for name in (ZENODO_PAGE1, ZENODO_FINAL) for i, _ in replay.library[name].headers()
    }
    assert set(archived(data_dir, replay.source_key)) == expected


def test_token_restarts_are_counted_per_run_not_forever(replay: ReplayServer, ernte: Ernte) -> None:
    """One expired token in each of several runs must not add up to 'too many restarts'."""
    for _ in range(5):
        replay.play(ZENODO_PAGE1, ZENODO_BAD_TOKEN, ZENODO_PAGE1, ZENODO_FINAL)
        result = _harvest(ernte, replay, "--full")
        assert result.exit_code == 0, result.stderr


def test_a_token_that_stays_rejected_ends_with_a_clear_error(
    replay: ReplayServer, ernte: Ernte
) -> None:
    replay.play(ZENODO_PAGE1, ZENODO_BAD_TOKEN, repeat_last=True)

    result = _harvest(ernte, replay)

    assert result.exit_code == 1
    assert "OAI error badResumptionToken" in result.stderr
    assert "HTTP 422" in result.stderr
    assert replay.url in result.stderr


# -- HTTP 5xx ---------------------------------------------------------------------------------


def test_a_passing_500_is_retried_with_backoff(
    replay: ReplayServer, ernte: Ernte, data_dir: Path
) -> None:
    replay.play(ZENODO_PAGE1, MIT_HTTP_500, MIT_HTTP_500, ZENODO_FINAL)

    result = _harvest(ernte, replay)

    assert result.exit_code == 0, result.stderr
    token_requests = [
        r for r in replay.requests_for("ListRecords") if "resumptionToken" in r.params
    ]
    assert len(token_requests) == 3  # the same page asked three times
    assert len({r.params["resumptionToken"] for r in token_requests}) == 1
    assert only_harvest(ernte("status", "--json").output)["run"]["retries"] == 2


def test_a_persistent_500_fails_keeps_the_archive_and_the_next_run_resumes(
    replay: ReplayServer, ernte: Ernte, data_dir: Path
) -> None:
    watermark = _first_complete_run(replay, ernte)
    replay.play(COLOSTATE[0], MIT_HTTP_500, repeat_last=True)

    failed = _harvest(ernte, replay)

    assert failed.exit_code == 1
    assert "HTTP 500" in failed.stderr
    assert "empty body" in failed.stderr
    assert f"{replay.url}?" in failed.stderr and "resumptionToken=" in failed.stderr
    assert len(replay.requests) > 2  # retried before giving up
    harvest = only_harvest(ernte("status", "--json").output)
    assert harvest["state"] == "failed"
    assert harvest["watermark"] == watermark
    page1_token = "oai_dc/2016-05-04T00:00:00Z/2016-05-06T00:00:00Z//100"
    assert harvest["token"] == page1_token
    kept = set(archived(data_dir, replay.source_key))
    for name in (MIT_SINGLE_PAGE, COLOSTATE[0]):
        assert {i for i, _ in replay.library[name].headers()} <= kept

    replay.play(*COLOSTATE[1:])
    resumed = _harvest(ernte, replay)

    assert resumed.exit_code == 0, resumed.stderr
    first = replay.requests_for("ListRecords")[0]
    assert first.params == {"verb": "ListRecords", "resumptionToken": page1_token}
    harvest = only_harvest(ernte("status", "--json").output)
    assert harvest["state"] == "idle"
    # Completed: the watermark is the resumed run's server time. The captured pages carry the
    # same responseDate as the first run's, and a watermark never moves backwards.
    assert harvest["watermark"] >= watermark and harvest["token"] is None
    everything = {
        i for name in (MIT_SINGLE_PAGE, *COLOSTATE) for i, _ in replay.library[name].headers()
    }
    assert set(archived(data_dir, replay.source_key)) == everything


# -- not OAI-PMH at all -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "what"),
    [
        ("html_instead_of_xml_httpbun.html", ["an HTML page", "Httpbun sample", "text/html"]),
        (
            "olac_static_repository_iso8859-1.xml",
            ["root is <Repository>", "http://www.openarchives.org/OAI/2.0/static-repository"],
        ),
        (
            "dspace_mit_listidentifiers_page1_token.xml",
            ["ListIdentifiers", "not ListRecords"],
        ),
    ],
)
def test_not_oai_pmh_is_a_clear_error_and_loses_nothing(
    replay: ReplayServer, ernte: Ernte, data_dir: Path, answer: str, what: list[str]
) -> None:
    watermark = _first_complete_run(replay, ernte)
    before = archived(data_dir, replay.source_key)
    replay.play(answer)

    result = _harvest(ernte, replay)

    assert result.exit_code == 1
    assert "not an OAI-PMH" in result.stderr or "not ListRecords" in result.stderr
    for words in what:
        assert words in result.stderr
    assert replay.url in result.stderr
    harvest = only_harvest(ernte("status", "--json").output)
    assert harvest["state"] == "failed"
    assert harvest["watermark"] == watermark
    assert archived(data_dir, replay.source_key).keys() == before.keys()


def test_identify_answered_with_html_is_a_clear_error(replay: ReplayServer, ernte: Ernte) -> None:
    """The HTML page was served to `?verb=Identify`, as in the recording."""
    replay.play("html_instead_of_xml_httpbun.html", identify=None)

    result = ernte("identify", replay.url)

    assert result.exit_code == 1
    assert "not an OAI-PMH response" in result.stderr
    assert "HTML page" in result.stderr
    assert "verb=Identify" in result.stderr


def test_a_format_no_crosswalk_reads_is_archived_quarantined_and_warned_at_the_start(
    replay: ReplayServer, ernte: Ernte
) -> None:
    """A harvest of a metadata prefix ernte has no crosswalk for looked fine: every record was
    quarantined without a word until `ernte status` was read (found in a README audit)."""
    replay.play(MIT_SINGLE_PAGE)
    result = _harvest(ernte, replay, "--prefix", "xoai")
    assert result.exit_code == 0, result.stderr
    assert "no crosswalk reads metadata prefix 'xoai'" in result.stderr
    assert "`crosswalk`" in result.stderr and "oai_dc" in result.stderr
    run = only_harvest(ernte("status", "--json").output)["run"]
    assert run["records"] > 0 and run["quarantined"] == run["records"]
