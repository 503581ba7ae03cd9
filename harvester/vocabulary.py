"""`ernte compounds build SOURCE`: grow the decompounding part list from the repository itself.

The part list (config/german/compound_parts_de.txt) is the free base word list plus the subject
headings' head nouns. Rebuilding it from the raw archive lets it follow the repository as its
vocabulary grows; the index must then be rebuilt (`ernte index rebuild`) so that the `*_parts`
fields of every document use the new list.
"""

from __future__ import annotations

from pathlib import Path

from harvester.archive import RawArchive, archives_for
from harvester.normalize import QuarantineError, normalize
from harvester.pipeline import crosswalk_for
from harvester.settings import Settings
from harvester.sources import load_sources, source_of_archive
from indexer.compounds import PARTS_FILE, build_part_list, load_part_list, write_part_list


def archived_subjects(settings: Settings, source: str) -> set[str]:
    """Every subject heading of the latest live records of a source's archives."""
    found = archives_for(settings.archive_dir, source)
    configured = load_sources(settings.sources_file)
    subjects: set[str] = set()
    for key, prefix, path in found:
        source_of = source_of_archive(configured, key, prefix)
        with RawArchive(path) as archive:
            for raw in archive.iter_latest():
                if raw.deleted:
                    continue
                try:
                    subjects.update(normalize(raw, key, crosswalk_for(source_of, prefix)).subjects)
                except QuarantineError:
                    continue
    return subjects


def build_parts_from_archive(
    settings: Settings, source: str, path: Path = PARTS_FILE
) -> tuple[Path, int]:
    """Merge a source's subject heads into the part list; returns (file, number of parts)."""
    parts = build_part_list(archived_subjects(settings, source), load_part_list(path))
    write_part_list(parts, path)
    return path, len(parts)
