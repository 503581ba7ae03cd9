"""The records the demo repository serves, and the bundled German sample.

A `SampleRecord` is an OAI-PMH item as DSpace holds it: header data plus a list of `dc.*`
metadata fields (DSpace "dim"), from which the provider writes both `dim` and `oai_dc`.

The bundled file `data/orlis_sample.jsonl` is SAMPLE DATA written for the ernte demo by
`python -m harvester.demo.generate --write-sample`: the first record reproduces the seed ORLIS
record (`Städte in sozialer Verantwortung.`), all others are generated and are not real ORLIS
records. It is committed so the demo and the tests do not depend on randomness. Its first line
is a header object (`{"sample_data": ...}`) that says so; every other line is one record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

SAMPLE_RESOURCE = "data/orlis_sample.jsonl"
"""The bundled sample, relative to this package."""

HEADER_KEY = "sample_data"
"""Key of the JSONL header line that labels the file as sample data."""

OAI_IDENTIFIER_PREFIX = "oai:orlis.difu.de:difu/"
HANDLE_URL_PREFIX = "https://orlis.difu.de/handle/difu/"


class DimField(NamedTuple):
    """One DSpace metadata value in the `dc` schema: `dc.<element>.<qualifier>` [lang]."""

    element: str
    qualifier: str | None
    lang: str | None
    value: str


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """One repository item.

    identifier: OAI identifier (`oai:orlis.difu.de:difu/<n>`).
    datestamp: last change, UTC, seconds granularity (`2022-11-25T09:41:17Z`).
    sets: setSpecs the item belongs to.
    deleted: a tombstone; the provider then sends the header only (fields are empty).
    fields: the DSpace `dc.*` fields in repository order.
    """

    identifier: str
    datestamp: str
    sets: tuple[str, ...]
    deleted: bool
    fields: tuple[DimField, ...]

    def values(self, element: str, qualifier: str | None = None) -> list[str]:
        """The values of `dc.<element>[.<qualifier>]` in order (qualifier None: unqualified)."""
        return [f.value for f in self.fields if f.element == element and f.qualifier == qualifier]

    def to_json(self) -> str:
        """One JSONL line (no newline), umlauts kept readable."""
        return json.dumps(
            {
                "identifier": self.identifier,
                "datestamp": self.datestamp,
                "sets": list(self.sets),
                "deleted": self.deleted,
                "fields": [list(f) for f in self.fields],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleRecord:
        """Inverse of `to_json` (after `json.loads`)."""
        return cls(
            identifier=data["identifier"],
            datestamp=data["datestamp"],
            sets=tuple(data["sets"]),
            deleted=bool(data["deleted"]),
            fields=tuple(DimField(*f) for f in data["fields"]),
        )


def jsonl_lines(records: Iterable[SampleRecord], header: str) -> Iterator[str]:
    """The lines of a sample file: the labelling header, then one record per line."""
    yield json.dumps({HEADER_KEY: header}, ensure_ascii=False) + "\n"
    for record in records:
        yield record.to_json() + "\n"


def records_from_jsonl(lines: Iterable[str]) -> list[SampleRecord]:
    """Records from the lines of a sample file; the header line and blank lines are skipped."""
    records = []
    for line in lines:
        if not line.strip():
            continue
        data = json.loads(line)
        if HEADER_KEY in data:
            continue
        records.append(SampleRecord.from_json(data))
    return records


@cache
def _bundled_sample() -> tuple[SampleRecord, ...]:
    text = resources.files(__package__).joinpath(SAMPLE_RESOURCE).read_text(encoding="utf-8")
    return tuple(records_from_jsonl(text.splitlines()))


def load_sample() -> list[SampleRecord]:
    """The bundled sample (read once; the records are immutable), seed record first."""
    return list(_bundled_sample())
