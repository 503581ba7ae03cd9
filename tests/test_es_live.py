"""The live Elasticsearch contract: the requests of tests/test_es_bodies.py against a real
cluster. Runs only when ES_URL points at an Elasticsearch 9 cluster (e.g. a local docker
container, see indexer/resources/elasticsearch/README.md); every test uses its own alias/template
`ernte-live-<random>` and removes it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

ES_URL = os.environ.get("ES_URL", "")
if not ES_URL:
    pytest.skip(
        "ES_URL not set: the live Elasticsearch tests need a running 9.x cluster "
        "(e.g. ES_URL=http://127.0.0.1:9200)",
        allow_module_level=True,
    )

from harvester.model import Abstract, Person, Record  # noqa: E402
from harvester.run.document import build_document  # noqa: E402
from indexer.analysis import analyze, analyze_exact, analyze_name  # noqa: E402
from indexer.elastic import indices, rebuild  # noqa: E402
from indexer.elastic.backend import ElasticBackend  # noqa: E402
from indexer.elastic.connection import check_server  # noqa: E402
from indexer.search_model import Filter, SearchRequest  # noqa: E402

pytestmark = pytest.mark.es

ANALYSIS_PROBES = [
    "Stadtentwicklungsplanung",
    "Städte in sozialer Verantwortung",
    "Die Straße als öffentlicher Raum",
    "Strasse",
    "Bürgerbeteiligung Buergerbeteiligung",
    "Quartier Quartiere Quartiersmanagement",
    "München Muenchen",
    "Europäer Jubiläen",
    "Stadt und Land, z.B. 1,5 Mio. Einwohner",
    "Systeme Systems",
]
NAME_PROBES = ["Güles, Orhan", "Gueles", "José Müller-Lüdenscheidt", "Łukasz Ørsted"]


def record(number: int, title: str, subjects: list[str], **fields: object) -> Record:
    values: dict[str, object] = {
        "identifier": f"oai:test:{number}",
        "source": "orlis",
        "metadata_prefix": "dim",
        "datestamp": "2022-11-25T10:00:00Z",
        "title": title,
        "subjects": subjects,
        "year": 2009,
        "issued": "2009",
        "type": "Zeitschriftenaufsatz",
        "language": "de",
        "authors": [Person("Kocks, Martina", "Kocks")],
        **fields,
    }
    return Record(**values)  # type: ignore[arg-type]


CORPUS = [
    record(
        1,
        "Städte in sozialer Verantwortung",
        ["Stadtentwicklungsplanung", "Quartiermanagement"],
        abstracts=[Abstract("Wie Städten die Quartiere gelingen.", "de")],
        authors=[Person("Güles, Orhan", "Güles")],
    ),
    record(2, "Verkehrsplanung in Kleinstädten", ["Verkehrsplanung"], year=2001, issued="2001"),
    record(3, "Neue Stadtteile", ["Wohnungsbau"], year=2018, issued="2018-05", type="Monographie"),
]


@pytest.fixture
def backend() -> Iterator[ElasticBackend]:
    instance = ElasticBackend.for_tests(ES_URL, f"ernte-live-{uuid.uuid4().hex[:8]}")
    instance.create()
    yield instance
    indices.delete_indices(
        instance.client, indices.versioned_indices(instance.client, instance.alias)
    )
    instance.client.indices.delete_index_template(name=instance.alias)
    instance.close()


@pytest.fixture
def loaded(backend: ElasticBackend) -> ElasticBackend:
    result = backend.upsert([build_document(r) for r in CORPUS])
    assert (result.written, result.errors) == (3, [])
    return backend


def test_server_is_version_nine(backend: ElasticBackend) -> None:
    assert check_server(backend.client, "ES_URL").startswith("9.")


def test_create_puts_versioned_index_behind_alias(backend: ElasticBackend) -> None:
    assert indices.indices_behind_alias(backend.client, backend.alias) == [f"{backend.alias}-1"]
    mapping = backend.client.indices.get_mapping(index=backend.alias)
    [definition] = mapping.body.values()
    assert definition["mappings"]["dynamic"] == "strict"


def test_upsert_versions_and_delete(loaded: ElasticBackend) -> None:
    assert loaded.count() == 3
    stale = record(1, "Veraltet", ["Alt"], datestamp="2001-01-01")
    result = loaded.upsert([build_document(stale)])
    assert (result.written, result.skipped_stale) == (0, 1)
    again = loaded.upsert([build_document(CORPUS[0])])
    assert (again.written, again.skipped_stale) == (1, 0)  # same datestamp: idempotent
    unknown_field = {**build_document(CORPUS[1]), "unmapped": "x"}
    refused = loaded.upsert([unknown_field])
    assert [e.identifier for e in refused.errors] == ["oai:test:2"]
    deleted = loaded.delete(["oai:test:2", "oai:test:404"])
    assert (deleted.deleted, deleted.errors) == (1, [])
    assert loaded.count() == 2


def test_search_with_filters_facets_highlights_and_cursor(loaded: ElasticBackend) -> None:
    response = loaded.search(SearchRequest(query="Städte", facets={"subject": 5, "year": 5}))
    # title match first; the others contain "Städte"/"Stadt" only as compound parts
    first = response.hits[0]
    assert first.id == "oai:test:1" and response.total == 3
    assert first.highlights["title"] == ["<mark>Städte</mark> in sozialer Verantwortung"]
    assert {f.value for f in response.facets["year"]} == {"2001", "2009", "2018"}
    assert loaded.search(SearchRequest(query="Planung")).total == 2  # via subject_parts
    filtered = loaded.search(
        SearchRequest(filters=[Filter("subject", "wohnungsbau")], facets={"type": 5})
    )
    assert [h.id for h in filtered.hits] == ["oai:test:3"]
    assert [(f.value, f.count) for f in filtered.facets["type"]] == [("Monographie", 1)]
    page = loaded.search(SearchRequest(sort="year_desc", limit=2))
    rest = loaded.search(
        SearchRequest(sort="year_desc", limit=2, search_after=page.next_search_after)
    )
    assert [h.year for h in page.hits + rest.hits] == [2018, 2009, 2001]
    assert rest.next_search_after is None


@pytest.mark.parametrize("text", ANALYSIS_PROBES)
def test_german_analysis_equals_the_python_chain(loaded: ElasticBackend, text: str) -> None:
    assert loaded.analyze(text, "de") == analyze(text)
    assert loaded.analyze(text, "de_exact") == analyze_exact(text)


@pytest.mark.parametrize("text", NAME_PROBES)
def test_name_analysis_equals_the_python_chain(loaded: ElasticBackend, text: str) -> None:
    assert loaded.analyze(text, "name") == analyze_name(text)


def test_rebuild_switches_the_alias_atomically(loaded: ElasticBackend) -> None:
    report = rebuild.build_index_and_switch_alias(
        loaded, (build_document(r) for r in CORPUS[:2]), batch_size=1
    )
    assert report.previous == [f"{loaded.alias}-1"]
    assert report.index == f"{loaded.alias}-2"
    assert (report.written, report.count, report.deleted_previous) == (2, 2, True)
    assert indices.indices_behind_alias(loaded.client, loaded.alias) == [report.index]
    settings = loaded.client.indices.get_settings(index=report.index).body[report.index]
    assert settings["settings"]["index"]["refresh_interval"] == "1s"
    assert not loaded.client.indices.exists(index=report.previous[0])
    assert loaded.count() == 2


def test_rebuild_refuses_to_replace_data_with_nothing(loaded: ElasticBackend) -> None:
    with pytest.raises(indices.RebuildError, match="empty"):
        rebuild.build_index_and_switch_alias(loaded, [])
    assert indices.indices_behind_alias(loaded.client, loaded.alias) == [f"{loaded.alias}-1"]
    assert indices.versioned_indices(loaded.client, loaded.alias) == [f"{loaded.alias}-1"]
