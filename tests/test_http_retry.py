"""Retry-After, read and obeyed: both header forms of RFC 9110, the cap, and the waits ernte's HTTP
client really takes against a server on loopback (with a fake sleep, so no test waits)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from harvester.demo.generate import generate_records
from harvester.demo.provider import serve
from harvester.oai.http import HTTPClient, HTTPFailure, RetryPolicy, parse_retry_after
from tests.faults import Fault, fault_proxy

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Wed, 01 May 2024 12:01:30 GMT", 90.0),  # HTTP-date: 90 s after NOW
        ("Wednesday, 01-May-24 12:00:05 GMT", 5.0),  # the obsolete RFC 850 form
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),  # a date already past: no wait, never negative
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with serve(list(generate_records(10, seed=3)), batch_size=10) as url:
        yield url


def _client(sleeps: list[float], cap: float = 300.0, retries: int = 3) -> HTTPClient:
    return HTTPClient(
        user_agent="ernte-test",
        connect_timeout=5,
        read_timeout=5,
        policy=RetryPolicy(
            max_retries=retries, backoff_base=50.0, backoff_max=60.0, retry_after_cap=cap
        ),
        sleep=sleeps.append,
    )


IDENTIFY = {"verb": "Identify"}


def test_the_client_waits_what_retry_after_says(provider: str) -> None:
    sleeps: list[float] = []
    with fault_proxy(provider, {1: Fault.retry_after(7)}) as proxy:
        response = _client(sleeps).get(proxy.url, IDENTIFY)
    assert response.status == 200
    assert sleeps == [7.0]  # not the backoff, which would be 25 to 50 s here


def test_a_long_retry_after_is_capped(provider: str) -> None:
    sleeps: list[float] = []
    with fault_proxy(provider, {1: Fault.retry_after(86400, status=429)}) as proxy:
        response = _client(sleeps, cap=30.0).get(proxy.url, IDENTIFY)
    assert response.status == 200
    assert sleeps == [30.0]


def test_without_retry_after_the_client_backs_off_and_gives_up_naming_the_url(
    provider: str,
) -> None:
    sleeps: list[float] = []
    with (
        fault_proxy(provider, lambda n: Fault.http_error(503)) as proxy,
        pytest.raises(HTTPFailure, match=r"HTTP 503 from .*verb=Identify.*gave up after 3"),
    ):
        _client(sleeps, retries=2).get(proxy.url, IDENTIFY)
    assert len(sleeps) == 2
    # full jitter over the upper half: 25-50 s, then 30-60 s (100 s capped at backoff_max)
    assert 25.0 <= sleeps[0] <= 50.0 and 30.0 <= sleeps[1] <= 60.0
