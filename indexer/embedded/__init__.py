"""The embedded backend (the default, no server): a tantivy index on local disk.

schema     the index layout: fields, their analysis chains and weights, the tantivy schema
documents  a search document -> the fields of one tantivy document, analyzed in Python
writer     upserts and deletes by id (never older over newer), commits, archive positions
queries    a parsed query and filters -> tantivy queries, ranked like Elasticsearch
facets     facet counts (multi-select, exact; broad queries by subtraction) and the year histogram
views      the committed view of the index searches read, and its whole-index facet counts
highlight  the query's words marked in title and abstract fragments
backend    EmbeddedBackend, the IndexBackend implementation that ties them together

Submodules are imported explicitly (`from indexer.embedded.backend import EmbeddedBackend`).
"""
