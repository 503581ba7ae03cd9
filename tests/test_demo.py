"""The README's main job, end to end: `ernte demo`, then the records it harvested."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CLIResult

SEED = "oai:orlis.difu.de:difu/167832"


def test_demo_harvests_indexes_and_shows_the_faceted_search(
    ernte: Callable[..., CLIResult], data_dir: Path
) -> None:
    result = ernte("demo")
    assert result.exit_code == 0, result.stderr + result.output
    assert "found by 'Stadtteile': yes (rank " in result.output  # among the hits printed
    assert "subject facet shows 'Soziale Stadt': yes" in result.output
    assert "facet: subject" in result.output and "facet: year" in result.output


def test_seed_record_after_the_demo_harvest_is_clean(
    ernte: Callable[..., CLIResult], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ernte("demo").exit_code == 0
    monkeypatch.setenv("ERNTE_DATA_DIR", str(data_dir / "demo"))  # where the demo keeps its data
    shown = ernte("show", SEED, "--json")
    raw = ernte("show", SEED, "--raw")
    search = ernte("search", "Quartier", "--filter", "year=2005..2010", "--json", "--limit", "50")
    status = ernte("status", "--json")
    assert shown.exit_code == 0, shown.stderr
    record = json.loads(shown.output)
    assert record["title"] == "Städte in sozialer Verantwortung"
    assert [a["family"] for a in record["authors"]] == ["Kocks", "Güles"]
    assert [a["given"] for a in record["authors"]] == ["Martina", "Orhan"]
    assert record["year"] == 2009 and record["normalized_type"] == "article"
    assert record["type"] == "Zeitschriftenaufsatz"
    assert record["identifiers"]["issn"] == ["0303-2493"]
    assert record["identifiers"]["local"] == ["DM09072727"]
    assert record["subjects"][0] == "Stadtentwicklungsplanung"
    assert record["subjects"][-1] == "Europäischer Sozialfonds" and len(record["subjects"]) == 24
    assert raw.exit_code == 0 and "<dim:field" in raw.output and "Kocks, Martina" in raw.output
    hits = [h["id"] for h in json.loads(search.output)["hits"]]
    assert SEED in hits  # `Quartier` finds `Quartiermanagement` and `Quartieren` (2009)
    state = json.loads(status.output)["harvests"][0]
    assert state["state"] == "idle" and state["run"]["quarantined"] == 0
