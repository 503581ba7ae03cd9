"""Damaged but usable pages and envelope quirks of real servers, and what `ernte show` prints.

- PUC-Rio sends a raw U+000B: it is removed (and counted), nothing else is lost; a recover-mode
  parser would drop every later `&amp;` (8 identifier URLs in 4 of its 5 records).
- Harvard sends datestamps like `20210311`: the record is kept with the raw value, and warned.
- Namespaces declared on <record>/<header>/<metadata> (DOAJ, SubjectsPlus), DC in the default
  namespace under the prefix `oaidc` (PUC-Rio): each archived record is a self-contained
  document with its namespaces.
- responseDate with an offset (SubjectsPlus, +05:45): the watermark is stored in UTC.
- identifiers without `oai:` (Harvard, SubjectsPlus "1") work as identities.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from harvester.oai.xmlsafe import parse_xml
from tests.conftest import CLIResult
from tests.replay_server import ReplayServer, archived, only_harvest

pytestmark = pytest.mark.samples

Ernte = Callable[..., CLIResult]

PUC_RIO = "pucrio_listrecords_invalid_char_vt_default_dc_ns.xml"
HARVARD = "harvard_librarycloud_listrecords_mods_bad_datestamp.xml"
DOAJ = "doaj_listrecords_oai_doaj_token.xml"
SUBJECTSPLUS = "subjectsplus_listrecords_broken_baseurl.xml"
# How Humanities Commons ends a list: noRecordsMatch for the last token. Closes the single
# pages that still carry a token (Harvard, DOAJ) so that the harvest can complete.
END_OF_LIST = "humcommons_mla_listrecords_page14_noRecordsMatch_after_token.xml"

DC = "http://purl.org/dc/elements/1.1/"
NRSEQ_URL = re.compile(rb"http://www\.maxwell\.vrac\.puc-rio\.br/Busca_etds\.php\?[^<]*")
XML_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _show_raw(ernte: Ernte, identifier: str) -> bytes:
    result = ernte("show", identifier, "--raw")
    assert result.exit_code == 0, result.stderr
    return result.output.encode("utf-8")


def _records_of(body: bytes) -> list[bytes]:
    """The `<record>` chunks of a sample, split on the raw bytes (works on damaged pages)."""
    return [b"<record>" + chunk for chunk in body.split(b"<record>")[1:]]


# -- damaged but usable -----------------------------------------------------------------------


def test_invalid_character_is_removed_counted_and_nothing_else_lost(
    replay: ReplayServer, ernte: Ernte, data_dir: Path
) -> None:
    sample = replay.library[PUC_RIO]
    replay.play(PUC_RIO)

    result = ernte("harvest", replay.url, "--no-index")

    assert result.exit_code == 0, result.stderr
    assert set(archived(data_dir, replay.source_key)) == {i for i, _ in sample.headers()}
    run = only_harvest(ernte("status", "--json").output)["run"]
    assert run["repaired_chars"] == len(XML_FORBIDDEN.findall(sample.body)) > 0
    # every identifier URL of every record survives with its `&nrSeq=` parameter
    for (identifier, _), chunk in zip(sample.headers(), _records_of(sample.body), strict=True):
        raw = _show_raw(ernte, identifier)
        assert not XML_FORBIDDEN.search(raw)
        sent = NRSEQ_URL.findall(chunk)
        assert sent and NRSEQ_URL.findall(raw) == sent
        assert all(b"&amp;nrSeq=" in url for url in sent)
    damaged = next(c for c in _records_of(sample.body) if b"\x0b" in c)
    damaged_id = damaged.split(b"<identifier>")[1].split(b"<")[0].decode()
    assert "sealing off the well permanently" in _show_raw(ernte, damaged_id).decode()


def test_repaired_record_normalizes_with_its_urls(replay: ReplayServer, ernte: Ernte) -> None:
    """The normalized record of the damaged PUC-Rio page keeps the URLs too (`show --json`)."""
    sample = replay.library[PUC_RIO]
    replay.play(PUC_RIO)
    assert ernte("harvest", replay.url, "--no-index").exit_code == 0

    for (identifier, _), chunk in zip(sample.headers(), _records_of(sample.body), strict=True):
        shown = ernte("show", identifier, "--json")
        assert shown.exit_code == 0, shown.stderr
        record = json.loads(shown.output)
        assert record["identifier"] == identifier
        assert record["title"]  # DC in the default namespace under prefix `oaidc` is still DC
        kept = json.dumps(record, ensure_ascii=False)
        for url in NRSEQ_URL.findall(chunk):
            assert url.decode().replace("&amp;", "&") in kept


def test_datestamp_that_is_not_iso_keeps_the_record_raw_and_warns(
    replay: ReplayServer, ernte: Ernte, data_dir: Path
) -> None:
    sample = replay.library[HARVARD]
    replay.play(HARVARD, END_OF_LIST)

    result = ernte("harvest", replay.url, "--prefix", "mods", "--no-index")

    assert result.exit_code == 0, result.stderr
    archive = archived(data_dir, replay.source_key)
    sent = re.findall(rb"<datestamp>([^<]*)</datestamp>", sample.body)
    assert sorted(r.datestamp for r in archive.values()) == sorted(d.decode() for d in sent)
    assert {r.datestamp for r in archive.values()} == {"20210311"}
    harvest = only_harvest(ernte("status", "--json").output)
    assert harvest["run"]["warnings"] >= len(sent)
    assert harvest["state"] == "idle"
    # identifiers without `oai:` are identities like any other
    first = sample.headers()[0][0]
    assert not first.startswith("oai:")
    assert b"<datestamp>20210311</datestamp>" in _show_raw(ernte, first)


# -- namespace and envelope quirks ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample_name", "prefix", "payload_root"),
    [
        (DOAJ, "oai_doaj", "{http://doaj.org/features/oai_doaj/1.0/}doajArticle"),
        (SUBJECTSPLUS, "oai_dc", "{http://www.openarchives.org/OAI/2.0/oai_dc/}dc"),
        (PUC_RIO, "oai_dc", "{http://www.openarchives.org/OAI/2.0/oai_dc/}dc"),
        (HARVARD, "mods", "{http://www.loc.gov/mods/v3}mods"),
    ],
)
def test_archived_records_carry_their_namespaces(
    replay: ReplayServer, ernte: Ernte, sample_name: str, prefix: str, payload_root: str
) -> None:
    """Wherever the server declared them, the archived record resolves every prefix."""
    replay.play(sample_name, END_OF_LIST)
    assert ernte("harvest", replay.url, "--prefix", prefix, "--no-index").exit_code == 0

    for identifier, _ in replay.library[sample_name].headers()[:5]:
        record = parse_xml(_show_raw(ernte, identifier))
        metadata = record.find("{http://www.openarchives.org/OAI/2.0/}metadata")
        assert metadata is not None
        payload = next(iter(metadata))
        assert payload.tag == payload_root
        if payload_root.endswith("}dc"):
            assert payload.find(f"{{{DC}}}title") is not None


def test_response_date_with_offset_gives_a_utc_watermark(
    replay: ReplayServer, ernte: Ernte
) -> None:
    """SubjectsPlus answers at 2023-03-30T16:02:12+05:45, i.e. 10:17:12 UTC."""
    replay.play(SUBJECTSPLUS)

    assert ernte("harvest", replay.url, "--no-index").exit_code == 0

    harvest = only_harvest(ernte("status", "--json").output)
    assert harvest["watermark"] == "2023-03-30T10:17:12Z"
    assert b"<identifier>1</identifier>" in _show_raw(ernte, "1")


@pytest.mark.parametrize(
    "identify",
    [
        "dspace1_oaicat_erasmus_identify.xml",  # one line, toolkit description
        "invenio_zenodo_identify.xml",  # xml-stylesheet PI
        "joai_nsdl_identify.xml",  # blank lines everywhere
    ],
)
def test_identify_variants(replay: ReplayServer, ernte: Ernte, identify: str) -> None:
    body = replay.library[identify].body
    replay.play(identify=identify)

    result = ernte("identify", replay.url, "--json")

    assert result.exit_code == 0, result.stderr
    info = json.loads(result.output)
    root = etree.fromstring(body)
    ns = "{http://www.openarchives.org/OAI/2.0/}"
    assert info["repository_name"] == root.findtext(f".//{ns}repositoryName").strip()
    assert info["granularity"] == root.findtext(f".//{ns}granularity").strip()
    assert info["deleted_record"] == root.findtext(f".//{ns}deletedRecord").strip()


# -- show -------------------------------------------------------------------------------------


def test_show_raw_prints_the_record_as_harvested_live_and_deleted(
    replay: ReplayServer, ernte: Ernte
) -> None:
    sequence = [
        "dataverse_dvn_listrecords_page1_deleted.xml",
        "dataverse_dvn_listrecords_page2_final_selfclosing_token_deleted.xml",
    ]
    replay.play(*sequence)
    assert ernte("harvest", replay.url, "--no-index").exit_code == 0

    sent = {i: c for name in sequence for i, c in _by_identifier(replay.library[name].body)}
    for identifier, chunk in sent.items():
        shown = parse_xml(_show_raw(ernte, identifier))
        original = parse_xml(chunk.replace(b"<record>", _RECORD_WITH_NS, 1))
        assert _canonical(shown) == _canonical(original)

    missing = ernte("show", "oai:nowhere:1", "--raw")
    assert missing.exit_code == 1
    assert "not in the archive" in missing.stderr


_RECORD_WITH_NS = (
    b'<record xmlns="http://www.openarchives.org/OAI/2.0/"'
    b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
)


def _by_identifier(body: bytes) -> list[tuple[str, bytes]]:
    chunks = [c.split(b"</record>")[0] + b"</record>" for c in _records_of(body)]
    return [(c.split(b"<identifier>")[1].split(b"<")[0].decode(), c) for c in chunks]


def _canonical(element: etree._Element) -> list[tuple[str, list[tuple[str, str]], str]]:
    """Names (with namespace URIs), attributes and text, wherever namespaces were declared."""
    return [
        (str(e.tag), sorted(e.attrib.items()), (e.text or "").strip())
        for e in element.iter()
        if isinstance(e.tag, str)
    ]
