"""Every real record normalizes or is quarantined, in every format, and nothing crashes a run.

Each ListRecords-bearing sample (or real page sequence) is harvested with
`ernte harvest URL --prefix <its prefix> --no-index`; each GetRecord sample is fetched with
`OAIClient.get_record`, archived, and normalized with `ernte normalize SOURCE`. For every
archived live record either normalization succeeded or the record sits in the quarantine with a
reason. The per-format counts are printed as a table at the end of the module's run.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harvester.run import services
from harvester.settings import get_settings
from harvester.store.archive import RawArchive
from tests.conftest import PROJECT_ROOT, CLIResult
from tests.replay_server import ReplayServer, archived, only_harvest

pytestmark = pytest.mark.samples

Ernte = Callable[..., CLIResult]

# Closes single pages that still carry a token, the way Humanities Commons ends its lists.
END_OF_LIST = "humcommons_mla_listrecords_page14_noRecordsMatch_after_token.xml"

# (prefix the records were requested in, the real pages in order); the prefix is the one in
# each sample's <request> element or recorded request URL.
LIST_RECORDS: list[tuple[str, list[str], int, int]] = [
    ("oai_dc", ["dspace_mit_listrecords_oai_dc_set_single_page.xml"], 58, 0),
    ("oai_dc", ["dspace_mit_listrecords_only_deleted.xml"], 0, 0),
    (
        "oai_dc",
        [
            "dspace_colostate_listrecords_page01_token.xml",
            "dspace_colostate_listrecords_page06_deleted_cursor_is_page_index.xml",
            "dspace_colostate_listrecords_page11_final_empty_token.xml",
        ],
        206,
        0,
    ),
    ("oai_dc", ["dspace_udel_listrecords_page16_final_empty_token_base64_request.xml"], 78, 0),
    ("oai_dc", ["dspace1_oaicat_erasmus_listrecords_with_deleted.xml"], 79, 0),
    (
        "oai_dc",
        [
            "datacite_listrecords_oai_dc_page1_german.xml",
            "datacite_listrecords_oai_dc_page2_final_empty_token.xml",
        ],
        56,
        0,
    ),
    (
        "oai_dc",
        [
            "dataverse_dvn_listrecords_page1_deleted.xml",
            "dataverse_dvn_listrecords_page2_final_selfclosing_token_deleted.xml",
        ],
        4,
        0,
    ),
    ("oai_dc", ["bepress_calpoly_listrecords_page3_final_selfclosing_token.xml"], 8, 0),
    ("oai_dc", ["ncbi_pmc_listrecords_final_page_no_token.xml"], 44, 0),
    ("oai_dc", ["eprints_cogprints_listrecords_oai_dc.xml"], 45, 0),
    ("oai_dc", ["pucrio_listrecords_invalid_char_vt_default_dc_ns.xml"], 5, 0),
    ("oai_dc", ["subjectsplus_listrecords_broken_baseurl.xml"], 1, 0),
    ("oai_dc", ["humcommons_mla_listrecords_page13_token.xml", END_OF_LIST], 19, 0),
    (
        "oai_dc",
        [
            "invenio_zenodo_listrecords_oai_dc_page1_token.xml",
            "invenio_zenodo_listrecords_final_page_no_token.xml",
        ],
        6,
        0,
    ),
    ("mods", ["harvard_librarycloud_listrecords_mods_bad_datestamp.xml", END_OF_LIST], 10, 0),
    ("marc21", ["alma_listrecords_marc21_german_anonymized.xml", END_OF_LIST], 100, 0),
    ("marcxml", ["invenio_inspire_listrecords_marcxml.xml"], 0, 2),  # no title field
    ("oai_doaj", ["doaj_listrecords_oai_doaj_token.xml", END_OF_LIST], 100, 0),
]
"""(prefix, real pages in order, live records normalized, records quarantined)."""

GET_RECORD: list[tuple[str, str, int, int]] = [
    ("oai_dc", "dspace_mit_getrecord_oai_dc.xml", 1, 0),
    ("oai_dc", "dspace_mit_getrecord_deleted.xml", 0, 0),
    ("oai_dc", "dspace1_oaicat_erasmus_getrecord_deleted_duplicate_setspec.xml", 0, 0),
    ("mets", "dspace_de_halle_getrecord_mets_german.xml", 1, 0),
    ("mets", "dspace_de_halle_getrecord_deleted.xml", 0, 0),
    ("mets", "visuallibrary_de_halle_getrecord_mets_newspaper.xml", 1, 0),  # no XML declaration
    ("datacite", "invenio_zenodo_getrecord_datacite.xml", 1, 0),
]
"""(prefix, sample, live records normalized, records quarantined)."""


@dataclass
class Tally:
    samples: int = 0
    records: int = 0
    deleted: int = 0
    normalized: int = 0
    quarantined: int = 0


TALLIES: dict[str, Tally] = defaultdict(Tally)


@pytest.fixture(scope="module", autouse=True)
def _print_format_table(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module: the per-format table, on the terminal (not captured)."""
    yield
    if not TALLIES:
        return
    lines = [
        "",
        "Real samples per metadata format (live records: normalized + quarantined):",
        f"{'format':<10}{'samples':>8}{'records':>9}{'deleted':>9}{'normalized':>12}"
        f"{'quarantined':>13}",
    ]
    for prefix, t in sorted(TALLIES.items()):
        lines.append(
            f"{prefix:<10}{t.samples:>8}{t.records:>9}{t.deleted:>9}{t.normalized:>12}"
            f"{t.quarantined:>13}"
        )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n".join(lines))


def _quarantined(ernte: Ernte) -> dict[str, str]:
    result = ernte("quarantine", "--json")
    assert result.exit_code == 0, result.stderr
    return {row["identifier"]: row["reason"] for row in json.loads(result.output)}


def _check_and_tally(
    prefix: str,
    archive_ids: dict[str, bool],
    normalized: int,
    ernte: Ernte,
    expected: tuple[int, int],
) -> None:
    """Every live record normalized or quarantined (with a reason), as many of each as the
    sample's row says; add to the format's row of the printed table."""
    quarantined = _quarantined(ernte)
    live = {i for i, deleted in archive_ids.items() if not deleted}
    assert set(quarantined) <= set(archive_ids)
    assert all(quarantined.values()), quarantined
    assert normalized + len(live & set(quarantined)) == len(live)
    assert (normalized, len(quarantined)) == expected
    tally = TALLIES[prefix]
    tally.samples += 1
    tally.records += len(archive_ids)
    tally.deleted += len(archive_ids) - len(live)
    tally.normalized += normalized
    tally.quarantined += len(quarantined)


@pytest.mark.parametrize(
    ("prefix", "sequence", "normalized", "quarantined"),
    LIST_RECORDS,
    ids=[seq[0].rsplit(".", 1)[0] for _, seq, _, _ in LIST_RECORDS],
)
def test_list_records_sample_normalizes_or_quarantines(
    replay: ReplayServer,
    ernte: Ernte,
    data_dir: Path,
    prefix: str,
    sequence: list[str],
    normalized: int,
    quarantined: int,
) -> None:
    replay.play(*sequence)

    result = ernte("harvest", replay.url, "--prefix", prefix, "--no-index")

    assert result.exit_code == 0, result.stderr
    expected = dict(h for name in sequence for h in replay.library[name].headers())
    archive = archived(data_dir, replay.source_key)
    assert {i: r.deleted for i, r in archive.items()} == expected
    assert {r.metadata_prefix for r in archive.values()} == {prefix}
    run = only_harvest(ernte("status", "--json").output)["run"]
    _check_and_tally(prefix, expected, run["normalized"], ernte, (normalized, quarantined))


@pytest.mark.parametrize(
    ("prefix", "sample", "normalized", "quarantined"),
    GET_RECORD,
    ids=[s for _, s, _, _ in GET_RECORD],
)
def test_get_record_sample_normalizes_or_quarantines(
    replay: ReplayServer,
    ernte: Ernte,
    data_dir: Path,
    prefix: str,
    sample: str,
    normalized: int,
    quarantined: int,
) -> None:
    [(identifier, deleted)] = replay.library[sample].headers()
    replay.play(sample)
    settings = get_settings()

    page = services.oai_client(settings, replay.url).get_record(identifier, prefix)
    with RawArchive.open(settings.archive_dir, replay.source_key, prefix) as archive:
        archive.append(page.records, page.url)
    result = ernte("normalize", replay.source_key)

    assert [(r.identifier, r.deleted) for r in page.records] == [(identifier, deleted)]
    assert replay.requests[0].params == {
        "verb": "GetRecord",
        "identifier": identifier,
        "metadataPrefix": prefix,
    }
    assert result.exit_code == 0, result.stderr
    counts = re.search(r"\[(\S+)\]: normalized (\d+), quarantined (\d+)", result.output)
    assert counts is not None, result.output
    assert counts.group(1) == prefix
    _check_and_tally(
        prefix, {identifier: deleted}, int(counts.group(2)), ernte, (normalized, quarantined)
    )


def test_get_record_of_an_unknown_identifier_is_an_oai_error(replay: ReplayServer) -> None:
    from harvester.oai.client import IdDoesNotExist

    replay.play("invenio_zenodo_error_idDoesNotExist_http422.xml")
    client = services.oai_client(get_settings(), replay.url)

    with pytest.raises(IdDoesNotExist) as caught:
        client.get_record("oai:zenodo.org:0", "oai_dc")

    assert caught.value.code == "idDoesNotExist"
    assert caught.value.status == 422
    assert "identifier=oai%3Azenodo.org%3A0" in caught.value.url


README_FORMATS = {
    "oai_dc": "oai_dc",
    "MARC21": "marc21",
    "MODS": "mods",
    "oai_doaj": "oai_doaj",
    "METS": "mets",
    "DataCite": "datacite",
}


def test_readme_states_the_per_format_counts_the_samples_are_held_to() -> None:
    """README's per-format sentence is the sum of the rows above (each asserted per sample)."""
    readme = " ".join((PROJECT_ROOT / "README.md").read_text(encoding="utf-8").split())
    sentence = re.search(r"\(per format: (.*?)\)", readme)
    assert sentence is not None, "README lost its per-format counts"
    stated = {
        README_FORMATS[name]: (int(ok), int(bad))
        for name, ok, bad in re.findall(r"(\w+) (\d+)(?: normalized)? ?/ ?(\d+)", sentence.group(1))
    }
    totals: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for prefix, _, ok, bad in [*LIST_RECORDS, *GET_RECORD]:
        totals[prefix] = (totals[prefix][0] + ok, totals[prefix][1] + bad)
    assert stated == {prefix: counts for prefix, counts in totals.items() if prefix != "marcxml"}
    assert totals["marcxml"] == (0, 2)
    assert "two INSPIRE MARCXML conference records have no title field" in sentence.group(1)
