"""The Elasticsearch backend (used when ES_URL is set).

mapping     German analysis, field mappings and the index template (DSL -> config/elasticsearch/)
queries     SearchRequest -> DSL Search, ES response -> SearchResponse
backend     ElasticBackend, the IndexBackend implementation (bulk writes, versioning, search)
connection  the client from settings: auth, TLS, retries, server version check
indices     the index lifecycle: template, versioned indices behind the alias, alias switch
rebuild     the zero-downtime rebuild of a new index behind the `ernte-records` alias
kibana      Kibana saved objects (config/kibana/) and their import

Submodules are imported explicitly (`from indexer.elastic.backend import ElasticBackend`) so
that embedded mode never loads the Elasticsearch client.
"""
