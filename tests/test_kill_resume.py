"""A harvest process is SIGKILLed mid-way; the next run ends with exactly the server's records.

The harvest runs as a real, separate `ernte` process (archive + normalize + embedded index), so
nothing of it survives but what it wrote to disk. The provider is a real pyoai server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harvester.demo.generate import generate_records
from harvester.demo.provider import serve
from harvester.store.state import SQLiteStateStore
from tests.conftest import CLIResult, assert_exactly, kill_harvest_at_page

pytestmark = pytest.mark.slow  # harvest processes killed and resumed

RECORDS = list(generate_records(600, seed=11, deleted_share=0.04))
LIVE = {r.identifier for r in RECORDS if not r.deleted}
ALL = {r.identifier for r in RECORDS}


def test_sigkill_mid_harvest_then_resume_gives_exactly_the_servers_records(
    ernte: Callable[..., CLIResult],
    data_dir: Path,
    source: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ERNTE_PAGE_DELAY", "0.1")  # slow enough to be killed mid-way
    with serve(RECORDS, batch_size=30) as url:
        reached = kill_harvest_at_page(data_dir / "state.sqlite", 4, source(url, "dim"))
        killed = SQLiteStateStore(data_dir / "state.sqlite").all()[0]
        assert killed.state == "running" and killed.token is not None
        assert 4 <= reached < 20 and killed.watermark is None

        resumed = ernte("harvest", "t")
    assert resumed.exit_code == 0, resumed.stderr

    state = SQLiteStateStore(data_dir / "state.sqlite").all()[0]
    assert state.state == "idle" and state.watermark is not None
    assert_exactly(data_dir, ALL, LIVE)
