"""The SQLite state store: one entry per harvest, saved and read back whole."""

from pathlib import Path

from harvester.store.state import HarvestKey, HarvestState, RunCounts, SQLiteStateStore


def test_state_round_trip_and_listing(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "state.sqlite")
    key = HarvestKey("orlis", "", "dim")
    fresh = store.load(key)
    assert fresh.state == "idle" and fresh.watermark is None and fresh.key == key
    fresh.state = "running"
    fresh.token = "tok/100"
    fresh.run = RunCounts(pages=2, records=200, deleted=3)
    store.save(fresh)
    again = SQLiteStateStore(tmp_path / "state.sqlite").load(key)
    assert again == fresh
    store.save(HarvestState.new(HarvestKey("a", "x", "oai_dc")))
    assert [str(s.key) for s in store.all()] == ["a|x|oai_dc", "orlis|*|dim"]


def test_counts_add() -> None:
    total = RunCounts(records=1, quarantined=1)
    total.add(RunCounts(records=2, repaired_chars=5))
    assert (total.records, total.quarantined, total.repaired_chars) == (3, 1, 5)


def test_a_state_with_counts_this_version_does_not_know_still_loads() -> None:
    """A state written by a later version (a count added to RunCounts) is read by an older
    worker during a rolling upgrade: the unknown count is left out, not a TypeError."""
    data = HarvestState.new(HarvestKey("s", "", "dim")).to_dict()
    data["run"] = {**data["run"], "records": 7, "counted_by_a_later_version": 1}
    data["totals"] = {**data["totals"], "counted_by_a_later_version": 2}
    state = HarvestState.from_dict(data)
    assert state.run.records == 7 and state.totals == RunCounts()
