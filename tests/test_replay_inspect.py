"""Looking at a repository before harvesting: `ernte sets`, `ernte formats`, ListIdentifiers.

Sets come over several pages (MIT DSpace pages ListSets: page 1 -> page 10), with hierarchical
specs (`3:5`, Erasmus), specs with spaces (VuFind) and set descriptions (Harvard). Both commands
print a table, or JSON with --json. ListIdentifiers samples are used for paging only (NSDL's
comments and blank lines, MIT's page-counting cursor), never as records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from harvester.run import services
from harvester.settings import get_settings
from tests.conftest import CLIResult
from tests.replay_server import ReplayServer

pytestmark = pytest.mark.samples

Ernte = Callable[..., CLIResult]

MIT_SETS = [
    "dspace_mit_listsets_page1_token.xml",
    "dspace_mit_listsets_page10_final_empty_token.xml",
]


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables wide enough that no cell wraps, so the printed values can be checked."""
    monkeypatch.setenv("COLUMNS", "400")


def _specs(replay: ReplayServer, *names: str) -> list[str]:
    """The setSpecs the samples contain, in order (read with a regex, not ernte's parser)."""
    return [
        spec.decode().strip()
        for name in names
        for spec in re.findall(rb"<setSpec>([^<]*)</setSpec>", replay.library[name].body)
    ]


def test_sets_over_several_pages(replay: ReplayServer, ernte: Ernte) -> None:
    replay.play(*MIT_SETS)

    result = ernte("sets", replay.url, "--json")

    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.output)
    assert [s["spec"] for s in listed] == _specs(replay, *MIT_SETS)
    assert all(s["name"] for s in listed)
    second = replay.requests_for("ListSets")[1]
    assert second.params == {"verb": "ListSets", "resumptionToken": "////100"}
    assert replay.overruns == 0


@pytest.mark.parametrize(
    ("sample", "spec", "name"),
    [
        ("dspace1_oaicat_erasmus_listsets.xml", "3:5", "EUR Medical Dissertations"),
        ("vufind_listsets_setspec_with_spaces.xml", "Audio (Music)", "Audio (Music)"),
        ("harvard_librarycloud_listsets_setdescription.xml", None, None),
    ],
)
def test_sets_table_and_json(
    replay: ReplayServer, ernte: Ernte, sample: str, spec: str | None, name: str | None
) -> None:
    expected = _specs(replay, sample)
    replay.play(sample, sample)  # once for the table, once for JSON

    table = ernte("sets", replay.url)
    as_json = ernte("sets", replay.url, "--json")

    assert table.exit_code == 0 and as_json.exit_code == 0, table.stderr + as_json.stderr
    listed = json.loads(as_json.output)
    assert [s["spec"] for s in listed] == expected
    assert f"{len(expected)} sets" in table.output
    for each in expected:
        assert each in table.output
    if spec is not None:
        assert {"spec": spec, "name": name} in listed


def test_a_repeated_sets_token_is_an_error(replay: ReplayServer, ernte: Ernte) -> None:
    replay.play(MIT_SETS[0], repeat_last=True)

    result = ernte("sets", replay.url)

    assert result.exit_code == 1
    assert "repeated resumption token '////100'" in result.stderr
    assert len(replay.requests_for("ListSets")) == 2


@pytest.mark.parametrize(
    "sample",
    ["invenio_zenodo_listmetadataformats.xml", "dspace1_oaicat_erasmus_listmetadataformats.xml"],
)
def test_formats_table_and_json(replay: ReplayServer, ernte: Ernte, sample: str) -> None:
    body = replay.library[sample].body
    prefixes = [p.decode() for p in re.findall(rb"<metadataPrefix>([^<]*)<", body)]
    namespaces = [n.decode() for n in re.findall(rb"<metadataNamespace>([^<]*)<", body)]
    replay.play(formats=sample)

    table = ernte("formats", replay.url)
    as_json = ernte("formats", replay.url, "--json")

    assert table.exit_code == 0 and as_json.exit_code == 0, table.stderr + as_json.stderr
    listed = json.loads(as_json.output)
    assert [f["prefix"] for f in listed] == prefixes
    assert [f["namespace"] for f in listed] == namespaces
    for prefix in prefixes:
        assert re.search(rf"\b{re.escape(prefix)}\b", table.output)


def test_formats_answered_with_something_else_is_a_clear_error(
    replay: ReplayServer, ernte: Ernte
) -> None:
    replay.play("dspace1_oaicat_erasmus_listsets.xml", formats=None)

    result = ernte("formats", replay.url)

    assert result.exit_code == 1
    assert "ListSets response, not ListMetadataFormats" in result.stderr


@pytest.mark.parametrize(
    "sequence",
    [
        [
            "joai_nsdl_listidentifiers_page1_of4_token.xml",  # comments, blank lines
            "joai_nsdl_listidentifiers_page4_of4_final_empty_token.xml",
        ],
        [
            "dspace_mit_listidentifiers_page1_token.xml",
            "dspace_mit_listidentifiers_page2_final_empty_token.xml",  # cursor="1" (a page)
        ],
    ],
    ids=["NSDL jOAI", "MIT DSpace"],
)
def test_list_identifiers_pages_to_the_empty_token(
    replay: ReplayServer, sequence: list[str]
) -> None:
    replay.play(*sequence)
    client = services.oai_client(get_settings(), replay.url)

    headers = list(client.list_identifiers("oai_dc"))

    expected = [i for name in sequence for i, _ in replay.library[name].headers()]
    assert [h.identifier for h in headers] == expected
    assert all(h.datestamp for h in headers)
    assert len(replay.requests_for("ListIdentifiers")) == len(sequence)
    assert replay.overruns == 0
