"""Indexing and search: the search document, German analysis, and the two index backends."""
