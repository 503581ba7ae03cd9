"""DSpace `dim` (DSpace Intermediate Metadata): qualified Dublin Core as flat fields,
`<dim:field mdschema="dc" element="contributor" qualifier="author" lang="de">`.

The richest format DSpace serves and the one ernte prefers for ORLIS. Mapping (schema `dc`
unless said otherwise; `*` = any qualifier):

- title -> title; title.subtitle -> subtitle
- contributor.author, contributor (unqualified), creator -> authors;
  contributor.editor -> editors; contributor.corporate / .corporation / .institution /
  .organization / creator.corporate -> corporate authors
- date.issued -> issued (then dc.date, date.created); never date.accessioned / .available
- identifier.issn/.isbn/.doi/.urn/.uri/.other/.* -> identifiers (uri: handle + links;
  other: local, e.g. the ORLIS number `DM09072727`, which is also recognised by its
  shape in any `identifier` field of any schema)
- description.abstract -> abstracts (with the field's `lang`); other description
  qualifiers (ORLIS's `Abs` marker, notes, provenance) are not abstracts
- subject, subject.* (except classification codes ddc/udc/rvk/bk/lcc/classification)
  -> subjects
- type -> type; language, language.iso -> language
- publisher -> publisher; publisher.place -> place
- relation.ispartof, bibliographicCitation.* / citation.* (journaltitle, volume, issue,
  firstpage/lastpage/pages) -> host; relation.uri -> links; rights, rights.* -> rights
"""

from __future__ import annotations

from lxml import etree

from harvester.normalize.crosswalks.common import Draft, clean, join_pages, normalize_language

_CLASSIFICATION_QUALIFIERS = frozenset({"ddc", "udc", "rvk", "bk", "lcc", "classification"})
_CORPORATE_QUALIFIERS = frozenset(
    {"corporate", "corporation", "institution", "organization", "organisation", "other_corp"}
)
_HOST_TITLE_QUALIFIERS = frozenset({"journaltitle", "title", "journal", "booktitle"})
_CITATION_ELEMENTS = frozenset({"bibliographicCitation", "bibliographiccitation", "citation"})
_DC = frozenset({"dc", "DC", None})


def crosswalk(payload: etree._Element) -> Draft:
    """Read a `<dim:dim>` payload into a Draft."""
    draft = Draft()
    issued: list[str] = []
    other_dates: list[str] = []
    first_page = last_page = ""
    for field_el in payload:
        if not isinstance(field_el.tag, str):
            continue
        get = field_el.get
        # DSpace writes element and qualifier names in lower case (bibliographicCitation is
        # the one camel-cased element); lower-casing every name costs more than it buys.
        element = get("element") or ""
        qualifier = get("qualifier") or ""
        value = field_el.text or ""
        if element == "identifier":
            draft.add_identifier(value, qualifier if get("mdschema") in _DC else "")
            continue
        if get("mdschema") not in _DC and element not in _CITATION_ELEMENTS:
            continue
        if element == "subject":
            if qualifier not in _CLASSIFICATION_QUALIFIERS:
                draft.add_subject(value)
        elif element == "title":
            if not qualifier and not draft.title:
                draft.title = value
            elif qualifier == "subtitle" and not draft.subtitle:
                draft.subtitle = value
        elif element in ("contributor", "creator"):
            if qualifier == "editor":
                draft.add_person(value, editor=True)
            elif qualifier in _CORPORATE_QUALIFIERS:
                draft.add_person(value, corporate=True)
            elif qualifier in ("", "author"):
                draft.add_person(value)
        elif element == "date":
            if qualifier == "issued":
                issued.append(value)
            elif qualifier in ("", "created"):
                other_dates.append(value)
        elif element == "description":
            if qualifier == "abstract":
                draft.add_abstract(value, normalize_language(get("lang") or ""))
        elif element == "type":
            draft.add_type(value)
        elif element == "language":
            draft.languages.append(value)
        elif element == "publisher":
            if qualifier == "place":
                draft.place = draft.place or clean(value)
            elif not qualifier:
                draft.publisher = draft.publisher or clean(value)
        elif element == "rights":
            draft.add_rights(value)
        elif element == "relation":
            if qualifier == "ispartof":
                draft.set_host(title=value)
            elif qualifier == "uri":
                draft.add_link(value)
        elif element in _CITATION_ELEMENTS:
            qualifier = qualifier.lower()
            if qualifier in _HOST_TITLE_QUALIFIERS:
                draft.set_host(title=value)
            elif qualifier == "volume":
                draft.set_host(volume=value)
            elif qualifier == "issue":
                draft.set_host(issue=value)
            elif qualifier in ("firstpage", "spage", "startpage"):
                first_page = first_page or value
            elif qualifier in ("lastpage", "epage", "endpage"):
                last_page = last_page or value
            elif qualifier == "pages":
                draft.set_host(pages=value)
    if first_page or last_page:
        draft.set_host(pages=join_pages(first_page, last_page))
    draft.dates = issued + other_dates
    return draft
