"""Units of `ernte serve` (harvester/web/): German formatting, untrusted text made safe, the
query-parameter translation, and the record template fed a hostile record. The API itself is
tested against a real server process in test_serve_api.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harvester.model import Identifiers, Record
from harvester.settings import Settings
from harvester.web import formatting
from harvester.web.app import create_app
from harvester.web.pages import SearchState, facet_entries, page_number, templates, year_bars
from harvester.web.search import cli_filter, page_filter, parse_after, search_request
from indexer.embedded.backend import EmbeddedBackend
from indexer.search_model import SORT_ORDERS, FacetValue, Filter, QuerySyntaxError
from indexer.user_request import build_request


def test_german_numbers_and_dates() -> None:
    assert formatting.number(1234567) == "1.234.567"
    assert formatting.number(12) == "12"
    assert formatting.milliseconds(4.13) == "4,1 ms"
    assert formatting.datestamp("2022-11-25T09:41:17Z") == "25.11.2022, 09:41 UTC"
    assert formatting.datestamp("2022-11-25") == "25.11.2022"
    assert formatting.datestamp("gestern") == "gestern"
    assert formatting.issued("2009") == "2009"
    assert formatting.issued("2009-05") == "Mai 2009"
    assert formatting.issued("2009-03-07") == "07.03.2009"
    assert formatting.facet_value("language", "de") == "Deutsch"
    assert formatting.facet_value("normalized_type", "thesis") == "Hochschulschrift"


def test_snippets_keep_only_our_marks() -> None:
    hostile = "&lt;script&gt;x&lt;/script&gt; in <mark>Stadtteilen</mark> &amp; <b>mehr</b>"
    safe = str(formatting.snippet(hostile))
    assert safe == (
        "&lt;script&gt;x&lt;/script&gt; in <mark>Stadtteilen</mark> &amp; &lt;b&gt;mehr&lt;/b&gt;"
    )
    assert str(formatting.snippet("<mark>&lt;img src=x&gt;</mark>")) == (
        "<mark>&lt;img src=x&gt;</mark>"
    )


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://orlis.difu.de/handle/difu/167832", True),
        ("http://example.org/a?b=1", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//evil.example/x", False),
        ("/relative", False),
        ("https:///no-host", False),
    ],
)
def test_only_http_links_are_followed(url: str, linked: bool) -> None:
    assert (formatting.safe_url(url) is not None) is linked


def test_identifier_links_are_encoded() -> None:
    assert formatting.doi_url("10.1000/a b") == "https://doi.org/10.1000/a%20b"
    assert formatting.issn_url("0303-2493") == "https://portal.issn.org/resource/ISSN/0303-2493"
    assert formatting.record_path("oai:orlis.difu.de:difu/167832") == (
        "/records/oai:orlis.difu.de:difu/167832"
    )
    assert formatting.record_path('a"><script>') == "/records/a%22%3E%3Cscript%3E"


def test_record_template_shows_hostile_links_and_text_inert() -> None:
    record = Record(
        identifier="oai:x:1",
        source="x",
        metadata_prefix="dim",
        title="<script>alert(1)</script>",
        links=["javascript:alert(2)", "https://example.org/ok"],
        identifiers=Identifiers(handle=["javascript:alert(3)"], doi=['10.1/"><b>x']),
        subjects=['"><img src=x onerror=alert(4)>'],
    )
    html = templates.get_template("record.html").render(
        identifier=record.identifier,
        source="x",
        record=record,
        quarantined="",
        raw_xml="<record><title><script>alert(5)</script></title></record>",
        type_label=formatting.NORMALIZED_TYPE_LABELS,
        search_url=SearchState().url,
    )
    assert "<script>" not in html.split("</head>", 1)[1]
    assert "javascript:" not in "".join(html.split('href="')[1:]).split('"')[0]
    assert 'href="javascript' not in html.lower()
    assert '<span class="inert"' in html and "javascript:alert(2)" in html
    assert 'href="https://example.org/ok"' in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(4)&gt;" in html
    assert 'href="https://doi.org/10.1/%22%3E%3Cb%3Ex"' in html


def test_filters_are_written_field_colon_value() -> None:
    assert cli_filter("subject:Soziale Stadt") == "subject=Soziale Stadt"
    assert cli_filter("subject=Soziale Stadt") == "subject=Soziale Stadt"
    assert cli_filter("subject:a:b=c") == "subject=a:b=c"
    with pytest.raises(QuerySyntaxError, match="'colour:blau'"):
        cli_filter("colour:blau")
    with pytest.raises(QuerySyntaxError, match="write field:value"):
        cli_filter("nothing")
    request = search_request("Stadt", ["year:2005..2010", "type:Monografie"], ["subject"])
    assert request.filters == [Filter("year", low=2005, high=2010), Filter("type", "Monografie")]
    assert request.facets == {"subject": 10}


def test_filter_field_names_take_case_and_german_aliases_like_the_query() -> None:
    """`jahr:2009` and `Type:` worked in the query and were refused as filters."""
    request = search_request("", ["jahr:2009", "Type:Monografie", "schlagwort:Soziale Stadt"], [])
    assert request.filters == [
        Filter("year", "2009"),
        Filter("type", "Monografie"),
        Filter("subject", "Soziale Stadt"),
    ]
    with pytest.raises(QuerySyntaxError, match="unknown field 'titel'"):
        search_request("", ["titel:Stadt"], [])  # an alias of a field that is no facet


def test_the_page_writes_every_filter_field_colon_value() -> None:
    assert page_filter("Typ=Monographie") == "type:Monographie"
    assert page_filter(" jahr : 2005..2010") == "year:2005..2010"
    assert page_filter("subject:Soziale Stadt") == "subject:Soziale Stadt"
    for not_a_filter in ("colour:blau", "nothing", "year:2010..2005"):
        assert page_filter(not_a_filter) == not_a_filter  # the search reports it


def test_a_search_takes_at_most_a_hundred_distinct_filters() -> None:
    """Unbounded, 5,000 filters took a server 10 s; the same filter twice is one filter."""
    years = [f"year:{1900 + n}" for n in range(100)]
    assert len(search_request("", years, []).filters) == 100
    with pytest.raises(QuerySyntaxError, match=r"^101 filters: a search takes at most 100 "):
        search_request("", [*years, "year:2100"], [])
    repeated = search_request("", ["type:Monografie"] * 500 + years[:99], [])
    assert repeated.filters[0] == Filter("type", "Monografie") and len(repeated.filters) == 100


def test_filters_that_filter_alike_count_once() -> None:
    """A field by its alias and a value in another case or umlaut spelling filter alike: they
    counted twice against the bound of 100 and went to the backend twice."""
    spellings = ["type=Monographie", "Typ=monographie", "subject=Bürgerbeteiligung",
                 "Schlagwort=buergerbeteiligung", "year=2009", "jahr=2009"]  # fmt: skip
    request = build_request("", spellings, [], 10, "relevance", 10, 0)
    assert request.filters == [
        Filter("type", "Monographie"),
        Filter("subject", "Bürgerbeteiligung"),
        Filter("year", "2009"),
    ]
    years = [f"year={1900 + n}" for n in range(99)]
    assert (
        len(build_request("", [*years, *spellings[:2]], [], 10, "relevance", 10, 0).filters) == 100
    )


def test_an_unknown_sort_is_refused_where_every_search_is_built() -> None:
    """`build_request` (CLI, API, page, demo) took any other word as `relevance`, so only
    callers that checked first refused it."""
    for order in SORT_ORDERS:
        assert build_request("", [], [], 10, order, 10, 0).sort == order
    with pytest.raises(
        QuerySyntaxError, match=r"^sort 'newest': use relevance, year_desc, year_asc$"
    ):
        build_request("", [], [], 10, "newest", 10, 0)


def test_page_numbers_are_ascii_digits() -> None:
    """`str.isdigit` took `²` and `①`, which `int` refuses, and 5,000 digits, more than
    `int` reads: each a 500."""
    assert [page_number(t) for t in ("3", " 12 ", "", "abc", "-2", "\u00b2", "\u2460")] == [
        3, 12, 1, 1, 1, 1, 1,
    ]  # fmt: skip
    assert page_number("9" * 5000) == 10**9  # past the last page: the page redirects there


def test_a_value_filtered_under_two_spellings_is_one_entry() -> None:
    state = SearchState(filters=["subject:Soziale Stadt", "subject:soziale stadt"])
    entries = facet_entries("subject", [FacetValue("Soziale Stadt", 9)], state)
    assert [(e.value, e.count, e.selected, e.filter) for e in entries] == [
        ("Soziale Stadt", 9, True, "subject:Soziale Stadt")
    ]


def test_after_cursor_is_json() -> None:
    assert parse_after(None) is None
    assert parse_after("[10]") == [10]
    assert parse_after('[3.5, "oai:x"]') == [3.5, "oai:x"]
    for bad in ("10", "[]", "{", '"x"'):
        with pytest.raises(QuerySyntaxError, match="next_search_after"):
            parse_after(bad)


def test_page_state_round_trips_through_the_url() -> None:
    state = SearchState("soziale Stadt", ["subject:Soziale Stadt"], "year_desc", 3)
    assert state.url() == ("/?q=soziale+Stadt&filter=subject%3ASoziale+Stadt&sort=year_desc&page=3")
    assert state.toggled("subject:Soziale Stadt") == "/?q=soziale+Stadt&sort=year_desc"
    assert state.toggled("year:2009") == (
        "/?q=soziale+Stadt&filter=subject%3ASoziale+Stadt&filter=year%3A2009&sort=year_desc"
    )
    assert SearchState().url() == "/"


def test_year_bars_fill_the_gaps_of_the_timeline() -> None:
    bars, width = year_bars(
        [FacetValue("2001", 4), FacetValue("2004", 2)], SearchState(filters=["year:2004"])
    )
    assert [(b.year, b.count) for b in bars] == [(2001, 4), (2002, 0), (2003, 0), (2004, 2)]
    assert bars[0].height == 80.0 and bars[3].height == 40.0 and bars[3].selected
    assert width == 40.0
    assert year_bars([], SearchState()) == ([], 0.0)


def test_before_the_first_harvest_search_is_503_and_health_is_ok(tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(data_dir=tmp_path / "empty")))
    answer = client.get("/api/search", params={"q": "Stadt"})
    assert answer.status_code == 503 and "no index at" in answer.json()["error"]
    page = client.get("/")
    assert page.status_code == 503 and "Index nicht verfügbar" in page.text
    assert client.get("/healthz").json() == {"status": "ok", "backend": "embedded"}
    assert client.get("/api/status").json() == {"harvests": []}
    assert "content-security-policy" in answer.headers
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def test_a_query_syntax_error_on_the_page_keeps_the_form(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    EmbeddedBackend(settings.index_dir).create()  # an empty index
    client = TestClient(create_app(settings))
    assert client.get("/").status_code == 200
    page = client.get("/", params={"q": '"soziale Stadt'})
    assert page.status_code == 400
    assert "unbalanced quote" in page.text and 'role="alert"' in page.text
    assert 'value="&#34;soziale Stadt"' in page.text  # what was typed, to correct it
