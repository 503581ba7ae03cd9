"""A data directory ernte may not write: `ernte serve` on a volume mounted read-only beside the
harvester that writes it, a snapshot, another user's files.

Searching failed there with a traceback (tantivy takes a lock file beside the index even to
read it), `ernte serve` answered every search with 500, and `show`, `quarantine` and `check`
failed to open the archives. Every reading command now works on such a directory, writes
nothing into it, and a server on it sees what the harvester commits through the writable path.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from harvester.demo.sample import load_sample
from tests.web_server import (
    ERNTE,
    PROJECT_ROOT,
    SEED,
    ernte_serve,
    harvest_sample,
    sample_environment,
)

pytestmark = pytest.mark.slow


@contextmanager
def read_only_view(directory: Path) -> Iterator[Path]:
    """`directory` seen through a path this process cannot write: a read-only bind mount when
    running as root (which write permissions do not stop), else the directory with its write
    permissions removed. Skips, with the reason, where neither can be made."""
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(directory)], check=True)
        try:
            yield directory
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(directory)], check=True)
        return
    view = directory.parent / f"{directory.name}-read-only"
    view.mkdir()
    bound = subprocess.run(["mount", "--bind", str(directory), str(view)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot make a read-only view as root: mount --bind: {bound.stderr!r}")
    try:
        remount = ["mount", "-o", "remount,bind,ro", str(view)]
        read_only = subprocess.run(remount, capture_output=True)
        if read_only.returncode != 0:
            pytest.skip(f"cannot remount read-only: {read_only.stderr!r}")
        yield view
    finally:
        subprocess.run(["umount", str(view)], check=True)


def files_of(directory: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime in ns) of every file under `directory`."""
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def run(data_dir: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ERNTE), *args],
        env={**sample_environment(data_dir), "TMPDIR": str(tmp)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_reading_command_works_on_a_read_only_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    harvest_sample(data)
    scratch = tmp_path / "tmp"  # the processes' TMPDIR: what they leave behind shows here
    scratch.mkdir()
    written = run(data, scratch, "search", "Stadtteile", "--json", "--facet", "subject")
    assert written.returncode == 0, written.stderr
    before = files_of(data)

    with read_only_view(data) as view:
        with pytest.raises(OSError):
            (view / "probe").write_text("x")  # the view really is read-only
        searched = run(view, scratch, "search", "Stadtteile", "--json", "--facet", "subject")
        assert searched.returncode == 0, searched.stderr
        found, expected = json.loads(searched.stdout), json.loads(written.stdout)
        assert SEED in [hit["id"] for hit in found["hits"]]
        assert {k: v for k, v in found.items() if k != "took_ms"} == {
            k: v for k, v in expected.items() if k != "took_ms"
        }
        for args in (("show", SEED, "--json"), ("quarantine",), ("status",), ("check",)):
            done = run(view, scratch, *args)
            assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr)
        shown = json.loads(run(view, scratch, "show", SEED, "--json").stdout)
        assert shown["identifier"] == SEED
        checked = run(view, scratch, "check").stdout
        assert "exactly the live archived records" in checked

        with ernte_serve(view, tmp_path / "serve.log", env={"TMPDIR": str(scratch)}) as server:
            api = requests.get(f"{server.url}/api/search", params={"q": "Stadtteile"}, timeout=30)
            assert api.status_code == 200, api.text
            assert SEED in [hit["id"] for hit in api.json()["hits"]]
            raw = requests.get(f"{server.url}/api/records/{SEED}?raw=1", timeout=30)
            assert raw.status_code == 200 and SEED in raw.text
            page = requests.get(f"{server.url}/", params={"q": "Stadtteile"}, timeout=30)
            assert page.status_code == 200 and "Stadtteile" in page.text

    assert files_of(data) == before, "a reading command wrote into the data directory"
    assert list(scratch.iterdir()) == [], "a process left its temporary files behind"


def test_a_server_on_a_read_only_mount_sees_what_the_harvester_commits(tmp_path: Path) -> None:
    """The compose layout: the harvester writes the data volume, `ernte serve` mounts it
    read-only. A commit adds segments the server has not seen; a rebuild replaces the whole
    index directory. The server finds the new record after either."""
    data = tmp_path / "data"
    harvest_sample(data)
    seed = next(r for r in load_sample() if r.identifier == SEED)
    time.sleep(1.1)  # changed after the first harvest's watermark (seconds granularity)
    changed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    added = replace(seed, identifier="oai:orlis.difu.de:difu/999777", datestamp=changed)
    scratch = tmp_path / "tmp"
    scratch.mkdir()

    def hits(url: str) -> list[str]:
        answer = requests.get(f"{url}/api/search", params={"q": "Stadtteile", "limit": 100})
        assert answer.status_code == 200, answer.text
        return [hit["id"] for hit in answer.json()["hits"]]

    with (
        read_only_view(data) as view,
        ernte_serve(view, tmp_path / "serve.log", env={"TMPDIR": str(scratch)}) as server,
    ):
        assert SEED in hits(server.url) and added.identifier not in hits(server.url)
        harvest_sample(data, extra=[added])  # through the writable path
        assert added.identifier in hits(server.url)
        rebuilt = run(data, scratch, "index", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert SEED in hits(server.url) and added.identifier in hits(server.url)
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
    assert list(scratch.iterdir()) == []
