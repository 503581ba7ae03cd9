"""The configuration ernte ships: read-only package data, found with importlib.resources.

    sources.yaml                                   the default sources (ORLIS)
    german/stopwords_de.txt                        German stop words (both backends)
    german/compound_parts_de.txt                   the decompounding part list
    elasticsearch/ernte-records.index-template.json  the index template (generated)
    kibana/saved_objects.ndjson                    Kibana data view, search, dashboard (generated)

An operator overrides any of them by putting a file with the same relative name into the
config directory (`$ERNTE_CONFIG_DIR`, or `./config`): see `harvester.config_files`. Nothing
ever writes here at run time.
"""
