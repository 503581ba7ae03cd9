"""Indexing and search: German analysis, query syntax, the two backends (no harvester imports)."""
