"""The commands ernte ships, read from the files that ship them, so that tests run them exactly as
written: the `command:` of each ernte service in docker-compose.yml and the Dockerfile's CMD.

Compose substitutes `${VAR}`, `${VAR:-default}` and `${VAR-default}` from the shell and `.env`;
`substitute` does the same from a mapping. `loopback_env` adapts a service's environment to this
machine: the Redis service's host becomes the test's redis-server (same URL otherwise, password
included), Elasticsearch is left out (none runs here, so ernte uses its embedded index) and the
data directory is the test's.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def compose() -> dict[str, Any]:
    """docker-compose.yml as compose reads it (YAML merge keys `<<:` resolved by the loader)."""
    return dict(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))


def env_example() -> dict[str, str]:
    """The variables `.env.example` sets (what a user's `.env` starts from)."""
    return env_file(ENV_EXAMPLE)


def env_file(path: Path) -> dict[str, str]:
    """The variables a `.env`-style file sets (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def variables(text: str) -> list[tuple[str, str | None]]:
    """Every `${VAR...}` in `text`: its name and its default (None when it has none)."""
    return [
        (m["name"], m["arg"] if m["op"] in (":-", "-") else None) for m in _VARIABLE.finditer(text)
    ]


def substitute(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}`
    (unset), `${VAR:?error}` / `${VAR?error}` (required)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?") and not current:
            raise KeyError(f"{name} is required: {arg}")
        return current or ""

    return _VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def service(name: str) -> dict[str, Any]:
    return dict(compose()["services"][name])


def compose_command(name: str, env: Mapping[str, str]) -> list[str]:
    """The `command:` of a compose service, interpolated from `env`."""
    command = service(name)["command"]
    assert isinstance(command, list), f"service {name}: command must be a list (exec form)"
    return [substitute(str(part), env) for part in command]


def dockerfile_cmd() -> list[str]:
    """The Dockerfile's CMD (exec form)."""
    lines = [
        line
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("CMD")
    ]
    assert len(lines) == 1, "the Dockerfile has exactly one CMD"
    return [str(part) for part in json.loads(lines[0].removeprefix("CMD").strip())]


def dockerfile_env() -> dict[str, str]:
    """The variables the Dockerfile's ENV instructions set in the image."""
    import shlex

    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line.removeprefix("ENV ")):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def executable(argv: list[str]) -> list[str]:
    """argv with its program found in this virtualenv first (`ernte` is installed there)."""
    program = Path(sys.executable).parent / argv[0]
    return [str(program) if program.exists() else argv[0], *argv[1:]]


def loopback_env(
    name: str, redis_url: str, data_dir: Path, env: Mapping[str, str], **extra: str
) -> dict[str, str]:
    """The environment of compose service `name` as it would run here.

    `env` is what compose interpolates from (the user's `.env`); its values also reach the
    container (env_file). REDIS_URL keeps the compose service's URL (scheme, password, database)
    with the `redis` service's address replaced by the test's redis-server; ES_URL is dropped."""
    spec = service(name)
    merged = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ES_URL")}
    merged.update(env)
    for key, value in (spec.get("environment") or {}).items():
        merged[str(key)] = substitute(str(value), env)
    if "REDIS_URL" in merged:
        shipped, test = urlsplit(merged["REDIS_URL"]), urlsplit(redis_url)
        assert shipped.hostname == "redis", f"{name}: REDIS_URL must point at the redis service"
        userinfo = shipped.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{test.netloc.rpartition('@')[2]}" if userinfo else test.netloc
        merged["REDIS_URL"] = shipped._replace(netloc=netloc).geturl()
    for key in ("ES_URL", "ERNTE_ES_URL", "KIBANA_URL"):
        merged.pop(key, None)
    merged["ERNTE_DATA_DIR"] = str(data_dir)
    merged.update(extra)
    return merged


def dotenv(redis_url: str = "", **values: str) -> dict[str, str]:
    """A user's `.env`: `.env.example` with its passwords filled in (REDIS_PASSWORD from the
    test's redis-server URL, the others with throwaway values)."""
    env = env_example()
    for name, value in env.items():
        if name.endswith("_PASSWORD") and not value:
            env[name] = f"unused-{name.lower()}"
    password = urlsplit(redis_url).password if redis_url else None
    if password:
        env["REDIS_PASSWORD"] = password
    env.update(values)
    return env


def shipped_service(
    name: str, redis_url: str, data_dir: Path, **extra: str
) -> tuple[list[str], dict[str, str]]:
    """The command and environment of compose service `name`, adapted to loopback; `extra`
    are settings a user would put into `.env` (test tuning: short leases and timeouts)."""
    env = dotenv(redis_url, **extra)
    command = executable(compose_command(name, env))
    return command, loopback_env(name, redis_url, data_dir, env, **extra)
