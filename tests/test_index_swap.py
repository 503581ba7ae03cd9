"""`ernte index rebuild` puts its new embedded index in place of the live one so that a reader
opening the index at that moment finds one of the two, never none (harvester.run.rebuild)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from harvester.run import rebuild
from harvester.run.rebuild import swap_in

READER = """
import os, sys, time
path = sys.argv[1]
missing = seen = 0
print("ready", flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(path + ".stop") and time.monotonic() < deadline:
    seen += 1
    if not os.path.exists(path + "/meta.json"):
        missing += 1
print(missing, seen, flush=True)
"""


def index_dir(path: Path, label: str) -> Path:
    path.mkdir()
    (path / "meta.json").write_text(label, encoding="utf-8")
    return path


def test_the_new_index_takes_the_place_of_the_old(tmp_path: Path) -> None:
    live = index_dir(tmp_path / "index", "old")
    swap_in(index_dir(tmp_path / "index.rebuild", "new"), live)
    assert (live / "meta.json").read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_a_first_rebuild_has_nothing_to_swap_with(tmp_path: Path) -> None:
    swap_in(index_dir(tmp_path / "index.rebuild", "new"), tmp_path / "index")
    assert (tmp_path / "index" / "meta.json").read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def swaps_seen_by_a_reader(tmp_path: Path, swaps: int) -> tuple[int, int]:
    """(times a reader in another process found no index, times it looked) during `swaps`."""
    live = index_dir(tmp_path / "index", "0")
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(live)], stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
    for number in range(1, swaps + 1):
        swap_in(index_dir(tmp_path / "index.rebuild", str(number)), live)
        time.sleep(0.0005)
    (tmp_path / "index.stop").touch()
    missing, seen = (int(n) for n in reader.stdout.readline().split())
    reader.wait(timeout=30)
    return missing, seen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_a_reader_never_finds_no_index_during_swaps(tmp_path: Path) -> None:
    missing, seen = swaps_seen_by_a_reader(tmp_path, 300)
    assert seen > 1000  # the reader looked all the while
    assert missing == 0


def test_without_the_exchange_two_renames_still_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rebuild, "_exchange", lambda first, second: False)
    live = index_dir(tmp_path / "index", "old")
    swap_in(index_dir(tmp_path / "index.rebuild", "new"), live)
    assert (live / "meta.json").read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]
