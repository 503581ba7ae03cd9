"""Every record of the real OAI-PMH responses in ../shared/oai-samples through normalize().

Each page is split into its `<record>` elements with the same safe parser settings the
harvester uses; the crosswalk is chosen from the payload's namespace (pages reached by a
resumption token do not repeat the metadataPrefix). Nothing may raise except
QuarantineError, and for oai_dc, mods and marcxml no record with a title may be quarantined.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from harvester.model import RawRecord
from harvester.normalize.normalizer import QuarantineError, normalize

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "oai-samples"
OAI = "{http://www.openarchives.org/OAI/2.0/}"
FORMAT_BY_NAMESPACE = {
    "http://www.openarchives.org/OAI/2.0/oai_dc/": "oai_dc",
    "http://www.loc.gov/mods/v3": "mods",
    "http://www.loc.gov/MARC21/slim": "marcxml",
    "http://www.loc.gov/METS/": "mets",
    "http://datacite.org/schema/kernel-4": "datacite",
    "http://datacite.org/schema/kernel-3": "datacite",
    "http://doaj.org/features/oai_doaj/1.0/": "oai_doaj",
}
STRICT_FORMATS = ("oai_dc", "mods", "marcxml")

pytestmark = pytest.mark.samples


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _raw_records(path: Path) -> list[tuple[str, RawRecord]]:
    """(format, RawRecord) for every record on one response page; [] for non-record pages."""
    data = path.read_bytes().replace(b"\x0b", b"")  # pucrio's raw U+000B
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        return []  # the HTML page and the empty body are the harvester's business
    records = []
    for record in root.iter(f"{OAI}record"):
        header = record.find(f"{OAI}header")
        if header is None:
            continue
        metadata = record.find(f"{OAI}metadata")
        payload = None if metadata is None else next(iter(metadata), None)
        namespace = etree.QName(payload).namespace if payload is not None else None
        fmt = FORMAT_BY_NAMESPACE.get(namespace or "", "oai_dc")
        raw = RawRecord(
            identifier=header.findtext(f"{OAI}identifier") or "",
            datestamp=header.findtext(f"{OAI}datestamp") or "",
            deleted=header.get("status") == "deleted",
            sets=list(dict.fromkeys(s.text or "" for s in header.iterfind(f"{OAI}setSpec"))),
            xml=etree.tostring(record, encoding="UTF-8"),
            metadata_prefix=fmt,
        )
        records.append((fmt, raw))
    return records


def _has_title(raw: RawRecord) -> bool:
    """Whether the record carries any title text (a `title` element or MARC 245 $a)."""
    root = etree.fromstring(raw.xml, _parser())
    titles = [el.text for el in root.iter("{*}title")]
    titles += [
        sub.text for field in root.iter("{*}datafield") if field.get("tag") == "245"
        for sub in field if sub.get("code") == "a"
    ]  # fmt: skip
    return any(t and t.strip() for t in titles)


@pytest.mark.slow
def test_every_sample_record_normalizes_or_is_quarantined() -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"shared OAI samples not found at {SAMPLES}")
    counts: Counter[tuple[str, str]] = Counter()
    strict_failures: list[str] = []
    for path in sorted(SAMPLES.glob("*.xml")):
        for fmt, raw in _raw_records(path):
            if raw.deleted:
                record = normalize(raw, source=path.stem)
                assert record.deleted and record.title == ""
                counts[fmt, "deleted"] += 1
                continue
            try:
                record = normalize(raw, source=path.stem)
            except QuarantineError as error:
                assert "failed" not in error.reason, error.reason  # a crosswalk bug
                counts[fmt, "quarantined"] += 1
                if fmt in STRICT_FORMATS and _has_title(raw):
                    strict_failures.append(f"{path.name}: {error}")
                continue
            assert record.identifier == raw.identifier
            assert record.title
            assert record.normalized_type in (
                "article", "book", "book part", "report", "thesis", "conference paper",
                "periodical", "grey literature", "other",
            )  # fmt: skip
            counts[fmt, "normalized"] += 1
    for fmt in sorted({f for f, _ in counts}):
        print(
            f"{fmt:>10}: normalized {counts[fmt, 'normalized']:4d}  "
            f"quarantined {counts[fmt, 'quarantined']:3d}  deleted {counts[fmt, 'deleted']:3d}"
        )
    assert not strict_failures, strict_failures
    for fmt in ("oai_dc", "mods", "marcxml", "mets", "datacite", "oai_doaj"):
        assert counts[fmt, "normalized"] > 0, fmt
