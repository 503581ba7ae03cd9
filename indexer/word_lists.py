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
_read_as: dict[str, tuple[int, int, int] | None] = {}
_generation = 0


def use_word_lists(*, stopwords: Path, compound_parts: Path) -> None:
    """Analyze with these lists from now on (in this process). A list whose file changed
    since it was last chosen (`ernte compounds build` rewrites the grown part list in place,
    an operator edits a stop list) is read again: long-running processes (`ernte serve`,
    Celery workers) choose their lists again when they reopen an index or start a task."""
    global _generation
    for name, path in ((STOPWORDS, stopwords), (COMPOUND_PARTS, compound_parts)):
        signature = _file_signature(path)
        if name in _chosen and _chosen[name] == path:
            if _read_as.get(name) != signature:
                _generation += 1
            path = _chosen[name]  # the same object: caches compare it by identity first
        _chosen[name] = path
        _read_as[name] = signature


def lists_generation() -> int:
    """Grows whenever a chosen list file changed: caches of what was read from the lists
    key on it (with the path)."""
    return _generation


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def stopwords_file() -> Path:
    """The stop list in use: the one chosen with `use_word_lists`, else the packaged one."""
    return _chosen.get(STOPWORDS) or resource_file(STOPWORDS)


def part_list_file() -> Path:
    """The compound part list in use: the one chosen with `use_word_lists`, else the packaged one."""
    return _chosen.get(COMPOUND_PARTS) or resource_file(COMPOUND_PARTS)
