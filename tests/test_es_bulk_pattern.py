"""The request pattern of ernte's bulk writes to Elasticsearch, checked without a cluster.

The client is the real `Elasticsearch` client; only its HTTP node is a recording stand-in
(Elasticsearch is external here): it answers each `_bulk` request as a cluster would (every item created) and notes what was
sent, how big, with which parameters and how many requests were in flight at once. The
bodies themselves are built by the real code (tests/test_es_bodies.py checks them).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import Elasticsearch

from indexer.backend import WriteResult
from indexer.elastic.backend import (
    REBUILD_PARALLEL_BULK,
    BulkOptions,
    ElasticBackend,
    write_documents,
)


class RecordingNode(BaseNode):
    """An HTTP node that answers `_bulk` as a cluster would (every item created) and records
    each request: its actions, size, query parameters, and how many were in flight at once."""

    delay = 0.0
    requests: list[dict[str, Any]]
    in_flight = 0
    most_in_flight = 0
    lock = threading.Lock()

    def perform_request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: Any = None,
    ) -> NodeApiResponse:
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        time.sleep(cls.delay)
        lines = (body or b"").decode().splitlines()
        actions = [json.loads(line) for line in lines[0::2]]
        path, _, query = target.partition("?")
        with cls.lock:
            cls.in_flight -= 1
            cls.requests.append(
                {
                    "path": path,
                    "actions": actions,
                    "bytes": len(body or b""),
                    "params": dict(parse_qsl(query)),
                }
            )
        items = [{"index": {"_id": a["index"]["_id"], "status": 201}} for a in actions]
        answer = json.dumps({"took": 1, "errors": False, "items": items}).encode()
        meta = ApiResponseMeta(
            status=200,
            http_version="1.1",
            headers=HttpHeaders(
                {"content-type": "application/json", "x-elastic-product": "Elasticsearch"}
            ),
            duration=0.0,
            node=self.config,
        )
        return NodeApiResponse(meta, answer)


def recording_client(delay: float = 0.0) -> tuple[Elasticsearch, type[RecordingNode]]:
    node = type("Node", (RecordingNode,), {"delay": delay, "requests": []})
    return Elasticsearch("http://es.invalid:9200", node_class=node), node


def _documents(n: int, abstract_chars: int = 200) -> list[dict[str, Any]]:
    return [
        {
            "id": f"oai:x:{i}",
            "datestamp": "2024-05-01T12:30:00Z",
            "title": f"Titel {i}",
            "abstract": "Stadtentwicklung " * (abstract_chars // 17),
        }
        for i in range(n)
    ]


def test_bulk_requests_are_bounded_by_count_and_by_bytes() -> None:
    client, node = recording_client()
    options = BulkOptions(chunk_size=100, max_chunk_bytes=64 * 1024)
    result = write_documents(client, "ernte-records", _documents(450, 2000), options)
    assert result.written == 450 and not result.errors
    sent = [a["index"]["_id"] for r in node.requests for a in r["actions"]]
    assert sorted(sent) == sorted(f"oai:x:{i}" for i in range(450))  # each document once
    assert all(len(r["actions"]) <= 100 for r in node.requests)
    assert all(r["bytes"] <= 64 * 1024 for r in node.requests)
    assert any(len(r["actions"]) < 100 for r in node.requests[:-1]), "bytes cut no chunk"
    assert all("refresh" not in r["params"] for r in node.requests)


def test_a_rebuild_loads_with_parallel_bulk_requests_and_no_refresh() -> None:
    client, node = recording_client(delay=0.05)
    backend = ElasticBackend(client, alias="ernte-records", bulk=BulkOptions(refresh="wait_for"))
    result = backend.upsert_into("ernte-records-2", _documents(2000))
    assert result.written == 2000 and not result.errors
    assert node.most_in_flight == REBUILD_PARALLEL_BULK == 2
    assert all("refresh" not in r["params"] for r in node.requests)  # refresh is off
    assert all(len(r["actions"]) <= BulkOptions().chunk_size for r in node.requests)
    sent = [a["index"]["_id"] for r in node.requests for a in r["actions"]]
    assert len(sent) == len(set(sent)) == 2000
    assert {a["index"]["_index"] for r in node.requests for a in r["actions"]} == {
        "ernte-records-2"
    }


def test_ordinary_writes_send_one_request_at_a_time_with_the_configured_refresh() -> None:
    client, node = recording_client(delay=0.01)
    options = replace(BulkOptions(), refresh="wait_for")
    result = write_documents(client, "ernte-records", _documents(1200), options)
    assert isinstance(result, WriteResult) and result.written == 1200
    assert node.most_in_flight == 1
    assert [r["params"].get("refresh") for r in node.requests] == ["wait_for"] * 3
