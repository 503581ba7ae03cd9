"""A record straight from a fetched page is normalized from its parsed element; the same record
read back from the archive is parsed from its bytes. Both must give the same record."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from harvester.model import RawRecord
from harvester.normalize.normalizer import normalize

SEED_DIM = Path(__file__).parent / "data" / "crosswalks" / "seed_dim.xml"


def _raw(xml: bytes, element: etree._Element | None = None) -> RawRecord:
    return RawRecord("oai:orlis.difu.de:difu/167832", "2022-11-25", False, [], xml, "dim", element)


def test_element_and_bytes_normalize_alike() -> None:
    xml = SEED_DIM.read_bytes()
    from_bytes = normalize(_raw(xml), "orlis", "dim")
    from_element = normalize(_raw(xml, etree.fromstring(xml)), "orlis", "dim")
    assert from_element == from_bytes
    assert from_element.title == "Städte in sozialer Verantwortung"


def test_comments_inside_the_payload_are_ignored() -> None:
    xml = SEED_DIM.read_bytes()
    commented = xml.replace(b"<dim:field", b"<!-- a comment --><dim:field", 3)
    assert commented != xml
    assert normalize(_raw(commented), "orlis", "dim") == normalize(_raw(xml), "orlis", "dim")
