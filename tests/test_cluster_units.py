"""Unit tests of cluster-mode pieces that need no server: node names, payloads, redaction."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from celery.utils.nodenames import host_format

from harvester.cluster.payloads import IndexBatch, PageFetch, RunStep, payload_of
from harvester.redact import RedactingFilter, redact, redact_data, redact_url
from harvester.settings import get_settings
from harvester.sources import adhoc_key


def test_worker_node_name_is_one_celery_can_expand() -> None:
    from harvester.cluster.worker import worker_hostname

    with pytest.raises(ValueError, match="%p"):
        host_format("ernte-%p@%h")  # what `ernte worker` used to pass: Celery refuses it
    name = host_format(worker_hostname())
    assert name.startswith("ernte-") and "@" in name and "%" not in name
    assert host_format(worker_hostname("indexer")).startswith("indexer@")


def test_payloads_are_read_by_name() -> None:
    batch = IndexBatch("r|*|dim", "https://x.example/oai", "dim", 3, ["oai:x:1"], "i1")
    data = batch.to_json()
    assert data["page_no"] == 3 and data["identifiers"] == ["oai:x:1"]
    assert IndexBatch.from_json({**data, "unknown": 1}) == batch
    assert PageFetch.from_json({"fence": 2, "page_no": 5, "run_id": "r"}) == PageFetch("r", 5, 2)
    assert RunStep.from_json(RunStep("r", 1).to_json()) == RunStep("r", 1)
    assert payload_of({"payload": data}) == data and payload_of(None) == {}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        (
            "GET https://user:pa55@host/oai?verb=Identify",
            "GET https://user:***@host/oai?verb=Identify",
        ),
        ("HTTP 500 from http://h:1/oai", "HTTP 500 from http://h:1/oai"),
        ("no url here", "no url here"),
    ],
)
def test_redact_masks_passwords_in_urls(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_redact_url_and_data() -> None:
    assert redact_url("https://u:p@h:8080/oai") == "https://u:***@h:8080/oai"
    assert redact_url("https://h/oai") == "https://h/oai"
    # redis-py also takes the password as a parameter
    assert (
        redact_url("redis://h:6379/0?password=s3cret&db=1") == "redis://h:6379/0?password=***&db=1"
    )
    assert (
        redact("at rediss://h:6380/0?Password=s3cret now")
        == "at rediss://h:6380/0?Password=*** now"
    )
    assert redact("…&resumptionToken=abc&password=x") == "…&resumptionToken=abc&password=***"
    data = {"a": ["redis://:x@r/0", 1], "b": {"c": "http://u:y@h/"}}
    assert redact_data(data) == {"a": ["redis://:***@r/0", 1], "b": {"c": "http://u:***@h/"}}


def test_adhoc_source_key_leaves_credentials_out() -> None:
    assert adhoc_key("https://u:secret@example.org/oai") == adhoc_key("https://example.org/oai")
    assert "secret" not in adhoc_key("https://u:secret@example.org:8443/oai")


def test_log_filter_redacts_message_fields_and_traceback() -> None:
    try:
        raise RuntimeError("failed: http://u:tb-secret@h/oai")
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "t", logging.ERROR, __file__, 1, "GET %s", ("http://u:msg-secret@h/",), exc_info
    )
    record.url = "http://u:extra-secret@h/oai"
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter("%(message)s %(url)s").format(record)
    assert "secret" not in formatted
    assert "u:***@h" in formatted and "RuntimeError" in formatted


@pytest.mark.parametrize("command", [["worker"], ["beat"], ["metrics", "--port", "9"]])
def test_cluster_commands_without_redis_say_so_in_one_line(
    command: list[str], data_dir: object
) -> None:
    from click.testing import CliRunner

    from harvester.cli.main import main

    result = CliRunner().invoke(main, command)
    assert result.exit_code != 0
    assert "REDIS_URL is not set" in str(result.exception) + result.output


def test_redis_problems_are_worded_by_what_happened() -> None:
    """Unreachable, a refused password (in the URL's user part or as ?password=), and none
    given, each in its own words, never showing the password."""
    import redis

    from harvester.run.user_errors import redis_problem

    refused = redis.AuthenticationError("invalid username-password pair")
    down = redis.ConnectionError("Connection refused")
    assert redis_problem("redis://:s3cret@h:6379/0", down) == (
        "Redis at redis://:***@h:6379/0 is unreachable: Connection refused"
    )
    for url in ("redis://:s3cret@h:6379/0", "redis://h:6379/0?password=s3cret"):
        line = redis_problem(url, refused)
        assert "refused the password in REDIS_URL" in line and "s3cret" not in line
    line = redis_problem("rediss://h:6380/0", redis.AuthenticationError("Authentication required."))
    assert "needs a password: put it in REDIS_URL (rediss://:PASSWORD@HOST:PORT/0)" in line


def test_the_sweeper_says_once_that_redis_is_down_and_once_that_it_is_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """While Redis was down the sweeper logged a full traceback every interval (411 in 3.5
    minutes of a Redis restart), none naming Redis (found in a cluster audit)."""
    import threading

    import redis

    from harvester.cluster import worker

    outcomes: list[object] = [redis.ConnectionError("refused")] * 5 + [[], []]
    stop = threading.Event()

    def sweep() -> list[str]:
        outcome = outcomes.pop(0)
        if not outcomes:
            stop.set()
        if isinstance(outcome, BaseException):
            raise outcome
        return []

    monkeypatch.setenv("REDIS_URL", "redis://:secret@127.0.0.1:9/0")
    monkeypatch.setattr(worker, "sweep_stale_runs", sweep)
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="harvester.cluster.worker"):
            worker._sweep_forever(0.0, stop)
    finally:
        get_settings.cache_clear()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "Redis at redis://:***@127.0.0.1:9/0 is unreachable: refused" in lines[0]
    assert "Redis answers again" in lines[1]
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in caplog.records)


def test_a_full_disk_dead_letter_names_the_replay_as_the_way_out(tmp_path: Path) -> None:
    """In cluster mode a task that met a full disk ends in the dead letters; once space is
    freed, `ernte dlq replay` finishes its run. "Run the command again" (what the command line
    says) would start another harvest beside the dead-lettered one."""
    from harvester.cluster.task_base import RedactedError, dead_letter_reason
    from harvester.store.files import StorageFull, full_message

    reason = dead_letter_reason(StorageFull(full_message(tmp_path / "index"), tmp_path / "index"))
    assert reason.startswith(f"StorageFull: no space left on the device for {tmp_path / 'index'}")
    assert "then replay it with `ernte dlq replay`; nothing stored is lost" in reason
    assert "run the command again" not in reason
    assert dead_letter_reason(ValueError("bad page")) == "ValueError: bad page"
    assert dead_letter_reason(RedactedError("HTTPFailure: https://***@x")) == (
        "HTTPFailure: https://***@x"
    )
