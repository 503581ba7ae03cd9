"""DataCite metadata kernel (3 and 4; `datacite`, `oai_datacite`), matched by local name.

`oai_datacite` wraps the `<resource>` in `<oai_datacite><payload>`; both are accepted.

- titles/title (the one without titleType first) -> title; titleType Subtitle -> subtitle
- creators/creator -> authors (nameType Organizational -> corporate; familyName/givenName
  where given); contributors/contributor contributorType Editor -> editors
- dates/date dateType Issued, then publicationYear -> issued
- identifier (DOI/URN/Handle/URL), alternateIdentifiers by their type -> identifiers
- descriptions/description descriptionType Abstract -> abstracts; subjects -> subjects
- resourceType text, then resourceTypeGeneral -> type; language; publisher
- rightsList/rights (text or rightsURI) -> rights
"""

from __future__ import annotations

from lxml import etree

from harvester.normalize.crosswalks.common import (
    Draft,
    child_text,
    children,
    element_language,
    first_child,
    local_name,
    text_of,
)


def _resource(payload: etree._Element) -> etree._Element:
    if local_name(payload) == "resource":
        return payload
    for element in payload.iter("{*}resource"):
        return element
    return payload


def crosswalk(payload: etree._Element) -> Draft:
    """Read a DataCite `<resource>` payload into a Draft."""
    resource = _resource(payload)
    draft = Draft()
    publication_year = ""
    for element in resource:
        name = local_name(element)
        if name == "titles":
            titles = list(children(element, "title"))
            main = next((t for t in titles if not t.get("titleType")), None)
            draft.title = text_of(main if main is not None else (titles or [None])[0])
            subtitle = next((t for t in titles if t.get("titleType") == "Subtitle"), None)
            draft.subtitle = text_of(subtitle)
        elif name == "creators":
            for creator in children(element, "creator"):
                _add_name(creator, "creatorName", draft, editor=False)
        elif name == "contributors":
            for contributor in children(element, "contributor"):
                if contributor.get("contributorType") == "Editor":
                    _add_name(contributor, "contributorName", draft, editor=True)
        elif name == "dates":
            for date_el in children(element, "date"):
                if date_el.get("dateType") == "Issued":
                    draft.dates.append(text_of(date_el))
        elif name == "publicationYear":
            publication_year = text_of(element)
        elif name == "identifier":
            draft.add_identifier(element.text, (element.get("identifierType") or "").lower())
        elif name == "alternateIdentifiers":
            for alternate in children(element, "alternateIdentifier"):
                kind = (alternate.get("alternateIdentifierType") or "").lower()
                if kind != "oai":
                    draft.add_identifier(alternate.text, kind)
        elif name == "descriptions":
            for description in children(element, "description"):
                if description.get("descriptionType") == "Abstract":
                    draft.add_abstract(text_of(description), element_language(description))
        elif name == "subjects":
            for subject in children(element, "subject"):
                draft.add_subject(text_of(subject))
        elif name == "resourceType":
            text = text_of(element)
            general = element.get("resourceTypeGeneral") or ""
            draft.type = text or general
            draft.type_candidates.extend(v for v in (text, general) if v)
        elif name == "language":
            draft.languages.append(text_of(element))
        elif name == "publisher":
            draft.publisher = text_of(element)
        elif name == "rightsList":
            for rights in children(element, "rights"):
                draft.add_rights(text_of(rights) or rights.get("rightsURI"))
    draft.dates.append(publication_year)
    return draft


def _add_name(person: etree._Element, name_tag: str, draft: Draft, *, editor: bool) -> None:
    name_el = first_child(person, name_tag)
    corporate = name_el is not None and name_el.get("nameType") == "Organizational"
    family, given = child_text(person, "familyName"), child_text(person, "givenName")
    name = f"{family}, {given}" if family and given and not corporate else text_of(name_el)
    draft.add_person(name or family, editor=editor, corporate=corporate)
