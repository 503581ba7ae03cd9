"""Every command that README.md shows runs here, exactly as written.

The commands are read from README.md's shell code blocks (```sh, ```bash, ```shell, ```console):
comments dropped, continuation lines joined, `a ; b` split, and each optional part (`[--json]`,
`[--raw | --json]`) tried once on top of the bare command. Placeholders in capitals (`SOURCE`)
are filled in from PLACEHOLDERS.

Each command is run by bash from the project root, as a user would type it, against the demo
data: `orlis` is configured (through the config directory, `ERNTE_CONFIG_DIR`, the documented
override rule) to point at the demo's local OAI-PMH provider, and `ERNTE_DATA_DIR` is a fresh
directory harvested once up front. What each `ernte` subcommand must show is in ERNTE_CHECKS;
other commands are in the RUNNERS table. A command neither knows fails this test loudly:
a command added to the README must come with its check here. Commands that need a server this
machine cannot run (Docker, Elasticsearch, Kibana) are skipped with the reason printed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from harvester.demo.provider import serve
from harvester.demo.sample import load_sample
from tests.cli_parse import assert_cli_accepts
from tests.redis_server import redis_server
from tests.shipped import env_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
README = PROJECT_ROOT / "README.md"
SHELL_BLOCK = {"sh", "bash", "shell", "console"}
SEED_ID = "oai:orlis.difu.de:difu/167832"

PLACEHOLDERS = {"SOURCE": "orlis", "ID": SEED_ID}
"""Capitalized words of README commands and what they stand for in the demo data."""


# --- reading the README ------------------------------------------------------------------


@dataclass(frozen=True)
class ReadmeCommand:
    text: str
    line: int

    @property
    def id(self) -> str:
        return f"L{self.line}: {self.text}"[:110]


def _strip_comment(line: str) -> str:
    """The line without its shell comment (a `#` outside quotes, at the start or after a space)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _split_sequence(line: str) -> list[str]:
    """`a ; b` -> [a, b] (outside quotes). A shell compound (`for ...; do ...; done`) or a
    `set -a; ...; set +a` line is one command: its parts mean nothing alone."""
    if re.match(r"^(for|while|if) |^set -a;", line):
        return [line]
    lexer = shlex.shlex(line, posix=False, punctuation_chars=";")
    lexer.whitespace_split = True
    parts: list[list[str]] = [[]]
    for token in lexer:
        if token == ";":
            parts.append([])
        else:
            parts[-1].append(token)
    return [" ".join(p) for p in parts if p]


_OPTIONAL = re.compile(r"\s+\[([^\[\]]+)\]")


def _variants(command: str) -> list[str]:
    """The bare command, then each alternative of each optional part on its own."""
    bare = _OPTIONAL.sub("", command)
    variants = [bare]
    for match in _OPTIONAL.finditer(command):
        for alternative in match.group(1).split("|"):
            variant = command[: match.start()] + " " + alternative.strip() + command[match.end() :]
            variants.append(" ".join(_OPTIONAL.sub("", variant).split()))
    return list(dict.fromkeys(" ".join(v.split()) for v in variants))


def _fill_placeholders(command: str) -> str:
    def fill(match: re.Match[str]) -> str:
        word = match.group(0)
        if word not in PLACEHOLDERS:
            raise AssertionError(
                f"README placeholder {word!r} in {command!r}: add it to PLACEHOLDERS"
            )
        return PLACEHOLDERS[word]

    return re.sub(r"(?<![\w$=/.-])[A-Z][A-Z_]+(?![\w=])", fill, command)


def readme_commands(text: str) -> list[ReadmeCommand]:
    commands: list[ReadmeCommand] = []
    in_shell = False
    in_block = False
    pending = ""
    pending_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        fence = re.match(r"^```\s*(\w*)", raw)
        if fence:
            in_block = not in_block
            in_shell = in_block and fence.group(1) in SHELL_BLOCK
            continue
        if not in_shell:
            continue
        line = _strip_comment(raw)
        if not pending:
            pending_line = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = " ".join((pending + line).split())
        pending = ""
        for command in _split_sequence(full) if full else []:
            for variant in _variants(command):
                commands.append(ReadmeCommand(_fill_placeholders(variant), pending_line))
    return commands


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_the_readme_shows_commands_and_this_reader_finds_them() -> None:
    texts = [c.text for c in COMMANDS]
    assert "make demo" in texts and "make test" in texts
    assert any(t.startswith(".venv/bin/ernte search") for t in texts)
    assert ".venv/bin/ernte status --json" in texts  # `[--json]` expanded
    assert readme_commands("```sh\nernte a \\\n  --b  # c\nx ; y [--z | -w]\n```\n") == [
        ReadmeCommand("ernte a --b", 2),
        ReadmeCommand("x", 4),
        ReadmeCommand("y", 4),
        ReadmeCommand("y --z", 4),
        ReadmeCommand("y -w", 4),
    ]
    assert [c.text for c in readme_commands("```sh\npip install 'a.whl[demo]'\n```")] == [
        "pip install 'a.whl[demo]'"  # an extra, not an optional part
    ]


# --- the world the commands run in ---------------------------------------------------------


@dataclass
class World:
    env: dict[str, str]
    data_dir: Path
    base_url: str
    tmp: Path

    def run(self, command: str, *, cwd: Path = PROJECT_ROOT, timeout: float = 300) -> Ran:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Ran(command, done.returncode, done.stdout, done.stderr)


@dataclass
class Ran:
    command: str
    code: int
    out: str
    err: str

    def ok(self) -> Ran:
        assert self.code == 0, f"`{self.command}` exited {self.code}:\n{self.err[-3000:]}"
        assert "Traceback" not in self.err, self.err[-3000:]
        return self


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The demo provider on loopback, `orlis` pointing at it via ERNTE_CONFIG_DIR, a data
    directory with `orlis` harvested once (so each command also works on its own)."""
    if not (PROJECT_ROOT / ".venv" / "bin" / "ernte").exists():
        pytest.fail("README commands call .venv/bin/ernte: run `make test` (it creates .venv)")
    tmp = tmp_path_factory.mktemp("readme")
    with serve(load_sample(), batch_size=50) as base_url:
        config_dir = tmp / "config"
        config_dir.mkdir()
        (config_dir / "sources.yaml").write_text(
            "sources:\n  orlis:\n"
            f"    base_url: {base_url}\n    metadata_prefix: dim\n    fallback_prefix: oai_dc\n"
            "    crosswalk: dim\n    page_delay: 0\n",
            encoding="utf-8",
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ERNTE_") and k not in ("REDIS_URL", "ES_URL", "KIBANA_URL")
        }
        env.update(
            ERNTE_DATA_DIR=str(tmp / "data"),
            ERNTE_CONFIG_DIR=str(config_dir),
            ERNTE_PAGE_DELAY="0",
            ERNTE_MAX_RETRIES="1",
            ERNTE_BACKOFF_BASE="0.05",
            ERNTE_CONNECT_TIMEOUT="5",
            ERNTE_READ_TIMEOUT="10",
        )
        world = World(env, tmp / "data", base_url, tmp)
        world.run(".venv/bin/ernte harvest orlis").ok()
        yield world


# --- what each command must show -------------------------------------------------------------


def _check_identify(ran: Ran, world: World) -> None:
    assert world.base_url in ran.ok().out


def _check_formats(ran: Ran, world: World) -> None:
    assert "dim" in ran.ok().out and "oai_dc" in ran.out


def _check_sets(ran: Ran, world: World) -> None:
    assert "col_difu_zeitschriften" in ran.ok().out


def _check_harvest(ran: Ran, world: World) -> None:
    url = next((w for w in shlex.split(ran.command) if w.startswith(("http://", "https://"))), None)
    if url is not None and "example.org" in url:
        # example.org is a placeholder domain (RFC 2606): the command must end with a clear
        # error that names the URL, never a traceback or a success with nothing harvested.
        assert ran.code == 1, ran.out + ran.err
        assert url in ran.err and "Traceback" not in ran.err, ran.err[-3000:]
        return
    ran.ok()
    if "--queue" in ran.command:  # cluster mode: accepted by the broker, runs on a worker
        return
    assert '"state": "idle"' in world.run(".venv/bin/ernte status --json").ok().out


def _check_status(ran: Ran, world: World) -> None:
    assert "orlis" in ran.ok().out
    if "--json" in ran.command:
        assert '"source": "orlis"' in ran.out


def _check_show(ran: Ran, world: World) -> None:
    assert "Städte in sozialer Verantwortung" in ran.ok().out
    if "--raw" in ran.command:
        assert "<dim:dim" in ran.out or "dc.title" in ran.out or "<" in ran.out
    if "--json" in ran.command:
        assert '"identifier": "oai:orlis.difu.de:difu/167832"' in ran.out


def _check_quarantine(ran: Ran, world: World) -> None:
    ran.ok()  # the demo sample normalizes completely: the listing is empty but must not fail
    if "--json" in ran.command:
        assert ran.out.strip().startswith(("[", "{"))


def _check_normalize(ran: Ran, world: World) -> None:
    assert "232" in ran.ok().out + ran.err  # the demo's live records


def _check_index(ran: Ran, world: World) -> None:
    ran.ok()
    hits = world.run(".venv/bin/ernte search Stadtteile --json").ok().out
    assert '"total": 0' not in hits


def _check_search(ran: Ran, world: World) -> None:
    ran.ok()
    if "--json" in ran.command:
        assert '"total": 0' not in ran.out
        if "--year-histogram" in ran.command:
            assert '"year_histogram": []' not in ran.out
    else:
        assert "records match" in ran.out


def _check_compounds(ran: Ran, world: World) -> None:
    grown = world.data_dir / "german" / "compound_parts_de.txt"
    assert str(grown) in ran.ok().out and grown.is_file()


def _check_check(ran: Ran, world: World) -> None:
    # the demo harvest is whole: archive, state and index agree, nothing to repair
    assert "ok: " in ran.ok().out and "problem: " not in ran.out, ran.out


def _check_config(ran: Ran, world: World) -> None:
    assert "sources.yaml" in ran.ok().out


def _check_demo(ran: Ran, world: World) -> None:
    assert "harvested" in ran.ok().out


def _check_dlq(ran: Ran, world: World) -> None:
    ran.ok()  # against a real Redis with nothing dead-lettered: lists or replays nothing


ERNTE_CHECKS: dict[str, Callable[[Ran, World], None]] = {
    "identify": _check_identify,
    "formats": _check_formats,
    "sets": _check_sets,
    "harvest": _check_harvest,
    "status": _check_status,
    "show": _check_show,
    "quarantine": _check_quarantine,
    "normalize": _check_normalize,
    "index": _check_index,
    "search": _check_search,
    "compounds": _check_compounds,
    "check": _check_check,
    "config": _check_config,
    "demo": _check_demo,
    "dlq": _check_dlq,
}
"""`ernte <subcommand>` -> what its output must show. A README command whose subcommand is
not here fails the test: add its check (and, for a server, how to start and stop it)."""


@contextmanager
def _serving(command: str, world: World, cwd: Path = PROJECT_ROOT) -> Iterator[str]:
    """Start `command` (an `ernte serve` line) as written; yield its base URL once /healthz
    answers; stop it with Ctrl-C, as an operator would, and require a clean exit."""
    words = shlex.split(command)
    host = words[words.index("--host") + 1] if "--host" in words else "127.0.0.1"
    port = int(words[words.index("--port") + 1]) if "--port" in words else 8080
    base = f"http://{host}:{port}"
    assignments = dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=\S*", w))
    program = command.split(" ", len(assignments))[-1]  # what follows `VAR=value ...`
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            pytest.skip(f"`{command}`: port {port} is already taken on this machine")
    process = subprocess.Popen(
        ["bash", "-c", f"exec {program}"],  # exec: Ctrl-C reaches the server itself
        cwd=cwd,
        env={**world.env, **assignments},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[1][-3000:]
            try:
                if requests.get(f"{base}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"`{command}` did not answer in 60 s"
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err[-3000:]


def _run_serve(command: ReadmeCommand, world: World, cwd: Path = PROJECT_ROOT) -> None:
    with _serving(command.text, world, cwd) as base:
        found = requests.get(f"{base}/api/search", params={"q": "Stadtteile"}, timeout=30)
        assert found.status_code == 200 and found.json()["total"] > 0, found.text[:2000]


def _run_curl_api(command: ReadmeCommand, world: World) -> None:
    """The README's API example, against `ernte serve` on the demo data."""
    with _serving(".venv/bin/ernte serve", world):
        ran = world.run(command.text).ok()
    answer = json.loads(ran.out)
    assert answer["total"] > 0 and answer["hits"], ran.out[:2000]
    assert all(hit["type"] == "Zeitschriftenaufsatz" for hit in answer["hits"])


def _checkout_like(world: World) -> Path:
    """A folder laid out like the checkout the README's commands run in: `.venv/` and a
    `data/demo` that holds the demo's harvest (here: the world's data directory)."""
    folder = world.tmp / "checkout"
    if not folder.exists():
        (folder / "data").mkdir(parents=True)
        (folder / ".venv").symlink_to(PROJECT_ROOT / ".venv")
        (folder / "data" / "demo").symlink_to(world.data_dir)
    return folder


def _run_ernte_on_demo_data(command: ReadmeCommand, world: World) -> None:
    """`ERNTE_DATA_DIR=data/demo .venv/bin/ernte ...`: the commands to use after `make demo`."""
    words = shlex.split(command.text)
    assert words[0] == "ERNTE_DATA_DIR=data/demo", command.text
    cwd = _checkout_like(world)
    if words[2] == "serve":
        _run_serve(command, world, cwd)
        return
    check = ERNTE_CHECKS.get(words[2])
    if check is None:
        pytest.fail(f"README.md line {command.line}: add `ernte {words[2]}` to ERNTE_CHECKS")
    check(world.run(command.text, cwd=cwd), world)


def _run_password_setup(command: ReadmeCommand, world: World) -> None:
    """The compose set-up line gives each empty password in .env its own random value."""
    workdir = world.tmp / "passwords"
    workdir.mkdir(exist_ok=True)
    shutil.copy(PROJECT_ROOT / ".env.example", workdir / ".env")
    world.run(command.text, cwd=workdir).ok()
    passwords = {k: v for k, v in env_file(workdir / ".env").items() if k.endswith("_PASSWORD")}
    assert passwords and all(re.fullmatch(r"[0-9a-f]{32}", v) for v in passwords.values())


def _run_load_env(command: ReadmeCommand, world: World) -> None:
    """`set -a; . ./.env; set +a` exports every setting of .env to the commands after it."""
    workdir = world.tmp / "load-env"
    workdir.mkdir(exist_ok=True)
    shutil.copy(PROJECT_ROOT / ".env.example", workdir / ".env")
    ran = world.run(f"{command.text}; env", cwd=workdir).ok()
    exported = dict(line.split("=", 1) for line in ran.out.splitlines() if "=" in line)
    assert exported.get("ES_VERSION") and exported.get("REDIS_VERSION"), ran.out[-2000:]


def _run_ernte(command: ReadmeCommand, world: World) -> None:
    words = shlex.split(command.text)
    subcommand = words[1] if len(words) > 1 else ""
    if subcommand == "serve":
        _run_serve(command, world)
        return
    check = ERNTE_CHECKS.get(subcommand)
    if check is None:
        pytest.fail(
            f"README.md line {command.line} shows `{command.text}`, and "
            "tests/test_readme_commands.py does not know how to check `ernte "
            f"{subcommand}`: add it to ERNTE_CHECKS"
        )
    check(world.run(command.text), world)


def _run_make(command: ReadmeCommand, world: World) -> None:
    if command.text == "make test":
        pytest.skip("`make test` is the suite running this very test (`.ci/run` calls it)")
    if command.text == "make demo":
        ran = world.run("make demo", timeout=600).ok()
        assert "harvested 240 records" in ran.out, ran.out[-3000:]
        assert "Stadtteil" in ran.out
        assert (world.data_dir / "demo").is_dir()  # under ERNTE_DATA_DIR, nowhere else
        return
    pytest.fail(f"README.md line {command.line}: no check for `{command.text}`")


def _run_cp_env(command: ReadmeCommand, world: World) -> None:
    workdir = world.tmp / "env-copy"
    workdir.mkdir(exist_ok=True)
    shutil.copy(PROJECT_ROOT / ".env.example", workdir / ".env.example")
    world.run(command.text, cwd=workdir).ok()
    assert (workdir / ".env").read_text() == (PROJECT_ROOT / ".env.example").read_text()


def _skip_docker(command: ReadmeCommand, world: World) -> None:
    inner = re.search(r"\bexec \S+ ernte (.*)$", command.text)
    if inner:  # at least the ernte command line inside the container must be one ernte accepts
        assert_cli_accepts(shlex.split(inner.group(1)))
    pytest.skip(f"`{command.text}`: no Docker engine on this machine")


def _run_with_es(command: ReadmeCommand, world: World) -> None:
    if not os.environ.get("ES_URL"):
        pytest.skip(f"`{command.text}` needs Elasticsearch: set ES_URL to run it")
    world.run(command.text, timeout=1200).ok()


def _run_by_wheel_test(command: ReadmeCommand, world: World) -> None:
    """The install commands build a wheel and a virtualenv: tests/test_wheel.py runs them, as
    written, in a clean copy of the checkout, and then uses what they installed."""
    from tests.test_wheel import install_commands

    assert command.text in install_commands()


RUNNERS: list[tuple[re.Pattern[str], Callable[[ReadmeCommand, World], None]]] = [
    (re.compile(r"^python3 -m pip wheel |ernte-venv"), _run_by_wheel_test),
    (re.compile(r"^(\.venv/bin/)?ernte( |$)"), _run_ernte),
    (re.compile(r"^ERNTE_DATA_DIR=data/demo \.venv/bin/ernte "), _run_ernte_on_demo_data),
    (re.compile(r"^curl 'http://127\.0\.0\.1:8080/api/"), _run_curl_api),
    (re.compile(r"^for v in .*openssl rand"), _run_password_setup),
    (re.compile(r"^set -a; \. \./\.env; set \+a$"), _run_load_env),
    (re.compile(r"^make( |$)"), _run_make),
    (re.compile(r"^cp \.env\.example \.env$"), _run_cp_env),
    (re.compile(r"^docker "), _skip_docker),
    (re.compile(r"^(ES_URL|KIBANA_URL)="), _run_with_es),
]
"""How each kind of README command runs; the first pattern that matches decides."""


def dispatch(command: ReadmeCommand, world: World) -> None:
    """Run one README command with the first runner whose pattern matches; none: fail."""
    for pattern, runner in RUNNERS:
        if pattern.search(command.text):
            runner(command, world)
            return
    pytest.fail(
        f"README.md line {command.line} shows `{command.text}`, which "
        "tests/test_readme_commands.py does not know how to run: add it to RUNNERS"
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_readme_command_runs_as_written(
    command: ReadmeCommand, world: World, request: pytest.FixtureRequest
) -> None:
    if _needs_redis(command.text):
        # cluster mode: a real redis-server on loopback (started once for this module)
        cluster_url = request.getfixturevalue("cluster_redis_url")
        world = replace(world, env={**world.env, "REDIS_URL": cluster_url})
    dispatch(command, world)


CLUSTER_MARKERS = ("--queue", " dlq ")
"""A README ernte command with one of these runs in cluster mode, against a real Redis."""


def _needs_redis(text: str) -> bool:
    return text.startswith((".venv/bin/ernte", "ernte")) and any(
        marker in f"{text} " for marker in CLUSTER_MARKERS
    )


@pytest.fixture(scope="module")
def cluster_redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ernte frobnicate --now", "does not know how to check `ernte frobnicate`"),
        ("./run-something.sh", "does not know how to run"),
        ("make install", "no check for `make install`"),
    ],
)
def test_a_command_without_a_check_fails_loudly(text: str, message: str, tmp_path: Path) -> None:
    world = World(dict(os.environ), tmp_path, "http://127.0.0.1:9/unused", tmp_path)
    with pytest.raises(pytest.fail.Exception, match=re.escape(message)):
        dispatch(ReadmeCommand(text, 1), world)
