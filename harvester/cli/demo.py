"""`ernte demo`: the whole job on one machine, with nothing but this project.

Serves the bundled ORLIS-like sample (SAMPLE DATA, see harvester/demo/) over OAI-PMH on loopback,
harvests it through the real pipeline (Identify, ListRecords pages, raw archive, dim crosswalk,
German analysis, embedded index, or Elasticsearch when ES_URL is set), then prints a faceted
search. The demo keeps its own data directory (`<data_dir>/demo`), rebuilt on every run.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console

from harvester.cli.search import print_response
from harvester.demo.provider import serve
from harvester.demo.sample import load_sample
from harvester.errors import UsageError
from harvester.run import services
from harvester.run.harvest import HarvestRequest
from harvester.run.progress import progress_for
from harvester.settings import Settings
from harvester.sources import Source
from indexer.user_request import build_request

DEMO_SOURCE_KEY = "orlis-demo"
SEED_IDENTIFIER = "oai:orlis.difu.de:difu/167832"
DEMO_FACETS = ("subject", "year", "type", "normalized_type", "author")


def run_demo(settings: Settings, console: Console, port: int, query: str) -> None:
    """Harvest, index and search the demo provider; prints what a user would look at."""
    demo_settings = settings.model_copy(update={"data_dir": settings.data_dir / "demo"})
    records = load_sample()
    console.print(
        f"[bold]ernte demo[/]: {len(records)} ORLIS-like sample records "
        f"({sum(r.deleted for r in records)} deleted) served by a local OAI-PMH provider"
    )
    with ExitStack() as stack:
        try:
            base_url = stack.enter_context(serve(records, port=port, batch_size=50))
        except OSError as exc:  # the port is taken (or not ours to bind)
            raise UsageError(
                f"cannot serve the demo provider on port {port}: {exc.strerror or exc}"
            ) from None
        if demo_settings.data_dir.exists():  # only now: a busy port leaves the last demo as it was
            shutil.rmtree(demo_settings.data_dir)
        console.print(f"provider: {base_url}   data: {demo_settings.data_dir}")
        source = Source(
            key=DEMO_SOURCE_KEY,
            base_url=base_url,
            metadata_prefix="dim",
            fallback_prefix="oai_dc",
            crosswalk="dim",
            name="ORLIS demo sample",
            page_delay=0.0,
        )
        backend = services.index_backend(demo_settings)
        try:
            runner = services.harvester(
                demo_settings, source, progress_for(sys.stderr.isatty()), backend
            )
            state = runner.run(HarvestRequest(source))
            run = state.run
            console.print(
                f"harvested {run.records} records in {run.pages} pages "
                f"({run.deleted} deleted); normalized {run.normalized}, "
                f"quarantined {run.quarantined}, indexed {run.indexed}; "
                f"index holds {backend.count()} records"
            )
            request = build_request(query, (), DEMO_FACETS, 8, "relevance", 10, 0)
            response = backend.search(request)
        finally:
            backend.close()
    console.rule(f"ernte search {query!r} --facet " + " --facet ".join(DEMO_FACETS))
    print_response(console, request, response)
    ranks = [n for n, hit in enumerate(response.hits, start=1) if hit.id == SEED_IDENTIFIER]
    seed_found = bool(ranks)
    subjects = {v.value for v in response.facets.get("subject", [])}
    console.print(
        f"seed record {SEED_IDENTIFIER} found by {query!r}: "
        f"{f'yes (rank {ranks[0]})' if ranks else 'NO'}; subject facet shows 'Soziale Stadt': "
        f"{'yes' if 'Soziale Stadt' in subjects else 'NO'}",
        soft_wrap=True,
    )
    console.print(
        f"Explore further: ERNTE_DATA_DIR={shlex.quote(str(demo_settings.data_dir))} "
        f"{ernte_command()} search "
        '"soziale Stadt" --facet subject --filter year=2005..2015',
        soft_wrap=True,
        markup=False,  # a path may hold [brackets]
    )
    if not seed_found or "Soziale Stadt" not in subjects:
        raise SystemExit(
            "demo check failed: the seed record or the 'Soziale Stadt' facet is missing"
        )
    console.print(
        f"Search in the browser: ERNTE_DATA_DIR={shlex.quote(str(demo_settings.data_dir))} "
        f"{ernte_command()} serve , then open http://127.0.0.1:8080/ (Ctrl-C stops it)",
        soft_wrap=True,
        markup=False,
    )


def ernte_command() -> str:
    """The `ernte` command of this installation as the user can type it here: the script beside
    the running Python, relative to the working directory when it lies below it (`.venv/bin/ernte`
    in a clone), else its full path (a wheel installed into `~/ernte-venv`, where the hints said
    `.venv/bin/ernte`); plain `ernte` when there is no such script."""
    script = Path(sys.executable).parent / "ernte"
    if not script.is_file():
        return "ernte"
    try:
        relative = str(script.relative_to(Path(os.getcwd())))
    except ValueError:
        return shlex.quote(str(script))
    # In the bin directory itself, bare `ernte` would be looked up on PATH instead.
    return shlex.quote(relative if "/" in relative else f"./{relative}")
