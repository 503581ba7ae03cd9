"""What the command line does with an error: a user's mistake or a failing server is one line
naming what went wrong; a bug in ernte keeps its traceback, so it never looks like bad input."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from harvester.errors import ErnteError
from harvester.oai.client import (
    OAI_ERROR_TYPES,
    BadResumptionToken,
    NoRecordsMatch,
    OAIError,
    OAIProtocolError,
    RepeatedResumptionToken,
    TooManyEmptyPages,
    TooManyPages,
)
from harvester.oai.datestamps import coerce_to_granularity
from harvester.run import services
from harvester.run.user_errors import is_user_error
from tests.conftest import PROJECT_ROOT, CLIResult, taken_port

Ernte = Callable[..., CLIResult]

BUG_IN_SERVICES = textwrap.dedent(
    """
    import sys
    from harvester.run import services

    def broken(*args, **kwargs):
        raise ValueError("internal bug: a value no user gave")

    services.oai_client = broken
    from harvester.cli.main import main
    sys.argv = ["ernte", *sys.argv[1:]]
    main()
    """
)


@pytest.mark.slow
def test_a_bug_in_a_real_process_prints_its_traceback(data_dir: Path) -> None:
    """A ValueError from inside ernte is a bug: the process shows where it came from instead of
    one `error:` line that would read like bad input."""
    result = subprocess.run(
        [sys.executable, "-c", BUG_IN_SERVICES, "identify", "http://127.0.0.1:9/oai"],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ValueError: internal bug: a value no user gave" in result.stderr
    assert "error: internal bug" not in result.stderr


def test_a_bug_is_not_turned_into_a_one_line_error(
    ernte: Ernte, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("internal bug")

    monkeypatch.setattr(services, "oai_client", broken)
    with pytest.raises(ValueError, match="internal bug"):
        ernte("identify", "http://127.0.0.1:9/oai")


def test_a_user_error_is_one_line_without_traceback(ernte: Ernte) -> None:
    result = ernte("identify", "no-such-source")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: unknown source 'no-such-source' (configured: ")


@pytest.mark.parametrize(
    "url",
    [
        "http://",
        "https:///oai",
        "http://exa mple.org/oai",
        "http://[::1",  # an unclosed IPv6 bracket was a ValueError traceback
        "http://127.0.0.1:99999/oai",  # an InvalidURL traceback, with any password in clear
        "http://harvester:s3cret@127.0.0.1:abc/oai",
        "http://127.0.0.1:0/oai",  # silently went to port 80
    ],
)
def test_a_malformed_base_url_is_a_user_error(ernte: Ernte, url: str) -> None:
    for command in (("identify", url), ("harvest", url)):
        result = ernte(*command)
        assert result.exit_code == 1
        [line] = result.stderr.splitlines()
        assert line.startswith("error: ") and "is not an OAI-PMH base URL" in line, line
        assert "s3cret" not in line


@pytest.mark.parametrize("prefix", ["../../escaped", "/tmp/absolute", "a/b", ".."])
def test_a_prefix_that_is_no_metadata_prefix_is_refused_before_anything_is_written(
    ernte: Ernte, data_dir: Path, prefix: str
) -> None:
    """`--prefix ../../escaped` created an archive file outside the data directory."""
    result = ernte("harvest", "http://127.0.0.1:9/oai", "--prefix", prefix)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert f"metadata prefix {prefix!r} is not an OAI-PMH metadataPrefix" in line
    assert not list(data_dir.parent.rglob("*.sqlite")) or all(
        data_dir in p.parents for p in data_dir.parent.rglob("*.sqlite")
    )
    assert not Path("/tmp/absolute.sqlite").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must be a mapping with a 'sources' entry"),
        ("sources:\n  my src:\n    base_url: http://h/oai\n", "source name 'my src'"),
        ("sources:\n  123:\n    base_url: http://h/oai\n", "source name 123"),
        ("sources:\n  t:\n    base_url: http://h:99999/oai\n", "is not an OAI-PMH base URL"),
        ("sources:\n  t:\n    base_url: http://h/oai\n    metadata_prefix: ../x\n", "'../x'"),
        ("sources:\n  t:\n    base_url: http://h/oai\n    sets: abc\n", "sets must be a list"),
        ("sources:\n  t:\n    base_url: http://h/oai\n    page_delay: fast\n", "page_delay"),
        ("sources:\n  t:\n    base_url: http://h/oai\n    page_delay: -5\n", "page_delay"),
        (  # PyYAML keeps the last of two: the first entry vanished without a word
            "sources:\n  t:\n    base_url: http://h/oai\n  t:\n    base_url: http://g/oai\n",
            "line 4, column 3: duplicate key 't' (first given on line 2)",
        ),
        (
            "sources:\n  t:\n    base_url: http://h/oai\n    base_url: http://g/oai\n",
            "line 4, column 5: duplicate key 'base_url' (first given on line 3)",
        ),
        # `..` put its archive beside the archive directory, outside it.
        ('sources:\n  "..":\n    base_url: http://h/oai\n', "source name '..'"),
        ("sources:\n  t:\n    base_url: http://h/oai\n    sets: [1, '1']\n", "set spec twice"),
        ("sources:\n  t:\n    base_url: http://h/oai\n    page_delay: .nan\n", "page_delay"),
        ("sources:\n  t:\n    base_url: http://h/oai\n    crosswalk: [dim]\n", "crosswalk"),
    ],
)
def test_a_malformed_sources_file_is_one_line(
    ernte: Ernte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text(text, encoding="utf-8")
    monkeypatch.setenv("ERNTE_SOURCES_FILE", str(sources))
    result = ernte("identify", "t")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line, line


def test_an_unknown_crosswalk_stops_the_harvest_before_it_quarantines_every_record(
    ernte: Ernte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n  t:\n    base_url: http://127.0.0.1:9/oai\n    crosswalk: DIM\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ERNTE_SOURCES_FILE", str(sources))
    result = ernte("harvest", "t")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: source 't': crosswalk 'DIM' is not one of ") and "dim" in line
    checked = ernte("check")
    assert f"problem: {sources}: source 't': crosswalk 'DIM'" in checked.output


def test_a_sources_file_that_is_a_directory_is_not_replaced_by_the_packaged_one(
    ernte: Ernte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a bind mount makes of a host file that is missing: the packaged sources (ORLIS)
    silently took its place, and beat would have scheduled them."""
    config = tmp_path / "config"
    (config / "sources.yaml").mkdir(parents=True)
    monkeypatch.setenv("ERNTE_CONFIG_DIR", str(config))
    monkeypatch.delenv("ERNTE_SOURCES_FILE", raising=False)
    result = ernte("harvest", "orlis")
    assert result.exit_code == 1
    assert f"cannot read sources file {config / 'sources.yaml'}" in result.stderr


def test_keys_merged_in_may_still_be_overridden(tmp_path: Path) -> None:
    """YAML's `<<` merge is how operators share settings between sources; overriding a
    merged key is no duplicate."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "common: &common\n  base_url: http://127.0.0.1:9/oai\n  metadata_prefix: dim\n"
        "sources:\n  t:\n    <<: *common\n    metadata_prefix: oai_dc\n",
        encoding="utf-8",
    )
    from harvester.sources import load_sources

    assert load_sources(sources)["t"].metadata_prefix == "oai_dc"


def test_a_configured_name_comes_before_the_key_of_an_earlier_bare_url(tmp_path: Path) -> None:
    from harvester.sources import SourceError, harvest_command, resolve_source

    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  t:\n    base_url: http://127.0.0.1:9/oai\n", encoding="utf-8")
    earlier = {"t": "http://elsewhere.example/oai", "h_oai": "http://h/oai"}
    assert resolve_source("t", sources, None, lambda: earlier).base_url == "http://127.0.0.1:9/oai"
    found = resolve_source("h_oai", sources, "dim", lambda: earlier)
    assert (found.key, found.base_url, found.metadata_prefix) == ("h_oai", "http://h/oai", "dim")
    with pytest.raises(SourceError, match="unknown source 'nowhere'"):
        resolve_source("nowhere", sources, None, lambda: earlier)
    # The state keeps a base URL with its password masked: named by its key, it is refused.
    with pytest.raises(SourceError, match=r"with a password, which ernte does not keep"):
        resolve_source("h_oai", sources, None, lambda: {"h_oai": "https://u:***@h/oai"})
    assert harvest_command("t", "ddc:710", "dim", "--full") == (
        "ernte harvest t --set ddc:710 --prefix dim --full"
    )
    assert harvest_command("t", "a b") == "ernte harvest t --set 'a b'"


def test_a_sources_file_that_is_no_utf8_is_one_line(
    ernte: Ernte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_bytes(b"sources:\n  t:\n    name: \xff\xfe\n")
    monkeypatch.setenv("ERNTE_SOURCES_FILE", str(sources))
    result = ernte("identify", "t")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot read sources file {sources}")


def test_debug_shows_the_traceback_of_a_user_error_too(ernte: Ernte) -> None:
    result = ernte("--debug", "identify", "no-such-source")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "SourceError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: unknown source 'no-such-source'")


def test_a_bad_setting_names_the_variable(ernte: Ernte, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERNTE_PAGE_DELAY", "soon")
    result = ernte("status")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: invalid setting: ERNTE_PAGE_DELAY='soon'")


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("ERNTE_READ_TIMEOUT", "inf", "finite number"),  # overflowed the task time limits
        ("ERNTE_PAGE_DELAY", "nan", "finite number"),
        ("ERNTE_SWEEP_INTERVAL", "0", "greater than or equal to 1"),  # a busy loop
        ("ERNTE_LEASE_SECONDS", "-10", "greater than or equal to 1"),  # no mutual exclusion
        ("ERNTE_INDEX_BACKLOG", "-1", "greater than or equal to 1"),  # a harvest that hung
        ("ERNTE_METRICS_PORT", "70000", "less than or equal to 65535"),
        ("ERNTE_OVERLAP_SECONDS", "99999999999", "less than or equal to"),  # date overflow
        # Each was a traceback from deep inside the Redis or Elasticsearch client.
        ("REDIS_URL", "localhost:6379", "expected redis://HOST:PORT/DB"),
        ("REDIS_URL", "sentinel://127.0.0.1:26379", "redis:// or rediss:// only"),
        ("REDIS_URL", "redis://127.0.0.1:99999/0", "expected redis://HOST:PORT/DB"),
        ("ES_URL", "localhost:9200", "expected https://HOST:PORT"),
    ],
)
def test_settings_out_of_range_are_refused_at_start(
    ernte: Ernte, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = ernte("status")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: invalid setting: {variable}={value!r}") and reason in line


def test_a_bad_date_is_a_user_error() -> None:
    with pytest.raises(ErnteError, match="not a date: 'yesterday'"):
        coerce_to_granularity("yesterday", "YYYY-MM-DD")
    # An offset that leaves the calendar was an OverflowError traceback.
    for edge in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"):
        with pytest.raises(ErnteError, match="not a date"):
            coerce_to_granularity(edge, "YYYY-MM-DDThh:mm:ssZ")
    # Year 1 was sent as `1-01-01T00:00:00Z`, which no repository reads.
    assert coerce_to_granularity("0001-01-01", "YYYY-MM-DDThh:mm:ssZ") == "0001-01-01T00:00:00Z"
    last = coerce_to_granularity("9999-12-31", "YYYY-MM-DDThh:mm:ssZ", end_of_day=True)
    assert last == "9999-12-31T23:59:59Z"


def test_environment_and_index_troubles_are_one_line(
    ernte: Ernte, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each was a traceback (audit of 2026-12-03)."""
    from indexer.embedded.backend import EmbeddedBackend

    unknown = ernte("show", "oai:x:\udcff")  # bytes that are no UTF-8 on the command line
    assert unknown.exit_code == 1 and "is not in the archive" in unknown.stderr

    index = data_dir / "index"
    EmbeddedBackend(index).create()
    (index / "ernte-schema-version").write_text("999")  # written by another ernte
    other = ernte("search", "Stadt")
    assert other.exit_code == 1
    [line] = other.stderr.splitlines()
    assert "has schema version 999" in line and "run `ernte index rebuild`" in line

    monkeypatch.setenv("ERNTE_SOURCES_FILE", str(data_dir / "missing.yaml"))
    shown = ernte("config", "show", "sources.yaml")
    assert shown.exit_code == 1
    assert shown.stderr.splitlines() == [
        f"error: cannot read sources.yaml at {data_dir / 'missing.yaml'}: "
        f"[Errno 2] No such file or directory: '{data_dir / 'missing.yaml'}'"
    ]


def test_a_file_where_the_data_directory_should_be_is_one_line(
    ernte: Ernte, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    occupied = tmp_path / "data"
    occupied.write_text("not a directory")
    monkeypatch.setenv("ERNTE_DATA_DIR", str(occupied))
    result = ernte("index", "rebuild")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and str(occupied) in line


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/archive"), True),
        (OSError(errno.EROFS, "Read-only file system", "/data"), True),
        (PermissionError(errno.EACCES, "Permission denied", "/data"), True),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/x"), False),
        (ValueError("a bug"), False),
        (KeyError("a bug"), False),
        (BadResumptionToken("badResumptionToken", "expired", "http://x", 200), True),
        (TooManyEmptyPages("t: 5 empty pages in a row"), True),
    ],
)
def test_which_errors_are_a_users(error: BaseException, expected: bool) -> None:
    assert is_user_error(error) is expected


def test_every_oai_error_code_has_its_own_type() -> None:
    codes = {
        "badArgument",
        "badResumptionToken",
        "badVerb",
        "cannotDisseminateFormat",
        "idDoesNotExist",
        "noRecordsMatch",
        "noMetadataFormats",
        "noSetHierarchy",
    }
    assert set(OAI_ERROR_TYPES) == codes
    assert len(set(OAI_ERROR_TYPES.values())) == len(codes)
    for code, kind in OAI_ERROR_TYPES.items():
        error = OAIError.from_body(code, "message", "http://x/oai", 200)
        assert type(error) is kind and error.code == code
        assert str(error) == f"OAI error {code}: message [HTTP 200, http://x/oai]"
    unknown = OAIError.from_body("serverOnFire", "", "http://x/oai", 500)
    assert type(unknown) is OAIError and unknown.code == "serverOnFire"
    assert not isinstance(NoRecordsMatch("noRecordsMatch", "", "u", 200), BadResumptionToken)


def test_protocol_checks_are_not_server_errors() -> None:
    """The client's own checks have their own types, apart from the codes a server sends."""
    for kind in (RepeatedResumptionToken, TooManyPages, TooManyEmptyPages):
        assert issubclass(kind, OAIProtocolError)
        assert not issubclass(kind, OAIError)


def test_an_empty_or_damaged_state_file_is_no_traceback(ernte: Ernte, data_dir: Path) -> None:
    """A zero-byte state.sqlite ('no such table') and a row that is no state were tracebacks
    in `ernte status` and `ernte check` (audit of 2026-12-03)."""
    import sqlite3

    from harvester.settings import get_settings

    state_file = get_settings().state_file
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_bytes(b"")
    status = ernte("status", "--json")
    assert status.exit_code == 0 and json.loads(status.output)["harvests"] == []

    with sqlite3.connect(state_file) as db:
        db.execute("CREATE TABLE harvests (key TEXT PRIMARY KEY, state TEXT NOT NULL)")
        db.execute("INSERT INTO harvests VALUES ('t|*|dim', '{not json')")
    damaged = ernte("status")
    assert damaged.exit_code == 1
    [line] = damaged.stderr.splitlines()
    assert f"harvest state {state_file}: the state of t|*|dim is damaged" in line
    assert "move it aside" in line


def test_serve_on_an_address_it_cannot_listen_on_is_one_line(ernte: Ernte) -> None:
    """uvicorn reported a taken port or an unknown host only after "Application startup
    complete" and several log lines, then exited 3."""
    with taken_port() as port:
        taken = ernte("serve", "--port", str(port))
    assert taken.exit_code == 1
    assert taken.stderr.splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    unknown = ernte("serve", "--host", "not a host!", "--port", "8080")
    assert unknown.exit_code == 1
    assert unknown.stderr.splitlines()[-1].startswith("error: cannot listen on not a host!:8080")


def test_a_bug_during_a_harvest_keeps_its_traceback(
    ernte: Ernte, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harvest turned every exception into a one-line HarvestError, so a bug in ernte
    (a TypeError) looked like a problem of the user's; the state still records the failure."""
    from harvester.demo.generate import generate_records
    from harvester.demo.provider import serve
    from harvester.run.harvest import Harvester

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("internal bug: a value no user gave")

    monkeypatch.setattr(Harvester, "_store_page", broken)
    records = list(generate_records(30, seed=3))
    with serve(records, batch_size=10) as url, pytest.raises(TypeError, match="internal bug"):
        ernte("harvest", url, "--prefix", "dim")
    status = json.loads(ernte("status", "--json").output)["harvests"]
    assert status[0]["state"] == "failed" and "internal bug" in status[0]["last_error"]


def test_serve_refuses_port_zero_instead_of_announcing_an_address_it_never_listens_on(
    ernte: Ernte,
) -> None:
    """`--port 0` printed `http://127.0.0.1:0/` while uvicorn listened on a port of its
    choosing."""
    result = ernte("serve", "--port", "0")
    assert result.exit_code == 2
    assert "0 is not in the range 1<=x<=65535" in result.stderr


@pytest.mark.parametrize(
    ("args", "target", "named"),
    [
        (
            ["compounds", "build", "t"],
            "harvester.run.vocabulary.build_parts_from_archive",
            "ernte compounds build",
        ),
        (["status"], "harvester.run.services.status_report", "ernte status"),
    ],
)
def test_ctrl_c_names_the_command_in_full(
    ernte: Ernte, monkeypatch: pytest.MonkeyPatch, args: list[str], target: str, named: str
) -> None:
    """A Ctrl-C in `ernte compounds build` said "`ernte compounds` interrupted" (found in
    review): a subcommand of a group is named with its group."""

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupted)
    result = ernte(*args)
    assert result.exit_code == 130
    assert result.stderr.strip() == f"`{named}` interrupted (Ctrl-C)"


def test_ctrl_c_while_queueing_says_how_to_queue_the_rest(
    ernte: Ernte, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during `ernte harvest SOURCE --queue` advised `ernte harvest SOURCE`, which
    harvests in-process instead of queueing (found in a cluster audit)."""
    import signal

    from harvester.run import interrupt

    def stopped(*_args: object, **_kwargs: object) -> None:
        raise interrupt.Interrupted(signal.SIGINT)

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")  # never reached
    monkeypatch.setattr("harvester.cluster.runs.request_harvest_outcome", stopped)
    result = ernte("harvest", "http://127.0.0.1:9/oai", "--queue")
    assert result.exit_code == 130
    assert result.stderr.strip() == (
        "interrupted: nothing more was queued; run `ernte harvest http://127.0.0.1:9/oai --queue` to "
        "queue the rest (a harvest already queued is refused, not queued twice)"
    )
