"""Byte repair before a strict parse: invalid characters go, everything else stays."""

from pathlib import Path

import pytest

from harvester.oai.xmlsafe import (
    Repaired,
    XMLSyntaxError,
    parse_xml,
    repair_damaged_xml,
    repair_xml_bytes,
)


def test_raw_control_characters_are_removed_and_counted() -> None:
    data = b"<a>one\x0btwo\x00three</a>"
    repaired = repair_xml_bytes(data)
    assert repaired.removed == 2
    assert parse_xml(repaired.data).text == "onetwothree"


def test_invalid_character_references_are_removed_but_valid_ones_kept() -> None:
    data = b"<a>x&#11;y&#x0B;z&#10;&#xE4;&amp;</a>"
    repaired = repair_xml_bytes(data)
    assert repaired.removed == 2
    assert parse_xml(repaired.data).text == "xyz\n\u00e4&"


def test_repair_keeps_ampersands_that_recover_mode_would_drop() -> None:
    page = (
        b"<r><d>bad\x0bchar</d>"
        b"<id>http://example.org/x?a=1&amp;nrSeq=2</id><id>http://e.org/?b=1&amp;nrSeq=3</id></r>"
    )
    root = parse_xml(repair_xml_bytes(page).data)
    assert [e.text for e in root.iter("id")] == [
        "http://example.org/x?a=1&nrSeq=2",
        "http://e.org/?b=1&nrSeq=3",
    ]


def test_clean_bytes_are_returned_unchanged() -> None:
    data = "<a>Straße &amp; Städte</a>".encode()
    assert repair_xml_bytes(data).data is data


def test_entities_and_dtds_are_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><l>&b;</l>'
    with pytest.raises(XMLSyntaxError, match="entities"):
        parse_xml(bomb)


def test_external_entities_and_dtds_are_never_loaded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]><x>&xxe;</x>'.encode()
    with pytest.raises(XMLSyntaxError, match="entities"):
        parse_xml(xxe)
    external_dtd = f'<!DOCTYPE x SYSTEM "file://{secret}"><x>ok</x>'.encode()
    assert parse_xml(external_dtd).text == "ok"  # parsed without fetching the DTD


def test_malformed_xml_is_a_clear_error() -> None:
    with pytest.raises(XMLSyntaxError):
        parse_xml(b"<a><b></a>")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_page_is_read_not_stripped_of_its_nul_bytes(codec: str) -> None:
    """OAI-PMH asks for UTF-8, but a server that sends UTF-16 (with or without a byte order
    mark) was read as garbage: the repair took its NUL bytes for forbidden characters."""
    page = '<?xml version="1.0" encoding="UTF-16"?><a>Städte\u000b in Verantwortung</a>'
    repaired = repair_xml_bytes(page.encode(codec))
    assert repaired.removed == 1  # the vertical tab, the one forbidden character
    assert parse_xml(repaired.data).text == "Städte in Verantwortung"


def test_deeper_repairs_leave_what_is_not_theirs_alone() -> None:
    """`repair_damaged_xml` runs on a page that did not parse: it must not change what another
    encoding, a defined entity or a valid reference means."""
    latin = b'<?xml version="1.0" encoding="ISO-8859-1"?><a>Stra\xdfe &#xFFFF;</a>'
    assert repair_damaged_xml(latin) == Repaired(latin.replace(b"&#xFFFF;", b""), 1)
    kept = b"<a>&amp; &lt; &#65; &#x10FFFF; &unknown; \xc3\xa4</a>"
    assert repair_damaged_xml(kept) == Repaired(kept, 0)
    repaired = repair_damaged_xml(b"\n <?xml version='1.0'?><a>\xe4&eacute;&#1114112;</a>")
    assert repaired == Repaired("<?xml version='1.0'?><a>\ufffd&#233;</a>".encode(), 3)
    assert parse_xml(repaired.data).text == "\ufffd\u00e9"


def test_a_page_still_broken_after_repair_names_the_position_in_the_page_as_sent() -> None:
    """The deeper repair strips leading blank lines; the error of a page that still does not
    parse gave the line of the repaired bytes, not of the body the user looks at."""
    from harvester.oai.client import MalformedXML, _check_oai_root
    from harvester.oai.http import HTTPResponse

    body = b"\n\n<?xml version='1.0'?>\n<OAI-PMH><a></OAI-PMH>"
    with pytest.raises(MalformedXML, match="line 3"):
        _check_oai_root(HTTPResponse("http://h/oai", 200, {}, body), body)
