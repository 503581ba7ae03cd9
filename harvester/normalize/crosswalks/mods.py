"""MODS (Metadata Object Description Schema, v3), matched by local name in any namespace.

- titleInfo (the first without `type`, else the first): nonSort + title -> title, subTitle ->
  subtitle
- name (top level only): type="corporate" -> corporate; role codes/texts aut, cre, author,
  Verfasser -> authors, edt, editor, Hrsg., Herausgeber -> editors, no role -> authors; other
  roles (printer, advisor, ...) are left out. namePart given/family, else displayForm, else
  the whole namePart
- originInfo (eventType publication or none first): dateIssued (keyDate first), dateCreated,
  copyrightDate -> issued; publisher; place/placeTerm (text preferred over codes)
- language/languageTerm -> language; abstract (with `xml:lang`/`lang`) -> abstracts
- subject/topic, geographic, temporal, name, title and genre-free subject text -> subjects
- genre, then typeOfResource -> type
- identifier type=issn/isbn/doi/urn/hdl/uri/local, recordInfo/recordIdentifier -> identifiers
- location/url -> links; accessCondition -> rights
- relatedItem type="host": titleInfo/title -> host title, its issn -> identifiers; part
  (in the host or at top level): detail volume/issue number, extent pages start/end/list
"""

from __future__ import annotations

from lxml import etree

from harvester.normalize.crosswalks.common import (
    Draft,
    child_text,
    children,
    clean,
    element_language,
    first_child,
    join_pages,
    local_name,
    text_of,
)

_AUTHOR_ROLES = frozenset(
    {"aut", "cre", "author", "creator", "verfasser", "verfasserin", "autor", "autorin"}
)
_EDITOR_ROLES = frozenset(
    {"edt", "editor", "hrsg.", "hrsg", "hg.", "herausgeber", "herausgeberin", "ed.", "eds."}
)
_SUBJECT_PARTS = ("topic", "geographic", "temporal", "name", "titleInfo", "occupation")


def crosswalk(payload: etree._Element) -> Draft:
    """Read a `<mods:mods>` payload (or a `modsCollection` holding one) into a Draft."""
    mods = payload
    if local_name(mods) == "modsCollection":
        mods = first_child(mods, "mods") or mods
    draft = Draft()
    _read_title(mods, draft)
    _read_names(mods, draft)
    _read_origin(mods, draft)
    genres: list[str] = []
    resource_types: list[str] = []
    for element in mods:
        name = local_name(element)
        if name == "language":
            for term in children(element, "languageTerm"):
                draft.languages.append(term.text or "")
        elif name == "abstract":
            draft.add_abstract(text_of(element), element_language(element))
        elif name == "subject":
            for part in element:
                if local_name(part) in _SUBJECT_PARTS:
                    draft.add_subject(text_of(part))
        elif name == "genre":
            genres.append(text_of(element))
        elif name == "typeOfResource":
            resource_types.append(text_of(element))
        elif name == "identifier":
            draft.add_identifier(element.text, element.get("type") or "")
        elif name == "recordInfo":
            for record_id in children(element, "recordIdentifier"):
                draft.add_identifier(record_id.text, "local")
        elif name == "location":
            for url in children(element, "url"):
                draft.add_link(url.text)
        elif name == "accessCondition":
            draft.add_rights(text_of(element) or element.get("{http://www.w3.org/1999/xlink}href"))
        elif name == "relatedItem" and element.get("type") == "host":
            _read_host(element, draft)
        elif name == "part":
            _read_part(element, draft)
    draft.type_candidates = [t for t in genres + resource_types if t]
    draft.type = draft.type_candidates[0] if draft.type_candidates else ""
    return draft


def _read_title(mods: etree._Element, draft: Draft) -> None:
    infos = list(children(mods, "titleInfo"))
    if not infos:
        return
    info = next((i for i in infos if not i.get("type")), infos[0])
    title = child_text(info, "title")
    non_sort = child_text(info, "nonSort")
    if non_sort and title:
        title = f"{non_sort} {title}" if not non_sort.endswith(("'", "’")) else non_sort + title
    draft.title = title
    draft.subtitle = child_text(info, "subTitle")


def _read_names(mods: etree._Element, draft: Draft) -> None:
    for name_el in children(mods, "name"):
        roles = [clean(t.text).casefold() for t in name_el.iter("{*}roleTerm")]
        if any(r in _EDITOR_ROLES for r in roles):
            editor = True
        elif not roles or any(r in _AUTHOR_ROLES for r in roles):
            editor = False
        else:
            continue
        corporate = name_el.get("type") == "corporate"
        draft.add_person(_name_text(name_el, corporate), editor=editor, corporate=corporate)


def _name_text(name_el: etree._Element, corporate: bool) -> str:
    """`Family, Given` from nameParts, else displayForm, else all nameParts joined."""
    parts = list(children(name_el, "namePart"))
    family = next((text_of(p) for p in parts if p.get("type") == "family"), "")
    given = next((text_of(p) for p in parts if p.get("type") == "given"), "")
    if family and not corporate:
        return f"{family}, {given}" if given else family
    display = child_text(name_el, "displayForm")
    if display and not corporate:
        return display
    untyped = [text_of(p) for p in parts if p.get("type") in (None, "")]
    return (". " if corporate else ", ").join(u for u in untyped if u) or display


def _read_origin(mods: etree._Element, draft: Draft) -> None:
    origins = sorted(
        children(mods, "originInfo"),
        key=lambda o: o.get("eventType") not in (None, "publication"),
    )
    for origin in origins:
        issued = sorted(
            children(origin, "dateIssued", "dateCreated", "copyrightDate"),
            key=lambda d: (local_name(d) != "dateIssued", d.get("keyDate") != "yes"),
        )
        draft.dates.extend(text_of(d) for d in issued if d.get("point") != "end")
        if not draft.publisher:
            draft.publisher = child_text(origin, "publisher")
        if not draft.place:
            terms = [t for p in children(origin, "place") for t in children(p, "placeTerm")]
            text_terms = [t for t in terms if t.get("type") != "code"]
            draft.place = text_of((text_terms or terms or [None])[0])


def _read_host(host: etree._Element, draft: Draft) -> None:
    title_info = first_child(host, "titleInfo")
    if title_info is not None:
        draft.set_host(title=child_text(title_info, "title"))
    for identifier in children(host, "identifier"):
        if (identifier.get("type") or "").lower() in ("issn", "isbn"):
            draft.add_identifier(identifier.text, identifier.get("type") or "")
    for part in children(host, "part"):
        _read_part(part, draft)


def _read_part(part: etree._Element, draft: Draft) -> None:
    for detail in children(part, "detail"):
        kind = (detail.get("type") or "").lower()
        number = child_text(detail, "number") or child_text(detail, "caption")
        if kind in ("volume", "issue"):
            draft.set_host(**{kind: number})
    for extent in children(part, "extent"):
        if (extent.get("unit") or "pages").lower() in ("pages", "page", "seiten", "s."):
            pages = child_text(extent, "list") or join_pages(
                child_text(extent, "start"), child_text(extent, "end")
            )
            draft.set_host(pages=pages)
