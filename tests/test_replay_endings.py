"""Every way a real list ends, ends the harvest normally with every header archived.

Replays real ListRecords sequences through `ernte harvest URL --no-index`: final pages with an
empty token that carries attributes, a bare `<resumptionToken/>`, no token element at all, and
`noRecordsMatch` answered to a resumption request (Humanities Commons). DSpace's `cursor` counts
pages, not records; neither it nor completeListSize may decide when a list ends. A server that
repeats its token is stopped by the loop guard.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CLIResult
from tests.replay_server import ReplayServer, archived, only_harvest

pytestmark = pytest.mark.samples

Ernte = Callable[..., CLIResult]

ENDINGS = {
    "empty token with attributes (DSpace, cursor counts pages)": [
        "dspace_colostate_listrecords_page01_token.xml",
        "dspace_colostate_listrecords_page06_deleted_cursor_is_page_index.xml",
        "dspace_colostate_listrecords_page11_final_empty_token.xml",
    ],
    "empty token with expirationDate (DataCite)": [
        "datacite_listrecords_oai_dc_page1_german.xml",
        "datacite_listrecords_oai_dc_page2_final_empty_token.xml",
    ],
    "bare <resumptionToken /> (Dataverse, mostly deleted)": [
        "dataverse_dvn_listrecords_page1_deleted.xml",
        "dataverse_dvn_listrecords_page2_final_selfclosing_token_deleted.xml",
    ],
    "no token element at all (Zenodo)": [
        "invenio_zenodo_listrecords_oai_dc_page1_token.xml",
        "invenio_zenodo_listrecords_final_page_no_token.xml",
    ],
    "noRecordsMatch after a token (Humanities Commons)": [
        "humcommons_mla_listrecords_page13_token.xml",
        "humcommons_mla_listrecords_page14_noRecordsMatch_after_token.xml",
    ],
    "self-closing token with cursor=200 of 208 (bepress)": [
        "bepress_calpoly_listrecords_page3_final_selfclosing_token.xml",
    ],
    "no token on the last page (NCBI PMC)": ["ncbi_pmc_listrecords_final_page_no_token.xml"],
    "a page whose only record is deleted (MIT DSpace)": ["dspace_mit_listrecords_only_deleted.xml"],
}


@pytest.mark.parametrize("sequence", list(ENDINGS.values()), ids=list(ENDINGS))
def test_list_ends_normally_with_every_header_archived(
    replay: ReplayServer, ernte: Ernte, data_dir: Path, sequence: list[str]
) -> None:
    replay.play(*sequence)
    expected = dict(h for name in sequence for h in replay.library[name].headers())

    result = ernte("harvest", replay.url, "--no-index")

    assert result.exit_code == 0, result.stderr
    archive = archived(data_dir, replay.source_key)
    assert {i: r.deleted for i, r in archive.items()} == expected
    harvest = only_harvest(ernte("status", "--json").output)
    assert harvest["state"] == "idle"
    assert harvest["last_error"] is None
    assert harvest["watermark"] is not None
    assert harvest["token"] is None
    assert harvest["run"]["records"] == len(expected)
    assert harvest["run"]["deleted"] == sum(expected.values())
    # the harvest asked exactly for the replayed pages: no request past the end of the list
    assert len(replay.requests_for("ListRecords")) == len(sequence)
    assert replay.overruns == 0


def test_each_following_request_sends_the_previous_pages_token(
    replay: ReplayServer, ernte: Ernte
) -> None:
    sequence = ENDINGS["empty token with attributes (DSpace, cursor counts pages)"]
    replay.play(*sequence)

    assert ernte("harvest", replay.url, "--no-index").exit_code == 0

    first, *following = replay.requests_for("ListRecords")
    assert first.params == {"verb": "ListRecords", "metadataPrefix": "oai_dc"}
    tokens = [replay.library[name].body for name in sequence[:-1]]
    for request, page in zip(following, tokens, strict=True):
        assert set(request.params) == {"verb", "resumptionToken"}
        assert f">{request.params['resumptionToken']}</resumptionToken>".encode() in page


def test_cursor_and_complete_list_size_are_progress_not_the_end(
    replay: ReplayServer, ernte: Ernte, data_dir: Path
) -> None:
    """Colorado State says completeListSize=1008 and cursor=5 on page 6 (a page index): ernte
    follows the tokens, ends at the empty one, and keeps the numbers only as progress."""
    sequence = ENDINGS["empty token with attributes (DSpace, cursor counts pages)"]
    replay.play(*sequence)

    assert ernte("harvest", replay.url, "--no-index").exit_code == 0

    harvest = only_harvest(ernte("status", "--json").output)
    seen = len(archived(data_dir, replay.source_key))
    assert harvest["complete_list_size"] == 1008  # what the server claimed, shown as progress
    assert seen == harvest["run"]["records"] < harvest["complete_list_size"]
    assert harvest["state"] == "idle"


def test_a_repeated_token_stops_the_harvest_and_keeps_what_was_archived(
    replay: ReplayServer, ernte: Ernte, data_dir: Path
) -> None:
    """Humanities Commons page 13 served again and again: the same token comes back."""
    page13 = "humcommons_mla_listrecords_page13_token.xml"
    replay.play(page13, repeat_last=True)

    result = ernte("harvest", replay.url, "--no-index")

    assert result.exit_code == 1
    assert "repeated resumption token" in result.stderr
    assert "oai_dc.f(2016-05-25T00:00:00Z).u(2016-05-27T00:00:00Z):325" in result.stderr
    assert replay.url in result.stderr
    assert len(replay.requests_for("ListRecords")) == 2  # stopped at the first repetition
    harvest = only_harvest(ernte("status", "--json").output)
    assert harvest["state"] == "failed"
    assert "repeated resumption token" in harvest["last_error"]
    assert harvest["watermark"] is None
    assert set(archived(data_dir, replay.source_key)) == {
        i for i, _ in replay.library[page13].headers()
    }
