"""The fault-injecting proxy does what harvest tests script, seen with plain `requests`."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from lxml import etree

from harvester.demo.provider import serve
from harvester.demo.sample import load_sample
from harvester.oai.xmlsafe import XMLSyntaxError, parse_xml
from tests.faults import Fault, FaultKind, fault_proxy

NS = {"oai": "http://www.openarchives.org/OAI/2.0/"}
FIRST_PAGE = {"verb": "ListRecords", "metadataPrefix": "dim"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve(load_sample(), batch_size=25) as url:
        yield url


def _token(root: etree._Element) -> str:
    return root.findtext(".//oai:resumptionToken", namespaces=NS) or ""


def _identifiers(root: etree._Element) -> list[str]:
    return [e.text or "" for e in root.iterfind(".//oai:header/oai:identifier", NS)]


def _without_response_date(page: bytes) -> bytes:
    return re.sub(rb"<responseDate>[^<]*</responseDate>", b"", page)


def test_passes_requests_through_and_logs_what_was_sent(upstream: str) -> None:
    with fault_proxy(upstream) as proxy:
        params = {**FIRST_PAGE, "from": "2020-01-01T00:00:00Z", "until": "2023-06-30T12:00:00Z"}
        via_proxy = requests.get(
            proxy.url, params=params, headers={"User-Agent": "ernte-test/1.0"}, timeout=10
        )
    direct = requests.get(upstream, params=params, timeout=10)
    assert via_proxy.status_code == 200
    assert _without_response_date(via_proxy.content) == _without_response_date(direct.content)
    (seen,) = proxy.requests
    assert (seen.number, seen.method, seen.fault) == (1, "GET", None)
    assert seen.params == params
    assert seen.headers["User-Agent"] == "ernte-test/1.0"


def test_retry_after(upstream: str) -> None:
    with fault_proxy(upstream, faults={1: Fault.retry_after(2)}) as proxy:
        refused = requests.get(proxy.url, params=FIRST_PAGE, timeout=10)
        served = requests.get(proxy.url, params=FIRST_PAGE, timeout=10)
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "2")
    assert served.status_code == 200
    assert [r.fault for r in proxy.requests] == [FaultKind.RETRY_AFTER, None]


def test_delay_longer_than_read_timeout(upstream: str) -> None:
    with fault_proxy(upstream, faults={1: Fault.delay(1.5)}) as proxy:
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(proxy.url, params=FIRST_PAGE, timeout=(5, 0.3))
        assert requests.get(proxy.url, params=FIRST_PAGE, timeout=10).status_code == 200


def test_truncated_page_looks_complete_but_is_broken_xml(upstream: str) -> None:
    with fault_proxy(upstream, faults={2: Fault.truncate(0.5)}) as proxy:
        full = requests.get(proxy.url, params=FIRST_PAGE, timeout=10).content
        cut = requests.get(proxy.url, params=FIRST_PAGE, timeout=10)
    assert cut.status_code == 200
    assert 0 < len(cut.content) < len(full)
    assert _without_response_date(full).startswith(_without_response_date(cut.content))
    with pytest.raises(XMLSyntaxError):
        parse_xml(cut.content)


def test_truncated_page_with_declared_length_is_a_transport_error(upstream: str) -> None:
    faults = {1: Fault.truncate(0.3, declare_full_length=True)}
    with (
        fault_proxy(upstream, faults=faults) as proxy,
        pytest.raises(requests.exceptions.ChunkedEncodingError),
    ):
        requests.get(proxy.url, params=FIRST_PAGE, timeout=10)


def test_html_error_page_with_status_200(upstream: str) -> None:
    with fault_proxy(upstream, faults={1: Fault.html_page()}) as proxy:
        response = requests.get(proxy.url, params=FIRST_PAGE, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")
    assert "Wartungsarbeiten" in response.text


def test_repeated_resumption_token_makes_a_loop(upstream: str) -> None:
    with fault_proxy(upstream, faults={2: Fault.repeat_token()}) as proxy:
        first = parse_xml(requests.get(proxy.url, params=FIRST_PAGE, timeout=10).content)
        token = _token(first)
        params = {"verb": "ListRecords", "resumptionToken": token}
        second = parse_xml(requests.get(proxy.url, params=params, timeout=10).content)
        third = parse_xml(requests.get(proxy.url, params=params, timeout=10).content)
    assert token
    assert _token(second) == token  # the loop: the page sends back the token it was asked with
    assert _identifiers(second) == _identifiers(third) != _identifiers(first)
    assert _token(third) not in ("", token)  # unscripted requests are served normally


def test_repeat_token_without_a_token_is_reported_as_a_script_error(upstream: str) -> None:
    with fault_proxy(upstream, faults={1: Fault.repeat_token()}) as proxy:
        response = requests.get(proxy.url, params=FIRST_PAGE, timeout=10)
    assert response.status_code == 500
    assert b"repeat_token needs a token" in response.content


def test_empty_pages_with_fresh_tokens_forever(upstream: str) -> None:
    def plan(number: int) -> Fault | None:
        return Fault.empty_page() if number >= 2 else None

    with fault_proxy(upstream, faults=plan) as proxy:
        page = parse_xml(requests.get(proxy.url, params=FIRST_PAGE, timeout=10).content)
        tokens = []
        for _ in range(4):
            params = {"verb": "ListRecords", "resumptionToken": _token(page)}
            page = parse_xml(requests.get(proxy.url, params=params, timeout=10).content)
            assert _identifiers(page) == []
            tokens.append(_token(page))
    assert len(set(tokens)) == 4 and all(tokens)
    assert [r.fault for r in proxy.requests] == [None] + [FaultKind.EMPTY_PAGE] * 4


def test_bad_resumption_token_for_a_resumption_request(upstream: str) -> None:
    with fault_proxy(upstream, faults={2: Fault.bad_resumption_token()}) as proxy:
        first = parse_xml(requests.get(proxy.url, params=FIRST_PAGE, timeout=10).content)
        params = {"verb": "ListRecords", "resumptionToken": _token(first)}
        expired = requests.get(proxy.url, params=params, timeout=10)
    assert expired.status_code == 200
    error = parse_xml(expired.content).find("oai:error", NS)
    assert error is not None and error.get("code") == "badResumptionToken"
    assert proxy.requests[1].params["resumptionToken"] == _token(first)


def test_connection_reset(upstream: str) -> None:
    with fault_proxy(upstream, faults={1: Fault.reset()}) as proxy:
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(proxy.url, params=FIRST_PAGE, timeout=10)
        assert requests.get(proxy.url, params=FIRST_PAGE, timeout=10).status_code == 200


def test_500_with_empty_body(upstream: str) -> None:
    with fault_proxy(upstream, faults={1: Fault.http_error()}) as proxy:
        response = requests.get(proxy.url, params=FIRST_PAGE, timeout=10)
    assert (response.status_code, response.content) == (500, b"")


def test_post_is_forwarded(upstream: str) -> None:
    with fault_proxy(upstream) as proxy:
        response = requests.post(proxy.url, data={"verb": "Identify"}, timeout=10)
    assert parse_xml(response.content).find("oai:Identify", NS) is not None
    assert (proxy.requests[0].method, proxy.requests[0].params) == ("POST", {"verb": "Identify"})
