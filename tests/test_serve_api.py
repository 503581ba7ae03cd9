"""`ernte serve` as a user runs it: a real server process on loopback over a harvested sample,
asked over HTTP, its answers compared with the command line's on the same data."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import CLIResult
from tests.web_server import (
    ERNTE,
    HOSTILE,
    HOSTILE_LINK,
    HOSTILE_TITLE,
    PROJECT_ROOT,
    SEED,
    RunningServer,
    ernte_serve,
    harvest_sample,
    sample_environment,
)

pytestmark = pytest.mark.slow

README_API_EXAMPLE = (
    "/api/search?q=Stadtteile&filter=type:Zeitschriftenaufsatz&facet=subject&limit=1"
)
"""The API example of README.md ("Search in the browser")."""


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    harvest_sample(data_dir)
    return data_dir


@pytest.fixture(scope="module")
def server(sample_dir: Path) -> Iterator[RunningServer]:
    with ernte_serve(sample_dir, sample_dir.parent / "serve.log") as running:
        yield running


def cli(sample_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ERNTE), *args],
        env=sample_environment(sample_dir),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def without_timing(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "took_ms"}


def test_search_answers_exactly_what_ernte_search_json_prints(
    server: RunningServer, sample_dir: Path
) -> None:
    api = requests.get(
        f"{server.url}/api/search",
        params={
            "q": "Stadtteile",
            "facet": ["subject", "year", "type"],
            "year_histogram": "1",
            "limit": "50",
        },
        timeout=30,
    )
    shown = cli(
        sample_dir,
        *("search", "Stadtteile", "--facet", "subject", "--facet", "year", "--facet", "type"),
        *("--year-histogram", "--limit", "50", "--json"),
    )
    assert api.status_code == 200 and api.headers["content-type"] == "application/json"
    assert shown.returncode == 0, shown.stderr
    body = api.json()
    assert without_timing(body) == without_timing(json.loads(shown.stdout))
    assert SEED in [hit["id"] for hit in body["hits"]]
    assert any(v["value"] == "Soziale Stadt" for v in body["facets"]["subject"])
    assert body["year_histogram"] and body["took_ms"] >= 0


def test_filters_are_multi_select_like_the_cli(server: RunningServer, sample_dir: Path) -> None:
    plain = requests.get(
        f"{server.url}/api/search", params={"q": "Stadtteile", "facet": "subject"}, timeout=30
    ).json()
    narrowed = requests.get(
        f"{server.url}/api/search",
        params={"q": "Stadtteile", "facet": "subject", "filter": "subject:Soziale Stadt"},
        timeout=30,
    ).json()
    shown = cli(
        sample_dir,
        *("search", "Stadtteile", "--facet", "subject", "--filter", "subject=Soziale Stadt"),
        "--json",
    )
    assert without_timing(narrowed) == without_timing(json.loads(shown.stdout))
    assert 0 < narrowed["total"] < plain["total"]
    # the facet of the filtered field still counts its siblings (multi-select)
    assert narrowed["facets"]["subject"] == plain["facets"]["subject"]
    two_years = requests.get(
        f"{server.url}/api/search",
        params=[("filter", "year:2005..2007"), ("filter", "type:Zeitschriftenaufsatz")],
        timeout=30,
    ).json()
    assert two_years["total"] > 0
    assert all(2005 <= h["year"] <= 2007 for h in two_years["hits"])
    assert all(h["type"] == "Zeitschriftenaufsatz" for h in two_years["hits"])


def test_paging_with_the_after_cursor_continues_where_offset_would(
    server: RunningServer,
) -> None:
    first = requests.get(
        f"{server.url}/api/search", params={"q": "Stadt", "limit": "5"}, timeout=30
    ).json()
    assert first["next_search_after"] is not None
    after = requests.get(
        f"{server.url}/api/search",
        params={"q": "Stadt", "limit": "5", "after": json.dumps(first["next_search_after"])},
        timeout=30,
    ).json()
    offset = requests.get(
        f"{server.url}/api/search", params={"q": "Stadt", "limit": "5", "offset": "5"}, timeout=30
    ).json()
    assert [h["id"] for h in after["hits"]] == [h["id"] for h in offset["hits"]]
    assert not {h["id"] for h in after["hits"]} & {h["id"] for h in first["hits"]}


@pytest.mark.parametrize(
    ("params", "cli_args"),
    [
        ({"q": '"soziale Stadt'}, ['"soziale Stadt']),
        ({"q": "Stadt OR Land"}, ["Stadt OR Land"]),
        ({"facet": "colour"}, ["--facet", "colour"]),
        ({"filter": "colour:blau"}, ["--filter", "colour=blau"]),
    ],
)
def test_a_bad_query_is_a_400_with_the_cli_message(
    server: RunningServer, sample_dir: Path, params: dict[str, str], cli_args: list[str]
) -> None:
    answer = requests.get(f"{server.url}/api/search", params=params, timeout=30)
    shown = cli(sample_dir, "search", *cli_args)
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert shown.returncode == 1
    expected = shown.stderr.strip().removeprefix("error: ")
    # filters are written field:value on the web, field=value on the command line
    assert message == expected.replace("'colour=blau'", "'colour:blau'")
    assert "\n" not in message and "Traceback" not in answer.text


def test_bad_parameters_are_400_and_nothing_answers_with_a_traceback(
    server: RunningServer,
) -> None:
    for params in ({"limit": "many"}, {"limit": "100000"}, {"after": "not json"}, {"sort": "x"}):
        answer = requests.get(f"{server.url}/api/search", params=params, timeout=30)
        assert answer.status_code == 400, params
        assert set(answer.json()) == {"error"} and "Traceback" not in answer.text
    assert requests.post(f"{server.url}/api/search", timeout=30).status_code == 405
    assert requests.get(f"{server.url}/api/nothing", timeout=30).status_code == 404
    assert "Traceback" not in server.log.read_text()


def test_records_normalized_and_raw_as_ernte_show(server: RunningServer, sample_dir: Path) -> None:
    record = requests.get(f"{server.url}/api/records/{SEED}", timeout=30)
    raw = requests.get(f"{server.url}/api/records/{SEED}", params={"raw": "1"}, timeout=30)
    assert record.status_code == 200
    assert record.json() == json.loads(cli(sample_dir, "show", SEED, "--json").stdout)
    assert record.json()["title"] == "Städte in sozialer Verantwortung"
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("application/xml")
    assert "sandbox" in raw.headers["content-security-policy"]
    assert raw.text.strip() == cli(sample_dir, "show", SEED, "--raw").stdout.strip()
    assert "Kocks, Martina" in raw.text


def test_an_unknown_record_is_a_404(server: RunningServer) -> None:
    answer = requests.get(f"{server.url}/api/records/oai:nowhere:1", timeout=30)
    assert answer.status_code == 404
    assert answer.json() == {"error": "'oai:nowhere:1' is not in the archive"}
    page = requests.get(f"{server.url}/records/oai:nowhere:1", timeout=30)
    assert page.status_code == 404 and "Nicht gefunden" in page.text


def test_status_is_ernte_status_json(server: RunningServer, sample_dir: Path) -> None:
    answer = requests.get(f"{server.url}/api/status", timeout=30)
    assert answer.status_code == 200
    shown = json.loads(cli(sample_dir, "status", "--json").stdout)
    assert answer.json() == shown
    assert answer.json()["harvests"][0]["source"] == "orlis"


def test_health_and_openapi(server: RunningServer) -> None:
    health = requests.get(f"{server.url}/healthz", timeout=30)
    assert health.json() == {"status": "ok", "backend": "embedded"}
    spec = requests.get(f"{server.url}/openapi.json", timeout=30).json()
    assert {"/api/search", "/api/records/{identifier}", "/api/status", "/healthz"} <= set(
        spec["paths"]
    )
    parameters = {p["name"] for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    assert {"q", "filter", "facet", "limit", "after", "year_histogram"} <= parameters
    assert "SearchResponse" in json.dumps(spec["components"])


def test_the_openapi_description_says_what_the_server_answers(server: RunningServer) -> None:
    """The description promised FastAPI's 422 with validation details where the server answers
    400 `{"error": "..."}`, left out the 400 of /api/records, and let clients send any facet
    or sort, which the server refuses (found by schemathesis)."""
    spec = requests.get(f"{server.url}/openapi.json", timeout=30).json()
    error = {"$ref": "#/components/schemas/Error"}
    for path in ("/api/search", "/api/records/{identifier}"):
        responses = spec["paths"][path]["get"]["responses"]
        assert "400" in responses and "HTTPValidationError" not in json.dumps(responses), path
        for status, response in responses.items():
            if not status.startswith("2"):
                assert response["content"]["application/json"]["schema"] == error, (path, status)
    parameters = {p["name"]: p["schema"] for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    assert parameters["sort"]["enum"] == ["relevance", "year_desc", "year_asc"]
    assert "subject" in parameters["facet"]["items"]["enum"]
    answered = requests.get(f"{server.url}/api/records/{SEED}", params={"raw": "maybe"}, timeout=30)
    assert answered.status_code == 400 and set(answered.json()) == {"error"}
    for facet in parameters["facet"]["items"]["enum"]:  # every value the description offers
        answer = requests.get(f"{server.url}/api/search", params={"facet": facet}, timeout=30)
        assert answer.status_code == 200, (facet, answer.text)


def test_the_server_listens_on_loopback_only(server: RunningServer) -> None:
    port = server.url.rsplit(":", 1)[1]
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True)
    if listening.returncode != 0:
        pytest.skip("`ss` is not available to list listening sockets")
    lines = [line for line in listening.stdout.splitlines() if f":{port} " in line]
    assert lines and all(f"127.0.0.1:{port}" in line for line in lines), lines


def test_pages_are_german_and_send_a_content_security_policy(server: RunningServer) -> None:
    page = requests.get(
        f"{server.url}/", params={"q": "Stadtteile", "filter": "subject:Soziale Stadt"}, timeout=30
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert '<html lang="de">' in page.text and "Treffer" in page.text
    assert 'value="subject:Soziale Stadt"' in page.text and " checked" in page.text
    assert "Treffer pro Jahr" in page.text and "<svg" in page.text
    assert "<mark>" in page.text
    css = requests.get(f"{server.url}/static/ernte.css", timeout=30)
    assert css.status_code == 200 and "http" not in css.text.replace("https://", "")
    for asset in ("/", "/static/ernte.js", "/static/ernte.css"):
        text = requests.get(f"{server.url}{asset}", timeout=30).text
        assert "//cdn" not in text and "googleapis" not in text


def test_hostile_record_text_is_shown_inert(server: RunningServer) -> None:
    page = requests.get(f"{server.url}/records/{HOSTILE}", timeout=30)
    assert page.status_code == 200
    html = page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html and "<b onmouseover" not in html
    assert 'href="javascript:' not in html.lower()
    assert "javascript:alert(document.domain)" in html  # the link is shown, as text only
    hits = requests.get(f"{server.url}/", params={"q": "eingeschleusten"}, timeout=30).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hits and "<script>alert" not in hits
    # Markup inside an abstract is read as text when normalized (Zenodo sends its abstracts as
    # escaped HTML): the tags are gone, their text stays.
    assert "<mark>eingeschleusten</mark> alert(3) und Link im Text" in hits
    assert HOSTILE_TITLE in requests.get(f"{server.url}/api/records/{HOSTILE}", timeout=30).text
    assert (
        HOSTILE_LINK
        not in requests.get(f"{server.url}/api/records/{HOSTILE}", timeout=30).json()["links"]
    )


def test_demo_ends_with_how_to_open_the_page_and_that_command_serves_it(
    ernte: Callable[..., CLIResult], data_dir: Path
) -> None:
    """`make demo`'s last line names the command; run as printed (on a free port, 8080 may be
    taken here) it serves the demo's data, and the README's API example answers."""
    result = ernte("demo")
    assert result.exit_code == 0, result.stderr + result.output
    last = result.output.strip().splitlines()[-1]
    match = re.fullmatch(
        r"Search in the browser: ERNTE_DATA_DIR=(\S+) \.venv/bin/ernte serve , then open "
        r"http://127\.0\.0\.1:8080/ \(Ctrl-C stops it\)",
        last,
    )
    assert match, last
    assert Path(match[1]) == data_dir / "demo"
    with ernte_serve(Path(match[1]), data_dir.parent / "demo-serve.log") as running:
        example = requests.get(f"{running.url}{README_API_EXAMPLE}", timeout=30)
        page = requests.get(f"{running.url}/?q=Stadtteile", timeout=30)
    assert example.status_code == 200
    assert page.status_code == 200 and SEED in page.text
    # the README shows this very call and (abridged) its answer on the demo data
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert f"curl 'http://127.0.0.1:8080{README_API_EXAMPLE}'" in readme
    assert "ERNTE_DATA_DIR=data/demo .venv/bin/ernte serve" in readme
    shown = readme.split(README_API_EXAMPLE, 1)[1]
    assert f'{{"total": {example.json()["total"]},' in shown.split("```json", 1)[1][:30]
    assert f'"id": "{example.json()["hits"][0]["id"]}"' in shown.split("```\n", 2)[1]


def test_several_worker_processes_serve_the_same_answers(
    server: RunningServer, sample_dir: Path
) -> None:
    """`ernte serve --workers 2`: two processes on one port; stops on SIGTERM like one."""
    params = {"q": "Stadtteile", "facet": "subject", "limit": "20"}
    single = requests.get(f"{server.url}/api/search", params=params, timeout=30).json()
    with ernte_serve(sample_dir, sample_dir.parent / "workers.log", "--workers", "2") as pair:
        answers = [
            requests.get(f"{pair.url}/api/search", params=params, timeout=30).json()
            for _ in range(4)
        ]
        process = pair.process
    assert process.returncode == 0  # stopped cleanly on SIGTERM, not killed
    assert all(without_timing(a) == without_timing(single) for a in answers)


def test_worker_processes_log_as_the_command_line_says(sample_dir: Path) -> None:
    """`ernte --log-format json serve --workers 2`: uvicorn starts the workers as new
    processes, and they log JSON like the command (they logged plain text, and tracebacks,
    before). A dead Elasticsearch makes each search log a warning in the worker."""
    log = sample_dir.parent / "workers-json.log"
    with ernte_serve(
        sample_dir,
        log,
        "--workers",
        "2",
        main_options=("--log-format", "json"),
        env={"ES_URL": "http://127.0.0.1:1", "ERNTE_LOG_FORMAT": "text"},
    ) as pair:
        answers = [
            requests.get(f"{pair.url}/api/search", params={"q": "Stadt"}, timeout=60)
            for _ in range(4)
        ]
    assert all(a.status_code == 503 for a in answers)
    lines = [line for line in log.read_text().splitlines() if "request failed" in line]
    assert len(lines) == 4, log.read_text()
    for line in lines:
        entry = json.loads(line)
        assert entry["message"] == "request failed" and entry["path"] == "/api/search"


@pytest.mark.parametrize("paging", [{"offset": "4294967296"}, {"after": "[4294967296]"}])
def test_paging_far_past_the_end_answers_and_the_server_stays_up(
    server: RunningServer, paging: dict[str, str]
) -> None:
    """An offset or cursor of 2**32 made tantivy reserve 64 GB and ended the process."""
    answer = requests.get(f"{server.url}/api/search", params={"q": "Stadt", **paging}, timeout=30)
    assert answer.status_code == 200 and answer.json()["hits"] == []
    assert answer.json()["total"] > 0
    assert requests.get(f"{server.url}/healthz", timeout=10).ok


@pytest.mark.parametrize(
    "after",
    ["[null]", '["x"]', "[{}]", "[1e400]", "[NaN]", "[true]", "[1, 2]", "[" * 3000, "[-5]"],
)
def test_a_malformed_cursor_is_a_400_not_a_500(server: RunningServer, after: str) -> None:
    answer = requests.get(f"{server.url}/api/search", params={"after": after}, timeout=30)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    assert "\n" not in message and "next_search_after" in message


@pytest.mark.parametrize(
    "value",
    [
        "<b onmouseover=alert(5)>Soziale Stadt</b>",  # the hostile record's own facet link
        "Kosten > Nutzen",
        "x" * 1000,
        "ä" * 600,
    ],
)
def test_filter_values_with_any_characters_answer(server: RunningServer, value: str) -> None:
    """`<` and `>` were escaped into word boundaries of tantivy's regular expressions, and a
    long value outgrew its automaton: both were 500s, on the page and in the API."""
    params = {"filter": f"subject:{value}"}
    answer = requests.get(f"{server.url}/api/search", params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    page = requests.get(f"{server.url}/", params=params, timeout=30)
    assert page.status_code == 200
    if value.startswith("<b"):
        assert answer.json()["total"] == 1
        assert answer.json()["hits"][0]["id"] == HOSTILE


@pytest.mark.parametrize("path", ["/healthz", "/api/search?q=Stadt", "/", f"/records/{HOSTILE}"])
def test_head_answers_like_get_without_a_body(server: RunningServer, path: str) -> None:
    head = requests.head(f"{server.url}{path}", timeout=30)
    get = requests.get(f"{server.url}{path}", timeout=30)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_a_wrong_method_is_a_405_that_says_what_is_allowed(server: RunningServer) -> None:
    answer = requests.post(f"{server.url}/api/search", timeout=30)
    assert answer.status_code == 405
    assert [m.strip() for m in answer.headers["allow"].split(",")] == ["GET", "HEAD"]


def test_a_long_query_in_several_packets_gets_an_answer(server: RunningServer) -> None:
    """A request line of 60 KB that arrives in pieces (as a long URL does over a real network)
    was reset by uvicorn's 16 KB limit on an incomplete request head."""
    import socket
    from urllib.parse import urlsplit

    target = urlsplit(server.url)
    query = "Stadt+" * 10_000
    head = f"GET /api/search?q={query}&limit=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection((target.hostname, target.port), timeout=60) as connection:
        data = head.encode()
        for start in range(0, len(data), 4096):  # one piece at a time
            connection.sendall(data[start : start + 4096])
            time.sleep(0.005)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    # Answered, not reset; and 60,000 characters are more than a query may hold.
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"query too long: 60,000 characters (at most 4,000)" in answer


_FACET_BOX = re.compile(
    r'<input type="checkbox" form="suche" name="filter" value="([^"]*)"[^>]*?( checked)?>\s*'
    r'<label[^>]*><span class="value">([^<]*)</span>\s*<span class="count">([^<]*)</span>'
)


def facet_boxes(page: str, name: str) -> list[tuple[str, bool, str, str]]:
    """(filter, ticked, label, count as shown) of each box of facet `name` on a search page."""
    box = page.split(f'id="facet-{name}"', 1)[1].split("</fieldset>", 1)[0]
    return [(f, bool(c), label, n) for f, c, label, n in _FACET_BOX.findall(box)]


def test_a_ticked_facet_value_is_one_box_with_its_count(server: RunningServer) -> None:
    """`subject:soziale stadt` (the filter matches without regard to case) showed a ticked box
    without a count and an unticked "Soziale Stadt" beneath; a ticked value outside the top ten
    had no count at all."""
    total = requests.get(
        f"{server.url}/api/search", params={"filter": "subject:Soziale Stadt"}, timeout=30
    ).json()["total"]
    page = requests.get(f"{server.url}/", params={"filter": "subject:soziale stadt"}, timeout=30)
    boxes = facet_boxes(page.text, "subject")
    named = [b for b in boxes if b[2].casefold() == "soziale stadt"]
    assert named == [("subject:soziale stadt", True, "Soziale Stadt", str(total))], boxes
    # The command line's spelling and a German field name, as in a hand-written link: the box
    # was left unticked, the filter shown nowhere on the page.
    page = requests.get(f"{server.url}/", params={"filter": "Schlagwort=soziale stadt"}, timeout=30)
    named = [b for b in facet_boxes(page.text, "subject") if b[2].casefold() == "soziale stadt"]
    assert named == [("subject:soziale stadt", True, "Soziale Stadt", str(total))]

    top = requests.get(
        f"{server.url}/api/search", params={"facet": "subject", "facet_size": 1000}, timeout=30
    ).json()["facets"]["subject"]
    rare = top[-1]["value"]  # far outside the page's top ten
    page = requests.get(
        f"{server.url}/", params={"q": "Stadt", "filter": f"subject:{rare}"}, timeout=30
    )
    expected = requests.get(
        f"{server.url}/api/search", params={"q": "Stadt", "filter": f"subject:{rare}"}, timeout=30
    ).json()["total"]
    assert (f"subject:{rare}", True, rare, str(expected)) in facet_boxes(page.text, "subject")


def test_page_links_that_no_longer_fit_lead_somewhere(server: RunningServer) -> None:
    """Past the last page the page said "Keine Treffer" under a total of 232, without a pager;
    `page=abc` was a bare English 400 that lost the search."""
    past = requests.get(
        f"{server.url}/", params={"q": "Stadt", "page": "999"}, timeout=30, allow_redirects=False
    )
    assert past.status_code == 303
    assert past.headers["location"].startswith("/?q=Stadt&page=")  # relative: no Host header
    last = requests.get(f"{server.url}{past.headers['location']}", timeout=30)
    assert last.status_code == 200 and 'rel="prev"' in last.text and 'rel="next"' not in last.text
    kept = requests.get(
        f"{server.url}/",
        params={"q": "Stadtteile", "filter": "type:Monographie", "page": "abc"},
        timeout=30,
    )
    assert kept.status_code == 200
    assert 'value="Stadtteile"' in kept.text and 'value="type:Monographie"' in kept.text


def test_a_deleted_record_says_so_and_is_gone(server: RunningServer) -> None:
    deleted = "oai:orlis.difu.de:difu/207669"  # a tombstone of the demo sample
    page = requests.get(f"{server.url}/records/{deleted}", timeout=30)
    assert page.status_code == 410
    assert "wurde im Repositorium gelöscht" in page.text and "(ohne Titel)" not in page.text


def test_paths_with_a_trailing_slash_are_not_redirected_to_the_host_header(
    server: RunningServer,
) -> None:
    answer = requests.get(
        f"{server.url}/api/search/",
        headers={"Host": "evil.example"},
        timeout=30,
        allow_redirects=False,
    )
    assert answer.status_code == 404 and "location" not in answer.headers
    static = requests.post(f"{server.url}/static/ernte.css", timeout=30)
    assert static.status_code == 405
    assert [m.strip() for m in static.headers["allow"].split(",")] == ["GET", "HEAD"]


@pytest.mark.parametrize("page", ["\u00b2", "\u2460", "9" * 5000, " 2 "])
def test_a_page_number_int_cannot_read_is_a_page_not_a_500(
    server: RunningServer, page: str
) -> None:
    """`str.isdigit` took `²`, `①` and 5,000 nines, which `int` refuses: a 500 (found by a
    fuzzer)."""
    answer = requests.get(f"{server.url}/", params={"q": "Stadt", "page": page}, timeout=30)
    assert answer.status_code == 200, answer.status_code
    assert "Traceback" not in server.log.read_text()


def test_a_search_takes_at_most_a_hundred_filters(server: RunningServer) -> None:
    """Filters had no bound: 5,000 `filter=year:...` kept the server busy for 10 s, and the
    page's links, each carrying every other filter, grew with their square (106 MB for 2,000)."""
    many = [("filter", f"year:{1900 + n}") for n in range(101)]
    answer = requests.get(f"{server.url}/api/search", params=many, timeout=30)
    assert answer.status_code == 400
    assert answer.json() == {"error": "101 filters: a search takes at most 100 (values of one"
                             " field are ORed: ask for fewer, or search with the query)"}  # fmt: skip
    page = requests.get(f"{server.url}/", params=many, timeout=30)
    assert page.status_code == 400 and "101 filters" in page.text and len(page.content) < 500_000
    # Filters on fields the page has no box for travel in hidden inputs: the way out is a link.
    assert '<a href="/">Alle Filter entfernen</a>' in page.text
    repeated = [("filter", "type:Monographie")] * 500  # the same filter, once
    assert requests.get(f"{server.url}/api/search", params=repeated, timeout=30).ok
    allowed = requests.get(f"{server.url}/", params=many[:100], timeout=30)
    assert allowed.status_code == 200


def test_a_value_ticked_under_two_spellings_is_one_box(server: RunningServer) -> None:
    """Both spellings were shown, both ticked (and as two chips): unticking one left the
    other's filter on."""
    page = requests.get(
        f"{server.url}/",
        params=[("filter", "subject:Soziale Stadt"), ("filter", "subject:soziale stadt")],
        timeout=30,
    )
    named = [b for b in facet_boxes(page.text, "subject") if b[2].casefold() == "soziale stadt"]
    assert [(f, ticked) for f, ticked, _, _ in named] == [("subject:Soziale Stadt", True)]
    assert page.text.count('aria-label="Filter entfernen: Schlagwort') == 1  # one chip


def test_a_damaged_index_is_a_503_that_names_the_rebuild(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """It was a 500 "internal error" with tantivy's traceback in the log (found in review)."""
    data_dir = tmp_path_factory.mktemp("damaged") / "data"
    harvest_sample(data_dir)
    (data_dir / "index" / "meta.json").write_text("{ not json")
    with ernte_serve(data_dir, data_dir.parent / "damaged.log") as running:
        answers = [
            requests.get(f"{running.url}{path}", params={"q": "Stadt"}, timeout=60)
            for path in ("/api/search", "/")
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert "is damaged" in answer.text and "ernte index rebuild" in answer.text
    assert answers[0].json()["error"].startswith(f"the index at {data_dir / 'index'} is damaged")
    assert "Index nicht verfügbar" in answers[1].text  # not "Noch kein Index" ("no index yet")
