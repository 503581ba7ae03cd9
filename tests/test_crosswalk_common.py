"""The shared rules every crosswalk relies on: strings, titles, names, dates, identifiers,
types and languages."""

from __future__ import annotations

from datetime import date

import pytest

from harvester.model import NORMALIZED_TYPES, Person
from harvester.normalize.crosswalks.common import (
    Draft,
    clean,
    clean_title,
    map_type,
    normalize_isbn,
    normalize_issn,
    normalize_language,
    parse_date,
    parse_person,
)


def test_clean_collapses_whitespace_and_composes_umlauts() -> None:
    decomposed = "Sta\u0308dte  in\n\tsozialer\u00a0Verantwortung "
    assert clean(decomposed) == "Städte in sozialer Verantwortung"
    assert clean(None) == ""


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ("Städte in sozialer Verantwortung.", "Städte in sozialer Verantwortung"),
        ("Wohnen, Arbeiten u.a.", "Wohnen, Arbeiten u.a."),
        ("Stadtbauwelt, Jg.", "Stadtbauwelt, Jg."),
        ("Handbuch Bd.", "Handbuch Bd."),
        ("Förderverein Altstadt e.V.", "Förderverein Altstadt e.V."),
        ("Kommentar, hrsg. von K. Müller, Hrsg.", "Kommentar, hrsg. von K. Müller, Hrsg."),
        ("Paragraph 34 ff.", "Paragraph 34 ff."),
        ("Festschrift für Walter J.", "Festschrift für Walter J."),
        ("Und dann...", "Und dann..."),
        ("Der Soldat /", "Der Soldat"),
        ("Quartiere :", "Quartiere"),
        ("Teil 2. .", "Teil 2"),
        ("Chefsache Assistenz : Office 4.0.", "Chefsache Assistenz : Office 4.0"),
        ("Bericht 01.10.1998 - 30.06.2000.", "Bericht 01.10.1998 - 30.06.2000"),
        ("Stadt Ulm, z.B.", "Stadt Ulm, z.B."),
    ],
)
def test_title_loses_only_the_sentence_period(raw: str, title: str) -> None:
    assert clean_title(raw) == title
    assert clean_title(title) == title


@pytest.mark.parametrize(
    ("raw", "person"),
    [
        ("Kocks, Martina", Person("Kocks, Martina", "Kocks", "Martina")),
        ("Güles,Orhan", Person("Güles,Orhan", "Güles", "Orhan")),
        ("Orhan Güles", Person("Orhan Güles", "Güles", "Orhan")),
        ("Smith, J.", Person("Smith, J.", "Smith", "J.")),
        ("Loen, Johann Michael von.", Person("Loen, Johann Michael von", "Loen", "Johann Michael von")),
        ("Riocreux, Alfred, 1820-1912", Person("Riocreux, Alfred, 1820-1912", "Riocreux", "Alfred")),
        ("Aristoteles", Person("Aristoteles", "Aristoteles")),
        (
            "Deutsches Institut für Urbanistik",
            Person("Deutsches Institut für Urbanistik", "Deutsches Institut für Urbanistik", corporate=True),
        ),
        # found in the captured samples (DataCite)
        ("Jenni Schmitt et al.", Person("Jenni Schmitt", "Schmitt", "Jenni")),
        ("Schmitt, Jenni u. a.", Person("Schmitt, Jenni", "Schmitt", "Jenni")),
        ("World Bank", Person("World Bank", "World Bank", corporate=True)),
        (
            "Environmental Sciences Division, Oak Ridge National Laboratory",
            Person(
                "Environmental Sciences Division, Oak Ridge National Laboratory",
                "Environmental Sciences Division, Oak Ridge National Laboratory",
                corporate=True,
            ),
        ),
        ("Deutscher, Isaac", Person("Deutscher, Isaac", "Deutscher", "Isaac")),
    ],
)  # fmt: skip
def test_parse_person(raw: str, person: Person) -> None:
    assert parse_person(raw) == person


def test_parse_person_corporate_flag_and_empty() -> None:
    assert parse_person("Stadt Köln", corporate=True) == Person(
        "Stadt Köln", "Stadt Köln", "", True
    )
    assert parse_person("  ") is None


@pytest.mark.parametrize(
    ("raw", "issued", "year"),
    [
        ("2009", "2009", 2009),
        ("2009-09", "2009-09", 2009),
        ("2009-09-04", "2009-09-04", 2009),
        ("2009-09-04T10:00:00Z", "2009-09-04", 2009),
        ("[2009]", "2009", 2009),
        ("ca. 2009", "2009", 2009),
        ("2009/2010", "2009", 2009),
        ("20210311", "2021-03-11", 2021),
        ("04.09.2009", "2009-09-04", 2009),
        ("c1999.", "1999", 1999),
        ("2009-13-01", "2009", 2009),  # impossible month dropped, no day invented
        ("2009-02-30", "2009-02", 2009),  # impossible day dropped
    ],
)
def test_parse_date_keeps_what_is_there(raw: str, issued: str, year: int) -> None:
    assert parse_date(raw) == (issued, year, "")


@pytest.mark.parametrize("raw", ["0999", "0000-01-01", str(date.today().year + 6), "undatiert"])
def test_parse_date_rejects_implausible_or_missing_years(raw: str) -> None:
    issued, year, warning = parse_date(raw)
    assert (issued, year) == ("", None)
    assert raw in warning


def test_standard_numbers() -> None:
    assert normalize_issn("03032493") == "0303-2493"
    assert normalize_issn("0303-2494") is None
    assert normalize_isbn("3-16-148410-X") == "9783161484100"
    assert normalize_isbn("978-3-16-148410-0") == "9783161484100"
    assert normalize_isbn("978-3-16-148410-1") is None
    assert normalize_isbn("058134433") is None  # a 9-digit SBN is not an ISBN


@pytest.mark.parametrize(
    ("value", "kind", "field", "expected"),
    [
        ("https://doi.org/10.1000/ABC", "", "doi", "10.1000/abc"),
        ("doi:10.1000/XyZ", "doi", "doi", "10.1000/xyz"),
        ("URN:NBN:de:0168-ssoar-1", "", "urn", "urn:nbn:de:0168-ssoar-1"),
        ("hdl:1765/1160", "", "handle", "https://hdl.handle.net/1765/1160"),
        ("https://orlis.difu.de/handle/difu/1", "uri", "handle", "https://orlis.difu.de/handle/difu/1"),
        ("DM09072727", "", "local", "DM09072727"),
        ("DM09072727", "uri", "local", "DM09072727"),
        ("ISSN 0303-2493", "", "issn", "0303-2493"),
        ("ISBN 978-3-16-148410-0 (kart.)", "", "isbn", "9783161484100"),
        ("058134433", "local", "local", "058134433"),
        # found in the captured samples (colostate, DataCite's GMS records)
        ("http://dx.doi.org/doi:10.1371/journal.ppat.1003316", "", "doi", "10.1371/journal.ppat.1003316"),
        ("urn:urn:nbn:de:0183-mbi0002519", "", "urn", "urn:nbn:de:0183-mbi0002519"),
        ("urn:urn:isbn:3-16-148410-X", "", "urn", "urn:isbn:3-16-148410-X"),
    ],
)  # fmt: skip
def test_identifiers_are_recognised(value: str, kind: str, field: str, expected: str) -> None:
    draft = Draft()
    draft.add_identifier(value, kind)
    assert getattr(draft.identifiers, field) == [expected]
    assert draft.warnings == []


def test_unqualified_bare_numbers_are_not_taken_for_isbns() -> None:
    draft = Draft()
    draft.add_identifier("15154777")
    draft.add_identifier("3161484100")
    assert draft.identifiers.isbn == [] and draft.identifiers.issn == []


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("Zeitschriftenaufsatz", "article"), ("Aufsatz", "article"), ("journal article", "article"),
        ("Article", "article"), ("info:eu-repo/semantics/article", "article"),
        ("Journal (Paginated)", "article"), ("Journal (On-line/Unpaginated)", "article"),
        ("Monographie", "book"), ("Buch", "book"), ("book", "book"),
        ("Aufsatz in Sammelwerk", "book part"), ("Sammelwerksbeitrag", "book part"),
        ("bookPart", "book part"), ("book chapter", "book part"),
        ("Bericht", "report"), ("Forschungsbericht", "report"), ("Report", "report"),
        ("Dissertation", "thesis"), ("Hochschulschrift", "thesis"), ("thesis", "thesis"),
        ("doctoralThesis", "thesis"), ("masterThesis", "thesis"),
        ("Konferenzbeitrag", "conference paper"), ("conferenceObject", "conference paper"),
        ("Zeitschrift", "periodical"), ("Periodikum", "periodical"), ("periodical", "periodical"),
        ("Graue Literatur", "grey literature"), ("Arbeitspapier", "grey literature"),
        ("working paper", "grey literature"), ("Preprint", "grey literature"),
        ("Dataset", "other"), ("", "other"),
    ],
)  # fmt: skip
def test_type_mapping(value: str, normalized: str) -> None:
    assert map_type(value) == normalized
    assert normalized in NORMALIZED_TYPES


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("ger", "de"), ("deu", "de"), ("de", "de"), ("German", "de"), ("Deutsch", "de"),
        ("eng", "en"), ("en", "en"), ("English", "en"), ("fre", "fr"), ("fra", "fr"),
        ("de-DE", "de"), ("nds", "nds"), ("und", ""), ("zxx", ""), ("Klingonisch!", ""),
    ],
)  # fmt: skip
def test_language_normalization(value: str, code: str) -> None:
    assert normalize_language(value) == code


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        # Zenodo's oai_dc: HTML escaped inside the XML (`&amp;lt;p&amp;gt;` as sent)
        ("&lt;p&gt;A configuration&lt;/p&gt;&lt;p&gt;of &lt;em&gt;two&lt;/em&gt; models&lt;/p&gt;",
         "A configuration of two models"),
        ("the &ldquo;urban&rdquo; model&#39;s core", "the \u201curban\u201d model's core"),
        ("R&D in AT&T labs, &parameter and x < y > z", "R&D in AT&T labs, &parameter and x < y > z"),
    ],
)  # fmt: skip
def test_markup_sent_inside_an_abstract_is_read_as_text(sent: str, expected: str) -> None:
    draft = Draft()
    draft.add_abstract(sent)
    assert [a.text for a in draft.abstracts] == [expected]
