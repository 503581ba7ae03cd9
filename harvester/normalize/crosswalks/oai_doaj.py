"""DOAJ article metadata (`oai_doaj`), matched by local name.

Every DOAJ record is a journal article, so the normalized type is `article` whatever else
the record says. title, authors/author/name, publicationDate, journalTitle + volume + issue +
startPage/endPage -> host, issn/eissn, doi, publisher, language, abstract, keywords/keyword,
fullTextUrl -> links.
"""

from __future__ import annotations

from lxml import etree

from harvester.normalize.crosswalks.common import (
    Draft,
    child_text,
    children,
    element_language,
    join_pages,
    local_name,
    text_of,
)


def crosswalk(payload: etree._Element) -> Draft:
    """Read an `<oai_doaj:doajArticle>` payload into a Draft."""
    draft = Draft(type_hint="article")
    host: dict[str, str] = {}
    first_page = last_page = ""
    for element in payload:
        name = local_name(element)
        if name == "title" and not draft.title:
            draft.title = text_of(element)
        elif name == "authors":
            for author in children(element, "author"):
                draft.add_person(child_text(author, "name"))
        elif name == "publicationDate":
            draft.dates.append(text_of(element))
        elif name == "journalTitle":
            host["title"] = text_of(element)
        elif name in ("volume", "issue"):
            host[name] = text_of(element)
        elif name == "startPage":
            first_page = text_of(element)
        elif name == "endPage":
            last_page = text_of(element)
        elif name in ("issn", "eissn"):
            draft.add_identifier(element.text, "issn")
        elif name == "doi":
            draft.add_identifier(element.text, "doi")
        elif name == "publisher":
            draft.publisher = text_of(element)
        elif name == "language":
            draft.languages.append(text_of(element))
        elif name == "abstract":
            draft.add_abstract(text_of(element), element_language(element))
        elif name == "keywords":
            for keyword in children(element, "keyword"):
                draft.add_subject(text_of(keyword))
        elif name == "fullTextUrl":
            draft.add_link(element.text)
    draft.set_host(pages=join_pages(first_page, last_page), **host)
    return draft
