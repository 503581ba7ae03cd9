"""Hand-written records of each format (tests/data/crosswalks/) normalize to what they say:
umlauts and ß intact, several authors, corporate authors, editors, host publications, odd
dates, invalid ISSN/ISBN as warnings, abbreviations keeping their period."""

from __future__ import annotations

from pathlib import Path

from harvester.model import HostPublication, Identifiers, Person, RawRecord, Record
from harvester.normalize.normalizer import normalize

DATA = Path(__file__).parent / "data" / "crosswalks"


def load(file_name: str, prefix: str, crosswalk: str | None = None) -> Record:
    raw = RawRecord(
        identifier="oai:test:1",
        datestamp="2024-01-01",
        deleted=False,
        sets=["s"],
        xml=(DATA / file_name).read_bytes(),
        metadata_prefix=prefix,
    )
    return normalize(raw, source="test", crosswalk=crosswalk)


def test_dim_book_part() -> None:
    record = load("dim_book_part.xml", "dim")
    assert record.title == "Grün in der Stadt u.a."  # abbreviation keeps its period
    assert record.subtitle == "Beispiele aus Köln, Düsseldorf und Gießen"
    assert record.authors == [
        Person("Weiß, Jürgen", "Weiß", "Jürgen"),
        Person("Straßburger, Anna-Lena", "Straßburger", "Anna-Lena"),
        Person(
            "Deutsches Institut für Urbanistik (Difu)",
            "Deutsches Institut für Urbanistik (Difu)",
            corporate=True,
        ),
    ]
    assert record.editors == [Person("Bunzel, Arno", "Bunzel", "Arno")]
    assert (record.issued, record.year) == ("2019-09-04", 2019)  # German date, not accessioned
    assert [(a.language, a.text[:14]) for a in record.abstracts] == [
        ("de", "Der Beitrag un"),
        ("en", "The chapter st"),
    ]
    assert "Straßenräume und" in record.abstracts[0].text  # whitespace collapsed
    assert record.subjects == ["Grünfläche", "Straßenraum"]  # deduplicated, ddc code left out
    assert (record.type, record.normalized_type) == ("Aufsatz in Sammelwerk", "book part")
    assert (record.language, record.language_detected) == ("de", False)
    assert record.identifiers == Identifiers(
        isbn=["9783161484100"],
        doi=["10.34744/difu-sonderveroeffentlichung_2019"],
        urn=["urn:nbn:de:0168-ssoar-12345-6"],
        handle=["https://orlis.difu.de/handle/difu/550148"],
        local=["DM19050123"],
    )
    assert record.warnings == ["invalid ISBN '978-3-88118-999-9'"]
    assert record.host == HostPublication(
        title="Stadtgrün im Wandel. Handbuch für die Praxis", pages="45-67"
    )
    assert (record.publisher, record.place) == ("Difu", "Berlin")
    assert record.rights == ["CC BY 4.0"]
    assert "https://orlis.difu.de/handle/difu/550148" in record.links


def test_oai_dc_in_default_namespace_with_odd_values() -> None:
    record = load("oai_dc_default_namespace.xml", "oai_dc")
    assert record.title == "Mobilität und Verkehr in Groß- und Mittelstädten"
    assert [p.display for p in record.authors] == [
        "Müller-Lüdenscheidt, Hans",
        "Öztürk, Ayşe",
        "Bundesamt für Bauwesen und Raumordnung",
    ]
    assert record.authors[2].corporate and record.authors[2].family == record.authors[2].display
    assert (record.issued, record.year) == ("2009", 2009)  # `ca. 2009`, timestamp ignored
    assert (record.language, record.language_detected) == ("de", False)
    assert record.normalized_type == "report"
    assert record.identifiers.issn == []
    assert record.warnings == ["invalid ISSN '1234-5678'"]
    assert record.identifiers.doi == ["10.1000/abc.def"]
    assert record.identifiers.urn == ["urn:nbn:de:101:1-2015"]
    assert record.abstracts[0].language == "de"


def test_mods_article_with_host_and_roles() -> None:
    record = load("mods_article.xml", "mods")
    assert record.title == "Die Straße als Lebensraum"
    assert record.subtitle == "Beobachtungen aus Bd. 3 der Reihe Jg."
    assert [(p.family, p.given, p.corporate) for p in record.authors] == [
        ("Größer", "Jörg", False),
        ("Äbischer", "Lea", False),
        ("Deutscher Städtetag", "", True),
    ]
    assert [p.display for p in record.editors] == ["Schmitz, Beate"]  # printer left out
    assert (record.issued, record.year) == ("2009", 2009)  # `[2009]`
    assert (record.type, record.normalized_type) == ("Zeitschriftenartikel", "article")
    assert (record.publisher, record.place) == ("Oekom", "München")
    assert record.language == "de"
    assert record.abstracts[0].language == "de"
    assert record.subjects == ["Straßenraum", "München"]
    assert record.identifiers.issn == ["0303-2493"]
    assert record.identifiers.isbn == ["9783161484100"]
    assert record.identifiers.doi == ["10.1234/strasse.2009"]
    assert record.identifiers.local == ["DM09072727"]
    assert record.host == HostPublication(
        title="Informationen zur Raumentwicklung", volume="36", issue="9/10", pages="611-620"
    )
    assert record.rights == ["CC BY-SA 4.0"]
    assert record.links == ["https://example.org/mods-1"]


def test_marcxml_article_under_every_marc_name() -> None:
    records = [
        load("marcxml_article.xml", prefix, crosswalk)
        for prefix, crosswalk in (
            ("marcxml", None),
            ("marc21", None),
            ("marc", None),
            ("x", "marc21"),
        )
    ]
    record = records[0]
    assert all(r.title == record.title and r.host == record.host for r in records)
    assert record.title == "Quartiersentwicklung in Süddeutschland"
    assert record.subtitle == "Erfahrungen seit 1990"
    assert record.authors == [
        Person("Hoffmann, Gisela", "Hoffmann", "Gisela"),
        Person(
            "Universität Stuttgart. Städtebau-Institut",
            "Universität Stuttgart. Städtebau-Institut",
            corporate=True,
        ),
    ]
    assert record.editors == [Person("Krämer, Uwe", "Krämer", "Uwe")]  # illustrator left out
    assert (record.issued, record.year) == ("2020-05", 2020)
    assert record.normalized_type == "article"  # leader 07 = b
    assert (record.publisher, record.place) == ("Kohlhammer", "Stuttgart")
    assert record.language == "de"
    assert record.abstracts[0].language == "de"
    assert record.subjects == ["Quartiersmanagement", "Süddeutschland"]
    assert record.host == HostPublication(
        title="Die alte Stadt", volume="47", issue="3", pages="201-215"
    )
    assert record.identifiers.issn == ["0170-9364"]
    assert record.warnings == ["invalid ISSN '1234-5678'"]
    assert record.identifiers.doi == ["10.5555/quartier.2020.3"]
    assert record.identifiers.local == ["1234567890"]


def _oai_dc(identifier: str, elements: bytes) -> Record:
    """The record `identifier` whose oai_dc payload holds `elements`, normalized."""
    xml = (
        b'<record xmlns="http://www.openarchives.org/OAI/2.0/"><header><identifier>'
        + identifier.encode()
        + b"</identifier><datestamp>2024-01-01</datestamp></header><metadata>"
        b'<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        + elements
        + b"</oai_dc:dc></metadata></record>"
    )
    return normalize(RawRecord(identifier, "2024-01-01", False, [], xml, "oai_dc"), "test")


def test_missing_fields_stay_empty() -> None:
    record = _oai_dc(
        "oai:t:2",
        b"<dc:title>Nur ein Titel</dc:title>",
    )
    assert record.title == "Nur ein Titel"
    assert (record.authors, record.year, record.issued, record.host) == ([], None, "", None)
    assert record.normalized_type == "other"
    assert record.identifiers == Identifiers()
    assert record.language_detected is (record.language != "")


def test_a_declared_language_wins_over_a_title_tagged_in_another() -> None:
    """PUC-Rio tags titles `[en] ...` and declares `<dc:language>pt</dc:language>` below them:
    the tag came first, and 4 of its 5 records were English (found in the captured samples)."""
    record = _oai_dc(
        "oai:t:3",
        b"<dc:title>[en] ADIMENSIONAL MODELS"
        b"</dc:title><dc:subject>[pt] MODELOS</dc:subject><dc:language>pt</dc:language>",
    )
    assert record.title == "ADIMENSIONAL MODELS"
    assert (record.language, record.language_detected) == ("pt", False)


def test_datacite_series_information_is_the_host_not_an_abstract() -> None:
    """DataCite's oai_dc (GMS records) announces a description's kind in the description
    before it: the series was indexed as a second abstract and the journal, its numbering and
    ISSN were lost; `Other` text was an abstract too (found in the captured samples)."""
    record = _oai_dc(
        "oai:t:4",
        b"<dc:title>Bibliotheken im Wandel</dc:title>"
        b"<dc:description>Abstract</dc:description><dc:description>Der Beitrag beschreibt den "
        b"Wandel.</dc:description><dc:description>SeriesInformation</dc:description>"
        b"<dc:description>GMS Medizin - Bibliothek - Information; 12(3):Doc15; ISSN 1865-066X"
        b"</dc:description><dc:description>Other</dc:description><dc:description>[for full "
        b"text, please go to the a.m. URL]</dc:description>",
    )
    assert [a.text for a in record.abstracts] == ["Der Beitrag beschreibt den Wandel."]
    assert record.host == HostPublication(
        "GMS Medizin - Bibliothek - Information", "12", "3", "Doc15"
    )
    assert record.identifiers.issn == ["1865-066X"]


def test_a_series_spelled_out_in_words_is_read_too() -> None:
    record = _oai_dc(
        "oai:t:5",
        b"<dc:title>Musikterapi</dc:title>"
        b"<dc:description>SeriesInformation</dc:description><dc:description>MIPO Musikterapi I "
        b"Psykiatrien Online, yr. 2012, vol. 7, iss. 2, pg. 23-44; ISSN 2245-3342"
        b"</dc:description>",
    )
    assert record.host == HostPublication(
        "MIPO Musikterapi I Psykiatrien Online", "7", "2", "23-44"
    )
    assert record.identifiers.issn == ["2245-3342"]
