"""The cluster exactly as it ships: docker-compose.yml's `worker`, `beat` and `metrics` commands
and the Dockerfile's CMD, run as written (tests/shipped.py) against a real, password-protected
redis-server, a real OAI-PMH provider on loopback and the embedded index (no Elasticsearch runs
here). No in-process worker, no `celery -A ...` command line of the tests' own.

- docker-compose.yml as a file: services, pinned images, loopback ports, variables, commands;
- the Dockerfile's CMD (`ernte worker`) harvests and indexes a multi-page provider;
- `ernte beat` fires the schedule of a configured source with no manual command, a second beat
  waits as standby and takes over when the first is killed;
- a full cluster run with a Redis password and credentials in the OAI base URL: a failing page
  is dead-lettered, listed and replayed with `ernte dlq`, metrics are served by a worker and by
  `ernte metrics`, and no output of the run (logs, CLI, metrics, Celery task events) holds a
  password.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from harvester.cli.main import main
from harvester.demo.generate import generate_records
from harvester.demo.provider import serve
from tests.conftest import wait_until
from tests.faults import Fault, FaultKind, fault_proxy
from tests.redis_server import free_port, redis_server
from tests.shipped import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    compose,
    compose_command,
    dockerfile_cmd,
    dockerfile_env,
    dotenv,
    env_example,
    env_file,
    executable,
    shipped_service,
    substitute,
    variables,
)

PREFIX = "dim"

# What an operator would put into .env for a small, fast cluster on one host.
FAST = {
    "ERNTE_LEASE_SECONDS": "3",
    "ERNTE_SWEEP_INTERVAL": "1",
    "ERNTE_VISIBILITY_TIMEOUT": "30",
    "ERNTE_UNACKED_RESTORE_INTERVAL": "1",
    "ERNTE_TASK_MARGIN": "3",
    "ERNTE_TASK_MAX_RETRIES": "1",
    "ERNTE_RETRY_BACKOFF_MAX": "1",
    "ERNTE_BACKPRESSURE_DELAY": "0.2",
    "ERNTE_PAGE_DELAY": "0",
    "ERNTE_MAX_RETRIES": "1",
    "ERNTE_CONNECT_TIMEOUT": "2",
    "ERNTE_READ_TIMEOUT": "5",
    "ERNTE_BACKOFF_BASE": "0.05",
    "ERNTE_BACKOFF_MAX": "0.2",
    "ERNTE_RETRY_AFTER_CAP": "1",
    "ERNTE_BEAT_LOCK_TIMEOUT": "4",
    "ERNTE_BEAT_MAX_LOOP_INTERVAL": "1",
    "WORKER_CONCURRENCY": "2",
    "ERNTE_LOG_FORMAT": "text",
}

ERNTE_SERVICES = ("worker", "beat", "metrics")


# -- docker-compose.yml as a file --------------------------------------------------------------


def _interpolation_env() -> dict[str, str]:
    """What compose interpolates from on a fresh install: `.env.example` with its passwords set."""
    return dotenv()


def test_compose_has_every_service_ernte_needs() -> None:
    services = compose()["services"]
    for name in ("redis", "es-setup", "elasticsearch", "kibana", *ERNTE_SERVICES, "flower"):
        assert name in services, f"docker-compose.yml lacks the {name} service"
    for name in ERNTE_SERVICES:
        assert services[name].get("build") == ".", f"{name} runs the image of this project"
    # ernte reaches Elasticsearch as its own user over TLS, never as `elastic`
    env = services["worker"]["environment"]
    assert env["ES_URL"].startswith("https://") and env["ES_USERNAME"] == "ernte"
    assert env["ES_CA_CERTS"]
    assert "${REDIS_PASSWORD" in env["REDIS_URL"], "ernte uses the Redis password"
    assert services["elasticsearch"]["environment"]["xpack.security.enabled"] == "true"
    assert services["elasticsearch"]["environment"]["xpack.security.http.ssl.enabled"] == "true"
    assert services["kibana"]["environment"]["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert "--requirepass" in services["redis"]["command"]
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]
    assert services["worker"]["depends_on"]["es-setup"] == {
        "condition": "service_completed_successfully"
    }


def test_compose_images_are_pinned() -> None:
    env = _interpolation_env()
    for name, spec in compose()["services"].items():
        image = substitute(str(spec.get("image", "")), env)
        if spec.get("build"):
            continue  # built from this repository's Dockerfile
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert tag[0].isdigit(), f"{name}: image {image!r} should name a version"


def test_compose_ports_bind_to_loopback() -> None:
    env = _interpolation_env()
    published = []
    for name, spec in compose()["services"].items():
        for port in spec.get("ports") or []:
            mapping = substitute(str(port), env)
            assert mapping.startswith("127.0.0.1:"), f"{name}: port {mapping} is not on loopback"
            published.append(name)
    assert {"elasticsearch", "kibana", "flower", "metrics"} <= set(published)


def test_every_compose_variable_has_a_default_or_a_line_in_env_example() -> None:
    documented = env_example()
    found = variables(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert found, "the compose file uses variables"
    missing = sorted({name for name, default in found if default is None} - set(documented))
    assert not missing, f"no default and no line in .env.example: {missing}"
    # the secrets have no default: compose refuses to start until .env sets them
    for secret in ("REDIS_PASSWORD", "ELASTIC_PASSWORD", "KIBANA_PASSWORD", "ERNTE_ES_PASSWORD"):
        assert secret in documented and documented[secret] == "", secret
        with pytest.raises(KeyError, match=secret):
            substitute(f"${{{secret}:?set {secret} in .env}}", {})


def _accepted_by_the_cli(args: list[str]) -> None:
    """Parse `ernte ARGS` with the real command line (types, options), without running it."""
    context = main.make_context("ernte", list(args))
    name, command, rest = main.resolve_command(context, [*context._protected_args, *context.args])
    assert command is not None, f"ernte has no command {name}"
    command.make_context(str(name), rest, parent=context)


@pytest.mark.parametrize("name", ERNTE_SERVICES)
def test_compose_commands_are_ones_the_cli_accepts(name: str) -> None:
    command = compose_command(name, _interpolation_env())
    assert command[0] == "ernte"
    _accepted_by_the_cli(command[1:])


def test_dockerfile_cmd_is_one_the_cli_accepts() -> None:
    command = dockerfile_cmd()
    assert command == ["ernte", "worker"]
    _accepted_by_the_cli(command[1:])


def test_the_cli_refuses_what_it_does_not_know() -> None:
    """The check above can fail: an unknown option or a bad number is refused."""
    import click

    with pytest.raises(click.UsageError):
        _accepted_by_the_cli(["worker", "--no-such-option"])
    with pytest.raises(click.BadParameter):
        _accepted_by_the_cli(["worker", "-c", "four"])


def test_env_example_password_line_fills_every_password(tmp_path: Path) -> None:
    """The set-up line of .env.example (and README) gives each password its own value."""
    line = next(
        line.lstrip("#").strip()
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "openssl rand" in line
    )
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())
    subprocess.run(["bash", "-c", line], cwd=tmp_path, check=True)
    values = {k: v for k, v in env_file(tmp_path / ".env").items() if k.endswith("_PASSWORD")}
    assert len(values) >= 5 and all(len(v) == 32 for v in values.values()), values
    assert len(set(values.values())) == len(values), "each password has its own value"


# -- running the shipped commands -------------------------------------------------------------


@pytest.fixture
def redis_password() -> str:
    return f"pw-{uuid.uuid4().hex}"


@pytest.fixture
def redis_url(redis_password: str) -> Iterator[str]:
    with redis_server(password=redis_password) as url:
        yield url


class Processes:
    """The processes a test started (killed at the end, only these) and their logs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, label: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log_file = self.directory / f"{label}.log"
        self.logs.append(log_file)
        with log_file.open("ab") as log:
            process = subprocess.Popen(command, cwd=self.directory, env=env, stdout=log, stderr=log)
        self.started.append(process)
        return process

    def output(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')}" for p in self.logs if p.exists()
        )

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    except BaseException:
        raise
    finally:
        started.stop_all()


def ernte_cli(env: dict[str, str], *args: str, check: bool = True) -> str:
    """`ernte ARGS` as a user runs it next to the cluster (stdout + stderr)."""
    done = subprocess.run(
        executable(["ernte", *args]),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(env["ERNTE_DATA_DIR"]).parent,
    )
    if check:
        assert done.returncode == 0, f"ernte {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def harvests(env: dict[str, str]) -> list[dict[str, Any]]:
    return list(json.loads(ernte_cli(env, "status", "--json"))["harvests"])


def run_finished(env: dict[str, str], client: redis.Redis) -> bool:
    found = harvests(env)
    return bool(found) and not client.keys("ernte:run:*") and found[0]["state"] == "idle"


def indexed_ids(env: dict[str, str]) -> set[str]:
    output = ernte_cli(env, "search", "--limit", "10000", "--json")
    return {hit["id"] for hit in json.loads(output)["hits"]}


def sources_file(path: Path, url: str, schedule: str | None = None) -> Path:
    lines = ["sources:", "  t:", f"    base_url: {url}", f"    metadata_prefix: {PREFIX}"]
    if schedule:
        lines.append(f"    schedule: '{schedule}'")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_dockerfile_cmd_harvests_and_indexes_a_multi_page_provider(
    redis_url: str, tmp_path: Path, processes: Processes
) -> None:
    """`ernte worker` with the image's environment (Dockerfile ENV), pointed at loopback."""
    data_dir = tmp_path / "data"
    records = list(generate_records(150, seed=7, deleted_share=0.1))
    image_env = dockerfile_env()
    assert image_env["ERNTE_DATA_DIR"] == "/data"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("ES_URL", "ERNTE_ES_URL")},
        **{k: v for k, v in image_env.items() if k != "PYTHONPATH"},  # /app is not here
        **FAST,
        "ERNTE_DATA_DIR": str(data_dir),  # the image's /data volume
        "REDIS_URL": redis_url,
    }
    with serve(records, batch_size=50) as base_url:
        env["ERNTE_SOURCES_FILE"] = str(sources_file(tmp_path / "sources.yaml", base_url))
        processes.start("dockerfile-cmd", executable(dockerfile_cmd()), env)
        assert "queued" in ernte_cli(env, "harvest", "t", "--queue")
        client = redis.Redis.from_url(redis_url)
        wait_until(lambda: run_finished(env, client), 90, "the harvest to finish")
    (state,) = harvests(env)
    assert (state["run"]["pages"], state["run"]["records"]) == (3, 150)
    assert indexed_ids(env) == {r.identifier for r in records if not r.deleted}


@pytest.mark.slow
def test_beat_fires_the_schedule_and_a_standby_beat_takes_over(
    redis_url: str, redis_password: str, tmp_path: Path, processes: Processes
) -> None:
    """Two `ernte beat` and one `ernte worker` from docker-compose.yml; a source scheduled every
    minute is harvested with no manual command; killing the active beat hands the schedule to
    the standby one. (Cron has minute steps, so this test takes up to about two minutes.)"""
    data_dir = tmp_path / "data"
    records = list(generate_records(60, seed=9, deleted_share=0.0))
    with serve(records, batch_size=30) as base_url:
        config = sources_file(tmp_path / "sources.yaml", base_url, schedule="* * * * *")
        extra = {**FAST, "ERNTE_SOURCES_FILE": str(config)}
        worker_cmd, env = shipped_service("worker", redis_url, data_dir, **extra)
        beat_cmd, beat_env = shipped_service("beat", redis_url, data_dir, **extra)
        assert beat_cmd[1:] == ["beat"]
        processes.start("worker", worker_cmd, env)
        first = processes.start("beat-1", beat_cmd, beat_env)
        wait_until(lambda: "Sending due task" in processes.output(), 20, "beat-1 to run")
        second = processes.start("beat-2", beat_cmd, beat_env)
        client = redis.Redis.from_url(redis_url)
        wait_until(lambda: run_finished(env, client), 100, "the scheduled harvest")
        (state,) = harvests(env)
        assert state["run"]["records"] == 60 and state["run_started"]
        log_2 = tmp_path / "beat-2.log"
        assert "harvest t *" not in log_2.read_text(), "the standby beat must not schedule"

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.time()
        wait_until(
            lambda: "Sending due task harvest t *" in log_2.read_text(),
            80,
            "the standby beat to take over and fire the schedule",
        )
        wait_until(
            lambda: (
                run_finished(env, client) and harvests(env)[0]["run_started"] > state["run_started"]
            ),
            60,
            "the second scheduled harvest",
        )
    assert second.poll() is None
    assert time.time() - killed_at < 90
    status = ernte_cli(env, "status")
    assert "t|*|dim" in status and "idle" in status
    assert indexed_ids(env) == {r.identifier for r in records}
    assert redis_password not in processes.output() + status, "beat or worker logged a password"


# -- a full cluster run: dead letters, metrics, and no password anywhere -----------------------


@contextmanager
def task_events(app_url: str) -> Iterator[list[dict[str, Any]]]:
    """Every Celery event (task-sent and task-received carry the task arguments) published
    while the block runs, as Flower would see them."""
    from celery import Celery

    app = Celery(broker=app_url)
    seen: list[dict[str, Any]] = []
    ready = threading.Event()
    receiver: Any = None

    def capture() -> None:
        nonlocal receiver
        with app.connection_for_read() as connection:
            receiver = app.events.Receiver(connection, handlers={"*": seen.append})
            ready.set()
            receiver.capture(limit=None, timeout=None, wakeup=False)

    thread = threading.Thread(target=capture, daemon=True)
    thread.start()
    ready.wait(10)
    time.sleep(0.5)
    try:
        yield seen
    finally:
        if receiver is not None:
            receiver.should_stop = True
        thread.join(timeout=5)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


@pytest.mark.slow
def test_full_cluster_run_dead_letters_metrics_and_no_secret_anywhere(
    redis_url: str, redis_password: str, tmp_path: Path, processes: Processes
) -> None:
    data_dir = tmp_path / "data"
    oai_password = f"oai-{uuid.uuid4().hex}"
    records = list(generate_records(200, seed=13, deleted_share=0.05))
    broken = threading.Event()
    broken.set()

    def page_two_fails(number: int) -> Fault | None:
        return Fault.http_error(500) if broken.is_set() and number >= 3 else None

    outputs: list[str] = []
    worker_metrics, cluster_metrics = free_port(), free_port()
    with ExitStack() as stack:
        upstream = stack.enter_context(serve(records, batch_size=50))
        proxy = stack.enter_context(fault_proxy(upstream, page_two_fails))
        split = urlsplit(proxy.url)
        secret_url = split._replace(netloc=f"harvester:{oai_password}@{split.netloc}").geturl()
        events = stack.enter_context(task_events(redis_url))
        extra = {
            **FAST,
            "ERNTE_METRICS_PORT": str(worker_metrics),
            "METRICS_PORT": str(cluster_metrics),
        }
        worker_cmd, env = shipped_service("worker", redis_url, data_dir, **extra)
        metrics_cmd, metrics_env = shipped_service("metrics", redis_url, data_dir, **extra)
        processes.start("worker", worker_cmd, env)
        processes.start("metrics", metrics_cmd, metrics_env)
        client = redis.Redis.from_url(redis_url)

        # --full: the replay below must resume this run, not start its list again
        outputs.append(
            ernte_cli(env, "harvest", secret_url, "--prefix", PREFIX, "--full", "--queue")
        )
        wait_until(lambda: client.llen("ernte:dlq") > 0, 60, "the failing page to be dead-lettered")
        wait_until(lambda: not client.keys("ernte:run:*"), 30, "the failed run to be released")
        listing = ernte_cli(env, "dlq", "list")
        outputs.append(listing)
        assert "ernte.fetch_page" in listing and "1 dead letters" in listing
        letters = json.loads(ernte_cli(env, "dlq", "list", "--json"))
        outputs.append(json.dumps(letters))
        assert letters[0]["task"] == "ernte.fetch_page" and "500" in letters[0]["error"]
        # The worker's own lines about the failing task say which run, source, set and page
        # they concern (the page counted from 1, as the harvest's lines count it).
        worker_log = (tmp_path / "worker.log").read_text(errors="replace").splitlines()
        run_id = letters[0]["kwargs"]["payload"]["run_id"]
        page = letters[0]["kwargs"]["payload"]["page_no"] + 1
        for message in ("transient error, retrying", "task dead-lettered"):
            lines = [line for line in worker_log if message in line]
            assert lines, f"no {message!r} line in the worker log"
            for line in lines:
                for field in (f"run={run_id}", "source=", "set=*", f"page={page}"):
                    assert field in line, f"{field!r} missing from {line!r}"
                assert "task=ernte.fetch_page" in line, line
        status = ernte_cli(env, "status")
        outputs.extend([status, ernte_cli(env, "status", "--json")])
        assert "failed" in status

        broken.clear()  # the repository is back
        replayed = ernte_cli(env, "dlq", "replay")
        outputs.append(replayed)
        assert "resumed" in replayed or "queued" in replayed, replayed
        wait_until(lambda: run_finished(env, client), 60, "the replayed harvest to finish")
        assert ernte_cli(env, "dlq", "list").strip().endswith("0 dead letters")
        (state,) = harvests(env)
        assert state["run"]["records"] == 200 and state["last_error"] is None
        assert indexed_ids(env) == {r.identifier for r in records if not r.deleted}
        list_starts = [
            r.number
            for r in proxy.requests
            if r.params.get("verb") == "ListRecords" and "resumptionToken" not in r.params
        ]
        assert len(list_starts) == 1, f"the list was started again: requests {list_starts}"

        for port in (worker_metrics, cluster_metrics):
            text = scrape(port)
            outputs.append(text)
            assert "ernte_records_harvested_total{" in text
            assert "ernte_records_indexed_total{" in text
            assert "ernte_dead_letters 0.0" in text
        outputs.append(ernte_cli(env, "status", "--json"))
    outputs.append(json.dumps(events, default=str))
    outputs.append(processes.output())
    assert any(
        e.get("type") == "task-received" and "payload" in e.get("kwargs", "") for e in events
    ), "the event stream shows task arguments (so the check below means something)"
    everything = "\n".join(outputs)
    assert secret_url.replace(oai_password, "***") in everything or "harvester:***@" in everything
    for secret in (redis_password, oai_password):
        at = everything.find(secret)
        assert at < 0, f"a password leaked: ...{everything[max(at - 300, 0) : at + 60]!r}"


# -- coherent time limits ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_slow_page_fits_the_derived_time_limits(
    redis_url: str, tmp_path: Path, processes: Processes
) -> None:
    """Small HTTP timeouts and retries, limits derived from them: a page that times out once
    and one answered with Retry-After are both fetched, and nothing is dead-lettered. (Before,
    the fixed soft limit sat below one read timeout plus retries, and a slow page failed.)"""
    small = {
        **FAST,
        "ERNTE_CONNECT_TIMEOUT": "1",
        "ERNTE_READ_TIMEOUT": "1",
        "ERNTE_MAX_RETRIES": "1",
        "ERNTE_RETRY_AFTER_CAP": "1",
        "ERNTE_TASK_MARGIN": "1",
    }
    from harvester.cluster.time_limits import time_limits
    from harvester.settings import Settings

    limits = time_limits(
        Settings(
            connect_timeout=1,
            read_timeout=1,
            max_retries=1,
            retry_after_cap=1,
            backoff_max=0.2,
            task_margin=1,
        )
    )
    assert (limits.page, limits.soft, limits.hard) == (5.0, 6, 7)
    data_dir = tmp_path / "data"
    records = list(generate_records(150, seed=17, deleted_share=0.0))
    faults = {3: Fault.delay(1.6), 5: Fault.retry_after(1)}
    with serve(records, batch_size=50) as upstream, fault_proxy(upstream, faults) as proxy:
        small["ERNTE_SOURCES_FILE"] = str(sources_file(tmp_path / "sources.yaml", proxy.url))
        command, env = shipped_service("worker", redis_url, data_dir, **small)
        processes.start("worker", command, env)
        ernte_cli(env, "harvest", "t", "--queue")
        client = redis.Redis.from_url(redis_url)
        wait_until(lambda: run_finished(env, client), 60, "the harvest to finish")
    seen = [request.fault for request in proxy.requests]
    assert seen[2:5] == [FaultKind.DELAY, None, FaultKind.RETRY_AFTER], seen
    assert proxy.requests[3].params == proxy.requests[2].params, "the timed-out page was retried"
    assert client.llen("ernte:dlq") == 0
    (state,) = harvests(env)
    assert state["run"]["records"] == 150 and state["last_error"] is None


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_incoherent_time_limits_are_refused_at_start(
    name: str, redis_url: str, tmp_path: Path
) -> None:
    """Yesterday's defaults (soft limit 120 s, one read timeout 120 s) no longer start."""
    command, env = shipped_service(
        name,
        redis_url,
        tmp_path / "data",
        ERNTE_TASK_SOFT_TIME_LIMIT="120",
        ERNTE_READ_TIMEOUT="120",
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ERNTE_TASK_SOFT_TIME_LIMIT=120 s is not above one page's worst case" in done.stderr
    assert "Traceback" not in done.stderr


def test_time_limits_are_derived_from_one_another() -> None:
    from harvester.cluster.time_limits import TimeLimitError, time_limits
    from harvester.settings import Settings

    defaults = time_limits(Settings())
    assert defaults.page == 6 * (10 + 120) + 5 * 300
    assert defaults.page < defaults.soft < defaults.hard < defaults.visibility
    assert not defaults.problems
    defaults.check()
    with pytest.raises(TimeLimitError, match="ERNTE_TASK_TIME_LIMIT=10 s is not above"):
        time_limits(Settings(task_soft_time_limit=2500, task_time_limit=10)).check()
    with pytest.raises(TimeLimitError, match="ERNTE_VISIBILITY_TIMEOUT=600 s"):
        time_limits(Settings(visibility_timeout=600)).check()


def test_compose_file_is_valid_for_docker_compose(tmp_path: Path) -> None:
    """`docker compose config` with a filled-in .env; no Docker engine runs on the CI machine,
    so there the test is skipped and says so."""
    import shutil

    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed here: `docker compose config` cannot run")
    plugin = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if plugin.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here: `docker compose config`")
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in dotenv().items()))
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_the_shipped_settings_pass_the_time_limit_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cp .env.example .env` gives a worker that starts: its limits fit together."""
    from harvester.cluster.time_limits import time_limits
    from harvester.settings import Settings

    for name, value in env_example().items():
        if name.startswith("ERNTE_"):
            monkeypatch.setenv(name, value)
    limits = time_limits(Settings())
    limits.check()
    assert limits.soft > limits.page


CELERY_PLAIN_LOG = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+: [A-Z]+/")


@pytest.mark.parametrize(("name", "started"), [("worker", " ready."), ("beat", "beat: Starting")])
def test_worker_and_beat_log_json_as_env_example_sets(
    name: str, started: str, redis_url: str, tmp_path: Path, processes: Processes
) -> None:
    """.env.example sets ERNTE_LOG_FORMAT=json: the worker and beat that compose starts log
    JSON lines like every ernte command. Celery used to replace ernte's handler with its own
    plain-text one, so their logs lost the format and the source/set/page fields."""
    command, env = shipped_service(name, redis_url, tmp_path / "data", **FAST)
    env["ERNTE_LOG_FORMAT"] = dotenv()["ERNTE_LOG_FORMAT"]
    assert env["ERNTE_LOG_FORMAT"] == "json"
    processes.start(name, command, env)
    log = tmp_path / f"{name}.log"
    wait_until(lambda: started in log.read_text(errors="replace"), 60, f"{name} to start")
    lines = log.read_text(errors="replace").splitlines()
    (announced,) = [line for line in lines if started in line]
    entry = json.loads(announced)
    assert entry["level"] == "info" and entry["logger"].startswith("celery")
    assert not [line for line in lines if CELERY_PLAIN_LOG.match(line)]


@pytest.mark.slow
def test_worker_and_beat_outlive_a_redis_restart_mid_harvest(
    redis_password: str, tmp_path: Path, processes: Processes
) -> None:
    """Redis restarted (stopped, down for a few seconds, started again on its port with its
    append-only file, as compose runs it) while the shipped `ernte worker` holds unacked
    messages (a page due later, a running index task) and `ernte beat` holds the lock: both keep
    running, reconnect, the harvest finishes with every record indexed and beat schedules again.
    (Celery 5.7's consumer died of this with AttributeError: 'NoneType' object has no attribute
    'hostname'; RedBeat ended beat at its first tick without Redis.)"""
    data_dir = tmp_path / "data"
    records = list(generate_records(200, seed=5, deleted_share=0.0))
    port, redis_dir = free_port(), str(tmp_path / "redis")
    os.makedirs(redis_dir)
    with serve(records, batch_size=20) as base_url:
        config = sources_file(tmp_path / "sources.yaml", base_url)
        extra = {**FAST, "ERNTE_SOURCES_FILE": str(config), "ERNTE_PAGE_DELAY": "2"}
        with redis_server(password=redis_password, port=port, persist_in=redis_dir) as url:
            worker_cmd, env = shipped_service("worker", url, data_dir, **extra)
            beat_cmd, beat_env = shipped_service("beat", url, data_dir, **extra)
            worker = processes.start("worker", worker_cmd, env)
            beat = processes.start("beat", beat_cmd, beat_env)
            wait_until(lambda: "Acquired lock" in processes.output(), 30, "beat to hold the lock")
            assert "queued" in ernte_cli(env, "harvest", "t", "--queue")
            wait_until(lambda: "page stored" in processes.output(), 60, "the first page")
        time.sleep(3)  # Redis is down; the worker holds the next page's message, unacked
        with redis_server(password=redis_password, port=port, persist_in=redis_dir) as url:
            wait_until(
                lambda: (
                    processes.output().count("Connected to redis") >= 2 or worker.poll() is not None
                ),
                60,
                "the worker to reconnect",
            )
            assert worker.poll() is None and beat.poll() is None, processes.output()[-3000:]
            client = redis.Redis.from_url(url)
            wait_until(lambda: run_finished(env, client), 120, "the harvest after the restart")
            marker = len(processes.output())
            wait_until(
                lambda: "Sending due task" in processes.output()[marker:], 30, "beat to schedule"
            )
        assert worker.poll() is None and beat.poll() is None
    assert "Unrecoverable error" not in processes.output()
    assert indexed_ids(env) == {r.identifier for r in records}
