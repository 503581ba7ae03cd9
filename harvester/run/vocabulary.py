"""`ernte compounds build SOURCE`: grow the decompounding part list from the repository itself.

The part list is the free base word list plus the subject headings' head nouns. Rebuilding it
from the raw archive lets it follow the repository as its vocabulary grows. The grown list is
user data: it goes to `<data_dir>/german/compound_parts_de.txt` (never into the installed
package), and from then on wins over the configured or packaged list in every process that
analyzes text; the index must then be rebuilt (`ernte index rebuild`) so that the `*_parts`
fields of every document use the new list.
"""

from __future__ import annotations

from pathlib import Path

from harvester.config_files import grown_part_list_file, part_list_file
from harvester.normalize.normalizer import QuarantineError, normalize
from harvester.run import services
from harvester.run.pipeline import crosswalk_for
from harvester.settings import Settings
from harvester.sources import load_sources, source_of_archive
from harvester.store.archive import RawArchive, archives_for
from indexer.compounds import build_part_list, load_part_list, reload_part_lists, write_part_list


def archived_subjects(settings: Settings, source: str) -> set[str]:
    """Every subject heading of the latest live records of a source's archives."""
    found = archives_for(settings.archive_dir, source)
    configured = load_sources(settings.sources_file)
    subjects: set[str] = set()
    for key, prefix, path in found:
        source_of = source_of_archive(configured, key, prefix)
        with RawArchive(path, readonly=True) as archive:
            for raw in archive.iter_latest():
                if raw.deleted:
                    continue
                try:
                    subjects.update(normalize(raw, key, crosswalk_for(source_of, prefix)).subjects)
                except QuarantineError:
                    continue
    return subjects


def build_parts_from_archive(settings: Settings, source: str) -> tuple[Path, int]:
    """Merge a source's subject heads into the part list in use and write the result under the
    data directory; returns (file written, number of parts)."""
    current = part_list_file(settings.data_dir, settings.config_dir)
    parts = build_part_list(archived_subjects(settings, source), load_part_list(current))
    target = grown_part_list_file(settings.data_dir)
    write_part_list(parts, target)
    reload_part_lists()  # this process now splits with the grown list too
    services.use_configured_word_lists(settings)
    return target, len(parts)
