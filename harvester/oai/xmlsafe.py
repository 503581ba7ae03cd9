"""Safe XML parsing for what the network sends.

Two rules: repair the *bytes* before parsing (never parse in recover mode, which silently drops
data such as every later `&amp;` on a damaged page), and parse with entity resolution, DTD
loading and network access off (no XXE, no billion laughs).
"""

from __future__ import annotations

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


def _make_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
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
