"""Which configuration file ernte reads: the operator's copy or the packaged default.

The one rule: the config directory is `$ERNTE_CONFIG_DIR`, or `config/` in the working
directory when that is unset. A file there wins over the packaged default with the same
relative name (the harvester's `harvester/defaults/sources.yaml`, the indexer's
`indexer/resources/<name>` for word lists, index template and Kibana objects; read with
importlib.resources); a name the config directory lacks comes from the package. The indexer
never reads the config directory itself: the harvester chooses the file and passes its path. So an installed wheel runs from any directory with
its defaults, and an operator overrides one file (say `sources.yaml`) without copying the rest.

Data that ernte grows at run time never goes into either place: it lives under the data
directory (`ernte compounds build` writes `<data_dir>/german/compound_parts_de.txt`, which then
wins over the configured part list; see `part_list_file`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from indexer.resources import (
    COMPOUND_PARTS,
    INDEX_TEMPLATE,
    KIBANA_OBJECTS,
    STOPWORDS,
    resource_file,
)

DEFAULTS_PACKAGE = "harvester.defaults"
SOURCES = "sources.yaml"

SHIPPED: tuple[str, ...] = (SOURCES, STOPWORDS, COMPOUND_PARTS, INDEX_TEMPLATE, KIBANA_OBJECTS)
"""Every configuration file the code reads, by its name relative to the config directory."""


def packaged_file(name: str) -> Path:
    """The packaged default of a configuration file (read-only: never write to it)."""
    if name != SOURCES:
        return resource_file(name)  # the indexer's word lists, index template, Kibana objects
    # harvester.defaults is a regular package installed as files (wheel or source tree), so
    # the resource is a real file; ernte is not meant to run from a zip archive.
    path = Path(str(files(DEFAULTS_PACKAGE).joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"ernte's packaged configuration lacks {name} ({path})")
    return path


def config_file(name: str, config_dir: Path) -> Path:
    """The file ernte reads for `name`: `<config_dir>/<name>` if it exists, else the packaged one.

    `config_dir` is the settings' (`$ERNTE_CONFIG_DIR` or `./config`).
    """
    override = config_dir / name
    # Present but no file (a directory a bind mount made of a missing host file, a broken
    # link): the override, so that reading it fails naming it, instead of the packaged file
    # silently taking its place (beat would have scheduled the packaged sources).
    present = override.exists() or override.is_symlink()
    return override if present else packaged_file(name)


def grown_part_list_file(data_dir: Path) -> Path:
    """Where `ernte compounds build` writes the grown part list: under the data directory."""
    return data_dir / COMPOUND_PARTS


def part_list_file(data_dir: Path, config_dir: Path) -> Path:
    """The compound part list in use: the grown one under the data directory if there is one,
    else the configured one (config directory, else packaged)."""
    grown = grown_part_list_file(data_dir)
    return grown if grown.is_file() else config_file(COMPOUND_PARTS, config_dir)
