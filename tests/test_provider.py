"""The demo repository: its bundled sample, the generator, and the OAI-PMH provider, checked with
plain sickle (no ernte code in the loop, so a harvester bug cannot hide a provider bug)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from itertools import islice
from pathlib import Path

import pytest
import requests
import sickle.oaiexceptions
from lxml import etree
from sickle import Sickle
from stdnum import isbn, issn

from harvester.demo import generate
from harvester.demo.generate import (
    SAMPLE_DELETED,
    SET_NAMES,
    build_sample,
    generate_records,
    seed_record,
)
from harvester.demo.provider import OAI_PATH, serve
from harvester.demo.sample import (
    SAMPLE_RESOURCE,
    SampleRecord,
    load_sample,
    records_from_jsonl,
)
from harvester.oai.xmlsafe import parse_xml
from tests.faults import fault_proxy

SEED_FILE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_452c561150669cdf.txt"
SEED_IDENTIFIER = "oai:orlis.difu.de:difu/167832"
BATCH = 25

NS = {
    "oai": "http://www.openarchives.org/OAI/2.0/",
    "dim": "http://www.dspace.org/xmlns/dspace/dim",
    "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
    "dc": "http://purl.org/dc/elements/1.1/",
}


@pytest.fixture(scope="module")
def sample() -> list[SampleRecord]:
    return load_sample()


@pytest.fixture(scope="module")
def base_url(sample: list[SampleRecord]) -> Iterator[str]:
    with serve(sample, batch_size=BATCH) as url:
        yield url


def _oai_xml(url: str, **params: str) -> etree._Element:
    response = requests.get(url, params=params, timeout=10)
    assert response.status_code == 200
    return parse_xml(response.content)


def _harvest(url: str, **params: str) -> list[sickle.models.Record]:
    return list(Sickle(url).ListRecords(ignore_deleted=False, **params))


# --- the bundled sample ----------------------------------------------------------------------


def test_sample_file_is_labelled_as_sample_data() -> None:
    text = resources.files("harvester.demo").joinpath(SAMPLE_RESOURCE).read_text("utf-8")
    first_line = text.split("\n", 1)[0]
    assert "SAMPLE DATA" in first_line and "Not real ORLIS records" in first_line


def test_committed_sample_is_what_the_generator_makes(sample: list[SampleRecord]) -> None:
    assert build_sample() == sample


def test_sample_size_identity_and_tombstones(sample: list[SampleRecord]) -> None:
    assert len(sample) >= 220
    assert len({r.identifier for r in sample}) == len(sample)
    deleted = [r for r in sample if r.deleted]
    assert len(deleted) == SAMPLE_DELETED
    assert all(not r.fields for r in deleted)
    assert all(
        r.values("title") and r.values("contributor", "author") for r in sample if not r.deleted
    )


def test_seed_record_comes_first_and_reproduces_the_seed_file(sample: list[SampleRecord]) -> None:
    if not SEED_FILE.exists():
        pytest.skip(f"{SEED_FILE} is absent: needs ../shared/seed")
    seed = sample[0]
    assert seed == seed_record()
    assert seed.identifier == SEED_IDENTIFIER
    assert "".join(f.value for f in seed.fields) == SEED_FILE.read_text(encoding="utf-8")
    assert seed.values("contributor", "author") == ["Kocks, Martina", "Güles, Orhan"]
    assert seed.values("date", "issued") == ["2009"]
    assert seed.values("title") == ["Städte in sozialer Verantwortung."]
    subjects = seed.values("subject")
    assert (len(subjects), subjects[0], subjects[-1]) == (
        24,
        "Stadtentwicklungsplanung",
        "Europäischer Sozialfonds",
    )


def test_sample_identifiers_and_dates_are_well_formed(sample: list[SampleRecord]) -> None:
    datestamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    issued_precisions = set()
    for record in sample:
        number = record.identifier.removeprefix("oai:orlis.difu.de:difu/")
        assert number.isdigit(), record.identifier
        assert datestamp.fullmatch(record.datestamp), record.identifier
        assert "2019" <= record.datestamp[:4] <= "2025", record.identifier
        assert {"com_difu_literatur"} < set(record.sets) <= set(SET_NAMES), record.identifier
        if record.deleted:
            continue
        assert all(issn.is_valid(v) for v in record.values("identifier", "issn")), record
        assert all(isbn.is_valid(v) for v in record.values("identifier", "isbn")), record
        assert record.values("identifier", "uri") == [f"https://orlis.difu.de/handle/difu/{number}"]
        assert re.fullmatch(r"DM\d{8}", record.values("identifier", "other")[0])
        assert record.values("title")[0].endswith((".", "?"))
        (issued,) = record.values("date", "issued")
        assert re.fullmatch(r"\d{4}(-\d\d(-\d\d)?)?", issued), record.identifier
        assert 1995 <= int(issued[:4]) <= 2024
        issued_precisions.add(len(issued))
        assert 3 <= len(record.values("subject")) <= 24
    assert issued_precisions == {4, 7, 10}


def test_sample_has_shared_keywords_and_german_text(sample: list[SampleRecord]) -> None:
    subjects = Counter(s for r in sample for s in r.values("subject"))
    assert sum(1 for count in subjects.values() if count >= 10) >= 15  # facets worth showing
    assert subjects["Soziale Stadt"] >= 5
    text = " ".join(
        v for r in sample for v in r.values("title") + r.values("description", "abstract")
    )
    for form in ("Stadtteil", "Stadtteile", "Stadtteilen", "Straße", "Städtebau", "Großstadt"):
        assert re.search(rf"\b{form}\b", text), form
    languages = Counter(v for r in sample for v in r.values("language", "iso"))
    assert languages["de"] > 10 * languages["en"] > 0
    types = {r.values("type")[0] for r in sample if not r.deleted}
    assert {"Zeitschriftenaufsatz", "Monographie", "Graue Literatur", "Dissertation"} <= types


def test_sample_is_as_varied_as_a_literature_database(sample: list[SampleRecord]) -> None:
    # A sample of a few topics repeated over and over makes every search hit half the records.
    live = [r for r in sample if not r.deleted]
    titles = [r.values("title")[0] for r in live]
    assert len(set(titles)) >= len(titles) - 2
    subjects = Counter(s for r in live for s in set(r.values("subject")))
    assert max(subjects.values()) <= 0.12 * len(live), subjects.most_common(3)
    assert len(subjects) >= 150
    # Stadtteil(e/en/s) belongs to one topic among many: a minority of records, not most.
    stadtteil = re.compile(r"\bStadtteil(e|en|s)?\b")
    neighbourhood = [
        r
        for r in live
        if stadtteil.search(
            " ".join(r.values("title") + r.values("description", "abstract") + r.values("subject"))
        )
    ]
    assert 0.08 * len(live) <= len(neighbourhood) <= 0.22 * len(live)


def test_generated_titles_rarely_repeat() -> None:
    records = [r for r in generate_records(1_000, seed=13) if not r.deleted]
    titles = {r.values("title")[0] for r in records}
    assert len(titles) >= 0.97 * len(records)


# --- the generator ---------------------------------------------------------------------------


@pytest.mark.slow
def test_generated_records_are_deterministic_unique_and_varied() -> None:
    first = list(generate_records(2_000, seed=7, deleted_share=0.05))
    assert first == list(generate_records(2_000, seed=7, deleted_share=0.05))
    assert first != list(generate_records(2_000, seed=8, deleted_share=0.05))
    assert len({r.identifier for r in first}) == 2_000
    assert sum(r.deleted for r in first) == 100
    assert len({r.datestamp[:7] for r in first}) > 60  # spread over the months of 2019..2025
    assert {s for r in first for s in r.sets} == set(SET_NAMES)
    assert SEED_IDENTIFIER not in {r.identifier for r in first}


def test_generator_command_writes_a_labelled_file_that_reads_back(tmp_path: Path) -> None:
    target = tmp_path / "records.jsonl"
    generate.main(["-n", "50", "--seed", "5", "-o", str(target)])
    lines = target.read_text(encoding="utf-8").splitlines()
    assert "SYNTHETIC DATA" in lines[0]
    assert records_from_jsonl(lines) == list(generate_records(50, seed=5))


def test_generator_rejects_nonsense_and_allows_nothing() -> None:
    assert list(generate_records(0)) == []
    with pytest.raises(ValueError):
        list(generate_records(10, deleted_share=1.5))


# --- the provider, seen through sickle -------------------------------------------------------


def test_identify_declares_seconds_granularity_and_persistent_deletes(
    base_url: str, sample: list[SampleRecord]
) -> None:
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith(OAI_PATH)
    identify = Sickle(base_url).Identify()
    assert identify.granularity == "YYYY-MM-DDThh:mm:ssZ"
    assert identify.deletedRecord == "persistent"
    assert identify.earliestDatestamp == min(r.datestamp for r in sample)
    assert identify.baseURL == base_url


def test_list_metadata_formats_and_sets(base_url: str) -> None:
    client = Sickle(base_url)
    assert {f.metadataPrefix for f in client.ListMetadataFormats()} == {"dim", "oai_dc"}
    assert {(s.setSpec, s.setName) for s in client.ListSets()} == set(SET_NAMES.items())


def test_list_records_returns_every_record_over_several_pages(
    base_url: str, sample: list[SampleRecord]
) -> None:
    with fault_proxy(base_url) as proxy:
        records = _harvest(proxy.url, metadataPrefix="dim")
    assert sorted(r.header.identifier for r in records) == sorted(r.identifier for r in sample)
    assert len(proxy.requests) == -(-len(sample) // BATCH)
    assert all("resumptionToken" in r.params for r in proxy.requests[1:])
    datestamps = [r.header.datestamp for r in records]
    assert datestamps == sorted(datestamps)


def test_deleted_records_come_as_headers_with_status_deleted(
    base_url: str, sample: list[SampleRecord]
) -> None:
    records = _harvest(base_url, metadataPrefix="dim")
    deleted = {r.header.identifier for r in records if r.header.deleted}
    assert deleted == {r.identifier for r in sample if r.deleted}
    tombstone = next(r for r in records if r.header.deleted)
    assert tombstone.xml.find("oai:metadata", NS) is None
    assert tombstone.header.setSpecs  # sets kept on tombstones, as DSpace does


@pytest.mark.parametrize("set_spec", ["col_difu_graue", "col_difu_zeitschriften"])
def test_set_filter(base_url: str, sample: list[SampleRecord], set_spec: str) -> None:
    records = _harvest(base_url, metadataPrefix="oai_dc", set=set_spec)
    expected = {r.identifier for r in sample if set_spec in r.sets}
    assert {r.header.identifier for r in records} == expected
    assert all(set_spec in r.header.setSpecs for r in records)


def test_unknown_set_is_no_records_match(base_url: str) -> None:
    with pytest.raises(sickle.oaiexceptions.NoRecordsMatch):
        _harvest(base_url, metadataPrefix="dim", set="col_difu_gibtsnicht")


def test_from_until_is_inclusive_at_seconds_granularity(
    base_url: str, sample: list[SampleRecord]
) -> None:
    # Boundaries on datestamps several records share (a bulk edit) are the hard case.
    shared = [d for d, n in Counter(r.datestamp for r in sample).items() if n > 1]
    assert shared, "the sample should have records sharing a datestamp"
    start, end = min(shared), max(shared)
    records = _harvest(base_url, metadataPrefix="dim", **{"from": start, "until": end})
    expected = {r.identifier for r in sample if start <= r.datestamp <= end}
    assert {r.header.identifier for r in records} == expected


def test_from_until_with_day_granularity(base_url: str, sample: list[SampleRecord]) -> None:
    records = _harvest(
        base_url, metadataPrefix="dim", **{"from": "2022-01-01", "until": "2022-12-31"}
    )
    expected = {r.identifier for r in sample if r.datestamp.startswith("2022-")}
    assert {r.header.identifier for r in records} == expected


def test_dim_payload_carries_every_field_in_order(
    base_url: str, sample: list[SampleRecord]
) -> None:
    seed = sample[0]
    root = _oai_xml(base_url, verb="GetRecord", metadataPrefix="dim", identifier=seed.identifier)
    fields = root.findall(".//dim:dim/dim:field", NS)
    assert [(f.get("mdschema"), f.get("element"), f.get("qualifier"), f.text) for f in fields] == [
        ("dc", f.element, f.qualifier, f.value) for f in seed.fields
    ]
    with_lang = next(r for r in sample if not r.deleted and r.fields[-1].lang)
    root = _oai_xml(
        base_url, verb="GetRecord", metadataPrefix="dim", identifier=with_lang.identifier
    )
    assert root.findall(".//dim:field", NS)[-1].get("lang") == with_lang.fields[-1].lang


def test_oai_dc_payload_is_simple_dublin_core(base_url: str, sample: list[SampleRecord]) -> None:
    seed = sample[0]
    root = _oai_xml(base_url, verb="GetRecord", metadataPrefix="oai_dc", identifier=seed.identifier)
    (dc,) = root.findall(".//oai:metadata/oai_dc:dc", NS)

    def values(name: str) -> list[str]:
        return [e.text or "" for e in dc.findall(f"dc:{name}", NS)]

    assert values("title") == seed.values("title")
    assert values("creator") == seed.values("contributor", "author")
    assert values("subject") == seed.values("subject")
    assert values("description") == seed.values("description", "abstract")
    assert "2009" in values("date")  # next to the accession dates, as DSpace sends them
    assert set(values("identifier")) >= {"0303-2493", "DM09072727"}
    assert "Abs" not in [e.text for e in dc]
    assert {etree.QName(e).namespace for e in dc} == {NS["dc"]}


def test_list_identifiers_pages_headers(base_url: str, sample: list[SampleRecord]) -> None:
    headers = list(Sickle(base_url).ListIdentifiers(metadataPrefix="dim", ignore_deleted=False))
    assert len(headers) == len(sample)


def test_protocol_errors(base_url: str) -> None:
    client = Sickle(base_url)
    with pytest.raises(sickle.oaiexceptions.CannotDisseminateFormat):
        client.ListRecords(metadataPrefix="mods")
    with pytest.raises(sickle.oaiexceptions.BadResumptionToken):
        client.ListRecords(resumptionToken="kaputt")
    with pytest.raises(sickle.oaiexceptions.IdDoesNotExist):
        client.GetRecord(metadataPrefix="dim", identifier="oai:orlis.difu.de:difu/1")
    repeated = requests.get(f"{base_url}?verb=Identify&verb=Identify", timeout=10)
    assert parse_xml(repeated.content).find("oai:error", NS).get("code") == "badArgument"
    assert requests.get(base_url.replace(OAI_PATH, "/"), timeout=10).status_code == 404


def test_post_requests_are_answered(base_url: str, sample: list[SampleRecord]) -> None:
    response = requests.post(
        base_url, data={"verb": "GetRecord", "metadataPrefix": "dim", "identifier": SEED_IDENTIFIER}
    )
    root = parse_xml(response.content)
    assert root.findtext(".//oai:header/oai:identifier", namespaces=NS) == SEED_IDENTIFIER


@pytest.mark.slow
def test_large_generated_repository_pages_from_any_cursor() -> None:
    records = list(generate_records(3_000, seed=3))
    with serve(records, batch_size=500) as url, fault_proxy(url) as proxy:
        harvested = list(
            islice(
                Sickle(proxy.url).ListIdentifiers(metadataPrefix="dim", ignore_deleted=False), 3_000
            )
        )
    assert len(harvested) == 3_000
    assert len({h.identifier for h in harvested}) == 3_000
    assert len(proxy.requests) == 6
