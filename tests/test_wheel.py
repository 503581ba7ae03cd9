"""The package as a user installs it: a wheel, in a fresh virtualenv, run from an empty directory.

The wheel is built from a copy of the checkout (so no stale `build/` leaks in), installed with
its `demo` extra and the pinned versions of `constraints.txt` into a virtualenv that does not
see this project's `.venv` or source tree, and then used the way the README says: harvest the
demo provider, search, grow the compound part list, rebuild the index. Afterwards no file of
the installed package may have changed: everything ernte writes goes under the data directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harvester.config_files import SHIPPED, SOURCES
from harvester.sources import adhoc_key
from tests.test_readme_commands import README, readme_commands

PROJECT_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

_LOCAL_ONLY = {".git", ".venv", "data", "build", "dist", "bench"}
_ANYWHERE = shutil.ignore_patterns("*.egg-info", "__pycache__", ".*_cache")


def _not_in_wheel_build(directory: str, names: list[str]) -> set[str]:
    """What a build from a clean checkout would not see: local state at the top, caches."""
    ignored = set(_ANYWHERE(directory, names))
    if Path(directory) == PROJECT_ROOT:
        ignored |= _LOCAL_ONLY & set(names)
    return ignored


@dataclass(frozen=True)
class Installed:
    """A wheel installed in its own virtualenv, and an empty directory to run it from."""

    wheel: Path
    bin: Path
    site_packages: Path
    workdir: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _isolated_env(data_dir: Path) -> dict[str, str]:
    """The user's environment minus anything that points Python at this checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ERNTE_", "PYTHON", "VIRTUAL_ENV"))
        and k not in ("REDIS_URL", "ES_URL", "KIBANA_URL")
    }
    env.update(ERNTE_DATA_DIR=str(data_dir), ERNTE_PAGE_DELAY="0", PYTHONNOUSERSITE="1")
    return env


def install_commands() -> list[str]:
    """README.md's install block (the shell block that creates `~/ernte-venv`), as written."""
    commands = [c for c in readme_commands(README.read_text(encoding="utf-8"))]
    block = [
        c.text
        for c in commands
        if "ernte-venv" in c.text or c.text.startswith("python3 -m pip wheel")
    ]
    assert block, "README.md shows no install commands (python3 -m venv ~/ernte-venv ...)"
    return block


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """A clean copy of the checkout, and README's install commands run in it exactly as written
    (HOME is a temporary directory, so `~/ernte-venv` is too)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(PROJECT_ROOT, source, ignore=_not_in_wheel_build)
    home = root / "home"
    home.mkdir()
    env = _isolated_env(root / "data")
    env["HOME"] = str(home)
    # `python3` is the interpreter running the tests (its venv's bin first on PATH): a venv made
    # from it is still a fresh one, without this project's packages or source tree.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for command in install_commands():
        done = subprocess.run(
            ["bash", "-c", command], cwd=source, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stderr[-3000:]}"
    (wheel,) = (source / "dist").glob("ernte-*.whl")
    venv = home / "ernte-venv"
    workdir = root / "empty"
    workdir.mkdir()
    site_packages = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    yield Installed(wheel, venv / "bin", site_packages, workdir, env)


def _tree_hashes(*roots: Path) -> dict[str, str]:
    """sha256 of every file under the roots (bytecode caches aside: those are Python's)."""
    hashes: dict[str, str] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def test_wheel_ships_the_configuration_and_keeps_pyoai_an_extra(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line
            for line in wheel.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    for name in SHIPPED:
        package = "harvester/defaults" if name == SOURCES else "indexer/resources"
        assert f"{package}/{name}" in names
    assert "harvester/demo/data/orlis_sample.jsonl" in names
    assert "harvester/demo/data/word_tables.json" in names
    assert not any(n.startswith(("config/", "tests/", "bench/")) for n in names)
    pyoai = [line for line in requires if "pyoai" in line]
    assert pyoai and all('extra == "demo"' in line for line in pyoai), pyoai


def test_installed_wheel_harvests_searches_and_grows_parts_from_an_empty_directory(
    installed: Installed,
) -> None:
    package_dirs = [installed.site_packages / "harvester", installed.site_packages / "indexer"]
    before = _tree_hashes(*package_dirs)
    assert before, "the wheel installed no package files"

    where = installed.run(
        "python", "-c", "import harvester, indexer; print(harvester.__file__, indexer.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert all(p.startswith(str(installed.site_packages)) for p in where.stdout.split()), (
        where.stdout
    )
    assert str(PROJECT_ROOT) not in where.stdout

    config = installed.run("ernte", "config", "--json")
    assert config.returncode == 0, config.stderr
    assert '"origin": "override"' not in config.stdout  # nothing in ./config here: all packaged

    provider = subprocess.Popen(
        [str(installed.bin / "python"), "-m", "harvester.demo.provider", "--port", "0"],
        cwd=installed.workdir,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert provider.stdout is not None
        first_line = provider.stdout.readline()
        base_url = first_line.split("OAI-PMH base URL: ")[1].split()[0]

        harvest = installed.run("ernte", "harvest", base_url, "--prefix", "dim")
        assert harvest.returncode == 0, harvest.stderr[-3000:]
    finally:
        provider.terminate()
        provider.wait(timeout=30)

    search = installed.run("ernte", "search", "Stadtteile", "--facet", "subject", "--json")
    assert search.returncode == 0, search.stderr[-3000:]
    assert '"total": 0' not in search.stdout
    seed = installed.run("ernte", "search", "Städte in sozialer Verantwortung", "--json")
    assert '"oai:orlis.difu.de:difu/167832"' in seed.stdout, seed.stdout[-2000:]

    source_key = adhoc_key(base_url)
    compounds = installed.run("ernte", "compounds", "build", source_key)
    assert compounds.returncode == 0, compounds.stderr[-3000:]
    grown = Path(installed.env["ERNTE_DATA_DIR"]) / "german" / "compound_parts_de.txt"
    assert str(grown) in compounds.stdout
    assert grown.is_file()

    rebuild = installed.run("ernte", "index", "rebuild")
    assert rebuild.returncode == 0, rebuild.stderr[-3000:]
    config_after = installed.run("ernte", "config", "--json")
    assert str(grown) in config_after.stdout  # the grown list is the one now in use

    # the developers' regeneration step refuses to write into an installed package
    for module in ("indexer.elastic.mapping", "indexer.elastic.kibana"):
        refused = installed.run("python", "-m", module)
        assert refused.returncode != 0 and "installed package" in refused.stderr, refused

    assert list(installed.workdir.iterdir()) == [], "ernte wrote into the working directory"
    assert _tree_hashes(*package_dirs) == before, "a file of the installed package changed"


def test_demo_runs_from_the_installed_wheel(installed: Installed) -> None:
    """`ernte demo` (what `make demo` runs) works from the wheel with the `demo` extra."""
    demo = installed.run("ernte", "demo")
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "Städte in sozialer Verantwortung" in demo.stdout or "Stadtteil" in demo.stdout
    # The hints name this installation's command (they said `.venv/bin/ernte`, a clone's path),
    # and the search hint runs as printed.
    ernte = installed.bin / "ernte"
    [explore] = [line for line in demo.stdout.splitlines() if line.startswith("Explore further: ")]
    [browse] = [line for line in demo.stdout.splitlines() if line.startswith("Search in the ")]
    assert f" {ernte} serve " in browse, browse
    explored = subprocess.run(
        ["bash", "-c", explore.removeprefix("Explore further: ")],
        cwd=installed.workdir,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert explored.returncode == 0 and "Soziale Stadt" in explored.stdout, explored.stderr
