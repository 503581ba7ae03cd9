"""Command-line behaviour that spans modules: one run per harvest, `ernte index rebuild`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from harvester.demo.generate import generate_records
from harvester.demo.provider import serve
from tests.conftest import CLIResult, harvest_process, wait_for_page

Ernte = Callable[..., CLIResult]
RECORDS = list(generate_records(150, seed=5, deleted_share=0.04))


@pytest.mark.slow
def test_a_second_harvest_of_the_same_source_is_refused_while_one_runs(
    ernte: Ernte, data_dir: Path, source: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERNTE_PAGE_DELAY", "0.2")
    with serve(RECORDS, batch_size=20) as url:
        first = harvest_process(source(url, "dim"), stderr=subprocess.PIPE)
        try:
            wait_for_page(data_dir / "state.sqlite", 1, first)
            second = ernte("harvest", "t")
            assert second.exit_code == 1
            assert "already running" in second.stderr and "t|*" in second.stderr
        finally:
            _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err.decode()
    state = json.loads(ernte("status", "--json").output)["harvests"][0]
    assert state["state"] == "idle" and state["run"]["records"] == len(RECORDS)


def test_index_rebuild_from_the_command_line(ernte: Ernte, data_dir: Path) -> None:
    with serve(RECORDS, batch_size=50) as url:
        assert ernte("harvest", url, "--prefix", "dim", "--no-index").exit_code == 0
    before = ernte("search", "--json")  # harvested with --no-index: nothing indexed yet
    assert before.exit_code == 1 and "no index at" in before.stderr
    rebuilt = ernte("index", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    live = sum(1 for r in RECORDS if not r.deleted)
    assert f"{live} documents" in rebuilt.output
    assert "0 refused by the index, 0 could not be normalized" in rebuilt.output
    after = json.loads(ernte("search", "--json").output)
    assert after["total"] == live
    # A record the index refused once (say, on a full disk) is released when a rebuild
    # writes it: `ernte check` would otherwise keep counting it as quarantined.
    from harvester.store.archive import RawArchive, archives_of

    refused_once = next(r.identifier for r in RECORDS if not r.deleted)
    [(_, _prefix, path)] = archives_of(data_dir / "archive")
    with RawArchive(path) as archive:
        archive.quarantine(refused_once, "index", "No space left on device", None)
    again = ernte("index", "rebuild")  # idempotent: same documents, the old index replaced
    assert again.exit_code == 0 and json.loads(ernte("search", "--json").output)["total"] == live
    assert json.loads(ernte("quarantine", "--json").output) == []


def test_a_rebuild_with_an_unreadable_sources_file_stops_and_keeps_the_index(
    ernte: Ernte, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild read a broken sources file as "no sources": the records of a source whose
    format only the file names were all quarantined, and an empty index was switched in. It
    now stops with the one line `ernte index` and `ernte normalize` give."""
    with serve(RECORDS, batch_size=50) as url:
        assert ernte("harvest", url, "--prefix", "dim").exit_code == 0
    live = sum(1 for r in RECORDS if not r.deleted)
    broken = data_dir / "broken.yaml"
    broken.write_text("sources: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("ERNTE_SOURCES_FILE", str(broken))
    refused = ernte("index", "rebuild")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: cannot read sources file")
    assert "broken.yaml: line 2, column 1: expected ',' or ']'" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1  # PyYAML's own text spans five
    monkeypatch.delenv("ERNTE_SOURCES_FILE")
    assert json.loads(ernte("search", "--json").output)["total"] == live


def test_a_rebuild_over_an_emptied_archive_stops_and_keeps_the_index(
    ernte: Ernte, data_dir: Path
) -> None:
    """An archive emptied after its harvest (`: > file`) was rebuilt into an empty index and
    switched in: every record left search. `ernte check` already said so; the rebuild now
    stops before it builds anything."""
    with serve(RECORDS, batch_size=50) as url:
        assert ernte("harvest", url, "--prefix", "dim").exit_code == 0
    live = sum(1 for r in RECORDS if not r.deleted)
    [archive] = list((data_dir / "archive").glob("*/dim.sqlite"))
    for companion in archive.parent.glob("dim.sqlite-*"):
        companion.unlink()
    archive.write_bytes(b"")
    refused = ernte("index", "rebuild")
    assert refused.exit_code == 1
    [line] = refused.stderr.splitlines()
    assert f"archive {archive} holds 0 records, but {len(RECORDS)} were archived" in line
    assert "nothing was changed" in line and "--full" in line
    assert archive.read_bytes() == b"", "nothing was changed: the emptied file stays as found"
    assert json.loads(ernte("search", "--json").output)["total"] == live


@pytest.mark.slow
def test_search_options_out_of_range_are_usage_errors_and_limit_0_counts(
    ernte: Ernte, data_dir: Path
) -> None:
    with serve(RECORDS, batch_size=50) as url:
        assert ernte("harvest", url, "--prefix", "dim").exit_code == 0
    for bad in (
        ["--limit", "-1"],
        ["--offset", "-5"],
        ["--facet-size", "0"],
        ["--limit", "2147483648"],  # tantivy reserved 34 GB for it and aborted the process
        ["--facet-size", "429496730"],  # overflowed tantivy's u32 segment_size: a traceback
    ):
        result = ernte("search", *bad)
        assert result.exit_code == 2 and "Invalid value" in result.stderr
    counted = json.loads(ernte("search", "--limit", "0", "--facet", "type", "--json").output)
    live = sum(1 for r in RECORDS if not r.deleted)
    assert counted["hits"] == [] and counted["total"] == live
    assert sum(v["count"] for v in counted["facets"]["type"]) == counted["total"]
    everything = json.loads(ernte("search", "--limit", "10000", "--json").output)
    assert len(everything["hits"]) == live  # the most the CLI allows: every record, no more

    # Bytes that are no UTF-8 (a terminal in another encoding) reach Python as surrogates,
    # which keyword fields refused with a traceback.
    for args in (["type:\udcff"], ["--filter", "subject=\udcff"]):
        refused = ernte("search", *args)
        assert refused.exit_code == 1 and "is not valid UTF-8 at character" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    marked = ernte("search", "Berlin [/b]")  # the query is shown as typed, not as markup
    assert marked.exit_code == 0 and "'Berlin [/b]'" in marked.output


@pytest.mark.slow
def test_rebuild_catches_up_with_what_was_archived_meanwhile(ernte: Ernte, data_dir: Path) -> None:
    from harvester.run.rebuild import _Archives
    from harvester.settings import get_settings
    from harvester.store.archive import RawArchive, archives_of
    from indexer.embedded.backend import EmbeddedBackend

    with serve(RECORDS[:40], batch_size=50) as url:
        assert ernte("harvest", url, "--prefix", "dim", "--no-index").exit_code == 0
    settings = get_settings()
    archives = _Archives.open(settings)  # the rebuild's starting point
    [(_, _, path)] = archives_of(settings.archive_dir)
    with serve(RECORDS, batch_size=50) as url, RawArchive(path) as archive:
        # a harvest archives more records while the rebuild runs
        from harvester.oai.client import OAIClient
        from harvester.run.services import http_client

        page = OAIClient(url, http_client(settings)).list_records_page(metadata_prefix="dim")
        archive.append(page.records)
    backend = EmbeddedBackend(tmp := data_dir / "rebuilt")
    try:
        backend.create()
        early = sum(1 for _ in archives.documents())
        late = archives.catch_up(backend)
    finally:
        backend.close()
        archives.close()
    assert early == sum(1 for r in RECORDS[:40] if not r.deleted)
    first = {r.identifier for r in RECORDS[:40]}
    new = {r.identifier for r in page.records if not r.deleted and r.identifier not in first}
    assert late.indexed == len(new) > 0 and tmp.exists()


def test_an_empty_harvest_of_a_set_the_repository_lacks_says_so(
    ernte: Ernte, data_dir: Path
) -> None:
    with serve(RECORDS, batch_size=50) as url:
        typo = ernte("harvest", url, "--set", "col_difu_buchr", "--no-index")
        real = ernte("harvest", url, "--set", "col_difu_buecher", "--no-index")
    assert typo.exit_code == 0 and "0 records" in typo.output
    assert "offers no set 'col_difu_buchr'" in typo.stderr
    assert real.exit_code == 0 and "offers no set" not in real.stderr


def test_an_embedded_rebuild_waiting_for_the_index_lock_misses_nothing(
    ernte: Ernte, data_dir: Path
) -> None:
    import threading
    import time

    from harvester.oai.client import OAIClient
    from harvester.run.rebuild import rebuild_from_archives
    from harvester.run.services import http_client
    from harvester.settings import get_settings
    from harvester.store.archive import RawArchive, archives_of
    from harvester.store.locks import index_write_lock

    with serve(RECORDS[:40], batch_size=50) as url:
        assert ernte("harvest", url, "--prefix", "dim").exit_code == 0
    settings = get_settings()
    [(_, _, path)] = archives_of(settings.archive_dir)
    report: list[str] = []
    with index_write_lock(settings):  # a writer holds the index while the rebuild starts
        rebuild = threading.Thread(target=lambda: report.append(rebuild_from_archives(settings)))
        rebuild.start()
        time.sleep(0.5)
        with serve(RECORDS, batch_size=200) as url, RawArchive(path) as archive:
            page = OAIClient(url, http_client(settings)).list_records_page(metadata_prefix="dim")
            archive.append(page.records)  # archived (by a fetch task) while the rebuild waits
    rebuild.join(timeout=60)
    live = sum(1 for r in RECORDS if not r.deleted)
    assert report and f"{live} documents" in report[0]


def test_search_reads_a_leading_minus_word_and_folds_filter_values(
    ernte: Ernte, data_dir: Path
) -> None:
    """Issue 15: `ernte search -Stadt` is a query, not the unknown option `-S`; filter values
    match whatever their case; a backwards year range is one error line in both places."""
    with serve(RECORDS, batch_size=50) as url:
        assert ernte("harvest", url, "--prefix", "dim").exit_code == 0
    everything = json.loads(ernte("search", "--limit", "0", "--facet", "type", "--json").output)
    without = ernte("search", "-Stadt", "--limit", "0", "--json")
    assert without.exit_code == 0, without.stderr
    with_word = json.loads(ernte("search", "Stadt", "--limit", "0", "--json").output)["total"]
    assert 0 < with_word < everything["total"]
    assert json.loads(without.output)["total"] == everything["total"] - with_word
    option_first = ernte("search", "--limit", "0", "--json", "-Stadt")
    assert json.loads(option_first.output)["total"] == everything["total"] - with_word
    assert ernte("search", "--limt", "0").exit_code == 2  # a mistyped option stays an error

    label = everything["facets"]["type"][0]
    for spelling in (label["value"], label["value"].lower(), label["value"].upper()):
        typed = ernte("search", "--filter", f"type={spelling}", "--limit", "0", "--json")
        assert json.loads(typed.output)["total"] == label["count"], spelling

    for args in (["--filter", "year=2010..2005"], ["year:2010..2005"]):
        refused = ernte("search", *args)
        assert refused.exit_code == 1
        assert "year range '2010..2005' runs backwards (2010 > 2005)" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


def test_a_harvest_that_archived_nothing_blocks_no_rebuild(ernte: Ernte, data_dir: Path) -> None:
    """A harvest that found no record (noRecordsMatch) leaves an empty archive; without that
    file (cleaned up as empty) nothing is lost. It was taken for a lost archive, and every
    `ernte index rebuild` and `ernte index SOURCE` refused to run while `ernte check` said ok."""
    with serve(RECORDS, batch_size=50) as url:
        assert ernte("harvest", url, "--prefix", "dim").exit_code == 0
    with serve([], batch_size=50) as url:
        empty = ernte("harvest", url, "--prefix", "oai_dc")
        assert empty.exit_code == 0, empty.stderr
    states = json.loads(ernte("status", "--json").output)["harvests"]
    [source] = {s["source"] for s in states if s["prefix"] == "oai_dc"}
    for empty_file in (data_dir / "archive" / source).iterdir():
        empty_file.unlink()
    live = sum(1 for r in RECORDS if not r.deleted)
    rebuilt = ernte("index", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert json.loads(ernte("search", "--json").output)["total"] == live
    assert ernte("index", source).exit_code == 0
    assert ernte("check").exit_code == 0


def test_an_older_copy_of_an_archive_is_named_as_such(ernte: Ernte, data_dir: Path) -> None:
    """A backup restored after records changed holds as many records, but older versions:
    check, index and rebuild said `holds 150 records, but 150 were archived` (found in
    review)."""
    with serve(RECORDS, batch_size=50) as url:
        assert ernte("harvest", url, "--prefix", "dim").exit_code == 0
    [archive] = list((data_dir / "archive").glob("*/dim.sqlite"))
    backup = archive.read_bytes()
    port = int(url.split(":")[2].split("/")[0])  # the same URL again: the same source
    changed = [
        replace(
            r,
            datestamp="2030-01-01T00:00:00Z",
            fields=(r.fields[0]._replace(value=r.fields[0].value + " (2)"), *r.fields[1:]),
        )
        if n < 20 and not r.deleted
        else r
        for n, r in enumerate(RECORDS)
    ]
    with serve(changed, batch_size=50, port=port) as url:
        again = ernte("harvest", url, "--prefix", "dim", "--full")
        assert again.exit_code == 0, again.stderr
        for companion in archive.parent.glob("dim.sqlite-*"):
            companion.unlink()
        archive.write_bytes(backup)
        for args in (["check"], ["index", archive.parent.name], ["index", "rebuild"]):
            refused = ernte(*args)
            assert refused.exit_code == 1, args
            assert f"archive {archive} holds {len(RECORDS)} records up to version" in (
                refused.output + refused.stderr
            ), args
            assert "(an older copy)" in refused.output + refused.stderr, args
        stopped = ernte("harvest", url, "--prefix", "dim")
        assert stopped.exit_code == 1 and "(an older copy)" in stopped.stderr
