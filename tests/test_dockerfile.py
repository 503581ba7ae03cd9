"""The Dockerfile, checked as a file (no Docker engine runs here): what it COPYs exists and is in
the build context, it installs pinned versions, it needs no PYTHONPATH trick, and its CMD is a
command the CLI accepts. (That the CMD also does its job is tested with the compose services.)
"""

from __future__ import annotations

import fnmatch
import json
import re
from importlib.metadata import requires
from pathlib import Path

import click
import pytest

from tests.cli_parse import assert_cli_accepts

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
CONSTRAINTS = PROJECT_ROOT / "constraints.txt"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def in_build_context(relative: str) -> bool:
    """Whether .dockerignore lets `relative` (a path or a directory) into the build context:
    the last matching pattern decides, `!` re-includes (Docker's rule)."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(relative, glob) or fnmatch.fnmatch(relative.split("/")[0], glob):
            included = negated
    return included


def pinned() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_normalized(name)] = version.strip()
    return pins


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_no_pythonpath_workaround() -> None:
    assert "PYTHONPATH" not in DOCKERFILE.read_text(encoding="utf-8")


def test_every_copied_file_exists_and_is_in_the_build_context() -> None:
    copies = [args for keyword, args in instructions() if keyword in ("COPY", "ADD")]
    assert copies
    checked = 0
    for args in copies:
        words = args.split()
        if any(w.startswith("--from") for w in words):
            continue  # from an earlier build stage, not the context
        for source in (w for w in words[:-1] if not w.startswith("--")):
            assert (PROJECT_ROOT / source).exists(), f"COPY {source}: no such file"
            assert in_build_context(source), f"COPY {source}: excluded by .dockerignore"
            checked += 1
    assert checked >= 4


def test_local_state_stays_out_of_the_build_context() -> None:
    for path in (".venv", "data", ".git", "tests", "bench", ".env"):
        assert not in_build_context(path), path


def test_installs_the_wheel_with_pinned_versions() -> None:
    runs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    assert "pip wheel" in runs
    assert re.search(r"pip install (--constraint|-c) \S*constraints\.txt", runs), runs


def test_constraints_pin_every_dependency_of_ernte_and_its_extras() -> None:
    pins = pinned()
    declared = requires("ernte") or []
    assert declared
    for requirement in declared:
        name = _normalized(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])
        assert name in pins, f"{name} is not pinned in constraints.txt (run `make constraints`)"


@pytest.mark.parametrize("keyword", ["CMD"])
def test_cmd_is_a_command_the_cli_accepts(keyword: str) -> None:
    (args,) = [a for k, a in instructions() if k == keyword]
    command = json.loads(args)  # exec form, so signals reach ernte (no shell in between)
    assert command[0] == "ernte"
    assert_cli_accepts(command[1:])


@pytest.mark.parametrize(
    "args", [["nosuch"], ["worker", "--no-such-option"], ["compounds", "nosuch"]]
)
def test_cli_check_refuses_what_ernte_would_refuse(args: list[str]) -> None:
    with pytest.raises(click.UsageError):
        assert_cli_accepts(args)
