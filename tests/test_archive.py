"""The raw archive: append-only, compressed, latest version per identifier, quarantine."""

from pathlib import Path

from harvester.model import RawRecord
from harvester.store.archive import RawArchive, archives_of


def _raw(
    identifier: str, body: str, datestamp: str = "2024-01-01", deleted: bool = False
) -> RawRecord:
    xml = f"<record><header><identifier>{identifier}</identifier></header>{body}</record>"
    return RawRecord(identifier, datestamp, deleted, ["s1"], xml.encode(), "oai_dc")


def test_append_get_and_latest(tmp_path: Path) -> None:
    with RawArchive.open(tmp_path, "orlis", "dim") as archive:
        result = archive.append([_raw("a", "v1"), _raw("b", "Straße")])
        assert (result.appended, result.unchanged) == (2, 0)
        again = archive.append([_raw("a", "v1"), _raw("b", "Straße")])
        assert (again.appended, again.unchanged) == (0, 2)
        archive.append([_raw("a", "v2", "2024-02-01")])
        latest = archive.get("a")
        assert latest is not None and b"v2" in latest.xml and latest.datestamp == "2024-02-01"
        assert archive.versions("a") == 2
        archive.append([_raw("a", "v1", "2024-03-01")])  # back to old content: a new version
        assert b"v1" in archive.get("a").xml  # type: ignore[union-attr]
        assert archive.versions("a") == 3
        got = archive.get("b")
        assert got is not None and "Straße" in got.xml.decode()
        assert [r.identifier for r in archive.iter_latest(batch_size=1)] == ["b", "a"]


def test_deletions_are_versions_and_counted(tmp_path: Path) -> None:
    with RawArchive.open(tmp_path, "orlis", "dim") as archive:
        archive.append([_raw("a", "v1"), _raw("b", "v1")])
        archive.append([_raw("a", "", deleted=True)])
        assert archive.count_latest() == (1, 1)
        record = archive.get("a")
        assert record is not None and record.deleted


def test_quarantine_replace_and_release(tmp_path: Path) -> None:
    with RawArchive.open(tmp_path, "src", "oai_dc") as archive:
        archive.quarantine("x", "normalize", "no title", b"<record/>")
        archive.quarantine("x", "normalize", "still no title", b"<record/>")
        archive.quarantine("y", "index", "mapping error", None)
        entries = sorted((e.identifier, e.stage, e.reason) for e in archive.quarantined())
        assert entries == [("x", "normalize", "still no title"), ("y", "index", "mapping error")]
        archive.release(["x"], "normalize")
        assert [e.identifier for e in archive.quarantined()] == ["y"]
    assert archives_of(tmp_path) == [("src", "oai_dc", tmp_path / "src" / "oai_dc.sqlite")]


def test_iter_latest_between_two_points(tmp_path: Path) -> None:
    with RawArchive.open(tmp_path, "orlis", "dim") as archive:
        archive.append([_raw("a", "v1"), _raw("b", "v1")])
        start = archive.last_seq()
        archive.append([_raw("c", "v1"), _raw("a", "v2", "2024-02-01")])
        before = [r.identifier for r in archive.iter_latest(until_seq=start)]
        after = [r.identifier for r in archive.iter_latest(after_seq=start)]
    assert before == ["b"]  # a's latest version came after the start
    assert after == ["c", "a"]
