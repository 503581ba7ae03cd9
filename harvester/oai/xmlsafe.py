"""Safe XML parsing for what the network sends.

Two rules: repair the *bytes* before parsing (never parse in recover mode, which silently drops
data such as every later `&amp;` on a damaged page), and parse with entity resolution, DTD
loading and network access off (no XXE, no billion laughs).
"""

from __future__ import annotations

import html.entities
import re
import threading
from dataclasses import dataclass

from lxml import etree

# Characters XML 1.0 forbids: C0 controls except TAB, LF, CR. In UTF-8 and in single-byte
# encodings they are single bytes that never occur inside a multi-byte sequence.
_INVALID_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# The same characters written as character references (`&#11;`, `&#x0B;`).
_INVALID_CHAR_REFS = re.compile(
    rb"&#(?:0*(?:[0-8]|1[124-9]|2[0-9]|3[01])|[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]));"
)


class XMLSyntaxError(ValueError):
    """A document that is not well-formed even after byte repair."""


@dataclass(slots=True)
class Repaired:
    """Bytes after repair and how many invalid characters were removed."""

    data: bytes
    removed: int


_UTF16_STARTS = {  # how a UTF-16 XML document starts -> the codec that reads it
    b"\xff\xfe": "utf-16",  # byte order marks
    b"\xfe\xff": "utf-16",
    b"<\x00?\x00": "utf-16-le",  # `<?` without one
    b"\x00<\x00?": "utf-16-be",
}
_DECLARED_UTF16 = re.compile(rb"""(<\?xml[^>]*encoding\s*=\s*["'])utf-16(?:le|be)?(["'])""", re.I)


def _as_utf8(data: bytes) -> bytes:
    """A page sent as UTF-16 (which OAI-PMH does not allow, but some servers do), as UTF-8:
    otherwise its NUL bytes would be taken for forbidden characters and stripped, and the
    parser would see garbage."""
    codec = next((c for start, c in _UTF16_STARTS.items() if data.startswith(start)), None)
    if codec is None:
        return data
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return data  # not UTF-16 after all: the parser says what is wrong
    return _DECLARED_UTF16.sub(rb"\1UTF-8\2", text.encode("utf-8"), count=1)


def repair_xml_bytes(data: bytes) -> Repaired:
    """Remove characters XML 1.0 forbids (raw or as character references); a UTF-16 page is
    read as UTF-8 first.

    Everything else is left byte for byte as it was; the count goes to the harvest's statistics.
    """
    data = _as_utf8(data)
    if not _INVALID_BYTES.search(data) and b"&#" not in data:
        return Repaired(data, 0)
    cleaned, raw_count = _INVALID_BYTES.subn(b"", data)
    cleaned, ref_count = _INVALID_CHAR_REFS.subn(b"", cleaned)
    return Repaired(cleaned, raw_count + ref_count)


_XML_DECLARATION = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)", re.I)
# Noncharacters U+FFFE/U+FFFF as UTF-8 bytes; as character references, those and surrogates
# (U+D800-U+DFFF) and numbers past U+10FFFF, which no XML document may contain either.
_NONCHARACTER_BYTES = re.compile(b"\xef\xbf[\xbe\xbf]")
_BAD_CHAR_REF = re.compile(rb"&#(?:([0-9]{1,10})|[xX]([0-9a-fA-F]{1,8}));")
_NAMED_REF = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})


def _allowed_code_point(number: int) -> bool:
    return not (0xD800 <= number <= 0xDFFF or number in (0xFFFE, 0xFFFF) or number > 0x10FFFF)


def repair_damaged_xml(data: bytes) -> Repaired:
    """Deeper repairs for a page that did not parse after `repair_xml_bytes` (so they cost
    nothing on the pages that do), each seen on real servers:

    - white space before the XML declaration (a blank line PHP servers print) is dropped;
    - in a UTF-8 document, bytes that are not UTF-8 become U+FFFD, the replacement character;
    - the noncharacters U+FFFE/U+FFFF, and character references to them, to surrogates or past
      U+10FFFF, are removed;
    - HTML's named entities (`&nbsp;`, `&eacute;`), which XML does not define, are written as
      the characters they name.

    `removed` counts the characters replaced or removed (the harvest's repaired characters).
    """
    count = 0
    stripped = data.lstrip(b" \t\r\n")
    if stripped[:5] == b"<?xml":
        data = stripped
    declared = _XML_DECLARATION.match(data)
    if declared is None or declared.group(1).lower().replace(b"_", b"-") in (b"utf-8", b"utf8"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace")
            count += text.count("\ufffd") - data.count("\ufffd".encode())
            data = text.encode("utf-8")
        data, nonchars = _NONCHARACTER_BYTES.subn(b"", data)
        count += nonchars

    def character_reference(match: re.Match[bytes]) -> bytes:
        nonlocal count
        decimal, hexadecimal = match.groups()
        number = int(decimal) if decimal else int(hexadecimal, 16)
        if _allowed_code_point(number):
            return match.group()
        count += 1
        return b""

    def named_reference(match: re.Match[bytes]) -> bytes:
        nonlocal count
        name = match.group(1)
        point = html.entities.name2codepoint.get(name.decode("ascii"))
        if name in _XML_ENTITIES or point is None:
            return match.group()
        count += 1
        return f"&#{point};".encode("ascii")

    data = _BAD_CHAR_REF.sub(character_reference, data)
    data = _NAMED_REF.sub(named_reference, data)
    return Repaired(data, count)


def _make_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        # Lift libxml2's 10 MB limit on one text node: a record with a long full text
        # otherwise stopped its harvest for good. A response is bounded by
        # ERNTE_MAX_RESPONSE_BYTES, and entities and DTDs stay off.
        huge_tree=True,
        recover=False,
    )


_PARSERS = threading.local()


def _parser() -> etree.XMLParser:
    """One parser per thread: lxml parser objects must not be used by two threads at once
    (the harvest loop prefetches on a thread; Celery may run tasks on threads)."""
    parser: etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = _make_parser()
    return parser


def parse_xml(data: bytes) -> etree._Element:
    """Parse bytes into an element tree root, safely; raises XMLSyntaxError with the reason."""
    if b"<!ENTITY" in data[:4096]:
        raise XMLSyntaxError("document declares entities (DTD); refused for safety")
    try:
        return etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise XMLSyntaxError(str(exc)) from exc


def local_name(element: etree._Element) -> str:
    """The tag without its namespace ("" for comments and processing instructions)."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag[tag.rfind("}") + 1 :]
