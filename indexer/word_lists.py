"""Which German word lists the analysis reads: the packaged ones, unless the harvester chose others.

The stop list and the compound part list ship in `indexer/resources/german/`. An operator's own
list (config directory) or a part list grown by `ernte compounds build` (data directory) is
chosen on the harvester's side (`harvester.config_files`) and handed in with `use_word_lists`,
so the indexer never reads settings or the config directory itself.
"""

from __future__ import annotations

from pathlib import Path

from indexer.resources import COMPOUND_PARTS, STOPWORDS, resource_file

_chosen: dict[str, Path] = {}


def use_word_lists(*, stopwords: Path, compound_parts: Path) -> None:
    """Analyze with these lists from now on (in this process)."""
    _chosen[STOPWORDS] = stopwords
    _chosen[COMPOUND_PARTS] = compound_parts


def stopwords_file() -> Path:
    """The stop list in use: the one chosen with `use_word_lists`, else the packaged one."""
    return _chosen.get(STOPWORDS) or resource_file(STOPWORDS)


def part_list_file() -> Path:
    """The compound part list in use: the one chosen with `use_word_lists`, else the packaged one."""
    return _chosen.get(COMPOUND_PARTS) or resource_file(COMPOUND_PARTS)
