"""Which configuration file ernte reads: the operator's copy or the packaged default.

The one rule: the config directory is `$ERNTE_CONFIG_DIR`, or `config/` in the working
directory when that is unset. A file there wins over the packaged default with the same
relative name (`harvester/defaults/<name>`, read with importlib.resources); a name the config
directory lacks comes from the package. So an installed wheel runs from any directory with
its defaults, and an operator overrides one file (say `sources.yaml`) without copying the rest.

Data that ernte grows at run time never goes into either place: it lives under the data
directory (`ernte compounds build` writes `<data_dir>/german/compound_parts_de.txt`, which then
wins over the configured part list; see `part_list_file`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEFAULTS_PACKAGE = "harvester.defaults"

SOURCES = "sources.yaml"
STOPWORDS = "german/stopwords_de.txt"
COMPOUND_PARTS = "german/compound_parts_de.txt"
INDEX_TEMPLATE = "elasticsearch/ernte-records.index-template.json"
KIBANA_OBJECTS = "kibana/saved_objects.ndjson"

SHIPPED: tuple[str, ...] = (SOURCES, STOPWORDS, COMPOUND_PARTS, INDEX_TEMPLATE, KIBANA_OBJECTS)
"""Every configuration file the code reads, by its name relative to the config directory."""


def packaged_file(name: str) -> Path:
    """The packaged default of a configuration file (read-only: never write to it)."""
    resource = files(DEFAULTS_PACKAGE).joinpath(name)
    # harvester.defaults is a regular package installed as files (wheel or source tree), so
    # the resource is a real file; ernte is not meant to run from a zip archive.
    path = Path(str(resource))
    if not path.is_file():
        raise FileNotFoundError(f"ernte's packaged configuration lacks {name} ({path})")
    return path


def source_checkout_file(name: str) -> Path:
    """The packaged default's file in a source checkout, for a developer regenerating a
    generated file (`python -m indexer.elastic.mapping`); refused in an installed package,
    which nothing may write to."""
    path = packaged_file(name)
    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "pyproject.toml").is_file():
        raise RuntimeError(
            f"{path} belongs to an installed package, which ernte never writes: regenerate it "
            "in a source checkout, or pass another path"
        )
    return path


def config_file(name: str, config_dir: Path | None = None) -> Path:
    """The file ernte reads for `name`: `<config_dir>/<name>` if it exists, else the packaged one.

    `config_dir` defaults to the settings' (`$ERNTE_CONFIG_DIR` or `./config`).
    """
    if config_dir is None:
        from harvester.settings import get_settings  # settings import this module

        config_dir = get_settings().config_dir
    override = config_dir / name
    return override if override.is_file() else packaged_file(name)


def grown_part_list_file(data_dir: Path) -> Path:
    """Where `ernte compounds build` writes the grown part list: under the data directory."""
    return data_dir / COMPOUND_PARTS


def part_list_file(data_dir: Path, config_dir: Path | None = None) -> Path:
    """The compound part list in use: the grown one under the data directory if there is one,
    else the configured one (config directory, else packaged)."""
    grown = grown_part_list_file(data_dir)
    return grown if grown.is_file() else config_file(COMPOUND_PARTS, config_dir)
