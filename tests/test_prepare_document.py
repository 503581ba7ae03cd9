"""The fast document conversion of the embedded writer gives the very terms of the analysis
chains (issue 14: faster, with the same documents and analysis).

`prepare_document` tokenizes each value once and memoizes repeated short values; these tests
compare every field it produces with the field computed the plain way, each analyzer applied
to each value, over the 5,000 real German catalogue records of ../shared/german-records
(skipped where absent) and over the seed record.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from indexer.compounds import default_decompounder
from indexer.embedded.documents import prepare_document
from indexer.embedded.schema import TEXT_FIELDS
from tests.conftest import GERMAN_RECORDS

CORPUS = GERMAN_RECORDS / "corpus.json"


def _plain_text_fields(document: dict[str, Any]) -> dict[str, str]:
    """Each text field as the chains define it: analyzer(value) for every source value."""
    fields: dict[str, str] = {}
    for text in TEXT_FIELDS:
        terms: list[str] = []
        for source in text.sources:
            value = document.get(source)
            values = value if isinstance(value, list) else [value]
            for item in values:
                if item:
                    terms.extend(text.analyzer(str(item)))
        if terms:
            fields[text.name] = " ".join(terms)
    return fields


def _document(record_id: str, dim: dict[str, list[str]]) -> dict[str, Any]:
    split = default_decompounder()
    title = " ".join(dim.get("dc.title", []))
    abstract = "\n\n".join(dim.get("dc.description.abstract", []))
    subjects = dim.get("dc.subject", [])
    return {
        "id": record_id,
        "datestamp": "2024-01-01T00:00:00Z",
        "title": title,
        "subtitle": "",
        "abstract": abstract,
        "subject": subjects,
        "author": dim.get("dc.contributor.author", []),
        "editor": dim.get("dc.contributor.editor", []),
        "journal": " ".join(dim.get("dc.relation.ispartof", [])),
        "publisher": " ".join(dim.get("dc.publisher", [])),
        "type": " ".join(dim.get("dc.type", [])),
        "title_parts": split.parts_text(title),
        "subject_parts": split.parts_text(" ".join(subjects)),
        "abstract_parts": split.parts_text(abstract),
    }


def _text_part(fields: dict[str, Any]) -> dict[str, str]:
    names = {t.name for t in TEXT_FIELDS}
    return {k: v for k, v in fields.items() if k in names}


def test_seed_like_document_gives_the_chains_terms() -> None:
    document = _document(
        "oai:orlis.difu.de:difu/167832",
        {
            "dc.title": ["Städte in sozialer Verantwortung."],
            "dc.contributor.author": ["Kocks, Martina", "Güles, Orhan"],
            "dc.subject": ["Stadtentwicklungsplanung", "Europäischer Sozialfonds"],
            "dc.description.abstract": ["Wie Städte Quartiere stärken, z.B. mit 1,5 Mio. Euro."],
        },
    )
    fields = prepare_document(document)
    assert _text_part(fields) == _plain_text_fields(document)
    assert fields["subject"].split() == ["stadtentwicklungsplan", "europa", "sozialfond"]


def test_every_real_german_record_gives_the_chains_terms() -> None:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} is absent: the parity check needs ../shared/german-records")
    records = json.loads(CORPUS.read_text(encoding="utf-8"))
    compared = 0
    for record in records:
        if record.get("deleted"):
            continue
        document = _document(record["id"], record["dim"])
        # the first 500 twice: the second pass is served from the memo of repeated values
        for _ in range(2 if compared < 500 else 1):
            assert _text_part(prepare_document(document)) == _plain_text_fields(document), record[
                "id"
            ]
        compared += 1
    assert compared > 4000


def test_the_memo_holds_repeating_values_not_one_entry_per_record() -> None:
    """Memory flat in N (issue 14): titles are unique per record, so memoizing them grew the
    memo (and a harvest's memory) with every record; only headings, names and journals are
    memoized."""
    from indexer.embedded import documents

    documents._value_cache.clear()
    documents._other_cache.clear()
    for number in range(2_000):
        document = _document(
            f"oai:test:{number}",
            {
                "dc.title": [f"Bericht Nummer {number} über Quartiere"],
                "dc.contributor.author": [f"Kocks, Martina {number % 5}"],
                "dc.subject": ["Stadtentwicklungsplanung", f"Sozialraumanalyse {number % 7}"],
                "dc.description.abstract": [f"Kurzfassung {number}."],
                "dc.relation.ispartof": ["Informationen zur Raumentwicklung"],
            },
        )
        assert _text_part(prepare_document(document)) == _plain_text_fields(document)
    memoized = len(documents._value_cache) + len(documents._other_cache)
    assert 0 < memoized <= 1 + 7 + 1 + 5
