"""The files the indexer ships: German word lists, the ES index template, Kibana objects.

    german/stopwords_de.txt                          German stop words (both backends)
    german/compound_parts_de.txt                     the decompounding part list
    elasticsearch/ernte-records.index-template.json  the index template (generated)
    kibana/saved_objects.ndjson                      Kibana data view, search, dashboard (generated)

Read-only package data, found with importlib.resources; nothing writes here at run time. An
operator overrides a file through the config directory: the harvester's `config_files` chooses
the file and hands its path to the indexer, which never reads the config directory itself.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

STOPWORDS = "german/stopwords_de.txt"
COMPOUND_PARTS = "german/compound_parts_de.txt"
INDEX_TEMPLATE = "elasticsearch/ernte-records.index-template.json"
KIBANA_OBJECTS = "kibana/saved_objects.ndjson"


@cache
def resource_file(name: str) -> Path:
    """The packaged file `name` (relative to this package; read-only: never write to it).

    Found once per process: the analysis asks for the part list per word and per document,
    and an importlib.resources lookup costs more than the analysis of a word."""
    # A regular package installed as files (wheel or source tree), so the resource is a real
    # file; ernte is not meant to run from a zip archive.
    path = Path(str(files(__name__).joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"ernte's packaged index resources lack {name} ({path})")
    return path


def source_checkout_file(name: str) -> Path:
    """The packaged file in a source checkout, for a developer regenerating a generated file
    (`python -m indexer.elastic.mapping`); refused in an installed package, which nothing may
    write to."""
    path = resource_file(name)
    checkout = Path(__file__).resolve().parent.parent.parent
    if not (checkout / "pyproject.toml").is_file():
        raise RuntimeError(
            f"{path} belongs to an installed package, which ernte never writes: regenerate it "
            "in a source checkout, or pass another path"
        )
    return path
