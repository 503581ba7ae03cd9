"""The README's main job, end to end: `ernte demo`, then the records it harvested."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from harvester.cli.search import TIMELINE_BAR_WIDTH
from tests.conftest import CLIResult, taken_port

pytestmark = pytest.mark.slow  # the whole demo, end to end

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
    both = ernte("show", SEED, "--raw", "--json")  # --raw silently won
    assert both.exit_code == 2 and "--raw and --json exclude each other" in both.stderr
    hits = [h["id"] for h in json.loads(search.output)["hits"]]
    assert SEED in hits  # `Quartier` finds `Quartiermanagement` and `Quartieren` (2009)
    state = json.loads(status.output)["harvests"][0]
    assert state["state"] == "idle" and state["run"]["quarantined"] == 0
    # README's example of this output shows every field, in order (it lacked two; found in
    # review); only `totals` is abridged there
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Status output (`ernte status --json`)", 1)[1]
    example = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])["harvests"][0]
    assert list(example) == list(state)
    assert list(example["run"]) == list(state["run"])


def test_search_prints_the_year_timeline_and_its_json(
    ernte: Callable[..., CLIResult], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--year-histogram`: every year ascending, the year filter does not hide the others,
    the text timeline scales its bars to the busiest year, and `--json` always has the key."""
    assert ernte("demo").exit_code == 0
    monkeypatch.setenv("ERNTE_DATA_DIR", str(data_dir / "demo"))
    everything = json.loads(ernte("search", "--year-histogram", "--json").output)
    ranged = json.loads(
        ernte("search", "--filter", "year=2005..2010", "--year-histogram", "--json").output
    )
    text = ernte("search", "--facet", "type", "--year-histogram", "--limit", "1")
    plain = json.loads(ernte("search", "--json").output)

    timeline = [(int(v["value"]), v["count"]) for v in everything["year_histogram"]]
    years = [year for year, _ in timeline]
    assert len(years) > 10 and years == sorted(set(years))
    assert all(count > 0 for _, count in timeline)
    assert sum(count for _, count in timeline) <= everything["total"]
    assert ranged["year_histogram"] == everything["year_histogram"]
    assert ranged["total"] == sum(count for year, count in timeline if 2005 <= year <= 2010)
    assert plain["year_histogram"] == []

    assert text.exit_code == 0, text.stderr
    assert text.output.index("facet: type") < text.output.index("timeline: year")
    lines = re.findall(r"^\s*(\d{4})\s+(\d+)\s+(█+)\s*$", text.output, flags=re.MULTILINE)
    assert [(int(year), int(count)) for year, count, _ in lines] == timeline
    busiest = max(count for _, count in timeline)
    for _, count, bar in lines:
        assert len(bar) == max(1, round(int(count) * TIMELINE_BAR_WIDTH / busiest))


def test_a_demo_on_a_busy_port_is_one_line_and_keeps_the_last_demo(
    ernte: Callable[..., CLIResult], data_dir: Path
) -> None:
    """`ernte demo --port N` with N taken deleted the last demo's data first and then ended
    in an OSError traceback; a port beyond 65535 was an OverflowError traceback."""
    kept = data_dir / "demo" / "kept.txt"
    kept.parent.mkdir(parents=True)
    kept.write_text("the last demo")
    with taken_port() as port:
        result = ernte("demo", "--port", str(port))
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot serve the demo provider on port {port}: "), line
    assert kept.read_text() == "the last demo"
    assert ernte("demo", "--port", "99999").exit_code == 2  # a usage error


@pytest.mark.parametrize(
    ("installed", "cwd", "expected"),
    [
        ("venv/bin", "venv/bin", "./ernte"),  # bare `ernte` would be looked up on PATH
        ("my env/bin", ".", "'my env/bin/ernte'"),  # a space: one shell word
        ("venv/bin", "elsewhere", "{tmp}/venv/bin/ernte"),
    ],
)
def test_the_demo_hints_name_an_ernte_command_the_shell_runs(
    installed: str, cwd: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hints printed `ernte` in the venv's bin directory (PATH's ernte, or none) and split
    a path with a space into two words."""
    from harvester.cli import demo

    bin_dir = tmp_path / installed
    bin_dir.mkdir(parents=True)
    (bin_dir / "ernte").write_text("#!/bin/sh\n")
    (tmp_path / cwd).mkdir(exist_ok=True)
    monkeypatch.setattr(demo.sys, "executable", str(bin_dir / "python"))
    monkeypatch.chdir(tmp_path / cwd)
    assert demo.ernte_command() == expected.format(tmp=tmp_path)
