"""Bad input is quarantined with a reason that names the record; deleted records become
tombstones; the registry knows its formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.model import RawRecord, Record
from harvester.normalize.normalizer import QuarantineError, available_crosswalks, normalize

DATA = Path(__file__).parent / "data" / "crosswalks"
DC_RECORD = (
    '<record xmlns="http://www.openarchives.org/OAI/2.0/"><header><identifier>{identifier}'
    "</identifier><datestamp>2024-01-01</datestamp></header><metadata>"
    '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/">{fields}</oai_dc:dc></metadata></record>'
)


def raw(xml: str | bytes, identifier: str = "oai:t:9", prefix: str = "oai_dc") -> RawRecord:
    data = xml.encode() if isinstance(xml, str) else xml
    return RawRecord(identifier, "2024-01-01", False, ["s"], data, prefix)


def quarantine_reason(record: RawRecord, crosswalk: str | None = None) -> str:
    with pytest.raises(QuarantineError) as caught:
        normalize(record, source="test", crosswalk=crosswalk)
    assert caught.value.identifier == record.identifier
    assert record.identifier in caught.value.reason
    assert record.identifier in str(caught.value)
    return caught.value.reason


def test_registry_lists_every_format_and_alias() -> None:
    assert {"oai_dc", "dim", "mods", "marcxml", "marc21", "marc", "mets", "datacite",
            "oai_datacite", "oai_doaj"} <= set(available_crosswalks())  # fmt: skip


def test_broken_xml() -> None:
    reason = quarantine_reason(raw("<record><header><identifier>oai:t:9</identifier>"))
    assert "broken XML" in reason


def test_entities_are_not_resolved() -> None:
    """A record that declares entities is refused for that reason (not for a missing title):
    no external entity is ever read, whatever the record's other fields."""
    xml = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + DC_RECORD.format(identifier="oai:t:9", fields="<dc:title>Titel &x; Ende</dc:title>")
    )
    reason = quarantine_reason(raw(xml))
    assert "broken XML" in reason
    assert "declares entities (DTD); refused for safety" in reason
    assert "root:" not in reason


def test_unknown_format() -> None:
    xml = (DATA / "seed_dim.xml").read_bytes()
    reason = quarantine_reason(raw(xml, prefix="qdc"))
    assert "unknown format 'qdc'" in reason
    assert "unknown format 'xyz'" in quarantine_reason(raw(xml), crosswalk="xyz")


def test_missing_identifier_everywhere() -> None:
    xml = DC_RECORD.format(identifier="", fields="<dc:title>Titel</dc:title>")
    with pytest.raises(QuarantineError, match="no identifier"):
        normalize(raw(xml, identifier=""), source="test")


def test_identifier_from_header_when_raw_has_none() -> None:
    xml = DC_RECORD.format(identifier="oai:t:header", fields="<dc:title>Titel</dc:title>")
    assert normalize(raw(xml, identifier=""), source="test").identifier == "oai:t:header"


@pytest.mark.parametrize(
    "fields",
    ["", "<dc:title>   </dc:title>", "<dc:title>.</dc:title><dc:creator>A, B</dc:creator>"],
)
def test_no_title(fields: str) -> None:
    reason = quarantine_reason(raw(DC_RECORD.format(identifier="oai:t:9", fields=fields)))
    assert "no title" in reason


def test_no_metadata() -> None:
    xml = (
        '<record xmlns="http://www.openarchives.org/OAI/2.0/"><header><identifier>oai:t:9'
        "</identifier></header></record>"
    )
    assert "no <metadata>" in quarantine_reason(raw(xml))


def test_deleted_record_is_a_bare_tombstone() -> None:
    deleted = RawRecord(
        identifier="oai:t:gone",
        datestamp="2024-05-06T07:08:09Z",
        deleted=True,
        sets=["a", "b"],
        xml=b'<record><header status="deleted"><identifier>oai:t:gone</identifier></header></record>',
        metadata_prefix="unknown_format",
    )
    record = normalize(deleted, source="test")
    assert record == Record(
        identifier="oai:t:gone",
        source="test",
        metadata_prefix="unknown_format",
        datestamp="2024-05-06T07:08:09Z",
        deleted=True,
        sets=["a", "b"],
    )


def test_implausible_date_is_a_warning_not_a_quarantine() -> None:
    fields = "<dc:title>Titel</dc:title><dc:date>0099</dc:date><dc:date>20999</dc:date>"
    record = normalize(raw(DC_RECORD.format(identifier="oai:t:9", fields=fields)), "test")
    assert record.year is None and record.issued == ""
    assert any("implausible year" in w for w in record.warnings)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        # a few words guessed unsure into a language few libraries hold: none rather than wrong
        (("Duration: 4 min.",), ""),  # was Nigerian Pidgin (MIT's captured sample)
        (("Untitled",), ""),
        (("Poi (1979)",), ""),
        # short German and English titles, unsure but in a catalogue language: kept
        (("Soziale Stadt",), "de"),
        (("Handbook of urban studies",), "en"),
        (("Quartiermanagement in der Sozialen Stadt: Erfahrungen aus Berlin",), "de"),
        (("Les villes en France et leurs quartiers",), "fr"),
    ],
)
def test_a_language_is_guessed_only_when_the_guess_is_fair(
    texts: tuple[str, ...], expected: str
) -> None:
    from harvester.normalize.normalizer import detect_language

    assert detect_language(*texts) == expected
