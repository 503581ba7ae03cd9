"""Turn a normalized `Record` into the flat search document both backends index.

Field names here are the index's field names (see README "Index fields"). Facet fields hold
exact values; `*_parts` fields hold compound parts computed once here, in Python, so that the
embedded index and Elasticsearch index the very same parts (see `indexer.compounds`).
"""

from __future__ import annotations

from harvester.model import Record
from indexer.backend import SearchDocument
from indexer.compounds import Decompounder, default_decompounder


def build_document(record: Record, decompounder: Decompounder | None = None) -> SearchDocument:
    """The search document for one live (not deleted) record."""
    split = decompounder or default_decompounder()
    abstract = "\n\n".join(a.text for a in record.abstracts)
    host_title = record.host.title if record.host else ""
    return {
        "id": record.identifier,
        "source": record.source,
        "set": list(record.sets),
        "datestamp": record.datestamp,
        "title": record.title,
        "subtitle": record.subtitle,
        "abstract": abstract,
        "subject": list(record.subjects),
        "author": [p.display for p in record.authors],
        "editor": [p.display for p in record.editors],
        "type": record.type,
        "normalized_type": record.normalized_type,
        "year": record.year,
        "issued": record.issued,
        "language": record.language,
        "journal": host_title,
        "publisher": record.publisher,
        "place": record.place,
        "issn": list(record.identifiers.issn),
        "isbn": list(record.identifiers.isbn),
        "doi": list(record.identifiers.doi),
        "local_id": list(record.identifiers.local),
        "handle": list(record.identifiers.handle),
        "title_parts": split.parts_text(f"{record.title} {record.subtitle}"),
        "subject_parts": split.parts_text(" ".join(record.subjects)),
        "abstract_parts": split.parts_text(abstract),
    }
