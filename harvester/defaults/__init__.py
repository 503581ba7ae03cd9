"""The configuration the harvester ships: read-only package data, found with importlib.resources.

    sources.yaml    the default sources (ORLIS)

The word lists, index template and Kibana objects ship with the indexer (`indexer/resources/`).
An operator overrides any of them by putting a file with the same relative name into the
config directory (`$ERNTE_CONFIG_DIR`, or `./config`): see `harvester.config_files`. Nothing
ever writes here at run time.
"""
