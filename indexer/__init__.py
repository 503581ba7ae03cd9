"""Indexing and search: German analysis, query syntax, the two index backends; imports nothing from harvester."""
