"""A harvested sample and a real `ernte serve` process on loopback, for the API and browser tests.

The sample is the bundled demo data plus one hostile record (markup in its title, author and
subject, `javascript:` links), served by the demo OAI-PMH provider and harvested by a real
`ernte harvest` process. The server is started exactly as the README shows it:
`.venv/bin/ernte serve --port N` (the `ernte` script beside the running Python).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from harvester.demo.provider import serve as serve_provider
from harvester.demo.sample import DimField, SampleRecord, load_sample
from tests.conftest import ERNTE
from tests.redis_server import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED = "oai:orlis.difu.de:difu/167832"
HOSTILE = "oai:orlis.difu.de:difu/999001"
HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_LINK = "javascript:alert(document.domain)"

HOSTILE_RECORD = SampleRecord(
    identifier=HOSTILE,
    datestamp="2024-02-01T10:00:00Z",
    sets=("com_difu_literatur",),
    deleted=False,
    fields=(
        DimField("contributor", "author", None, '<img src=x onerror="alert(2)">, Eve'),
        DimField("date", "issued", None, "2011"),
        DimField("title", None, "de", HOSTILE_TITLE),
        DimField("identifier", "uri", None, HOSTILE_LINK),
        DimField("relation", "uri", None, HOSTILE_LINK),
        DimField(
            "description",
            "abstract",
            "de",
            "Eine Untersuchung benachteiligter Stadtteile und ihrer Bewohner, mit einem "
            'eingeschleusten <script>alert(3)</script> und <a href="javascript:alert(4)">Link</a> '
            "im Text, der als Text erscheinen muss und nie als Markup.",
        ),
        DimField("subject", None, "de", "<b onmouseover=alert(5)>Soziale Stadt</b>"),
        DimField("type", None, "de", "Zeitschriftenaufsatz"),
    ),
)


def sample_environment(data_dir: Path) -> dict[str, str]:
    """The environment of `ernte` processes working on `data_dir` in embedded mode."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "ES_URL", "ERNTE_REDIS_URL", "ERNTE_ES_URL")
    }
    env.update(
        ERNTE_DATA_DIR=str(data_dir),
        ERNTE_SOURCES_FILE=str(data_dir / "sources.yaml"),
        ERNTE_PAGE_DELAY="0",
    )
    return env


def harvest_sample(data_dir: Path, extra: Sequence[SampleRecord] = ()) -> None:
    """Serve the demo sample plus the hostile record (and `extra`) over OAI-PMH and harvest it
    with a real `ernte harvest` process into `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with serve_provider([*load_sample(), HOSTILE_RECORD, *extra], batch_size=100) as base_url:
        (data_dir / "sources.yaml").write_text(
            "sources:\n  orlis:\n"
            f"    base_url: {base_url}\n    metadata_prefix: dim\n    crosswalk: dim\n"
        )
        subprocess.run(
            [str(ERNTE), "harvest", "orlis"],
            env=sample_environment(data_dir),
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
            timeout=240,
        )


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def ernte_serve(
    data_dir: Path,
    log: Path,
    *options: str,
    timeout: float = 60.0,
    main_options: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """`ernte [MAIN_OPTIONS] serve --port N [OPTIONS]` as its own process (`env` added to the
    sample's environment); yields once /healthz answers; SIGTERM after."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ERNTE), *main_options, "serve", "--port", str(port), *options],
            env={**sample_environment(data_dir), **(env or {})},
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"ernte serve exited early:\n{log.read_text()}")
            try:
                if requests.get(f"{url}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"ernte serve did not answer in {timeout} s:\n{log.read_text()}"
                )
            time.sleep(0.1)
        yield RunningServer(url, process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
