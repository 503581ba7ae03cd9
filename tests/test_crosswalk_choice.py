"""Which crosswalk reads a harvested format, and what a harvest of a format none reads says."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from harvester.run.pipeline import crosswalk_for, warn_without_crosswalk
from harvester.sources import Source, resolve_source

URL = "http://127.0.0.1:8000/oai"


def _warning(caplog: pytest.LogCaptureFixture, source: Source, prefix: str) -> str:
    with caplog.at_level(logging.WARNING, logger="harvester.run.pipeline"):
        warn_without_crosswalk(source, prefix)
    [record] = caplog.records
    assert record.source == source.key and record.prefix == prefix  # type: ignore[attr-defined]
    return record.getMessage()


def test_the_crosswalk_key_reads_the_main_prefix_only() -> None:
    configured = Source("t", URL, metadata_prefix="dim", crosswalk="oai_dc")
    assert crosswalk_for(configured, "dim") == "oai_dc"
    assert crosswalk_for(configured, "xoai") == "xoai"


def test_a_format_no_crosswalk_reads_gets_advice_that_can_work(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The warning always said to name a `crosswalk` for the source: impossible for a bare URL
    (no entry in the sources file), and of no use for a prefix other than the source's
    `metadata_prefix`, which `crosswalk` does not apply to (found in review)."""
    main = _warning(caplog, Source("t", URL, metadata_prefix="xoai"), "xoai")
    assert "no crosswalk reads metadata prefix 'xoai'" in main
    assert "name it as the source's `crosswalk`" in main and "oai_dc" in main
    caplog.clear()
    other = _warning(caplog, Source("t", URL, metadata_prefix="dim", crosswalk="dim"), "xoai")
    assert "set the source's `metadata_prefix: xoai` with that `crosswalk`" in other
    assert "now dim" in other and "name it as" not in other
    caplog.clear()
    bare = resolve_source(URL, tmp_path / "none.yaml", "xoai")
    adhoc = _warning(caplog, bare, "xoai")
    assert "configure the repository in the sources file with `metadata_prefix: xoai`" in adhoc


def test_a_format_a_crosswalk_reads_is_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        warn_without_crosswalk(Source("t", URL, metadata_prefix="dim"), "dim")
        warn_without_crosswalk(Source("t", URL, metadata_prefix="x", crosswalk="mods"), "x")
    assert not caplog.records
